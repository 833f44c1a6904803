"""Property tests: simplification keeps values, bounds contain them, proofs are never wrong.

Random integer expressions over a few variables with random ranges (negative values included)
are evaluated by a small reference evaluator (Python ints, floor division, wrap-around per
dtype) at random points of the ranges. Narrow dtypes (int8, uint8) make wrap-around common, so
the rules' overflow checks are exercised too.
"""
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tensorc.arith import can_prove, const_int_bound, simplify
from tensorc.arith.structural import KeyCache
from tensorc.ir import dtype as dt
from tensorc.ir import expr as E
from tensorc.ir import op
from tensorc.ir import stmt as S

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def wrap(v, dtype):
    if dtype == "bool":
        return int(bool(v))
    n = dt.bits(dtype)
    v &= (1 << n) - 1
    if dt.is_int(dtype) and v >= 1 << (n - 1):
        v -= 1 << n
    return v


_ARITH = {E.Add: lambda a, b: a + b, E.Sub: lambda a, b: a - b, E.Mul: lambda a, b: a * b,
          E.FloorDiv: lambda a, b: a // b, E.FloorMod: lambda a, b: a % b, E.Min: min,
          E.Max: max, E.EQ: lambda a, b: a == b, E.NE: lambda a, b: a != b,
          E.LT: lambda a, b: a < b, E.LE: lambda a, b: a <= b, E.GT: lambda a, b: a > b,
          E.GE: lambda a, b: a >= b}


def ev(e, env):
    """Value of an integer/bool expression (bools as 0/1)."""
    t = type(e)
    if t is E.IntImm:
        return e.value
    if t is E.Var:
        return env[e]
    if t in _ARITH:
        return wrap(_ARITH[t](ev(e.a, env), ev(e.b, env)), e.dtype)
    if t is E.And:
        return int(bool(ev(e.a, env)) and bool(ev(e.b, env)))
    if t is E.Or:
        return int(bool(ev(e.a, env)) or bool(ev(e.b, env)))
    if t is E.Not:
        return int(not ev(e.a, env))
    if t is E.Select:
        return ev(e.true_value if ev(e.cond, env) else e.false_value, env)
    if t is E.Cast:
        return wrap(ev(e.value, env), e.dtype)
    if t is E.Let:
        return ev(e.body, {**env, e.var: ev(e.value, env)})
    raise TypeError(t)


def const(v, dtype):
    return op.const(wrap(v, dtype), dtype)


@st.composite
def int_expr(draw, vs, dtype, depth):
    if depth == 0 or draw(st.integers(0, 4)) == 0:
        if draw(st.booleans()):
            return draw(st.sampled_from(vs))
        return const(draw(st.integers(-10, 10)), dtype)

    def sub():
        return draw(int_expr(vs, dtype, depth - 1))
    kind = draw(st.sampled_from(["add", "sub", "mulc", "mul", "div", "mod", "min", "max",
                                 "select", "divmod", "cast", "let"]))
    if kind == "add":
        return op.add(sub(), sub())
    if kind == "sub":
        return op.sub(sub(), sub())
    if kind == "mulc":
        return op.mul(sub(), const(draw(st.integers(-9, 9)), dtype))
    if kind == "mul":
        return op.mul(sub(), sub())
    c = const(draw(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 16, 32])), dtype)
    if kind == "div":
        return op.floordiv(sub(), c)
    if kind == "mod":
        return op.floormod(sub(), c)
    if kind == "divmod":  # the split/fuse shapes
        a = sub()
        return op.add(op.mul(op.floordiv(a, c), c), op.floormod(a, c))
    if kind == "min":
        return op.minimum(sub(), sub())
    if kind == "max":
        return op.maximum(sub(), sub())
    if kind == "let":
        v = E.Var("t", dtype)
        return E.Let(dtype, v, sub(), draw(int_expr(vs + [v], dtype, depth - 1)))
    if kind == "cast":
        other = "int16" if dtype != "int16" else "int8"
        return op.cast(dtype, op.cast(other, sub()))
    return op.select(draw(cond_expr(vs, dtype, depth - 1)), sub(), sub())


@st.composite
def cond_expr(draw, vs, dtype, depth):
    kind = draw(st.sampled_from(["cmp", "cmp", "cmp", "and", "or", "not"]))
    if kind == "cmp" or depth == 0:
        f = draw(st.sampled_from([op.lt, op.le, op.gt, op.ge, op.eq, op.ne]))
        return f(draw(int_expr(vs, dtype, depth)), draw(int_expr(vs, dtype, depth)))

    def sub():
        return draw(cond_expr(vs, dtype, depth - 1))
    if kind == "and":
        return op.logical_and(sub(), sub())
    if kind == "or":
        return op.logical_or(sub(), sub())
    return op.logical_not(sub())


@st.composite
def problem(draw, cond=False):
    """(expr, ranges, sample environments)."""
    dtype = draw(st.sampled_from(["int32", "int32", "int32", "int8", "uint8"]))
    n = draw(st.integers(2, 4))
    vs = [E.Var(name, dtype) for name in "abcd"[:n]]
    lo_min = 0 if dt.is_uint(dtype) else -20
    ranges = {}
    for v in vs:
        lo = draw(st.integers(lo_min, 20))
        ranges[v] = (lo, lo + draw(st.integers(0, 25)))
    gen = cond_expr if cond else int_expr
    e = draw(gen(vs, dtype, draw(st.integers(1, 4))))
    rng = random.Random(draw(st.integers(0, 2**32)))
    envs = [{v: lo for v, (lo, _) in ranges.items()}, {v: hi for v, (_, hi) in ranges.items()}]
    envs += [{v: rng.randint(lo, hi) for v, (lo, hi) in ranges.items()} for _ in range(30)]
    return e, ranges, envs


