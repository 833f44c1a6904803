"""Placement primitives: compute_at, compute_inline, cache_read, cache_write.

Sizes are odd on purpose (1, 7, 33, 127, 1000) so that split factors do not divide them; every
output buffer is poisoned (NaN / complemented) before the run, so a point the schedule forgets
shows; every result is compared with ``te.evaluate`` and with a numpy formula written by hand.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import check, lower_text, matmul  # noqa: E402

from tensorc import te  # noqa: E402


def mm_ref(a, b):
    return (a.astype(np.float64) @ b.astype(np.float64)).astype(a.dtype)


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


def test_compute_at_groups_of_rows_read_by_quotient():
    """C reads P[i // 6, i % 6], P computed per tile of 16 rows: the tiles start off the
    groups of 6, so a tile spans 3 or 4 groups; the region must be ceil(15 / 6) + 1 = 4
    groups, not P's whole first axis, and the last tile's must stop at P's edge."""
    M, N = 70, 5
    A = te.placeholder((M, N), name="A")
    P = te.compute((-(-M // 6), 6, N), lambda x, z, j: te.if_then_else(
        x * 6 + z < M, A[te.min(x * 6 + z, M - 1), j] * 2, 0.0), name="P")
    C = te.compute((M, N), lambda i, j: P[i // 6, i % 6, j] + 1, name="C")
    s = te.create_schedule(C.op)
    io, _ = s[C].split(C.op.axis[0], factor=16)
    s[P].compute_at(s[C], io)
    assert "float32[120]" in lower_text(s, [A, C])  # 4 groups x 6 rows x 5 columns
    check(s, [A, C], lambda a: a * 2 + 1)


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


def test_cache_read_through_an_inlined_packing():
    """C reads A only through P, an interleaving of A's rows marked compute_inline: the
    cache is A's own rows (P's index arithmetic folds away), 4 of them per row tile."""
    M, N, K = 33, 17, 13
    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    P = te.compute((-(-M // 6), K, 6), lambda x, k, z: te.if_then_else(
        x * 6 + z < M, A[te.min(x * 6 + z, M - 1), k], 0.0), name="P")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(P[i // 6, k, i % 6] * B[k, j], axis=k),
                   name="C")
    s = te.create_schedule(C.op)
    s[P].compute_inline()
    AA = s.cache_read(A, "local", [C])
    io, _ = s[C].split(C.op.axis[0], factor=4)
    s[AA].compute_at(s[C], io)
    assert f"A.local = allocate(float32[{4 * K}]" in lower_text(s, [A, B, C])
    check(s, [A, B, C], mm_ref)


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
