"""CUDA backend: generated kernels compile with nvcc (sm_80, sm_90) without spills, barriers
sit where threads share memory, and the same source run on cuda-emu matches numpy."""
import re

import numpy as np
import pytest

import tensorc as tc
from tensorc import te
from tensorc.codegen.cuda import emit_cuda
from tensorc.codegen.cuda_compile import compile_cubin, parse_ptxas
from tensorc.ir import expr as E
from tensorc.ir import stmt as S
from tensorc.ir.functor import post_order_visit
from tensorc.ir.op import const
from tensorc.runtime.cuda_module import cuda_status
from tensorc.transform.thread_sync import is_barrier, thread_sync

from cuda_helpers import barriers, bind, needs_nvcc, random_inputs  # noqa: E402, I001



# -- schedules ---------------------------------------------------------------------------------

def elementwise(n=1000, threads=128):
    A = te.placeholder((n,), name="A")
    B = te.placeholder((n,), name="B")
    C = te.compute((n,), lambda i: te.exp(A[i]) * B[i] + 1.0, name="C")
    s = te.create_schedule(C.op)
    bx, tx = s[C].split(C.op.axis[0], factor=threads)
    bind(s, C, bx, "blockIdx.x")
    bind(s, C, tx, "threadIdx.x")
    return s, [A, B, C], lambda a, b: np.exp(a) * b + 1


def vector_add(n=1536, shift=0):
    """C[i] = A[i + shift] + 2 B[i], four lanes per thread."""
    A = te.placeholder((n + shift,), name="A")
    B = te.placeholder((n,), name="B")
    C = te.compute((n,), lambda i: A[i + shift] + B[i] * 2.0, name="C")
    s = te.create_schedule(C.op)
    bx, rest = s[C].split(C.op.axis[0], factor=512)
    tx, vi = s[C].split(rest, factor=4)
    bind(s, C, bx, "blockIdx.x")
    bind(s, C, tx, "threadIdx.x")
    s[C].vectorize(vi)
    return s, [A, B, C], lambda a, b: a[shift:] + b * 2


def row_sum(m=333, k=129):
    """One thread per row."""
    A = te.placeholder((m, k), name="A")
    r = te.reduce_axis((0, k), name="r")
    B = te.compute((m,), lambda i: te.sum(A[i, r], axis=r), name="B")
    s = te.create_schedule(B.op)
    bx, tx = s[B].split(B.op.axis[0], factor=64)
    bind(s, B, bx, "blockIdx.x")
    bind(s, B, tx, "threadIdx.x")
    return s, [A, B], lambda a: a.sum(axis=1)


def row_sum_shared(m=37, k=300, lanes=32, rows=4):
    """A block per ``rows`` rows: ``lanes`` threads per row sum strided partials into shared
    memory (rfactor), then one thread per row adds them up."""
    A = te.placeholder((m, k), name="A")
    r = te.reduce_axis((0, k), name="r")
    B = te.compute((m,), lambda i: te.sum(A[i, r], axis=r), name="B")
    s = te.create_schedule(B.op)
    _, ri = s[B].split(r, factor=lanes)
    BF = s.rfactor(B, ri)
    io, ii = s[B].split(s[B].op.axis[0], factor=rows)
    iio, iii = s[B].split(ii, factor=1)
    bind(s, B, io, "blockIdx.x")
    bind(s, B, iio, "threadIdx.y")
    bind(s, B, iii, "threadIdx.x")
    s[BF].set_scope("shared")
    s[BF].compute_at(s[B], io)
    part, row = s[BF].op.axis
    bind(s, BF, part, "threadIdx.x")
    bind(s, BF, row, "threadIdx.y")
    return s, [A, B], lambda a: a.sum(axis=1)


