"""Every schedule primitive, alone and combined, built and run against two references.

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

import tensorc as tc  # noqa: E402
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


# ------------------------------------------------------------------------------- compute_at

def _tiled_consumer_with_producer(M, N, producer, consumer, level):
    A = te.placeholder(producer[0], name="A")
    B = te.compute(producer[0], lambda i, j: producer[1](A, i, j), name="B")
    C = te.compute((M, N), lambda i, j: consumer(B, i, j), name="C")
    s = te.create_schedule(C.op)
    leaves = s[C].tile(C.op.axis[0], C.op.axis[1], 8, 16)
    s[B].compute_at(s[C], leaves[level])
    return s, A, B, C


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_compute_at_every_level_of_tiled_consumer_overhang(level):
    """Producer and consumer of the same odd shape: the last tile's region overhangs the
    producer's tensor, and the producer must not compute (or read) past its edges."""
    M, N = 33, 127
    s, A, B, C = _tiled_consumer_with_producer(
        M, N, ((M, N), lambda A, i, j: A[i, j] * A[i, j] + 1), lambda B, i, j: B[i, j] * 2,
        level)
    check(s, [A, C], lambda a: (a * a + 1) * 2)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_compute_at_every_level_stencil_offsets(level):
    M, N = 33, 127
    s, A, B, C = _tiled_consumer_with_producer(
        M, N, ((M + 2, N + 2), lambda A, i, j: A[i, j] * 3),
        lambda B, i, j: B[i, j] + B[i + 1, j + 1] * B[i + 2, j] - B[i, j + 2], level)

    def ref(a):
        b = a * 3
        return b[:M, :N] + b[1:M + 1, 1:N + 1] * b[2:, :N] - b[:M, 2:]
    check(s, [A, C], ref)


@pytest.mark.parametrize("level", [0, 1])
def test_compute_at_clamped_neighbour_reads(level):
    """Reads B[i, max(j-1, 0)] and B[i, min(j+1, N-1)]: regions clipped with min/max."""
    M, N = 7, 33
    s, A, B, C = _tiled_consumer_with_producer(
        M, N, ((M, N), lambda A, i, j: A[i, j] + 1),
        lambda B, i, j: B[i, te.max(j - 1, 0)] + B[i, j] + B[i, te.min(j + 1, N - 1)], level)

    def ref(a):
        b = a + 1
        left = np.concatenate([b[:, :1], b[:, :-1]], axis=1)
        right = np.concatenate([b[:, 1:], b[:, -1:]], axis=1)
        return left + b + right
    check(s, [A, C], ref)


def test_compute_at_padding_producer():
    A = te.placeholder((20, 20), name="A")
    P = te.compute((22, 22), lambda i, j: te.if_then_else(
        te.all(i >= 1, i <= 20, j >= 1, j <= 20), A[i - 1, j - 1], 0.0), name="P")
    C = te.compute((20, 20), lambda i, j: P[i, j] + P[i + 1, j + 1] + P[i + 2, j + 2],
                   name="C")
    s = te.create_schedule(C.op)
    io, ii = s[C].split(C.op.axis[0], factor=3)
    s[P].compute_at(s[C], io)

    def ref(a):
        p = np.pad(a, 1)
        return p[:20, :20] + p[1:21, 1:21] + p[2:, 2:]
    check(s, [A, C], ref)


def test_compute_at_reduction_producer_inside_consumer():
    """A matmul computed per row block of an elementwise consumer."""
    A, B, C = matmul(33, 17, 9)
    D = te.compute((33, 17), lambda i, j: te.sigmoid(C[i, j]), name="D")
    s = te.create_schedule(D.op)
    io, ii = s[D].split(D.op.axis[0], factor=4)
    s[C].compute_at(s[D], io)
    check(s, [A, B, D], lambda a, b: 1 / (1 + np.exp(-mm_ref(a, b))), rtol=1e-5, atol=1e-5)


