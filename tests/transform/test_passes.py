"""The lowering passes, seen through the lowered text and through results.

loop partitioning (guards leave the main loop), vectorization (ramps for contiguous accesses,
scalar fallback where a lane-dependent condition remains), unrolling (copies), simplification
(split/fuse index arithmetic folds away) and the IR dump (TENSORC_DUMP_IR / dump=True).
Every schedule whose text is inspected is also built and checked against the oracle.
"""
import os
import re
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import check, lower_text  # noqa: E402

import tensorc as tc  # noqa: E402
from tensorc import te  # noqa: E402
from tensorc.ir import stmt as S  # noqa: E402
from tensorc.ir.functor import post_order_visit  # noqa: E402
from tensorc.schedule.schedule_ops import schedule_ops  # noqa: E402
from tensorc.transform.loop_partition import partition_loops  # noqa: E402
from tensorc.transform.pipeline import Pass, Sequential, default_passes, simplify_pass  # noqa
from tensorc.transform.storage_flatten import storage_flatten  # noqa: E402
from tensorc.transform.unroll import MAX_UNROLL, unroll_loops  # noqa: E402
from tensorc.transform.vectorize import vectorize_loops  # noqa: E402


# ------------------------------------------------------------------------------ utilities

def blocks(text, header):
    """Every block of lines (header included) under a line matching ``header`` (a regex)."""
    lines = text.splitlines()
    out = []
    for n, line in enumerate(lines):
        if re.match(header, line.strip()):
            ind = len(line) - len(line.lstrip())
            body = [line]
            for nxt in lines[n + 1:]:
                if len(nxt) - len(nxt.lstrip()) <= ind:
                    break
                body.append(nxt)
            out.append(body)
    return out


def stripped(block):
    return [x.strip() for x in block]


def flat_func(s, args):
    """The function right after storage flattening, before any of the default passes."""
    body, _ = schedule_ops(s)
    outputs = {s[o].op.output(0) for o in s.outputs}
    return storage_flatten(body, [s[a].op.output(0) for a in args], "main", outputs)


def count_nodes(func, cls):
    found = []
    post_order_visit(func.body, lambda n: found.append(n) if isinstance(n, cls) else None)
    return len(found)


def elementwise_1d(n, fn=lambda x, i: x * 2 + 1):
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: fn(A[i], i), name="B")
    return A, B


# -------------------------------------------------------------------------- loop partition

def test_partition_removes_guard_from_main_loop_1000_by_16():
    A, B = elementwise_1d(1000)
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=16)
    text = lower_text(s, [A, B])
    mains = blocks(text, r"for i\.outer in range\(62\):")
    assert len(mains) == 1, text
    assert not any(x.startswith("if ") for x in stripped(mains[0])), text
    check(s, [A, B], lambda a: a * 2 + 1)


def test_partition_keeps_inner_loop_whole_in_main_part():
    """The main part of a 1000/16 split is one 16-iteration inner loop: partitioning must not
    split the inner loop of every outer iteration because the last outer one overhangs."""
    A, B = elementwise_1d(1000)
    s = te.create_schedule(B.op)
    s[B].split(B.op.axis[0], factor=16)
    text = lower_text(s, [A, B])
    (main,) = blocks(text, r"for i\.outer in range\(62\):")
    inner = [x for x in stripped(main) if x.startswith("for i.inner")]
    assert inner == ["for i.inner in range(16):"], text


def test_partition_tiled_2d_main_tile_has_full_unguarded_loops():
    A = te.placeholder((33, 127), name="A")
    C = te.compute((33, 127), lambda i, j: A[i, j] * 2, name="C")
    s = te.create_schedule(C.op)
    s[C].tile(C.op.axis[0], C.op.axis[1], 8, 16)
    text = lower_text(s, [A, C])
    (main,) = blocks(text, r"for i\.outer in range\(4\):")
    body = stripped(main)
    assert not any(x.startswith("if ") for x in body), text
    assert "for i.inner in range(8):" in body, text
    assert "for j.inner in range(16):" in body, text
    check(s, [A, C], lambda a: a * 2)


