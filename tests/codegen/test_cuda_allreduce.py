"""Cross-thread reductions on CUDA: a reduce axis bound to threadIdx becomes a warp-shuffle
butterfly or a shared-memory tree; checked on cuda-emu in both thread orders and with nvcc."""
import numpy as np
import pytest

import tensorc as tc
from tensorc import te
from tensorc.codegen.cuda import emit_cuda
from tensorc.ir import expr as E
from tensorc.ir import stmt as S
from tensorc.ir.op import const

from cuda_helpers import barriers, bind, needs_nvcc, random_inputs, rng  # noqa: E402, I001


# -- cross-thread reductions -------------------------------------------------------------------

_REDUCERS = {"sum": (te.sum, np.sum), "max": (te.max, np.max), "min": (te.min, np.min),
             "prod": (te.prod, np.prod)}


def rfactor_allreduce(m=7, k=300, factor=32, reducer="sum"):
    """TVM's pattern: the reduce axis split, its inner part rfactored into per-thread partials
    and the remaining reduce axis bound to threadIdx.x, one block per row."""
    te_red, np_red = _REDUCERS[reducer]
    A = te.placeholder((m, k), name="A")
    r = te.reduce_axis((0, k), name="r")
    B = te.compute((m,), lambda i: te_red(A[i, r], axis=r), name="B")
    s = te.create_schedule(B.op)
    _, ki = s[B].split(B.op.reduce_axis[0], factor=factor)
    BF = s.rfactor(B, ki)
    bind(s, B, s[B].op.axis[0], "blockIdx.x")
    bind(s, B, s[B].op.reduce_axis[0], "threadIdx.x")
    s[BF].compute_at(s[B], s[B].op.reduce_axis[0])
    return s, [A, B], lambda a: np_red(a, axis=1)


def rows_allreduce(m=10, k=77, lanes=16, rows=4):
    """No rfactor: ``lanes`` threads of threadIdx.x stride through each row (serial reduce loop
    inside the bound one), ``rows`` rows of a block on threadIdx.y, rows past m guarded."""
    A = te.placeholder((m, k), name="A")
    r = te.reduce_axis((0, k), name="r")
    B = te.compute((m,), lambda i: te.max(A[i, r] * 2.0, axis=r), name="B")
    s = te.create_schedule(B.op)
    io, ii = s[B].split(B.op.axis[0], factor=rows)
    ro, ri = s[B].split(r, factor=lanes)
    s[B].reorder(io, ii, ri, ro)
    bind(s, B, io, "blockIdx.x")
    bind(s, B, ii, "threadIdx.y")
    bind(s, B, ri, "threadIdx.x")
    return s, [A, B], lambda a: (a * 2).max(axis=1)


@pytest.mark.parametrize("factor", [8, 32, 64, 100, 256])
@pytest.mark.parametrize("reducer", sorted(_REDUCERS))
def test_cross_thread_reduction_on_cuda_emu(factor, reducer):
    s, args, ref = rfactor_allreduce(k=77 if reducer == "prod" else 300, factor=factor,
                                     reducer=reducer)
    f = tc.build(s, args, target="cuda-emu")
    a = rng.uniform(0.9, 1.1, args[0].shape).astype("float32") if reducer == "prod" else \
        random_inputs(args)[0]
    for order in ("forward", "reverse"):
        out = np.full(args[-1].shape, np.nan, "float32")
        f(a, out, order=order)
        np.testing.assert_allclose(out, ref(a), rtol=2e-5, atol=2e-5, err_msg=order)


@pytest.mark.parametrize("lanes,rows", [(16, 4), (64, 3), (48, 2)])
def test_cross_thread_reduction_with_rows_on_cuda_emu(lanes, rows):
    s, args, ref = rows_allreduce(lanes=lanes, rows=rows)
    f = tc.build(s, args, target="cuda-emu")
    a = random_inputs(args)[0]
    for order in ("forward", "reverse"):
        out = np.full(args[-1].shape, np.nan, "float32")
        f(a, out, order=order)
        np.testing.assert_allclose(out, ref(a), rtol=2e-5, atol=2e-5, err_msg=order)


def test_warp_allreduce_is_a_shuffle_butterfly():
    s, args, _ = rfactor_allreduce(factor=32)
    func = tc.lower(s, args, target="cuda")
    assert barriers(func.body) == 0
    text = emit_cuda(func).text
    assert text.count("__shfl_xor_sync(0xffffffffu, ") == 5 and "__shared__" not in text
    assert "if (r_inner_v == 0) {" in text  # one thread stores into global memory