def test_compute_at_chain_two_producers():
    A = te.placeholder((33, 35), name="A")
    B = te.compute((33, 35), lambda i, j: A[i, j] + 1, name="B")
    C = te.compute((33, 34), lambda i, j: B[i, j] * B[i, j + 1], name="C")
    D = te.compute((33, 33), lambda i, j: C[i, j] - C[i, j + 1], name="D")
    s = te.create_schedule(D.op)
    io, jo, ii, ji = s[D].tile(D.op.axis[0], D.op.axis[1], 4, 8)
    s[C].compute_at(s[D], jo)
    s[B].compute_at(s[C], s[C].op.axis[0])

    def ref(a):
        b = a + 1
        c = b[:, :34] * b[:, 1:]
        return c[:, :33] - c[:, 1:]
    check(s, [A, D], ref)


def test_compute_at_producer_consumed_by_two_stages_inside():
    """B read by C (attached in D) and by D itself: B attached at D's outer loop."""
    A = te.placeholder((17, 9), name="A")
    B = te.compute((17, 9), lambda i, j: A[i, j] * 2, name="B")
    C = te.compute((17, 9), lambda i, j: B[i, j] + 1, name="C")
    D = te.compute((17, 9), lambda i, j: C[i, j] * B[i, j], name="D")
    s = te.create_schedule(D.op)
    io, ii = s[D].split(D.op.axis[0], factor=4)
    s[B].compute_at(s[D], io)
    s[C].compute_at(s[D], ii)
    check(s, [A, D], lambda a: (a * 2 + 1) * (a * 2))


def test_compute_root_after_compute_at_equals_default():
    A = te.placeholder((33, 7), name="A")
    B = te.compute((33, 7), lambda i, j: A[i, j] * 2, name="B")
    C = te.compute((33, 7), lambda i, j: B[i, j] + B[32 - i, j], name="C")
    s0 = te.create_schedule(C.op)
    s = te.create_schedule(C.op)
    io, ii = s[C].split(C.op.axis[0], factor=4)
    s[B].compute_at(s[C], io)
    s[B].compute_root()
    s0[C].split(s0[C].op.axis[0], factor=4)
    assert lower_text(s, [A, C]) == lower_text(s0, [A, C])
    check(s, [A, C], lambda a: a * 2 + a[::-1] * 2)


# ---------------------------------------------------------------------------- compute_inline

def test_compute_inline_two_levels():
    A = te.placeholder((7, 33), name="A")
    B = te.compute((7, 33), lambda i, j: A[i, j] * 2 + 1, name="B")
    C = te.compute((7, 33), lambda i, j: B[i, j] * B[i, j], name="C")
    D = te.compute((7, 33), lambda i, j: te.exp(C[i, j] * -0.1), name="D")
    s = te.create_schedule(D.op)
    s[B].compute_inline()
    s[C].compute_inline()
    text = lower_text(s, [A, D])
    assert "allocate" not in text
    f = s[D].fuse(*D.op.axis)
    fo, fi = s[D].split(f, factor=8)
    s[D].vectorize(fi)
    s[D].parallel(fo)
    check(s, [A, D], lambda a: np.exp((a * 2 + 1) ** 2 * np.float32(-0.1)),
          rtol=1e-5, atol=1e-6)


def test_compute_inline_into_reduction_with_offsets():
    A = te.placeholder((9, 12), name="A")
    B = te.compute((9, 12), lambda i, j: A[i, j] * A[i, j], name="B")
    k = te.reduce_axis((2, 9), name="k")
    C = te.compute((9,), lambda i: te.sum(B[i, k + 1] - B[8 - i, k], axis=k), name="C")
    s = te.create_schedule(C.op)
    s[B].compute_inline()
    check(s, [A, C], lambda a: ((a * a)[:, 3:10] - (a * a)[::-1, 2:9]).sum(axis=1),
          atol=1e-5)