def test_partition_pass_alone_drops_guards():
    A, B = elementwise_1d(1000)
    s = te.create_schedule(B.op)
    s[B].split(B.op.axis[0], factor=16)
    func = simplify_pass(flat_func(s, [A, B]))
    assert count_nodes(func, S.IfThenElse) == 1
    part = partition_loops(func)
    # The guard survives only in the tail copy, which no longer lies in a loop over i.outer.
    outer_loops = []
    post_order_visit(part.body, lambda n: outer_loops.append(n) if isinstance(n, S.For) and
                     n.loop_var.name == "i.outer" else None)
    assert outer_loops
    for loop in outer_loops:
        if loop.extent.value > 1:
            assert count_nodes(S.PrimFunc("x", (), loop.body, ()), S.IfThenElse) == 0


def test_partition_not_applied_when_divisible():
    A, B = elementwise_1d(1024)
    s = te.create_schedule(B.op)
    s[B].split(B.op.axis[0], factor=16)
    text = lower_text(s, [A, B])
    assert "if " not in text
    assert text.count("for i.outer") == 1 and text.count("for i.inner") == 1, text


def padded(H, W, pad, stride=1, name="P"):
    """A zero-padded (and, with stride 2, subsampled) copy of a (H, W) input, as conv packs
    write it: every element is select(inside, A[r, q], 0)."""
    A = te.placeholder((H, W), name="A")
    OH, OW = (H + 2 * pad - 1) // stride + 1, (W + 2 * pad - 1) // stride + 1

    def f(i, j):
        r, q = i * stride - pad, j * stride - pad
        return te.if_then_else(te.all(r >= 0, r < H, q >= 0, q < W), A[r, q],
                               te.const(0, "float32"))
    return A, te.compute((OH, OW), f, name=name)


def ref_padded(a, pad, stride=1):
    return np.pad(a, pad)[::stride, ::stride]


def test_partition_folds_the_padding_select_off_the_border():
    """The interior rows and columns of a padded copy are plain loads: the select's bounds
    conjuncts hold there, so partitioning cuts the loops at the border and drops them."""
    A, P = padded(13, 17, 2)
    s = te.create_schedule(P.op)
    text = lower_text(s, [A, P])
    assert re.search(r"for i in range\(2, 2 \+ 13\):", text), text
    assert re.search(r"for j in range\(2, 2 \+ 17\):", text), text
    assert "select" not in text, text  # the border copies fold too: their conditions are constant
    check(s, [A, P], lambda a: ref_padded(a, 2))


def test_partition_padding_with_stride_and_vectorized_columns():
    """Stride 2 and a vectorized column split that does not divide the width: the border
    vector keeps its lane-dependent select (a masked load), the interior ones lose it."""
    A, P = padded(30, 37, 1, stride=2)
    s = te.create_schedule(P.op)
    jo, ji = s[P].split(P.op.axis[1], factor=8)
    s[P].vectorize(ji)
    text = lower_text(s, [A, P])
    interior = [x for x in text.splitlines() if "ramp(" in x and "select" not in x]
    assert interior, text
    check(s, [A, P], lambda a: ref_padded(a, 1, 2))


def test_partition_select_shared_by_loops_of_different_extents():
    """One select expression (one Python object) under two inner loops with different ranges:
    the part where it is dropped must suit both, so both results stay exact."""
    A = te.placeholder((20,), name="A")
    k = te.reduce_axis((0, 5), name="k")
    pad = te.compute((24,), lambda i: te.if_then_else(i - 2 >= 0, A[te.min(i, 21) - 2],
                                                      te.const(0, "float32")), name="pad")
    B = te.compute((20,), lambda i: te.sum(pad[i + k], axis=k), name="B")
    s = te.create_schedule(B.op)
    s[pad].compute_inline()
    check(s, [A, B], lambda a: np.convolve(np.concatenate([[0, 0], a, a[-1:], a[-1:]]),
                                           np.ones(5), "valid"))