def test_block_allreduce_uses_shared_memory_then_a_warp():
    s, args, _ = rfactor_allreduce(factor=256)
    func = tc.lower(s, args, target="cuda")
    src = emit_cuda(func)
    (k,) = src.kernels
    assert (k.block, k.shared_bytes) == ((256, 1, 1), 1024)
    # 256 -> 32 in three halving steps, the last 32 by shuffles: a barrier after the writes,
    # each step and the warp's result
    assert barriers(func.body) == 5
    assert src.text.count("__shfl_down_sync(0xffffffffu, ") == 5


def test_non_power_of_two_allreduce_folds_first():
    s, args, _ = rows_allreduce(lanes=48, rows=2)
    text = emit_cuda(tc.lower(s, args, target="cuda")).text
    assert "if (r_inner < 16) {" in text and "__shfl" not in text


@needs_nvcc
@pytest.mark.parametrize("factor", [32, 100, 256])
def test_cross_thread_reduction_compiles_without_spills(factor):
    s, args, _ = rfactor_allreduce(factor=factor)
    for arch in ("sm_80", "sm_90"):
        f = tc.build(s, args, target=f"cuda -arch={arch}")
        for res in f.resource_usage.values():
            assert res["spill_stores"] == 0 and res["spill_loads"] == 0


def test_cross_thread_reduction_needs_a_gpu_target():
    s, args, _ = rfactor_allreduce()
    with pytest.raises(ValueError, match=r"bound to threadIdx.x, which only a GPU target can "
                                         r"run"):
        tc.build(s, args, target="llvm")


def test_reduce_axis_cannot_go_to_blocks():
    A = te.placeholder((8, 64), name="A")
    r = te.reduce_axis((0, 64), name="r")
    B = te.compute((8,), lambda i: te.sum(A[i, r], axis=r), name="B")
    s = te.create_schedule(B.op)
    with pytest.raises(ValueError, match=r"'r' is a reduction axis; bind it to a threadIdx"):
        bind(s, B, r, "blockIdx.x")


def test_serial_reduce_loop_outside_the_bound_one_is_an_error():
    A = te.placeholder((8, 64), name="A")
    r = te.reduce_axis((0, 64), name="r")
    B = te.compute((8,), lambda i: te.sum(A[i, r], axis=r), name="B")
    s = te.create_schedule(B.op)
    _, ri = s[B].split(r, factor=32)
    bind(s, B, B.op.axis[0], "blockIdx.x")
    bind(s, B, ri, "threadIdx.x")
    with pytest.raises(ValueError, match=r"reduce loop 'r.outer' runs outside the reduce loops "
                                         r"bound to threadIdx"):
        tc.lower(s, [A, B], target="cuda")


def _allreduce_kernel(wrap):
    """A 32-thread kernel whose all-reduce sits inside ``wrap(tx, stmt)``."""
    tx, bx = E.Var("tx"), E.Var("bx")
    res, out = E.Var("res", "handle"), E.Var("out", "handle")
    comb = te.sum(E.FloatImm("float32", 1.0), axis=te.reduce_axis((0, 2))).combiner
    red = S.seq(S.ThreadAllReduce(comb, E.FloatImm("float32", 1.0), res, (tx,)),
                S.Store(out, E.Load("float32", res, const(0)), tx))
    body = S.Allocate(res, "float32", 1, wrap(tx, red), "local")
    threads = S.For(tx, const(0), const(32), "thread_binding", body, "threadIdx.x")
    kernel = S.For(bx, const(0), const(1), "thread_binding", threads, "blockIdx.x")
    return S.PrimFunc("f", (S.BufferDecl("out", (32,), "float32", out),), kernel)


def test_allreduce_under_a_thread_branch_is_an_error():
    from tensorc.transform.lower_allreduce import lower_allreduce
    lower_allreduce(_allreduce_kernel(lambda tx, s: s))
    with pytest.raises(ValueError, match=r"all-reduce into 'res' is inside the branch 'if tx < "
                                         r"8', which not every thread of the block enters"):
        lower_allreduce(_allreduce_kernel(lambda tx, s: S.IfThenElse(tx < 8, s)))
