"""matmul (numpy semantics), batch_matmul, dense and gemm against numpy, built with the default
CPU schedule (register-blocked tiles one packed panel wide for 4+ rows, matrix-vector kernels
below that),
alone and with a fused epilogue. Sizes are odd (1, 3, 7, 13, 19, 37) so the row tail, the
zero-padded column panel and the K tail all run; outputs start NaN-filled.
"""
import numpy as np
import pytest
from helpers import assert_close, rand

import tensorc as tc
from tensorc import ops, te
from tensorc.ops import matmul as MM
from tensorc.ops import schedule_nn as SN
from tensorc.ops import schedule_nn_fusion as SNF


@pytest.fixture(autouse=True)
def _always_parallel(monkeypatch):
    """Small test shapes would run on one thread; make every schedule take its parallel path."""
    monkeypatch.setattr(SNF, "PARALLEL_WORK", 0)


def run(out, inputs, feed, expected, rtol=1e-4, atol=1e-4, schedule=None):
    s = SN.create_schedule(out) if schedule is None else schedule
    f = tc.build(s, list(inputs) + [out], name="mm_test")
    got = np.full(out.shape, np.nan, out.dtype)
    f(*[feed[t] for t in inputs], got)
    assert_close(got, np.asarray(expected, np.float64).astype(got.dtype), rtol=rtol, atol=atol)
    return got


def relu_bias(y, b):
    return te.compute(y.shape, lambda *i: te.max(y[i] + b[i[-1]], 0.0), name="relu_bias",
                      tag="broadcast")


@pytest.mark.parametrize("M, N, K", [(13, 37, 19), (3, 37, 19), (1, 70, 8), (6, 16, 3),
                                     (2, 5, 33)])
def test_matmul_2d_bias_relu(M, N, K):
    a = te.placeholder((M, K), name="a")
    b = te.placeholder((K, N), name="b")
    bias = te.placeholder((N,), name="bias")
    y = MM.matmul(a, b)
    assert y.op.tag == "matmul"
    out = relu_bias(y, bias)
    feed = {a: rand(a.shape, seed=1), b: rand(b.shape, seed=2), bias: rand((N,), seed=3)}
    run(out, [a, b, bias], feed, np.maximum(feed[a] @ feed[b] + feed[bias], 0))


@pytest.mark.parametrize("ashape, bshape", [
    ((37,), (37,)),               # vector @ vector: the dot product, 0-d
    ((19,), (19, 37)),            # vector @ matrix
    ((19,), (2, 19, 5)),          # vector @ batched matrix
    ((2, 13, 19), (19,)),         # batched matrix @ vector
    ((2, 1, 5, 7), (3, 7, 9)),    # broadcast batch dims
    ((1, 7, 13), (3, 13, 4)),     # batch 1 broadcast on the left
])
def test_matmul_numpy_semantics(ashape, bshape):
    """Both default schedules: schedule_nn's (the graph compiler's) and ops.schedule_for."""
    a = te.placeholder(ashape, name="a")
    b = te.placeholder(bshape, name="b")
    y = MM.matmul(a, b)
    feed = {a: rand(ashape, seed=4), b: rand(bshape, seed=5)}
    ref = np.matmul(feed[a].astype(np.float64), feed[b].astype(np.float64))
    assert y.shape == ref.shape
    run(y, [a, b], feed, ref)
    run(y, [a, b], feed, ref, schedule=ops.schedule_for(y))


@pytest.mark.parametrize("ta, tb, B1, B2", [(False, False, 3, 3), (True, False, 1, 2),
                                            (False, True, 2, 1), (True, True, 2, 2)])
def test_batch_matmul(ta, tb, B1, B2):
    M, N, K = 7, 19, 13
    a = te.placeholder((B1,) + ((K, M) if ta else (M, K)), name="a")
    b = te.placeholder((B2,) + ((N, K) if tb else (K, N)), name="b")
    y = MM.batch_matmul(a, b, ta, tb)
    feed = {a: rand(a.shape, seed=6), b: rand(b.shape, seed=7)}
    an = np.swapaxes(feed[a], 1, 2) if ta else feed[a]
    bn = np.swapaxes(feed[b], 1, 2) if tb else feed[b]
    run(y, [a, b], feed, np.matmul(an.astype(np.float64), bn))


@pytest.mark.parametrize("M, N, K", [(1, 37, 19), (2, 13, 40), (3, 7, 16), (13, 37, 19),
                                     (7, 16, 1)])