@SETTINGS
@given(problem())
def test_simplify_preserves_values(p):
    e, ranges, envs = p
    s = simplify(e, ranges)
    assert s.dtype == e.dtype
    for env in envs:
        assert ev(s, env) == ev(e, env), (str(e), str(s), env)


@SETTINGS
@given(problem(cond=True))
def test_simplify_preserves_conditions(p):
    e, ranges, envs = p
    s = simplify(e, ranges)
    for env in envs:
        assert ev(s, env) == ev(e, env), (str(e), str(s), env)


@SETTINGS
@given(problem())
def test_bound_contains_every_value(p):
    e, ranges, envs = p
    lo, hi = const_int_bound(e, ranges)
    for env in envs:
        assert lo <= ev(e, env) <= hi, (str(e), (lo, hi), env)


@SETTINGS
@given(problem(cond=True))
def test_can_prove_is_sound(p):
    e, ranges, envs = p
    if can_prove(e, ranges):
        assert all(ev(e, env) for env in envs), str(e)
    if can_prove(op.logical_not(e), ranges):
        assert not any(ev(e, env) for env in envs), str(e)


@SETTINGS
@given(problem())
def test_simplify_is_idempotent(p):
    e, ranges, _ = p
    s = simplify(e, ranges)
    s2 = simplify(s, ranges)
    assert KeyCache().equal(s, s2), (str(e), str(s), str(s2))


@SETTINGS
@given(st.lists(st.integers(-5, 5), min_size=2, max_size=4), st.integers(-50, 50),
       st.lists(st.tuples(st.integers(-10, 10), st.integers(0, 12)), min_size=4, max_size=4))
def test_bound_of_affine_form_is_exact(coeffs, c0, rngs):
    vs = [E.Var(f"v{k}") for k in range(len(coeffs))]
    ranges = {v: (lo, lo + w) for v, (lo, w) in zip(vs, rngs)}
    e = op.const(c0)
    for v, c in zip(vs, coeffs):
        e = e + v * c - v  # also exercises merging of repeated terms
    e = e + sum(vs[1:], vs[0])
    lo = c0 + sum(min(c * ranges[v][0], c * ranges[v][1]) for v, c in zip(vs, coeffs))
    hi = c0 + sum(max(c * ranges[v][0], c * ranges[v][1]) for v, c in zip(vs, coeffs))
    assert const_int_bound(e, ranges) == (lo, hi)


BUF = E.Var("B", "handle")


@st.composite
def program(draw, vs, depth):
    """A random loop nest of stores whose indices and values depend on the loop variables."""
    kind = draw(st.sampled_from(["store", "for", "for", "if", "seq", "let"] if depth else
                                ["store"]))

    def expr(pool):
        return draw(int_expr(pool, "int32", 2))
    if kind == "store":
        return S.Store(BUF, expr(vs), expr(vs))
    if kind == "for":
        v = E.Var(f"i{depth}")
        lo, ext = draw(st.integers(-3, 3)), draw(st.integers(-1, 4))
        return S.For(v, op.const(lo), op.const(ext), "serial", draw(program(vs + [v], depth - 1)))
    if kind == "if":
        other = draw(program(vs, depth - 1)) if draw(st.booleans()) else None
        return S.IfThenElse(draw(cond_expr(vs, "int32", 1)), draw(program(vs, depth - 1)), other)
    if kind == "let":
        v = E.Var("t")
        return S.LetStmt(v, expr(vs), draw(program(vs + [v], depth - 1)))
    return S.SeqStmt((draw(program(vs, depth - 1)), draw(program(vs, depth - 1))))


def run(s, env, out):
    """Append (index, value) of every store s performs, in order."""
    t = type(s)
    if t is S.Store:
        out.append((ev(s.index, env), ev(s.value, env)))
    elif t is S.For:
        lo = ev(s.min, env)
        for k in range(lo, lo + ev(s.extent, env)):
            run(s.body, {**env, s.loop_var: k}, out)
    elif t is S.IfThenElse:
        if ev(s.cond, env):
            run(s.then_case, env, out)
        elif s.else_case is not None:
            run(s.else_case, env, out)
    elif t is S.LetStmt:
        run(s.body, {**env, s.var: ev(s.value, env)}, out)
    elif t is S.SeqStmt:
        for x in s.seq:
            run(x, env, out)
    else:
        assert t is S.Evaluate
    return out


@SETTINGS
@given(st.data())
def test_statement_simplification_keeps_the_stores(data):
    n = E.Var("n")
    lo = data.draw(st.integers(-10, 10))
    ranges = {n: (lo, lo + data.draw(st.integers(0, 10)))}
    prog = data.draw(program([n], 3))
    simple = simplify(prog, ranges)
    for value in range(lo, ranges[n][1] + 1):
        assert run(simple, {n: value}, []) == run(prog, {n: value}, []), (str(prog), str(simple))
