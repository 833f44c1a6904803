"""rfactor, reducers with where=, dtypes, broadcasting, and conv/softmax schedules.

Sizes are odd on purpose (1, 7, 33, 127, 1000) so that split factors do not divide them; every
output buffer is poisoned (NaN / complemented) before the run, so a point the schedule forgets
shows; every result is compared with ``te.evaluate`` and with a numpy formula written by hand.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import check, matmul  # noqa: E402

from tensorc import te  # noqa: E402


# ----------------------------------------------------------------------------------- rfactor

@pytest.mark.parametrize("factor_axis", [0, 1])
@pytest.mark.parametrize("annot", ["vectorize", "parallel", "none"])
def test_rfactor_row_sum(factor_axis, annot):
    M, N = 7, 1000
    A = te.placeholder((M, N), name="A")
    k = te.reduce_axis((0, N), name="k")
    B = te.compute((M,), lambda i: te.sum(A[i, k], axis=k), name="B")
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, factor=16)
    BF = s.rfactor(B, ki, factor_axis=factor_axis)
    assert BF.shape == ((16, M) if factor_axis == 0 else (M, 16))
    if annot == "vectorize":
        s[BF].vectorize(BF.op.axis[factor_axis])       # the new spatial axis (k.inner.v)
    elif annot == "parallel":
        s[BF].parallel(BF.op.axis[0])
    check(s, [A, B], lambda a: a.sum(axis=1), atol=1e-4)


def test_rfactor_outer_and_compute_at():
    N = 1000
    A = te.placeholder((N,), name="A")
    k = te.reduce_axis((0, N), name="k")
    B = te.compute((1,), lambda i: te.sum(A[k] * A[k], axis=k), name="B")
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, nparts=7)
    BF = s.rfactor(B, ko)
    s[BF].parallel(BF.op.axis[0])
    check(s, [A, B], lambda a: np.sum(a * a, keepdims=True), atol=1e-3)


def test_rfactor_max_with_where():
    M, N = 5, 33
    A = te.placeholder((M, N), name="A")
    k = te.reduce_axis((0, N), name="k")
    B = te.compute((M,), lambda i: te.max(A[i, k], axis=k, where=k % 3 != 1), name="B")
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, factor=4)
    BF = s.rfactor(B, ki)
    s[BF].vectorize(BF.op.axis[0])
    check(s, [A, B], lambda a: a[:, np.arange(N) % 3 != 1].max(axis=1))


# -------------------------------------------------------------------------------- reductions

REDUCERS = ["max", "min", "prod", "absmax"]


def _reducer(kind):
    if kind == "absmax":
        return te.comm_reducer(lambda x, y: te.max(te.abs(x), te.abs(y)),
                               lambda t: te.const(0, t), name="absmax")
    return getattr(te, kind)


@pytest.mark.parametrize("kind", REDUCERS)
def test_reducers_with_where_scheduled(kind):
    M, N = 7, 33
    A = te.placeholder((M, N), name="A")
    k = te.reduce_axis((0, N), name="k")
    red = _reducer(kind)
    B = te.compute((M,), lambda i: red(A[i, k], axis=k, where=k < i * 5 + 3), name="B")
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, factor=8)
    io, ii = s[B].split(B.op.axis[0], factor=2)
    s[B].reorder(io, ko, ii, ki)
    mask = np.arange(N)[None, :] < np.arange(M)[:, None] * 5 + 3
    fill = {"max": -np.inf, "min": np.inf, "prod": 1.0, "absmax": 0.0}[kind]

    def ref(a):
        x = np.where(mask, a, fill)
        if kind == "absmax":
            return np.abs(x).max(axis=1)
        return getattr(np, kind)(x, axis=1)
    check(s, [A, B], ref, rtol=1e-5, atol=1e-6)


def test_reducer_where_excludes_everything_gives_identity():
    A = te.placeholder((4, 9), name="A")
    k = te.reduce_axis((0, 9), name="k")
    B = te.compute((4,), lambda i: te.max(A[i, k], axis=k, where=k < i * 3 - 3), name="B")
    s = te.create_schedule(B.op)
    s[B].split(k, factor=2)

    def ref(a):          # rows 0 and 1 select nothing: the identity of max, -inf
        return np.array([-np.inf, -np.inf, a[2, :3].max(), a[3, :6].max()], np.float32)
    check(s, [A, B], ref)


def test_multi_axis_reduction_split_reorder():
    A = te.placeholder((5, 7, 11), name="A")
    w = te.placeholder((7, 11), name="w")
    k1 = te.reduce_axis((0, 7), name="k1")
    k2 = te.reduce_axis((1, 11), name="k2")
    B = te.compute((5,), lambda i: te.sum(A[i, k1, k2] * w[k1, k2], axis=[k1, k2]), name="B")
    s = te.create_schedule(B.op)
    k2o, k2i = s[B].split(k2, factor=3)
    s[B].reorder(k2o, B.op.axis[0], k1, k2i)
    check(s, [A, w, B], lambda a, wv: (a[:, :, 1:] * wv[:, 1:]).sum(axis=(1, 2)), atol=1e-5)


# ------------------------------------------------------------------------------------ dtypes

def test_int32_matmul_tiled_vectorized():
    A, B, C = matmul(13, 33, 9, dtype="int32")
    s = te.create_schedule(C.op)
    mo, no, mi, ni = s[C].tile(C.op.axis[0], C.op.axis[1], 4, 8)
    s[C].vectorize(ni)
    check(s, [A, B, C], lambda a, b: a @ b)


def test_int8_wraparound_vectorized():
    A = te.placeholder((127,), dtype="int8", name="A")
    B = te.compute((127,), lambda i: A[i] * A[i] * 37 + (i % 50).astype("int8"), name="B")
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=32)
    s[B].vectorize(xi)
    s[B].parallel(xo)
    idx = (np.arange(127) % 50).astype(np.int8)
    with np.errstate(over="ignore"):
        check(s, [A, B], lambda a: a * a * np.int8(37) + idx)


def test_int_floordiv_floormod_negative():
    A = te.placeholder((33,), dtype="int32", name="A")
    B = te.compute((33,), lambda i: A[i] * 7 // 3 + A[i] % 4 - (i - 16) // 5, name="B")
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=8)
    s[B].vectorize(xi)
    i = np.arange(33)
    check(s, [A, B], lambda a: a * 7 // 3 + a % 4 - (i - 16) // 5)


def test_float16_through_schedule():
    A = te.placeholder((9, 33), dtype="float16", name="A")
    B = te.compute((9, 33), lambda i, j: A[i, j] * A[i, j] + 0.25, name="B")
    k = te.reduce_axis((0, 33), name="k")
    C = te.compute((9,), lambda i: te.sum(B[i, k], axis=k), name="C")
    s = te.create_schedule(C.op)
    s[B].compute_at(s[C], C.op.axis[0])
    s[B].vectorize(s[B].op.axis[1])
    s[C].parallel(C.op.axis[0])

    def ref(a):
        b = (a * a + np.float16(0.25)).astype(np.float16)
        return b.astype(np.float32).sum(axis=1).astype(np.float16)
    check(s, [A, C], ref, rtol=2e-2, atol=5e-2)


def test_float64_matmul_tiled():
    A, B, C = matmul(17, 33, 19, dtype="float64")
    s = te.create_schedule(C.op)
    mo, no, mi, ni = s[C].tile(C.op.axis[0], C.op.axis[1], 4, 8)
    s[C].vectorize(ni)
    check(s, [A, B, C], lambda a, b: a @ b)


def test_bool_through_schedule():
    A = te.placeholder((7, 33), name="A")
    Bm = te.placeholder((7, 33), dtype="bool", name="Bm")
    C = te.compute((7, 33), lambda i, j: te.all(A[i, j] > 0, te.any(Bm[i, j], j % 3 == 0)),
                   name="C")
    D = te.compute((7, 33), lambda i, j: te.if_then_else(C[i, j], A[i, j], -A[i, j]),
                   name="D")
    s = te.create_schedule([C.op, D.op])
    jo, ji = s[C].split(C.op.axis[1], factor=8)
    s[C].vectorize(ji)
    s[D].vectorize(s[D].split(D.op.axis[1], factor=4)[1])
    j = np.arange(33)

    def ref(a, bm):
        c = (a > 0) & (bm | (j % 3 == 0))
        return c, np.where(c, a, -a)
    check(s, [A, Bm, C, D], ref)


def test_cast_and_mixed_dtypes():
    A = te.placeholder((33,), dtype="int8", name="A")
    F = te.placeholder((33,), dtype="float64", name="F")
    B = te.compute((33,), lambda i: A[i].astype("float32") * F[i].astype("float32") +
                   (F[i] * 3.7).astype("int32").astype("float32"), name="B")
    s = te.create_schedule(B.op)
    s[B].vectorize(s[B].split(B.op.axis[0], factor=8)[1])
    check(s, [A, F, B], lambda a, f: a.astype(np.float32) * f.astype(np.float32) +
          (f * 3.7).astype(np.int32).astype(np.float32))


# ------------------------------------------------------------------------------ broadcasting

def test_broadcasting_elementwise_scheduled():
    m, n = 33, 7
    A = te.placeholder((m, n), name="A")
    b = te.placeholder((n,), name="b")
    c = te.placeholder((m, 1), name="c")
    d = te.placeholder((1,), name="d")
    C = te.compute((m, n), lambda i, j: A[i, j] * b[j] - c[i, 0] / 3 + d[0], name="C")
    s = te.create_schedule(C.op)
    io, jo, ii, ji = s[C].tile(C.op.axis[0], C.op.axis[1], 8, 4)
    s[C].vectorize(ji)
    s[C].parallel(io)
    check(s, [A, b, c, d, C], lambda a, bv, cv, dv: a * bv - cv / np.float32(3) + dv)


# ------------------------------------------------------------------------------ conv, softmax

def _conv2d(N, CI, H, W, CO, KH=3, KW=3, pad=1):
    X = te.placeholder((N, CI, H, W), name="X")
    Wt = te.placeholder((CO, CI, KH, KW), name="W")
    Xp = te.compute((N, CI, H + 2 * pad, W + 2 * pad), lambda n, c, y, x: te.if_then_else(
        te.all(y >= pad, y < H + pad, x >= pad, x < W + pad), X[n, c, y - pad, x - pad], 0.0),
        name="Xp")
    rc = te.reduce_axis((0, CI), name="rc")
    ry = te.reduce_axis((0, KH), name="ry")
    rx = te.reduce_axis((0, KW), name="rx")
    Y = te.compute((N, CO, H, W), lambda n, f, y, x: te.sum(
        Xp[n, rc, y + ry, x + rx] * Wt[f, rc, ry, rx], axis=[rc, ry, rx]), name="Y")
    return X, Wt, Xp, Y


def _conv_ref(x, w, pad=1):
    N, CI, H, W = x.shape
    CO, _, KH, KW = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, CO, H, W))
    for ry in range(KH):
        for rx in range(KW):
            out += np.einsum("nchw,fc->nfhw", xp[:, :, ry:ry + H, rx:rx + W], w[:, :, ry, rx])
    return out.astype(np.float32)


@pytest.mark.parametrize("attach", ["root", "inline", "tile"])
def test_conv2d_nchw_tiled(attach):
    X, Wt, Xp, Y = _conv2d(2, 3, 13, 11, 4)
    s = te.create_schedule(Y.op)
    n, f, y, x = Y.op.axis
    rc, ry, rx = Y.op.reduce_axis
    yo, xo, yi, xi = s[Y].tile(y, x, 4, 8)
    s[Y].reorder(n, f, yo, xo, rc, ry, yi, rx, xi)
    s[Y].vectorize(xi)
    s[Y].parallel(s[Y].fuse(n, f))
    if attach == "inline":
        s[Xp].compute_inline()
    elif attach == "tile":
        s[Xp].compute_at(s[Y], xo)
    check(s, [X, Wt, Y], _conv_ref, atol=1e-5)


def test_conv2d_cache_write_compute_at():
    X, Wt, Xp, Y = _conv2d(1, 2, 9, 15, 3)
    s = te.create_schedule(Y.op)
    YL = s.cache_write(Y, "local")
    n, f, y, x = Y.op.axis
    xo, xi = s[Y].split(x, factor=8)
    s[YL].compute_at(s[Y], xo)
    s[Xp].compute_at(s[Y], y)
    s[Y].vectorize(xi)
    check(s, [X, Wt, Y], _conv_ref, atol=1e-5)


def _softmax(M, N):
    A = te.placeholder((M, N), name="A")
    k = te.reduce_axis((0, N), name="k")
    mx = te.compute((M,), lambda i: te.max(A[i, k], axis=k), name="mx")
    ex = te.compute((M, N), lambda i, j: te.exp(A[i, j] - mx[i]), name="ex")
    k2 = te.reduce_axis((0, N), name="k2")
    sm = te.compute((M,), lambda i: te.sum(ex[i, k2], axis=k2), name="sm")
    out = te.compute((M, N), lambda i, j: ex[i, j] / sm[i], name="out")
    return A, mx, ex, sm, out


def _softmax_ref(a):
    e = np.exp(a.astype(np.float64) - a.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("M,N", [(7, 33), (1, 1), (3, 1000)])
def test_softmax_compute_at(M, N):
    A, mx, ex, sm, out = _softmax(M, N)
    s = te.create_schedule(out.op)
    i, j = out.op.axis
    s[mx].compute_at(s[out], i)
    s[ex].compute_at(s[out], i)
    s[sm].compute_at(s[out], i)
    jo, ji = s[out].split(j, factor=8)
    s[out].vectorize(ji)
    s[ex].vectorize(s[ex].split(s[ex].op.axis[1], factor=8)[1])
    s[out].parallel(i)
    check(s, [A, out], _softmax_ref, rtol=1e-5, atol=1e-6)


def test_softmax_inline_exp():
    A, mx, ex, sm, out = _softmax(5, 17)
    s = te.create_schedule(out.op)
    s[ex].compute_inline()
    s[mx].compute_at(s[out], out.op.axis[0])
    s[sm].compute_at(s[out], out.op.axis[0])
    check(s, [A, out], _softmax_ref, rtol=1e-5, atol=1e-6)