def test_dense_bias(M, N, K):
    x = te.placeholder((M, K), name="x")
    w = te.placeholder((N, K), name="w")
    b = te.placeholder((N,), name="b")
    y = MM.dense(x, w, b)
    feed = {x: rand(x.shape, seed=8), w: rand(w.shape, seed=9), b: rand((N,), seed=10)}
    run(y, [x, w, b], feed, feed[x].astype(np.float64) @ feed[w].T + feed[b])


def test_dense_relu_epilogue_and_no_bias():
    x = te.placeholder((1, 45), name="x")
    w = te.placeholder((21, 45), name="w")
    y = MM.dense(x, w)
    assert y.op.tag == "dense"
    out = te.compute(y.shape, lambda i, j: te.max(y[i, j], 0.0), name="relu", tag="elemwise")
    feed = {x: rand(x.shape, seed=11), w: rand(w.shape, seed=12)}
    run(out, [x, w], feed, np.maximum(feed[x].astype(np.float64) @ feed[w].T, 0))


def test_dense_3d_input():
    x = te.placeholder((2, 3, 11), name="x")
    w = te.placeholder((5, 11), name="w")
    y = MM.dense(x, w)
    feed = {x: rand(x.shape, seed=13), w: rand(w.shape, seed=14)}
    run(y, [x, w], feed, feed[x].astype(np.float64) @ feed[w].T)


@pytest.mark.parametrize("ta, tb, cshape, alpha, beta", [
    (False, False, (19,), 1.0, 1.0),
    (True, False, (13, 1), 0.5, 2.0),
    (False, True, (13, 19), 1.5, -1.0),
    (True, True, (1,), 2.0, 0.25),
    (False, True, None, 0.75, 1.0),
    (False, False, (1, 19), 1.0, 0.0),
])
def test_gemm(ta, tb, cshape, alpha, beta):
    M, N, K = 13, 19, 7
    a = te.placeholder((K, M) if ta else (M, K), name="A")
    b = te.placeholder((N, K) if tb else (K, N), name="B")
    c = te.placeholder(cshape, name="C") if cshape else None
    y = MM.gemm(a, b, c, alpha, beta, ta, tb)
    feed = {a: rand(a.shape, seed=15), b: rand(b.shape, seed=16)}
    if c is not None:
        feed[c] = rand(cshape, seed=17)
    an = feed[a].T if ta else feed[a]
    bn = feed[b].T if tb else feed[b]
    ref = alpha * (an.astype(np.float64) @ bn)
    if c is not None:
        ref = ref + beta * feed[c]
    run(y, [a, b] + ([c] if c is not None else []), feed, ref)


def test_matmul_register_tile_in_asm():
    """The 6 x 16 micro-kernel keeps its accumulators in ymm registers (no stack traffic)."""
    a = te.placeholder((48, 64), name="a")
    b = te.placeholder((64, 64), name="b")
    y = MM.matmul(a, b)
    s = SN.create_schedule(y)
    asm = tc.build(s, [a, b, y]).get_source("asm")
    assert asm.count("vfmadd231ps") >= 12
    fma_lines = [ln for ln in asm.splitlines() if "vfmadd" in ln]
    assert not any("rsp" in ln for ln in fma_lines)