def test_compute_inline_and_compute_at_mixed():
    A = te.placeholder((33, 20), name="A")
    B = te.compute((33, 20), lambda i, j: A[i, j] - 0.5, name="B")           # inlined
    C = te.compute((33, 20), lambda i, j: B[i, j] * B[i, j], name="C")        # at D
    D = te.compute((33, 19), lambda i, j: C[i, j] + C[i, j + 1], name="D")
    s = te.create_schedule(D.op)
    s[B].compute_inline()
    io, ii = s[D].split(D.op.axis[0], factor=8)
    s[C].compute_at(s[D], io)

    def ref(a):
        c = (a - np.float32(0.5)) ** 2
        return c[:, :19] + c[:, 1:]
    check(s, [A, D], ref)


# -------------------------------------------------------------------------------- cache_read

def test_cache_read_one_reader_compute_at():
    A, B, C = matmul(33, 17, 13)
    s = te.create_schedule(C.op)
    AA = s.cache_read(A, "local", [C])
    io, ii = s[C].split(C.op.axis[0], factor=4)
    s[AA].compute_at(s[C], io)
    check(s, [A, B, C], mm_ref)


def test_cache_read_several_readers():
    A = te.placeholder((7, 33), name="A")
    B = te.compute((7, 33), lambda i, j: A[i, j] * 2, name="B")
    C = te.compute((7, 33), lambda i, j: A[i, j] + B[i, j], name="C")
    s = te.create_schedule(C.op)
    s.cache_read(A, "global", [B, C])
    text = lower_text(s, [A, C])
    assert "A.global" in text
    check(s, [A, C], lambda a: a + a * 2)


def test_cache_read_of_intermediate_attached():
    A = te.placeholder((17, 33), name="A")
    B = te.compute((17, 33), lambda i, j: A[i, j] + 1, name="B")
    C = te.compute((17, 31), lambda i, j: B[i, j] * B[i, j + 2], name="C")
    s = te.create_schedule(C.op)
    BB = s.cache_read(B, "local", [C])
    io, jo, ii, ji = s[C].tile(C.op.axis[0], C.op.axis[1], 4, 8)
    s[BB].compute_at(s[C], jo)
    s[BB].vectorize(s[BB].op.axis[1])
    check(s, [A, C], lambda a: (a + 1)[:, :31] * (a + 1)[:, 2:])


# ------------------------------------------------------------------------------- cache_write

def test_cache_write_compute_at_vectorize_unroll():
    A, B, C = matmul(33, 127, 7)
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    mo, no, mi, ni = s[C].tile(C.op.axis[0], C.op.axis[1], 8, 16)
    s[CC].compute_at(s[C], no)
    mc, nc = s[CC].op.axis
    (kk,) = s[CC].op.reduce_axis
    ko, ki = s[CC].split(kk, factor=4)
    s[CC].reorder(ko, mc, ki, nc)
    s[CC].vectorize(nc)
    s[CC].unroll(ki)
    s[C].vectorize(ni)
    s[C].parallel(mo)
    check(s, [A, B, C], mm_ref)


