"""Loop features of lowered programs: one fixed layout for very different programs, the same
vector for the same program, and features that move the way the schedule says they should."""
import numpy as np
import pytest

import tensorc as tc
from tensorc import te
from tensorc.autotune import features as F
from tensorc.ir import expr as E
from tensorc.ir import op
from tensorc.ir import stmt as S

IDX = {n: k for k, n in enumerate(F.FEATURE_NAMES)}


def feat(vec, name):
    return float(vec[IDX[name]])


def elementwise(vectorize=False, parallel=False):
    A = te.placeholder((37, 50), name="A")
    B = te.compute((37, 50), lambda i, j: te.exp(A[i, j]) * 2.0 + 1.0, name="B")
    s = te.create_schedule(B.op)
    i, j = B.op.axis
    if vectorize:
        s[B].vectorize(s[B].split(j, factor=8)[1])
    if parallel:
        s[B].parallel(i)
    return s, [A, B]


def matmul(n=128, tile=None, cache=False, unroll_k=None):
    """C = A @ B with loops i, j, k; ``tile`` splits j and moves k between the two halves."""
    A = te.placeholder((n, n), name="A")
    B = te.placeholder((n, n), name="B")
    k = te.reduce_axis((0, n), name="k")
    C = te.compute((n, n), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = te.create_schedule(C.op)
    if cache:
        CC = s.cache_write(C, "local")
        io, jo, _, ji = s[C].tile(C.op.axis[0], C.op.axis[1], 8, 16)
        s[CC].compute_at(s[C], jo)
        ko, ki = s[CC].split(s[CC].op.reduce_axis[0], 4)
        s[CC].reorder(ko, ki, *s[CC].op.axis)
        s[CC].vectorize(s[CC].op.axis[1])
        s[CC].unroll(ki)
        s[C].vectorize(ji)
        s[C].parallel(io)
    elif tile:
        i, j = C.op.axis
        jo, ji = s[C].split(j, factor=tile)
        s[C].reorder(i, jo, k, ji)
    elif unroll_k:
        ko, ki = s[C].split(k, factor=unroll_k)
        s[C].unroll(ki)
    return s, [A, B, C]


def conv():
    """A direct 3x3 convolution with zero padding written as a guarded read."""
    X = te.placeholder((3, 13, 11), name="X")
    W = te.placeholder((5, 3, 3, 3), name="W")
    c, r, q = (te.reduce_axis((0, e), name=nm) for e, nm in ((3, "c"), (3, "r"), (3, "q")))

    def padded(ch, y, x):
        inside = te.all(y >= 0, y < 13, x >= 0, x < 11)
        return te.if_then_else(inside, X[ch, y, x], 0.0)
    Y = te.compute((5, 13, 11), lambda o, y, x: te.sum(
        padded(c, y + r - 1, x + q - 1) * W[o, c, r, q], axis=(c, r, q)), name="Y")
    s = te.create_schedule(Y.op)
    s[Y].parallel(Y.op.axis[0])
    return s, [X, W, Y]


def rfactor_sum():
    A = te.placeholder((7, 100), name="A")
    k = te.reduce_axis((0, 100), name="k")
    B = te.compute((7,), lambda i: te.sum(A[i, k], axis=k), name="B")
    s = te.create_schedule(B.op)
    s.rfactor(B, s[B].split(k, factor=8)[1])
    return s, [A, B]


def everything():
    """inline + compute_at + tile + fuse + vectorize + unroll + parallel on one pipeline."""
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
    return s, [A, D]


PROGRAMS = {"elementwise": elementwise, "matmul": matmul,
            "matmul_cached": lambda: matmul(cache=True), "conv": conv,
            "rfactor": rfactor_sum, "everything": everything}


def extract(build):
    return F.extract(tc.lower(*build()))


def test_names_describe_the_layout():
    assert len(F.FEATURE_NAMES) == F.NUM_FEATURES == len(set(F.FEATURE_NAMES))
    assert extract(elementwise).size == len(F.FEATURE_NAMES)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_fixed_length_and_deterministic(name):
    func = tc.lower(*PROGRAMS[name]())
    v = F.extract(func)
    assert v.dtype == np.float32 and v.shape == (F.NUM_FEATURES,)
    assert np.isfinite(v).all() and (v != 0).sum() > 20
    np.testing.assert_array_equal(v, F.extract(func))
    # A fresh schedule and lowering of the same program: new IR objects, same features.
    np.testing.assert_array_equal(v, extract(PROGRAMS[name]))


def test_different_programs_differ():
    vecs = [extract(b) for b in PROGRAMS.values()]
    for a in range(len(vecs)):
        for b in range(a):
            assert not np.array_equal(vecs[a], vecs[b])


def test_vectorize_gives_vector_width():
    plain, vec = extract(elementwise), extract(lambda: elementwise(vectorize=True))
    assert feat(plain, "s0.lanes") == 0 and feat(vec, "s0.lanes") == 3  # log2(8 lanes)
    assert feat(plain, "vec_fraction") == 0 and feat(vec, "vec_fraction") > 0.8  # a scalar tail
    assert feat(vec, "s0.b0.vec_contiguous") == 1 and feat(vec, "s0.b0.vec_stride") == 1
    assert feat(vec, "vec_max_lanes") == 3


def test_parallel_gives_parallel_extent():
    plain, par = extract(elementwise), extract(lambda: elementwise(parallel=True))
    assert feat(plain, "par_extent") == 0 and feat(plain, "s0.par_loops") == 0
    assert feat(par, "par_extent") == pytest.approx(np.log2(1 + 37))
    assert feat(par, "par_fraction") == 1 and feat(par, "s0.loop2_parallel") == 1
    assert feat(par, "s0.per_task_work") == pytest.approx(np.log2(1 + 50))


def test_loop_order_gives_strides():
    """k innermost reads B down a column (stride n); j innermost reads it along a row."""
    naive, tiled = extract(matmul), extract(lambda: matmul(tile=16))
    # Buffer slots: the stored C, then the loads by size (A and B tie), in order of use.
    assert feat(naive, "s0.b2.stride_l1") == pytest.approx(np.log2(1 + 128))
    assert feat(tiled, "s0.b2.stride_l1") == 1
    assert feat(naive, "s0.b1.stride_l1") == 1 and feat(tiled, "s0.b1.stride_l1") == 0


def test_tiling_changes_reuse_and_traffic():
    naive, tiled = extract(matmul), extract(lambda: matmul(tile=16))
    # A[i, k] does not depend on the inner j loop of the tiled nest: 16 uses per element.
    assert feat(naive, "s0.b1.reuse_l1") == 1
    assert feat(tiled, "s0.b1.reuse_l1") == pytest.approx(np.log2(1 + 16))
    # B's data under the two innermost loops: the whole matrix vs a 16-column strip.
    assert feat(naive, "s0.b2.bytes_l2") == pytest.approx(np.log2(1 + 128 * 128 * 4))
    assert feat(tiled, "s0.b2.bytes_l2") == pytest.approx(np.log2(1 + 128 * 16 * 4))
    # The strip fits a 32 KiB cache, so far less data moves through it.
    assert feat(tiled, "s0.traffic_c32k") < feat(naive, "s0.traffic_c32k") - 3
    # The work itself is unchanged.
    for name in ("flops", "s0.trip", "s0.f_fma"):
        assert feat(tiled, name) == feat(naive, name)


def test_unrolled_copies_merge_into_one_statement():
    plain, unrolled = extract(matmul), extract(lambda: matmul(unroll_k=4))
    assert feat(unrolled, "s0.copies") == pytest.approx(np.log2(1 + 4))
    assert feat(plain, "s0.copies") == 1 and feat(unrolled, "unroll_max") == feat(
        unrolled, "s0.copies")
    assert feat(unrolled, "flops") == feat(plain, "flops")
    # The four copies read four consecutive elements of A per iteration of k.outer.
    assert feat(unrolled, "s0.b1.bytes_vec") == pytest.approx(np.log2(1 + 4 * 4))


def test_cache_write_program():
    v = extract(lambda: matmul(cache=True))
    assert feat(v, "n_alloc") == 1 and feat(v, "local_bytes") == pytest.approx(
        np.log2(1 + 8 * 16 * 4))
    assert feat(v, "s0.stores_local") == 1 and feat(v, "s0.accumulate") == 1
    assert feat(v, "s0.lanes") == 4 and feat(v, "s0.copies") == pytest.approx(np.log2(5))
    assert feat(v, "flops") == pytest.approx(np.log2(1 + 2 * 128 ** 3))


def test_guarded_reads_are_marked():
    """A read under a condition that holds on no whole loop range (every other column), so
    loop partitioning cannot drop it (it drops the padding guards of ``conv``)."""
    X = te.placeholder((13, 11), name="X")

    def make():
        Y = te.compute((13, 11), lambda y, x: te.if_then_else(
            (y + x) % 2 == 0, X[y, x] * 2.0, 0.0), name="Y")
        return te.create_schedule(Y.op), [X, Y]
    v = extract(make)
    guarded = [feat(v, f"s0.b{k}.guarded") for k in range(F.TOP_BUFFERS)]
    assert guarded.count(1.0) == 1 and feat(v, "s0.select") > 0


def test_padding_guards_leave_the_interior():
    v = extract(conv)
    assert feat(v, "s0.select") == 0
    assert all(feat(v, f"s0.b{k}.guarded") == 0 for k in range(F.TOP_BUFFERS))


def test_rejects_what_is_not_a_lowered_function():
    s, _ = elementwise()
    with pytest.raises(TypeError, match="PrimFunc"):
        F.extract(s)


def test_loop_with_a_symbolic_extent_counts_its_bound():
    """A hand-built tail loop `for j in range(min(10 - 3 i, 3))`: its bound, 3, is the extent."""
    data = E.Var("A", "handle")
    i, j = E.Var("i"), E.Var("j")
    ext = E.Min("int32", op.const(10) - i * 3, op.const(3))
    store = S.Store(data, E.FloatImm("float32", 1.0), i * 3 + j)
    body = S.For(i, op.const(0), op.const(4), "serial",
                 S.For(j, op.const(0), ext, "serial", store))
    func = S.PrimFunc("tail", (S.BufferDecl("A", (12,), "float32", data),), body)
    v = F.extract(func)
    assert feat(v, "s0.loop1_extent") == 2 and feat(v, "s0.trip") == pytest.approx(np.log2(13))
    np.testing.assert_array_equal(v, F.extract(func))