@pytest.mark.parametrize("M, packed", [(3, False), (4, True), (13, True)])
def test_left_operand_packed_in_row_groups_from_four_rows(M, packed):
    """From MIN_ROWS rows on the product reads A through its 6-row interleaving (zero rows
    past M), computed once at the root; below, the matrix-vector kernels read A in place."""
    a = te.placeholder((M, 19), name="a")
    b = te.placeholder((19, 37), name="b")
    y = MM.matmul(a, b)
    tags = {getattr(t.op, "tag", None): t for t in y.op.input_tensors}
    assert ("matmul_pack_rows" in tags) == packed
    if packed:
        assert tags["matmul_pack_rows"].shape == (-(-M // MM.ROWS), 19, MM.ROWS)
        assert "matmul_pack_rows" in str(tc.lower(SN.create_schedule(y), [a, b, y]))
    feed = {a: rand(a.shape, seed=4), b: rand(b.shape, seed=5)}
    run(y, [a, b], feed, feed[a] @ feed[b])


@pytest.mark.parametrize("make, match", [
    (lambda: MM.matmul(te.placeholder((3, 4), name="a"), te.placeholder((5, 6), name="b")),
     r"matmul: 'a' dimension 1 \(4\) does not match 'b' dimension 0 \(5\)"),
    (lambda: MM.matmul(te.placeholder((2, 3, 4), name="a"),
                       te.placeholder((3, 4, 5), name="b")),
     r"matmul: batch dimension -1 of 'a' \(2\) and 'b' \(3\) cannot be broadcast"),
    (lambda: MM.dense(te.placeholder((3, 4), name="x"), te.placeholder((5, 6), name="w")),
     r"dense: weight 'w' dimension 1 \(6\) does not match data 'x' dimension 1 \(4\)"),
    (lambda: MM.dense(te.placeholder((3, 4), name="x"), te.placeholder((5, 4, 1), name="w")),
     r"dense: weight 'w' must have 2 dimensions"),
    (lambda: MM.dense(te.placeholder((3, 4), name="x"), te.placeholder((5, 4), name="w"),
                      te.placeholder((4,), name="b")),
     r"dense: bias 'b' must have shape \(5,\)"),
    (lambda: MM.batch_matmul(te.placeholder((2, 3, 4), name="a"),
                             te.placeholder((2, 5, 6), name="b")),
     r"batch_matmul: reduction length of 'a' \(4\) does not match that of 'b' \(5\)"),
    (lambda: MM.gemm(te.placeholder((3, 4), name="A"), te.placeholder((4, 5), name="B"),
                     te.placeholder((2, 5), name="C")),
     r"gemm: C 'C' of shape \(2, 5\) does not broadcast to \(3, 5\)"),
    (lambda: MM.gemm(te.placeholder((3, 4), name="A"), te.placeholder((3, 5), name="B")),
     r"gemm: A 'A' gives K=4"),
])
def test_matmul_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("registers, expected", [(16, [6, 6, 6, 6]), (32, [6, 12, 12, 12])])
def test_register_tile_rows_follow_the_register_file(monkeypatch, registers, expected):
    """Whole groups of the six-row packing of A: 6 rows with 16 vector registers, 12 with 32
    (never more groups than the rows need)."""
    from tensorc.ops import schedule_nn_matmul as SNM
    monkeypatch.setattr(SNM, "vector_registers", lambda: registers)
    assert [SNM.default_mr(m) for m in (5, 7, 13, 1024)] == expected


@pytest.mark.parametrize("lanes, widths", [
    (8, {16: 16, 32: 16, 48: 16, 768: 16, 1000: 16}),                # AVX2: always 16
    (16, {16: 16, 32: 32, 40: 16, 48: 32, 768: 32, 1000: 16}),      # AVX-512
])
def test_panel_width_is_two_vectors_where_n_is_whole_vectors(monkeypatch, lanes, widths):
    """Two native vectors per panel (each broadcast of A feeds two FMAs) when N is at least
    that and a multiple of one vector; otherwise 16 columns, whose ragged tail runs well."""
    from tensorc.ops import schedule_cpu
    monkeypatch.setattr(schedule_cpu, "vector_lanes", lambda dtype: lanes)
    assert {n: MM.panel_width(n) for n in widths} == widths


@pytest.mark.parametrize("make", ["matmul", "dense", "batch_matmul"])
def test_two_vector_panels_match_numpy(monkeypatch, make):
    """32-column panels (forced by a 16-lane vector unit) with a half-empty last panel (N =
    48), odd rows and K: the tile and the zero-padded pack give numpy's product."""
    from tensorc.ops import schedule_cpu
    monkeypatch.setattr(schedule_cpu, "vector_lanes", lambda dtype: 16)
    M, N, K = 13, 48, 19
    if make == "dense":
        a, b = te.placeholder((M, K), name="x"), te.placeholder((N, K), name="w")
        y = MM.dense(a, b)
    elif make == "matmul":
        a, b = te.placeholder((M, K), name="a"), te.placeholder((K, N), name="b")
        y = MM.matmul(a, b)
    else:
        a, b = te.placeholder((2, M, K), name="a"), te.placeholder((2, K, N), name="b")
        y = MM.batch_matmul(a, b)
    pack = next(t for t in y.op.input_tensors if t.op.tag == "matmul_pack")
    assert pack.shape[-1] == 32 and pack.shape[-3] == 2
    feed = {a: rand(a.shape, seed=21), b: rand(b.shape, seed=22)}
    bn = feed[b].T if make == "dense" else feed[b]
    run(y, [a, b], feed, np.matmul(feed[a].astype(np.float64), bn))