@pytest.mark.parametrize("M,N,K,bn", [(33, 48, 37, 16), (7, 8, 1, 8), (64, 32, 64, 8)])
def test_matmul_blocking_recipe_with_packed_b(M, N, K, bn):
    """The classic recipe: pack B into (N/bn, K, bn) panels, block C with a local
    accumulator, vectorize and unroll the micro-kernel, parallelize the outer blocks."""
    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    BP = te.compute((N // bn, K, bn), lambda x, y, z: B[y, x * bn + z], name="BP")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * BP[j // bn, k, j % bn], axis=k),
                   name="C")
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    mo, no, mi, ni = s[C].tile(C.op.axis[0], C.op.axis[1], 4, bn)
    s[CC].compute_at(s[C], no)
    mc, nc = s[CC].op.axis
    (kc,) = s[CC].op.reduce_axis
    ko, ki = s[CC].split(kc, factor=4)
    s[CC].reorder(ko, ki, mc, nc)
    s[CC].unroll(mc)
    s[CC].vectorize(nc)
    s[C].vectorize(ni)
    s[C].parallel(mo)
    x, y, z = s[BP].op.axis
    s[BP].vectorize(z)
    s[BP].parallel(x)
    check(s, [A, B, C], mm_ref, atol=1e-4)


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


# ------------------------------------------------------------------------- combined recipes

def test_everything_on_one_pipeline():
    """inline + cache_read + compute_at + tile + fuse + vectorize + unroll + parallel."""
    A = te.placeholder((33, 130), name="A")
    B = te.compute((33, 130), lambda i, j: te.abs(A[i, j]) + 0.5, name="B")
    C = te.compute((33, 128), lambda i, j: te.log(B[i, j]) * B[i, j + 2], name="C")
    k = te.reduce_axis((0, 3), name="k")
    D = te.compute((33, 126), lambda i, j: te.sum(C[i, j + k], axis=k), name="D")
    s = te.create_schedule(D.op)
    s[B].compute_inline()
    io, jo, ii, ji = s[D].tile(D.op.axis[0], D.op.axis[1], 4, 16)
    s[D].reorder(io, jo, ii, s[D].op.reduce_axis[0], ji)
    s[D].vectorize(ji)
    s[D].unroll(s[D].op.reduce_axis[0])
    s[D].parallel(s[D].fuse(io, jo))
    s[C].compute_at(s[D], ii)
    s[C].vectorize(s[C].op.axis[1])

    def ref(a):
        b = np.abs(a) + np.float32(0.5)
        c = np.log(b[:, :128]) * b[:, 2:]
        return c[:, :126] + c[:, 1:127] + c[:, 2:]
    check(s, [A, D], ref, atol=1e-5)


def test_multiple_outputs_schedule():
    A = te.placeholder((7, 33), name="A")
    B = te.compute((7, 33), lambda i, j: A[i, j] + 1, name="B")
    C = te.compute((7, 33), lambda i, j: B[i, j] * 2, name="C")
    s = te.create_schedule([B.op, C.op])
    s[C].vectorize(s[C].split(C.op.axis[1], factor=8)[1])
    s[B].parallel(B.op.axis[0])
    check(s, [A, B, C], lambda a: (a + 1, (a + 1) * 2))


# ------------------------------------------------------------------ more rfactor / placement

@pytest.mark.parametrize("which", ["outer", "inner"])
def test_rfactor_reduction_with_nonzero_start(which):
    """rfactor of a reduce_axis((3, 17)): the partial sums must read A[:, 3:17]."""
    A = te.placeholder((5, 20), name="A")
    k = te.reduce_axis((3, 17), name="k")
    B = te.compute((5,), lambda i: te.sum(A[i, k], axis=k), name="B")
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, factor=4)
    s.rfactor(B, ko if which == "outer" else ki)
    check(s, [A, B], lambda a: a[:, 3:17].sum(axis=1), atol=1e-5)


def test_rfactor_then_compute_at_final_stage():
    A = te.placeholder((7, 100), name="A")
    k = te.reduce_axis((0, 100), name="k")
    B = te.compute((7,), lambda i: te.sum(A[i, k], axis=k), name="B")
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, factor=8)
    BF = s.rfactor(B, ki)
    s[BF].compute_at(s[B], s[B].op.axis[0])
    s[BF].vectorize(BF.op.axis[0])
    check(s, [A, B], lambda a: a.sum(axis=1), atol=1e-5)


def test_rfactor_2d_output_factor_axis_in_the_middle():
    A = te.placeholder((3, 5, 40), name="A")
    k = te.reduce_axis((0, 40), name="k")
    B = te.compute((3, 5), lambda i, j: te.sum(A[i, j, k], axis=k), name="B")
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, factor=8)
    BF = s.rfactor(B, ko, factor_axis=1)
    assert BF.shape == (3, 5, 5)
    s[BF].parallel(BF.op.axis[0])
    check(s, [A, B], lambda a: a.sum(axis=2), atol=1e-5)