def test_partition_with_compute_at_overhang_still_correct():
    A = te.placeholder((33, 127), name="A")
    B = te.compute((33, 127), lambda i, j: A[i, j] + 1, name="B")
    C = te.compute((33, 127), lambda i, j: B[i, j] * 2, name="C")
    s = te.create_schedule(C.op)
    io, jo, ii, ji = s[C].tile(C.op.axis[0], C.op.axis[1], 8, 16)
    s[B].compute_at(s[C], jo)
    check(s, [A, C], lambda a: (a + 1) * 2)


# ------------------------------------------------------------------------------- vectorize

def test_vectorize_contiguous_inner_gives_ramp():
    A, B = elementwise_1d(1024)
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=16)
    s[B].vectorize(xi)
    text = lower_text(s, [A, B])
    assert "B[ramp(i.outer * 16, 1, 16)] = A[ramp(i.outer * 16, 1, 16)]" in text, text
    assert "for i.inner" not in text
    check(s, [A, B], lambda a: a * 2 + 1)


def test_vectorize_non_divisible_main_ramp_tail_scalar():
    A, B = elementwise_1d(1000)
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=16)
    s[B].vectorize(xi)
    text = lower_text(s, [A, B])
    (main,) = blocks(text, r"for i\.outer in range\(62\):")
    assert any("ramp(" in x for x in main), text
    assert not any(x.startswith("if ") for x in stripped(main)), text
    check(s, [A, B], lambda a: a * 2 + 1)


def test_vectorize_strided_access_gives_strided_ramp():
    A = te.placeholder((8, 7), name="A")
    B = te.compute((7, 8), lambda i, j: A[j, i] * 2, name="B")
    s = te.create_schedule(B.op)
    s[B].vectorize(B.op.axis[1])
    text = lower_text(s, [A, B])
    assert re.search(r"A\[ramp\(i, 7, 8\)\]", text), text
    assert "B[ramp(i * 8, 1, 8)]" in text, text
    check(s, [A, B], lambda a: a.T * 2)


def test_vectorize_broadcasts_lane_invariant_values():
    A = te.placeholder((5, 16), name="A")
    b = te.placeholder((5,), name="b")
    C = te.compute((5, 16), lambda i, j: A[i, j] * b[i], name="C")
    s = te.create_schedule(C.op)
    s[C].vectorize(C.op.axis[1])
    text = lower_text(s, [A, b, C])
    assert "x16(b[i])" in text, text
    check(s, [A, b, C], lambda a, bv: a * bv[:, None])


def test_vectorize_keeps_lazy_selects_with_loads_vectorized():
    """A lazy select whose condition depends on the lane and whose branches read memory stays
    one vector statement: the code generator masks each branch's loads by its lanes."""
    A = te.placeholder((40,), name="A")
    B = te.compute((33,), lambda i: te.if_then_else(i % 3 == 0, A[i], A[39 - i] * 2), name="B")
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=8)
    s[B].vectorize(xi)
    assert "select(" in lower_text(s, [A, B]) and "ramp(" in lower_text(s, [A, B])
    i = np.arange(33)
    check(s, [A, B], lambda a: np.where(i % 3 == 0, a[:33], a[39 - i] * 2))