def tiled_matmul(m=100, n=72, k=50, tile=32, threads=8, kt=8):
    """TVM's classic GPU matmul: A and B tiles in shared memory fetched by all threads of the
    block, a (tile/threads)^2 accumulator per thread in local memory."""
    A = te.placeholder((m, k), name="A")
    B = te.placeholder((k, n), name="B")
    r = te.reduce_axis((0, k), name="k")
    C = te.compute((m, n), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    s = te.create_schedule(C.op)
    AA = s.cache_read(A, "shared", [C])
    BB = s.cache_read(B, "shared", [C])
    CL = s.cache_write(C, "local")
    i, j = s[C].op.axis
    bi, ii = s[C].split(i, factor=tile)
    bj, jj = s[C].split(j, factor=tile)
    ti, ii = s[C].split(ii, nparts=threads)
    tj, jj = s[C].split(jj, nparts=threads)
    s[C].reorder(bi, bj, ti, tj, ii, jj)
    for axis, tag in ((bi, "blockIdx.y"), (bj, "blockIdx.x"), (ti, "threadIdx.y"),
                      (tj, "threadIdx.x")):
        bind(s, C, axis, tag)
    s[CL].compute_at(s[C], tj)
    ci, cj = s[CL].op.axis
    ko, ki = s[CL].split(s[CL].op.reduce_axis[0], factor=kt)
    s[CL].reorder(ko, ki, ci, cj)
    for cache in (AA, BB):
        s[cache].compute_at(s[CL], ko)
        y, x = s[cache].op.axis
        ty, _ = s[cache].split(y, nparts=threads)
        tx, _ = s[cache].split(x, nparts=threads)
        bind(s, cache, ty, "threadIdx.y")
        bind(s, cache, tx, "threadIdx.x")
    return s, [A, B, C], lambda a, b: a @ b


def _softmax_tensors(m, n):
    A = te.placeholder((m, n), name="A")
    k1 = te.reduce_axis((0, n), name="k1")
    k2 = te.reduce_axis((0, n), name="k2")
    mx = te.compute((m,), lambda i: te.max(A[i, k1], axis=k1), name="rowmax")
    ex = te.compute((m, n), lambda i, j: te.exp(A[i, j] - mx[i]), name="ex")
    sm = te.compute((m,), lambda i: te.sum(ex[i, k2], axis=k2), name="rowsum")
    out = te.compute((m, n), lambda i, j: ex[i, j] / sm[i], name="softmax")
    return A, mx, ex, sm, out


def _softmax_ref(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax(m=37, n=300):
    """One thread per row; the row max and sum live in its registers (local scope by default)."""
    A, mx, ex, sm, out = _softmax_tensors(m, n)
    s = te.create_schedule(out.op)
    s[ex].compute_inline()
    bx, tx = s[out].split(s[out].op.axis[0], factor=16)
    bind(s, out, bx, "blockIdx.x")
    bind(s, out, tx, "threadIdx.x")
    s[mx].compute_at(s[out], tx)
    s[sm].compute_at(s[out], tx)
    return s, [A, out], _softmax_ref


def softmax_three_kernels(m=37, n=300):
    """Row max, row sum and the output as separate kernels; the intermediates are arguments."""
    A, mx, ex, sm, out = _softmax_tensors(m, n)
    s = te.create_schedule(out.op)
    s[ex].compute_inline()
    for t in (mx, sm, out):
        bx, tx = s[t].split(s[t].op.axis[0], factor=32)
        bind(s, t, bx, "blockIdx.x")
        bind(s, t, tx, "threadIdx.x")
    return s, [A, mx, sm, out], None


SCHEDULES = {"elementwise": elementwise, "vector_add": vector_add, "row_sum": row_sum,
             "row_sum_shared": row_sum_shared, "tiled_matmul": tiled_matmul,
             "softmax": softmax}


def _count_loops(node, kind):
    found = []
    post_order_visit(node, lambda n: found.append(n) if isinstance(n, S.For) and
                     n.kind == kind else None)
    return len(found)


# -- cuda-emu against numpy --------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_matches_numpy_on_cuda_emu(name):
    s, args, ref = SCHEDULES[name]()
    f = tc.build(s, args, target="cuda-emu")
    ins = random_inputs(args)
    want = ref(*ins)
    for order in ("forward", "reverse"):
        out = np.full(args[-1].shape, np.nan, dtype="float32")
        f(*ins, out, order=order)
        np.testing.assert_allclose(out, want, rtol=2e-5, atol=2e-5, err_msg=order)


def test_three_kernels_run_in_order():
    s, args, _ = softmax_three_kernels()
    f = tc.build(s, args, target="cuda-emu")
    assert [k.name for k in f.kernels] == [f"default_function_kernel{i}" for i in range(3)]
    assert [k.args for k in f.kernels] == [("A", "rowmax"), ("A", "rowmax", "rowsum"),
                                          ("A", "rowmax", "rowsum", "softmax")]
    a = random_inputs(args, 3)[0]
    mx, sm, out = (np.full(t.shape, np.nan, "float32") for t in args[1:])
    f(a, mx, sm, out)
    np.testing.assert_allclose(out, _softmax_ref(a), rtol=2e-5, atol=1e-6)


# -- nvcc --------------------------------------------------------------------------------------

@needs_nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_compiles_without_spills(name, arch):
    s, args, _ = SCHEDULES[name]()
    f = tc.build(s, args, target=f"cuda -arch={arch}")
    assert f.arch == arch
    usage = f.resource_usage
    assert set(usage) == {k.name for k in f.cuda_source.kernels}
    for kernel, res in usage.items():
        assert res["spill_stores"] == 0 and res["spill_loads"] == 0, (kernel, res)
        assert 0 < res["registers"] <= 255
    shared = {k.name: k.shared_bytes for k in f.cuda_source.kernels}
    assert {k: r["shared_bytes"] for k, r in usage.items()} == shared


@needs_nvcc
def test_cubin_is_cached():
    text = emit_cuda(tc.lower(*elementwise()[:2], target="cuda")).text
    first = compile_cubin(text, "sm_80")
    assert compile_cubin(text, "sm_80") == first
    assert first[0] != compile_cubin(text, "sm_90")[0]


def test_parse_ptxas_report():
    log = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'k0' for 'sm_90'
ptxas info    : Function properties for k0
    8 bytes stack frame, 12 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 2048 bytes smem, 376 bytes cmem[0]
ptxas info    : Compiling entry function 'k1' for 'sm_90'
ptxas info    : Function properties for k1
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 9 registers, 368 bytes cmem[0]
"""
    assert parse_ptxas(log) == {
        "k0": {"registers": 40, "shared_bytes": 2048, "spill_stores": 12, "spill_loads": 4},
        "k1": {"registers": 9, "shared_bytes": 0, "spill_stores": 0, "spill_loads": 0}}


# -- the generated code ------------------------------------------------------------------------

def test_elementwise_source():
    s, args, _ = elementwise()
    src = emit_cuda(tc.lower(s, args, target="cuda"))
    (k,) = src.kernels
    assert (k.grid, k.block, k.args, k.shared_bytes) == ((8, 1, 1), (128, 1, 1),
                                                         ("A", "B", "C"), 0)
    assert src.params == (("A", (1000,), "float32"), ("B", (1000,), "float32"),
                          ("C", (1000,), "float32"))
    assert 'extern "C" __global__ void main_kernel0(float* __restrict__ A, ' \
        "float* __restrict__ B, float* __restrict__ C)" in src.text
    assert "int i_outer = blockIdx.x;" in src.text and "int i_inner = threadIdx.x;" in src.text
    assert "< 1000" in src.text and "expf(" in src.text
    assert "__syncthreads" not in src.text and "#include" not in src.text


def test_vectorized_access_is_float4_when_aligned():
    s, args, _ = vector_add()
    text = emit_cuda(tc.lower(s, args, target="cuda")).text
    assert len(re.findall(r"float4 \w+ = \*\(float4\*\)\((A|B) \+", text)) == 2
    assert "*(float4*)(C + " in text and "make_float4(" in text


def test_misaligned_vector_load_is_scalarized():
    s, args, ref = vector_add(shift=1)
    text = emit_cuda(tc.lower(s, args, target="cuda")).text
    assert "*(float4*)(A" not in text and "*(float4*)(B" in text
    assert "*(float4*)(C + " in text


def test_tiled_matmul_shared_tiles_cover_the_block():
    s, args, _ = tiled_matmul()
    func = tc.lower(s, args, target="cuda")
    sizes = {}
    post_order_visit(func.body, lambda n: sizes.__setitem__(n.buffer.name, (n.extent, n.scope))
                     if isinstance(n, S.Allocate) else None)
    # the block's 32 rows (columns) by 8 of k, not one thread's 4 x 8
    assert sizes == {"A.shared": (256, "shared"), "B.shared": (256, "shared"),
                     "C.local": (16, "local")}
    src = emit_cuda(func)
    (k,) = src.kernels
    assert (k.grid, k.block, k.shared_bytes) == ((3, 4, 1), (8, 8, 1), 2048)
    assert "__shared__ float A_shared[256];" in src.text
    assert "float C_local[16];" in src.text


def test_tiled_matmul_has_two_barriers_per_k_iteration():
    s, args, _ = tiled_matmul()
    func = tc.lower(s, args, target="cuda")
    loops = []
    post_order_visit(func.body, lambda n: loops.append(n) if isinstance(n, S.For) and
                     n.loop_var.name == "k.c.outer" else None)
    (k_loop,) = loops
    assert barriers(k_loop.body) == 2
    first = k_loop.body.seq[0] if isinstance(k_loop.body, S.SeqStmt) else None
    assert first is not None and is_barrier(first)  # before the tiles are overwritten
    # k = 50 is 6 full tiles of 8 and a partial one, which loop partitioning peeled off
    assert barriers(func.body) == 4
    text = emit_cuda(func).text
    assert text.count("__syncthreads();") == 4


def test_shared_reduction_has_one_barrier_and_a_guarded_final_sum():
    s, args, _ = row_sum_shared()
    func = tc.lower(s, args, target="cuda")
    assert barriers(func.body) == 1
    text = emit_cuda(func).text
    assert text.count("__syncthreads();") == 1
    assert "if (i_inner_inner < 1) {" in text


@pytest.mark.parametrize("name", ["elementwise", "row_sum", "softmax", "vector_add"])
def test_no_barrier_without_shared_memory(name):
    s, args, _ = SCHEDULES[name]()
    assert barriers(tc.lower(s, args, target="cuda").body) == 0


def test_thread_sync_is_idempotent():
    s, args, _ = tiled_matmul()
    func = tc.lower(s, args, target="cuda")
    assert barriers(thread_sync(func).body) == barriers(func.body) == 4


def test_cpu_lowering_has_no_barriers_and_unrolls():
    s, args, _ = tiled_matmul()
    s[args[-1]].unroll(s[args[-1]].leaf_iter_vars[-1])
    cpu, gpu = tc.lower(s, args), tc.lower(s, args, target="cuda")
    assert barriers(cpu.body) == 0 and barriers(gpu.body) == 4
    assert [_count_loops(f.body, "unrolled") for f in (cpu, gpu)] == [0, 1]
    assert "#pragma unroll" in emit_cuda(gpu).text


# -- errors ------------------------------------------------------------------------------------

def test_unbound_stage_is_an_error():
    A = te.placeholder((10,), name="A")
    B = te.compute((10,), lambda i: A[i] + 1.0, name="B")
    s = te.create_schedule(B.op)
    with pytest.raises(ValueError, match=r"stage 'B': no loop is bound to blockIdx/threadIdx; "
                                         r"bind the outer loops for target cuda"):
        tc.build(s, [A, B], target="cuda-emu")


def test_host_loop_around_kernel_is_an_error():
    A = te.placeholder((10, 64), name="A")
    B = te.compute((10, 64), lambda i, j: A[i, j] * 2.0, name="B")
    s = te.create_schedule(B.op)
    bind(s, B, B.op.axis[1], "threadIdx.x")
    with pytest.raises(ValueError, match=r"loop 'i' of stage 'B' runs around a kernel"):
        tc.build(s, [A, B], target="cuda-emu")


def test_global_intermediate_between_kernels_is_an_error():
    s, args, _ = softmax_three_kernels()
    with pytest.raises(ValueError, match=r"'rowmax' is an intermediate buffer in global memory "
                                         r"between kernels; pass it to build as an argument"):
        tc.build(s, [args[0], args[-1]], target="cuda-emu")


def test_too_many_threads_is_an_error():
    s, args, _ = elementwise(n=4096, threads=2048)
    with pytest.raises(ValueError, match=r"threadIdx.x extent 2048 exceeds the CUDA limit 1024"):
        tc.build(s, args, target="cuda-emu")


def _one_block(make_body):
    """A kernel of 16 threads around ``make_body(tx, sh, out)`` with a shared buffer sh."""
    tx, bx = E.Var("tx"), E.Var("bx")
    sh, out = E.Var("sh", "handle"), E.Var("out", "handle")
    threads = S.For(tx, const(0), const(16), "thread_binding", make_body(tx, sh, out),
                    "threadIdx.x")
    kernel = S.For(bx, const(0), const(2), "thread_binding",
                   S.Allocate(sh, "float32", 16, threads, "shared"), "blockIdx.x")
    return S.PrimFunc("f", (S.BufferDecl("out", (16,), "float32", out),), kernel)


def _write_then_read_neighbour(tx, sh, out):
    return S.seq(S.Store(sh, E.FloatImm("float32", 1.0), tx),
                 S.Store(out, E.Load("float32", sh, (tx + 1) % 16), tx))


def test_conflict_inside_divergent_branch_is_an_error():
    func = _one_block(lambda tx, sh, out: S.IfThenElse(tx < 8, _write_then_read_neighbour(
        tx, sh, out)))
    with pytest.raises(ValueError, match=r"shared buffer 'sh' is read after other threads write "
                                         r"it inside the branch 'if tx < 8'"):
        thread_sync(func)
    assert barriers(thread_sync(_one_block(_write_then_read_neighbour)).body) == 1


def test_reading_back_own_element_needs_no_barrier():
    def body(tx, sh, out):
        return S.seq(S.Store(sh, E.FloatImm("float32", 1.0), tx),
                     S.Store(out, E.Load("float32", sh, tx), tx))
    assert barriers(thread_sync(_one_block(body)).body) == 0


def test_unknown_target_option():
    s, args, _ = elementwise()
    with pytest.raises(ValueError, match=r"unknown option '-mcpu=x' in target 'cuda -mcpu=x'"):
        tc.build(s, args, target="cuda -mcpu=x")
    with pytest.raises(ValueError, match=r"unknown architecture 'sm90'"):
        tc.build(s, args, target="cuda -arch=sm90")


# -- running on a GPU --------------------------------------------------------------------------

def test_cuda_status_is_one_of_the_four():
    assert cuda_status() in ("pycuda missing", "no driver", "no device", "ready")


@pytest.mark.skipif(cuda_status() == "ready", reason="a GPU is usable here")
def test_call_without_gpu_names_the_extra_and_cuda_emu():
    s, args, _ = elementwise()
    f = tc.build(s, args, target="cuda")
    assert "expf(" in f.get_source("cuda")
    ins = random_inputs(args)
    with pytest.raises(RuntimeError, match=r"\[cuda\] extra.*target='cuda-emu'"):
        f(*ins, np.empty(1000, "float32"))


@pytest.mark.gpu
@pytest.mark.skipif(cuda_status() != "ready", reason="no usable CUDA device")
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_matches_numpy_on_gpu(name):
    s, args, ref = SCHEDULES[name]()
    f = tc.build(s, args, target="cuda")
    ins = random_inputs(args)
    out = np.full(args[-1].shape, np.nan, dtype="float32")
    f(*ins, out)
    np.testing.assert_allclose(out, ref(*ins), rtol=2e-5, atol=2e-5)


def test_emu_gives_misaligned_views_an_aligned_stand_in():
    """float4 kernels assume cudaMalloc's alignment; a sliced numpy view is not aligned."""
    n = 1024
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * 2.0, name="B")
    s = te.create_schedule(B.op)
    bx, tx = s[B].split(B.op.axis[0], factor=256)
    tx, v = s[B].split(tx, factor=4)
    s[B].bind(bx, te.thread_axis("blockIdx.x"))
    s[B].bind(tx, te.thread_axis("threadIdx.x"))
    s[B].vectorize(v)
    mod = tc.build(s, [A, B], target="cuda-emu")
    assert "float4" in mod.get_source("cuda")
    a = np.random.default_rng(0).uniform(0.5, 1.5, n + 1).astype("float32")[1:]
    b = np.full(n + 3, np.nan, "float32")[3:]
    mod(a, b)
    np.testing.assert_array_equal(b, 2 * a)
