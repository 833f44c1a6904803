"""Loop-structure primitives (split, tile, reorder, fuse) and annotations (vectorize, unroll,
parallel).

Sizes are odd on purpose (1, 7, 33, 127, 1000) so that split factors do not divide them; every
output buffer is poisoned (NaN / complemented) before the run, so a point the schedule forgets
shows; every result is compared with ``te.evaluate`` and with a numpy formula written by hand.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import check, elementwise2d, lower_text, matmul, rand  # noqa: E402

from tensorc import te  # noqa: E402


def mm_ref(a, b):
    return (a.astype(np.float64) @ b.astype(np.float64)).astype(a.dtype)


# ------------------------------------------------------------------------------------ split

@pytest.mark.parametrize("n,factor", [(1, 4), (7, 3), (33, 8), (127, 16), (1000, 7), (7, 16),
                                      (5, 1), (33, 33)])
def test_split_factor(n, factor):
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * 3 - 1, name="B")
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=factor)
    assert s[B].leaf_iter_vars == [xo, xi]
    check(s, [A, B], lambda a: a * np.float32(3) - np.float32(1))


@pytest.mark.parametrize("n,nparts", [(33, 4), (7, 10), (127, 5), (1, 3)])
def test_split_nparts(n, nparts):
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] + A[n - 1 - i], name="B")
    s = te.create_schedule(B.op)
    s[B].split(B.op.axis[0], nparts=nparts)
    check(s, [A, B], lambda a: a + a[::-1])


@pytest.mark.parametrize("which", ["inner", "outer", "both"])
def test_nested_splits(which):
    n = 1000
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * A[i], name="B")
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=37)
    if which in ("inner", "both"):
        s[B].split(xi, factor=5)
    if which in ("outer", "both"):
        s[B].split(xo, nparts=4)
    check(s, [A, B], lambda a: a * a)


def test_split_2d_reduction_axis_nonzero_start():
    A = te.placeholder((7, 12), name="A")
    k = te.reduce_axis((2, 9), name="k")
    B = te.compute((7,), lambda i: te.sum(A[i, k] * 2, axis=k), name="B")
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, factor=3)
    s[B].reorder(ko, B.op.axis[0], ki)
    check(s, [A, B], lambda a: (a[:, 2:9] * 2).sum(axis=1))


# ------------------------------------------------------------------------------------- tile

@pytest.mark.parametrize("m,n,fx,fy", [(33, 127, 8, 16), (7, 5, 3, 2), (1, 7, 4, 4),
                                       (33, 33, 40, 1)])
def test_tile_elementwise(m, n, fx, fy):
    A, C = elementwise2d(m, n, lambda x, i, j: x * (i - j).astype("float32"))
    s = te.create_schedule(C.op)
    s[C].tile(C.op.axis[0], C.op.axis[1], fx, fy)
    i, j = np.indices((m, n))
    check(s, [A, C], lambda a: a * (i - j).astype(np.float32))


def test_tile_matmul_split_k_reorder():
    A, B, C = matmul(33, 127, 7)
    s = te.create_schedule(C.op)
    mo, no, mi, ni = s[C].tile(C.op.axis[0], C.op.axis[1], 8, 16)
    ko, ki = s[C].split(C.op.reduce_axis[0], factor=3)
    s[C].reorder(mo, no, ko, mi, ki, ni)
    check(s, [A, B, C], mm_ref)


# ---------------------------------------------------------------------------------- reorder

def test_reorder_reduction_axis_outermost():
    A, B, C = matmul(7, 33, 13)
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    (k,) = C.op.reduce_axis
    s[C].reorder(k, j, i)
    check(s, [A, B, C], mm_ref)


def test_reorder_split_reduction_outer_first():
    A, B, C = matmul(7, 33, 13)
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    ko, ki = s[C].split(C.op.reduce_axis[0], factor=4)
    jo, ji = s[C].split(j, factor=8)
    s[C].reorder(ko, jo, i, ki, ji)
    check(s, [A, B, C], mm_ref)


def test_reorder_partial_subset():
    A = te.placeholder((3, 5, 7), name="A")
    B = te.compute((3, 5, 7), lambda i, j, k: A[i, j, k] * (i * 100 + j * 10 + k)
                   .astype("float32"), name="B")
    s = te.create_schedule(B.op)
    i, j, k = B.op.axis
    s[B].reorder(k, i)                 # positions {0, 2}: leaves become k, j, i
    assert s[B].leaf_iter_vars == [k, j, i]
    ii, jj, kk = np.indices((3, 5, 7))
    check(s, [A, B], lambda a: a * (ii * 100 + jj * 10 + kk).astype(np.float32))


# ------------------------------------------------------------------------------------- fuse

def test_fuse_all_then_split():
    A = te.placeholder((7, 5, 9), name="A")
    B = te.compute((7, 5, 9), lambda i, j, k: A[i, j, k] + A[6 - i, j, 8 - k], name="B")
    s = te.create_schedule(B.op)
    f = s[B].fuse(*B.op.axis)
    fo, fi = s[B].split(f, factor=8)
    check(s, [A, B], lambda a: a + a[::-1, :, ::-1])


def test_fuse_inner_pair_then_split_vectorize():
    A = te.placeholder((7, 5, 9), name="A")
    B = te.compute((7, 5, 9), lambda i, j, k: A[i, j, k] * 2, name="B")
    s = te.create_schedule(B.op)
    i, j, k = B.op.axis
    f = s[B].fuse(j, k)
    fo, fi = s[B].split(f, factor=4)
    s[B].vectorize(fi)
    check(s, [A, B], lambda a: a * 2)


def test_fuse_split_axes_of_tile():
    A, C = elementwise2d(33, 127)
    s = te.create_schedule(C.op)
    mo, no, mi, ni = s[C].tile(C.op.axis[0], C.op.axis[1], 8, 16)
    f = s[C].fuse(mo, no)
    s[C].parallel(f)
    s[C].vectorize(ni)
    check(s, [A, C], lambda a: a * 2 + 1)


def test_fuse_reduction_axes():
    A = te.placeholder((5, 7, 9), name="A")
    k1 = te.reduce_axis((0, 7), name="k1")
    k2 = te.reduce_axis((0, 9), name="k2")
    B = te.compute((5,), lambda i: te.sum(A[i, k1, k2], axis=[k1, k2]), name="B")
    s = te.create_schedule(B.op)
    f = s[B].fuse(k1, k2)
    fo, fi = s[B].split(f, factor=4)
    check(s, [A, B], lambda a: a.sum(axis=(1, 2)))


# -------------------------------------------------------------------------------- vectorize

@pytest.mark.parametrize("n,factor", [(33, 8), (1000, 16), (7, 7), (7, 4), (3, 8)])
def test_vectorize_inner(n, factor):
    A = te.placeholder((5, n), name="A")
    b = te.placeholder((n,), name="b")
    C = te.compute((5, n), lambda i, j: A[i, j] * b[j] + i.astype("float32"), name="C")
    s = te.create_schedule(C.op)
    jo, ji = s[C].split(C.op.axis[1], factor=factor)
    s[C].vectorize(ji)
    rows = np.arange(5, dtype=np.float32)[:, None]
    check(s, [A, b, C], lambda a, bv: a * bv + rows)


def test_vectorize_whole_axis_and_strided_reads():
    A = te.placeholder((9, 7), name="A")
    C = te.compute((7, 9), lambda i, j: A[j, i] * 2 + A[8 - j, 6 - i], name="C")   # transpose
    s = te.create_schedule(C.op)
    s[C].vectorize(C.op.axis[1])
    check(s, [A, C], lambda a: a.T * 2 + a[::-1, ::-1].T)


INTRINSICS = [
    ("exp", lambda x: te.exp(x), np.exp),
    ("log_abs", lambda x: te.log(te.abs(x)), lambda x: np.log(np.abs(x))),
    ("sqrt_abs", lambda x: te.sqrt(te.abs(x)), lambda x: np.sqrt(np.abs(x))),
    ("rsqrt_abs", lambda x: te.rsqrt(te.abs(x)), lambda x: 1 / np.sqrt(np.abs(x))),
    ("tanh", te.tanh, np.tanh),
    ("sigmoid", te.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    ("floor", lambda x: te.floor(x * 3), lambda x: np.floor(x * 3)),
    ("ceil", lambda x: te.ceil(x * 3), lambda x: np.ceil(x * 3)),
    ("round", lambda x: te.round(x * 3), lambda x: np.round(x * 3)),
    ("trunc", lambda x: te.trunc(x * 3), lambda x: np.trunc(x * 3)),
    ("sin", te.sin, np.sin),
    ("cos", te.cos, np.cos),
    ("exp2", te.exp2, np.exp2),
    ("log2_abs", lambda x: te.log2(te.abs(x)), lambda x: np.log2(np.abs(x))),
    ("log1p_abs", lambda x: te.log1p(te.abs(x)), lambda x: np.log1p(np.abs(x))),
    ("expm1", te.expm1, np.expm1),
    ("pow", lambda x: te.power(te.abs(x), 1.5), lambda x: np.power(np.abs(x), 1.5)),
    ("fmod", lambda x: te.fmod(x * 7, 2.0), lambda x: np.fmod(x * 7, 2)),
    ("floormod", lambda x: (x * 7) % 2.0, lambda x: np.mod(x * 7, 2)),
    ("max_min", lambda x: te.max(te.min(x, 1.0), -1.0), lambda x: np.clip(x, -1, 1)),
]


@pytest.mark.parametrize("name,fn,ref", INTRINSICS, ids=[t[0] for t in INTRINSICS])
def test_intrinsics_in_vectorized_loop(name, fn, ref):
    n = 37
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: fn(A[i]), name="B")
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=8)
    s[B].vectorize(xi)
    a = rand((n,), seed=3)
    with np.errstate(all="ignore"):
        check(s, [A, B], lambda a: ref(a.astype(np.float64)).astype(np.float32),
              inputs={A: a}, rtol=1e-5, atol=1e-6, ref_rtol=2e-6, ref_atol=2e-6)


def test_erf_vectorized():
    import math
    n = 19
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: te.erf(A[i]), name="B")
    s = te.create_schedule(B.op)
    s[B].vectorize(B.op.axis[0])
    check(s, [A, B], lambda a: np.array([math.erf(float(x)) for x in a], np.float32),
          rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------- unroll

def test_unroll_inner_and_reduction():
    A, B, C = matmul(7, 33, 13)
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    jo, ji = s[C].split(j, factor=4)
    ko, ki = s[C].split(C.op.reduce_axis[0], factor=3)
    s[C].reorder(i, jo, ko, ki, ji)
    s[C].unroll(ki)
    s[C].unroll(ji)
    text = lower_text(s, [A, B, C])
    assert "unrolled" not in text
    check(s, [A, B, C], mm_ref)


def test_unroll_whole_small_axis():
    A = te.placeholder((3, 33), name="A")
    B = te.compute((3, 33), lambda i, j: A[i, j] - A[2 - i, 32 - j], name="B")
    s = te.create_schedule(B.op)
    s[B].unroll(B.op.axis[0])
    check(s, [A, B], lambda a: a - a[::-1, ::-1])


# --------------------------------------------------------------------------------- parallel

def test_parallel_outer_odd():
    A, C = elementwise2d(33, 127, lambda x, i, j: x * x + j.astype("float32"))
    s = te.create_schedule(C.op)
    io, ii = s[C].split(C.op.axis[0], factor=5)
    s[C].parallel(io)
    cols = np.arange(127, dtype=np.float32)
    check(s, [A, C], lambda a: a * a + cols)


def test_parallel_fused():
    A = te.placeholder((7, 5, 33), name="A")
    B = te.compute((7, 5, 33), lambda i, j, k: A[i, j, k] * 3, name="B")
    s = te.create_schedule(B.op)
    i, j, k = B.op.axis
    f = s[B].fuse(i, j)
    s[B].parallel(f)
    ko, ki = s[B].split(k, factor=8)
    s[B].vectorize(ki)
    check(s, [A, B], lambda a: a * 3)


def test_parallel_reduction_rows():
    A, B, C = matmul(33, 7, 127)
    s = te.create_schedule(C.op)
    s[C].parallel(C.op.axis[0])
    check(s, [A, B, C], mm_ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("level", ["parallel_axis", "inner_axis"])
def test_parallel_with_compute_at_scratch_per_thread(level):
    """A producer attached inside a parallel loop needs one scratch buffer per thread: with a
    shared one, threads overwrite each other's rows and the result is wrong."""
    M, N = 64, 513
    A = te.placeholder((M, N + 2), name="A")
    B = te.compute((M, N + 2), lambda i, j: A[i, j] * 2 + i.astype("float32"), name="B")
    C = te.compute((M, N), lambda i, j: B[i, j] + B[i, j + 1] * B[i, j + 2], name="C")
    s = te.create_schedule(C.op)
    io, ii = s[C].split(C.op.axis[0], factor=2)
    s[C].parallel(io)
    s[B].compute_at(s[C], io if level == "parallel_axis" else ii)

    def ref(a):
        b = a * 2 + np.arange(M, dtype=np.float32)[:, None]
        return b[:, :N] + b[:, 1:N + 1] * b[:, 2:]
    f, arrays = check(s, [A, C], ref)
    a, c = arrays[A], arrays[C]
    for _ in range(5):                                  # races are timing dependent: rerun
        c[:] = np.nan
        f(a, c)
        np.testing.assert_allclose(c, ref(a), rtol=1e-5, atol=1e-5)