def test_vectorize_falls_back_to_scalar_on_guarded_integer_division():
    """An integer division a lane-dependent select guards cannot run on every lane (a zero
    divisor would trap): the loop stays a scalar loop, and is correct."""
    A = te.placeholder((33,), "int32", name="A")
    D = te.placeholder((33,), "int32", name="D")
    B = te.compute((33,), lambda i: te.if_then_else(D[i] != 0, A[i] // D[i], -1), name="B")
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=8)
    s[B].vectorize(xi)
    text = lower_text(s, [A, B, D])
    assert "ramp(" not in text, text
    assert re.search(r"for i\.inner in range\(8\):", text), text
    rng = np.random.default_rng(3)
    a = rng.integers(-50, 50, 33).astype("int32")
    d = rng.integers(-3, 4, 33).astype("int32")
    d[::4] = 0
    f = tc.build(s, [A, D, B])
    b = np.full(33, 7, "int32")
    f(a, d, b)
    safe = np.where(d == 0, 1, d)
    np.testing.assert_array_equal(b, np.where(d != 0, np.floor_divide(a, safe), -1))


def test_vectorize_falls_back_on_guard_inside_loop():
    """Vectorizing the outer part of a split (reordered inside) puts the overhang guard,
    which depends on the lane, inside the vectorized loop: where it cannot be partitioned
    away, that part stays a scalar loop, and everything is still correct."""
    A = te.placeholder((7, 9), name="A")
    B = te.compute((7, 9), lambda i, j: A[i, j] - 1, name="B")
    s = te.create_schedule(B.op)
    f = s[B].fuse(*B.op.axis)
    fo, fi = s[B].split(f, factor=5)            # 63 = 12 * 5 + 3: 13 outer iterations
    s[B].reorder(fi, fo)
    s[B].vectorize(fo)
    text = lower_text(s, [A, B])
    guarded = blocks(text, r"if .*< 63:")
    assert guarded, text
    assert not any("ramp(" in x for g in guarded for x in g), text
    assert re.search(r"for i\.j\.fused\.outer in range\(13\):", text), text
    check(s, [A, B], lambda a: a - 1)


def test_vectorize_pass_alone_scalar_fallback_keeps_serial_loop():
    A = te.placeholder((33,), "int32", name="A")
    B = te.compute((33,), lambda i: te.if_then_else(A[i] != 0, 100 // A[i], 0), name="B")
    s = te.create_schedule(B.op)
    s[B].vectorize(B.op.axis[0])
    func = flat_func(s, [A, B])
    kinds = []
    post_order_visit(func.body, lambda n: kinds.append(n.kind) if isinstance(n, S.For) else None)
    assert kinds == ["vectorized"]
    out = vectorize_loops(func)
    kinds = []
    post_order_visit(out.body, lambda n: kinds.append(n.kind) if isinstance(n, S.For) else None)
    assert kinds == ["serial"]


# ---------------------------------------------------------------------------------- unroll

def test_unroll_creates_copies():
    A, B = elementwise_1d(1000)
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=4)
    s[B].unroll(xi)
    text = lower_text(s, [A, B])
    assert "for i.inner" not in text
    for k in range(1, 4):
        assert f"B[i.outer * 4 + {k}] = A[i.outer * 4 + {k}]" in text, text
    assert "B[i.outer * 4] = A[i.outer * 4]" in text, text
    check(s, [A, B], lambda a: a * 2 + 1)


def test_unroll_non_divisible_copies_and_tail():
    A, B = elementwise_1d(33)
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=4)
    s[B].unroll(xi)
    text = lower_text(s, [A, B])
    assert "for i.inner" not in text and "unrolled" not in text, text
    check(s, [A, B], lambda a: a * 2 + 1)


def test_unroll_pass_alone_counts_copies():
    A, B = elementwise_1d(7)
    s = te.create_schedule(B.op)
    s[B].unroll(B.op.axis[0])
    func = flat_func(s, [A, B])
    assert count_nodes(func, S.Store) == 1
    out = unroll_loops(func)
    assert count_nodes(out, S.Store) == 7
    assert count_nodes(out, S.For) == 0


def test_unroll_beyond_limit_stays_a_loop():
    n = MAX_UNROLL + 1
    A, B = elementwise_1d(n)
    s = te.create_schedule(B.op)
    s[B].unroll(B.op.axis[0])
    text = lower_text(s, [A, B])
    assert f"for i in range({n}):" in text and "unrolled" not in text, text
    check(s, [A, B], lambda a: a * 2 + 1)


# -------------------------------------------------------------------------------- simplify

def test_simplify_split_index_recombines():
    A = te.placeholder((33, 8), name="A")
    C = te.compute((264,), lambda i: A[i // 8, i % 8] * 2, name="C")
    s = te.create_schedule(C.op)
    s[C].split(C.op.axis[0], factor=8)
    text = lower_text(s, [A, C])
    assert "//" not in text and "%" not in text, text
    assert "A[i.inner + i.outer * 8]" in text or "A[i.outer * 8 + i.inner]" in text, text
    check(s, [A, C], lambda a: a.reshape(-1) * 2)


def test_simplify_fused_index_is_the_fused_variable():
    A = te.placeholder((7, 8), name="A")
    B = te.compute((7, 8), lambda i, j: A[i, j] * 2, name="B")
    s = te.create_schedule(B.op)
    s[B].fuse(*B.op.axis)
    text = lower_text(s, [A, B])
    assert "B[i.j.fused] = A[i.j.fused] * 2.0f" in text, text
    check(s, [A, B], lambda a: a * 2)


def test_simplify_pass_alone_removes_redundancy():
    A = te.placeholder((7, 8), name="A")
    B = te.compute((7, 8), lambda i, j: A[i, j] * 2, name="B")
    s = te.create_schedule(B.op)
    s[B].fuse(*B.op.axis)
    raw = str(flat_func(s, [A, B]))
    assert "i.j.fused // 8 * 8 + i.j.fused % 8" in raw, raw
    simple = str(simplify_pass(flat_func(s, [A, B])))
    assert "B[i.j.fused] = A[i.j.fused] * 2.0f" in simple, simple


def test_simplify_keeps_float_multiplication_by_zero():
    """x * 0.0 is not 0.0 for x = NaN or inf (IEEE): the simplifier must keep it."""
    A = te.placeholder((16,), name="A")
    B = te.compute((16,), lambda i: A[i] + A[i] * 0.0, name="B")
    s = te.create_schedule(B.op)
    s[B].split(B.op.axis[0], factor=8)
    text = lower_text(s, [A, B])
    assert "* 0.0f" in text, text
    f = tc.build(s, [A, B], name="nanzero")
    a = np.ones(16, np.float32)
    a[3], a[5] = np.nan, np.inf
    b = np.zeros(16, np.float32)
    f(a, b)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(b, a + a * np.float32(0))


def test_simplify_tile_indices_are_flat_affine():
    A = te.placeholder((32, 32), name="A")
    B = te.compute((32, 32), lambda i, j: A[i, j] + 1, name="B")
    s = te.create_schedule(B.op)
    s[B].tile(B.op.axis[0], B.op.axis[1], 8, 8)
    text = lower_text(s, [A, B])
    assert "if " not in text and "//" not in text and "%" not in text, text
    assert "B[i.inner * 32 + i.outer * 256 + j.inner + j.outer * 8] = " \
        "A[i.inner * 32 + i.outer * 256 + j.inner + j.outer * 8] + 1.0f" in text, text
    check(s, [A, B], lambda a: a + 1)


# -------------------------------------------------------------------------------- IR dump

PASS_NAMES = ["schedule_ops + storage_flatten", "inject_prefetch", "simplify", "partition_loops",
              "simplify_after_partition", "unroll_loops", "vectorize_loops",
              "simplify_after_vectorize", "eager_selects"]


def _small():
    A, B = elementwise_1d(33)
    s = te.create_schedule(B.op)
    s[B].split(B.op.axis[0], factor=8)
    return s, [A, B]


def _assert_dump(err):
    headers = re.findall(r"^---- after (.+?)(?: \([0-9.]+ ms\))? ----$", err, re.M)
    assert headers == PASS_NAMES, err
    assert "def main(A: float32[33], B: float32[33]):" in err


def test_dump_true_prints_every_pass_to_stderr(capsys):
    s, args = _small()
    tc.lower(s, args, dump=True)
    out, err = capsys.readouterr()
    assert out == ""
    _assert_dump(err)


def test_dump_env_variable(capsys, monkeypatch):
    s, args = _small()
    monkeypatch.setenv("TENSORC_DUMP_IR", "1")
    tc.lower(s, args)
    out, err = capsys.readouterr()
    assert out == ""
    _assert_dump(err)


def test_dump_env_variable_through_build(capsys, monkeypatch):
    s, args = _small()
    monkeypatch.setenv("TENSORC_DUMP_IR", "1")
    tc.build(s, args, name="dumped")
    out, err = capsys.readouterr()
    assert "---- after partition_loops" in err


def test_no_dump_by_default(capsys, monkeypatch):
    s, args = _small()
    monkeypatch.delenv("TENSORC_DUMP_IR", raising=False)
    tc.lower(s, args)
    out, err = capsys.readouterr()
    assert "---- after" not in err and out == ""


def test_dump_false_overrides_env(capsys, monkeypatch):
    s, args = _small()
    monkeypatch.setenv("TENSORC_DUMP_IR", "1")
    tc.lower(s, args, dump=False)
    out, err = capsys.readouterr()
    assert "---- after" not in err


def test_pass_objects():
    names = [p.name for p in default_passes()]
    assert names == PASS_NAMES[1:]
    seq = Sequential([Pass(simplify_pass, "simplify")])
    s, args = _small()
    func = flat_func(s, args)
    assert str(seq(func)) == str(simplify_pass(func))
    assert repr(Pass(simplify_pass)) == "Pass(simplify_pass)"


@pytest.mark.parametrize("factor", [1, 3, 16, 40])
def test_lowered_text_is_deterministic(factor):
    A, B = elementwise_1d(33)
    texts = []
    for _ in range(2):
        s = te.create_schedule(B.op)
        s[B].split(B.op.axis[0], factor=factor)
        texts.append(lower_text(s, [A, B]))
    assert texts[0] == texts[1]


# ---------------------------------------------------------------------------- eager selects

def _selects(func):
    found = []
    post_order_visit(func.body, lambda n: found.append(n) if type(n).__name__ == "Select"
                     else None)
    return found


def test_select_of_in_bounds_loads_becomes_eager():
    """where(a > b, a, b * 2): both branches read inside their buffers on every lane, so the
    select computes both (plain loads, no masks) and picks."""
    A = te.placeholder((37,), name="A")
    B = te.placeholder((37,), name="B")
    C = te.compute((37,), lambda i: te.if_then_else(A[i] > B[i], A[i], B[i] * 2), name="C")
    s = te.create_schedule(C.op)
    xo, xi = s[C].split(C.op.axis[0], factor=8)
    s[C].vectorize(xi)
    func = tc.lower(s, [A, B, C])
    assert _selects(func) and not any(e.lazy for e in _selects(func))
    assert "masked.load" not in tc.build(s, [A, B, C]).get_source("llvm")
    check(s, [A, B, C], lambda a, b: np.where(a > b, a, b * 2))


def test_padding_and_guarded_division_stay_lazy():
    """A branch that reads outside its buffer where the condition excludes it (padding), or
    divides by a value the condition guards, keeps its select lazy."""
    A = te.placeholder((30,), name="A")
    P = te.compute((34,), lambda i: te.if_then_else(te.all(i >= 2, i < 32), A[i - 2], 0.0),
                   name="P")
    s = te.create_schedule(P.op)
    xo, xi = s[P].split(P.op.axis[0], factor=8)
    s[P].vectorize(xi)
    func = tc.lower(s, [A, P])
    assert any(e.lazy for e in _selects(func))
    check(s, [A, P], lambda a: np.pad(a, 2))
    D = te.placeholder((16,), "int32", name="D")
    Q = te.compute((16,), lambda i: te.if_then_else(D[i] != 0, 60 // D[i], 0), name="Q")
    s = te.create_schedule(Q.op)
    assert all(e.lazy for e in _selects(tc.lower(s, [D, Q])))