def test_rfactor_twice():
    A = te.placeholder((1000,), name="A")
    k = te.reduce_axis((0, 1000), name="k")
    B = te.compute((1,), lambda i: te.sum(A[k], axis=k), name="B")
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, factor=32)
    BF = s.rfactor(B, ki)
    kbo, kbi = s[BF].split(s[BF].op.reduce_axis[0], factor=4)
    s.rfactor(BF, kbi)
    check(s, [A, B], lambda a: a.sum(keepdims=True), atol=1e-4)


def test_cache_write_then_rfactor_with_where():
    A = te.placeholder((7, 100), name="A")
    k = te.reduce_axis((0, 100), name="k")
    B = te.compute((7,), lambda i: te.sum(A[i, k], axis=k, where=k % 7 != 0), name="B")
    s = te.create_schedule(B.op)
    BL = s.cache_write(B, "local")
    ko, ki = s[BL].split(s[BL].op.reduce_axis[0], factor=8)
    s.rfactor(BL, ki)
    check(s, [A, B], lambda a: (a * (np.arange(100) % 7 != 0)).sum(axis=1), atol=1e-5)


def test_compute_at_reduction_axis_of_consumer():
    A = te.placeholder((7, 13), name="A")
    B = te.placeholder((13, 9), name="B")
    A2 = te.compute((7, 13), lambda i, k: A[i, k] * 2, name="A2")
    k = te.reduce_axis((0, 13), name="k")
    C = te.compute((7, 9), lambda i, j: te.sum(A2[i, k] * B[k, j], axis=k), name="C")
    s = te.create_schedule(C.op)
    ko, ki = s[C].split(k, factor=4)
    s[A2].compute_at(s[C], ko)
    check(s, [A, B, C], lambda a, b: mm_ref(a * 2, b), atol=1e-5)


def test_compute_at_through_inlined_consumer():
    A = te.placeholder((9, 9), name="A")
    B = te.compute((9, 9), lambda i, j: A[i, j] * 2, name="B")
    C = te.compute((9, 8), lambda i, j: B[i, j] + B[i, j + 1], name="C")
    D = te.compute((9, 8), lambda i, j: C[i, j] * 3, name="D")
    s = te.create_schedule(D.op)
    s[C].compute_inline()
    io, ii = s[D].split(D.op.axis[0], factor=4)
    s[B].compute_at(s[D], io)
    check(s, [A, D], lambda a: (a[:, :8] * 2 + a[:, 1:] * 2) * 3)


def test_compute_at_data_dependent_gather():
    A = te.placeholder((33,), name="A")
    idx = te.placeholder((9,), dtype="int32", name="I")
    B = te.compute((33,), lambda i: A[i] * 2, name="B")
    C = te.compute((9,), lambda i: B[idx[i]], name="C")
    s = te.create_schedule(C.op)
    io, ii = s[C].split(C.op.axis[0], factor=4)
    s[B].compute_at(s[C], io)
    iv = np.array([0, 32, 5, 7, 1, 31, 16, 2, 9], np.int32)
    check(s, [A, idx, C], lambda a, i: a[i] * 2, inputs={A: rand((33,)), idx: iv})


