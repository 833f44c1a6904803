"""Statement simplification: loops, branches, lets and sequences."""
from tensorc.arith import simplify
from tensorc.arith.structural import KeyCache
from tensorc.ir import op
from tensorc.ir import stmt as S
from tensorc.ir.expr import IntImm, Range, Var

buf = Var("A", "handle")
n = Var("n")
i, io, ii, j = Var("i"), Var("io"), Var("ii"), Var("j")


def store(index, value=1.0):
    return S.Store(buf, op.const(value, "float32"), index)


def loop(var, extent, body, kind="serial", lo=0):
    return S.For(var, op.convert(lo), op.convert(extent), kind, body)


def is_noop(s):
    return isinstance(s, S.Evaluate) and isinstance(s.value, IntImm)


def same(a, b):
    return KeyCache().equal(a, b)


def test_loop_var_range_cleans_split_indices():
    body = store(op.floordiv(io * 8 + ii, 8) * 8 + op.floormod(io * 8 + ii, 8))
    s = simplify(loop(io, 4, loop(ii, 8, body)))
    inner = s.body.body
    assert same(inner.index, ii + io * 8)


def test_extent_one_loop_becomes_body_with_substitution():
    s = simplify(loop(i, 1, store(i + j), lo=3))
    assert isinstance(s, S.Store)
    assert same(s.index, j + 3)


def test_thread_binding_extent_one_is_kept():
    f = S.For(i, op.const(0), op.const(1), "thread_binding", store(i), "threadIdx.x")
    s = simplify(f)
    assert isinstance(s, S.For)
    assert same(s.body.index, op.const(0))


def test_empty_loops_removed():
    assert is_noop(simplify(loop(i, 0, store(i))))
    assert is_noop(simplify(loop(i, -3, store(i))))
    seq = S.SeqStmt((loop(i, 0, store(i)), store(j)))
    assert isinstance(simplify(seq), S.Store)


def test_provable_guard_removed():
    guarded = S.IfThenElse(io * 32 + ii < 1024, store(io * 32 + ii))
    s = simplify(loop(io, 32, loop(ii, 32, guarded)))
    assert isinstance(s.body.body, S.Store)


def test_needed_guard_kept():
    guarded = S.IfThenElse(io * 32 + ii < 1000, store(io * 32 + ii))
    s = simplify(loop(io, 32, loop(ii, 32, guarded)))
    assert isinstance(s.body.body, S.IfThenElse)


def test_disproved_branch():
    assert is_noop(simplify(S.IfThenElse(i < 0, store(i)), {i: (0, 9)}))
    s = simplify(S.IfThenElse(i < 0, store(i), store(j)), {i: (0, 9)})
    assert isinstance(s, S.Store) and s.index is j
    seq = S.SeqStmt((S.IfThenElse(i < 0, store(i)), store(j)))
    assert simplify(seq, {i: (0, 9)}).index is j


def test_branch_condition_is_known_inside():
    inner = S.IfThenElse(i < 20, store(i))
    s = simplify(S.IfThenElse(i < 10, inner), {i: (0, 99)})
    assert isinstance(s, S.IfThenElse) and isinstance(s.then_case, S.Store)
    inner_else = S.IfThenElse(i >= 10, store(i), store(j))
    s = simplify(S.IfThenElse(i < 10, store(j), inner_else), {i: (0, 99)})
    assert isinstance(s.else_case, S.Store) and s.else_case.index is i


def test_symbolic_loop_bounds_still_bound_the_variable():
    # for ii in [0, min(8, n - io*8)): ii < 8 always.
    ext = op.minimum(op.const(8), n - io * 8)
    body = S.IfThenElse(ii < 8, store(ii))
    s = simplify(loop(io, 4, loop(ii, ext, body)))
    assert isinstance(s.body.body, S.Store)


def test_let_stmt_substitution():
    s = simplify(S.LetStmt(j, op.const(4), store(i + j)))
    assert isinstance(s, S.Store) and same(s.index, i + 4)
    s = simplify(S.LetStmt(j, i, store(j + 1)))
    assert same(s.index, i + 1)
    kept = S.LetStmt(j, i * n, store(op.floordiv(j, 1)))
    assert simplify(kept) is kept


def test_let_stmt_value_bounds_the_var():
    s = simplify(S.LetStmt(j, op.floormod(i, 8), store(op.floordiv(j, 8) + j)))
    assert isinstance(s, S.LetStmt) and s.body.index is j


def test_other_nodes_rebuilt_generically():
    alloc = S.Allocate(buf, "float32", 16, store(i - i))
    s = simplify(alloc)
    assert isinstance(s, S.Allocate) and same(s.body.index, op.const(0))
    attr = S.AttrStmt(i, "pragma", op.const(1), store(i + 0 * j))
    assert isinstance(simplify(attr), S.AttrStmt)


def test_unchanged_statement_is_same_object():
    s = loop(i, 16, S.SeqStmt((store(i), store(i + 1))))
    assert simplify(s) is s


def test_empty_body_loop_removed_and_seq_collapses():
    s = S.SeqStmt((loop(i, 8, S.IfThenElse(i > 100, store(i))), store(j)))
    assert isinstance(simplify(s), S.Store)
    assert is_noop(simplify(S.SeqStmt((S.IfThenElse(i > 100, store(i)),)), {i: (0, 9)}))


def test_realize_bounds_simplified():
    class P:
        name = "T"
    r = S.ProducerRealize(P(), (Range(io * 8 - io * 8, op.const(8)),), store(i))
    s = simplify(r)
    assert same(s.bounds[0].min, op.const(0))
