"""Combined recipes, more rfactor and placement cases, and the value semantics of docs/semantics.md
through schedules.

Sizes are odd on purpose (1, 7, 33, 127, 1000) so that split factors do not divide them; every
output buffer is poisoned (NaN / complemented) before the run, so a point the schedule forgets
shows; every result is compared with ``te.evaluate`` and with a numpy formula written by hand.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import check, matmul, rand  # noqa: E402

import tensorc as tc  # noqa: E402
from tensorc import te  # noqa: E402


def mm_ref(a, b):
    return (a.astype(np.float64) @ b.astype(np.float64)).astype(a.dtype)


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