def test_compute_at_strided_and_upsampled_reads():
    A = te.placeholder((33,), name="A")
    B = te.compute((33,), lambda i: A[i] * 2, name="B")
    C = te.compute((17,), lambda i: B[i * 2] + B[i // 2], name="C")
    s = te.create_schedule(C.op)
    io, ii = s[C].split(C.op.axis[0], factor=4)
    s[B].compute_at(s[C], io)
    check(s, [A, C], lambda a: a[::2] * 2 + a[np.arange(17) // 2] * 2)


def test_scalar_output_split_reduction():
    A = te.placeholder((33,), name="A")
    k = te.reduce_axis((0, 33), name="k")
    B = te.compute((), lambda: te.sum(A[k], axis=k), name="B")
    s = te.create_schedule(B.op)
    s[B].split(k, factor=4)
    check(s, [A, B], lambda a: a.sum(), atol=1e-5)


def test_reduction_outermost_with_fused_spatial_inside():
    """for k: for i.j.fused: C[f] += A[f // N, k] * B[k, f % N] (an LLVM 22.1 loop-vectorizer
    miscompile of the 32-bit form of this index gave wrong sums)."""
    for M, N, K in [(8, 8, 21), (14, 16, 21), (4, 8, 17)]:
        A, B, C = matmul(M, N, K)
        s = te.create_schedule(C.op)
        i, j = C.op.axis
        ko, ki = s[C].split(C.op.reduce_axis[0], factor=2)
        s[C].reorder(ko, ki, i, j)
        s[C].fuse(i, j)
        check(s, [A, B, C], mm_ref, atol=1e-5)


# ----------------------------------------------------------------- value semantics (docs)

def test_nan_propagates_through_vectorized_min_max():
    A = te.placeholder((33,), name="A")
    B = te.placeholder((33,), name="B")
    C = te.compute((33,), lambda i: te.max(A[i], B[i]) + te.min(A[i], B[i]), name="C")
    s = te.create_schedule(C.op)
    s[C].vectorize(s[C].split(C.op.axis[0], factor=8)[1])
    a, b = rand((33,)), rand((33,), seed=1)
    a[3] = b[10] = a[20] = b[20] = np.nan
    f = tc.build(s, [A, B, C])
    c = np.zeros(33, np.float32)
    f(a, b, c)
    expected = np.maximum(a, b) + np.minimum(a, b)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(expected))
    np.testing.assert_allclose(c, expected, rtol=1e-6)


def test_nan_propagates_through_rfactored_max_reduction():
    A = te.placeholder((4, 33), name="A")
    k = te.reduce_axis((0, 33), name="k")
    B = te.compute((4,), lambda i: te.max(A[i, k], axis=k), name="B")
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, factor=8)
    BF = s.rfactor(B, ki)
    s[BF].vectorize(BF.op.axis[0])
    a = rand((4, 33))
    a[0, 0] = a[1, 32] = a[2, 9] = np.nan
    f = tc.build(s, [A, B])
    b = np.zeros(4, np.float32)
    f(a, b)
    np.testing.assert_array_equal(np.isnan(b), [True, True, True, False])
    assert b[3] == a[3].max()


def test_round_half_to_even_vectorized_and_scalar():
    A = te.placeholder((16,), name="A")
    B = te.compute((16,), lambda i: te.round(A[i]), name="B")
    C = te.compute((16,), lambda i: te.round(A[i]) * 1, name="C")
    s = te.create_schedule([B.op, C.op])
    s[B].vectorize(s[B].split(B.op.axis[0], factor=8)[1])
    a = np.arange(16, dtype=np.float32) - 8 + 0.5
    check(s, [A, B, C], lambda a: (np.round(a), np.round(a)), inputs={A: a})


def test_saturating_float_to_int_cast_vectorized():
    A = te.placeholder((16,), name="A")
    B = te.compute((16,), lambda i: (A[i] * 1e10).astype("int32"), name="B")
    s = te.create_schedule(B.op)
    s[B].vectorize(s[B].split(B.op.axis[0], factor=8)[1])
    a = rand((16,))
    a[0] = np.nan
    a[1] = 1e-12
    info = np.iinfo(np.int32)

    def ref(a):
        x = a.astype(np.float64) * np.float32(1e10)
        x = np.where(np.isnan(x), 0, np.clip(x, info.min, info.max))
        return np.trunc(x).astype(np.int32)
    check(s, [A, B], ref, inputs={A: a})


def test_integer_floor_division_by_negative_tensor():
    A = te.placeholder((33,), dtype="int32", name="A")
    D = te.placeholder((33,), dtype="int32", name="D")
    B = te.compute((33,), lambda i: A[i] * 13 // D[i] + (A[i] * 13) % D[i] * 100, name="B")
    s = te.create_schedule(B.op)
    s[B].vectorize(s[B].split(B.op.axis[0], factor=8)[1])
    check(s, [A, D, B], lambda a, d: a * 13 // d + (a * 13) % d * 100)


@pytest.mark.parametrize("dtype", ["uint8", "int64"])
def test_more_integer_dtypes(dtype):
    A = te.placeholder((33,), dtype=dtype, name="A")
    k = te.reduce_axis((0, 33), name="k")
    B = te.compute((1,), lambda i: te.sum(A[k] * 101 * A[k], axis=k), name="B")
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, factor=8)
    BF = s.rfactor(B, ki)
    s[BF].vectorize(BF.op.axis[0])
    with np.errstate(over="ignore"):
        check(s, [A, B], lambda a: np.sum(a * a.dtype.type(101) * a, keepdims=True,
                                          dtype=a.dtype))


def test_bool_reductions():
    A = te.placeholder((7, 33), name="A")
    k = te.reduce_axis((0, 33), name="k")
    anyp = te.compute((7,), lambda i: te.max(A[i, k] > 1.2, axis=k), name="anyp")
    k2 = te.reduce_axis((0, 33), name="k2")
    allp = te.compute((7,), lambda i: te.min(A[i, k2] > -1.4, axis=k2), name="allp")
    s = te.create_schedule([anyp.op, allp.op])
    s[anyp].split(k, factor=4)
    ko, ki = s[allp].split(k2, factor=8)
    BF = s.rfactor(allp, ki, factor_axis=1)
    s[BF].vectorize(BF.op.axis[1])
    check(s, [A, anyp, allp], lambda a: ((a > 1.2).any(axis=1), (a > -1.4).all(axis=1)))


def test_rfactor_where_on_spatial_axis_attached():
    A = te.placeholder((9, 13), name="A")
    k = te.reduce_axis((0, 13), name="k")
    B = te.compute((9,), lambda i: te.sum(A[i, k], axis=k, where=k < i + 2), name="B")
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, factor=4)
    BF = s.rfactor(B, ki, factor_axis=1)
    s[BF].vectorize(BF.op.axis[1])
    s[BF].compute_at(s[B], s[B].op.axis[0])
    m = np.arange(13)[None, :] < np.arange(9)[:, None] + 2
    check(s, [A, B], lambda a: (a * m).sum(1), atol=1e-5)


def test_rfactor_nparts_min_with_where_and_start():
    A = te.placeholder((6, 30), name="A")
    k = te.reduce_axis((3, 27), name="k")
    B = te.compute((6,), lambda i: te.min(A[i, k], axis=k, where=(k + i) % 4 != 0), name="B")
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, nparts=5)
    BF = s.rfactor(B, ko, factor_axis=1)
    s[BF].parallel(BF.op.axis[0])
    ks = np.arange(30)
    m = ((ks[None, :] + np.arange(6)[:, None]) % 4 != 0) & (ks >= 3) & (ks < 27)
    check(s, [A, B], lambda a: np.where(m, a, np.inf).min(1))


def test_unrolled_attach_point_with_vectorized_producer():
    A = te.placeholder((12, 40), name="A")
    B = te.compute((12, 40), lambda i, j: A[i, j] * 2, name="B")
    C = te.compute((12, 38), lambda i, j: B[i, j] + B[i, j + 2], name="C")
    s = te.create_schedule(C.op)
    io, ii = s[C].split(C.op.axis[0], factor=3)
    jo, ji = s[C].split(C.op.axis[1], factor=8)
    s[C].reorder(io, jo, ii, ji)
    s[C].unroll(ii)
    s[C].vectorize(ji)
    s[B].compute_at(s[C], ii)
    s[B].vectorize(s[B].op.axis[1])
    check(s, [A, C], lambda a: a[:, :38] * 2 + a[:, 2:] * 2)
