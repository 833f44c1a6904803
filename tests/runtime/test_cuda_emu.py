"""target="cuda-emu": hand-written CUDA kernels run on the CPU and compared with numpy.

The kernels are written here rather than generated, so the emulator is tested on its own; each is
also compiled by nvcc for sm_80 (where nvcc exists) to show it is valid CUDA, not a dialect only
the emulator accepts.
"""
import shutil
import subprocess

import numpy as np
import pytest

import tensorc as tc
from tensorc import te
from tensorc.codegen.cuda_source import CudaSource, KernelLaunch
from tensorc.runtime import cuda_emu
from tensorc.runtime.cuda_emu import CudaEmuError, _build, build_emu

ORDERS = ("forward", "reverse")
FULL = "0xffffffffu"


def source(name, text, kernels, params):
    return CudaSource(name, text, tuple(KernelLaunch(*k) for k in kernels), tuple(params))


def run_both_orders(mod, inputs, outputs):
    """Run in both fiber orders on NaN-filled (or -7) outputs; the two results must be identical."""
    results = []
    for order in ORDERS:
        outs = [np.full(shape, np.nan if np.dtype(dtype).kind == "f" else -7, dtype)
                for shape, dtype in outputs]
        mod(*inputs, *outs, order=order)
        results.append(outs)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    return results[0]


N_EW = 1000
ELEMENTWISE = source("ew", f"""
extern "C" __global__ void ew(const float* __restrict__ X, const float* __restrict__ Y,
                              float* __restrict__ Z) {{
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < {N_EW}) {{
    Z[i] = tanhf(X[i]) * Y[i] + fmaxf(X[i], 0.5f) + expf(-Y[i] * Y[i]) + rsqrtf(1.0f + X[i])
         + (float)max(i - 990, 0) + (float)min(i, 3);
  }}
}}
""", [("ew", (8, 1, 1), (128, 1, 1), ("X", "Y", "Z"))],
    [("X", (N_EW,), "float32"), ("Y", (N_EW,), "float32"), ("Z", (N_EW,), "float32")])

M, K, N, T = 67, 45, 53, 16
MATMUL = source("mm", f"""
extern "C" __global__ void mm(const float* __restrict__ A, const float* __restrict__ B,
                              float* __restrict__ C) {{
  __shared__ float As[{T}][{T}];
  __shared__ float Bs[{T}][{T}];
  int row = blockIdx.y * {T} + threadIdx.y, col = blockIdx.x * {T} + threadIdx.x;
  float acc = 0.0f;
  for (int k0 = 0; k0 < {K}; k0 += {T}) {{
    As[threadIdx.y][threadIdx.x] =
        row < {M} && k0 + threadIdx.x < {K} ? A[row * {K} + k0 + threadIdx.x] : 0.0f;
    Bs[threadIdx.y][threadIdx.x] =
        col < {N} && k0 + threadIdx.y < {K} ? B[(k0 + threadIdx.y) * {N} + col] : 0.0f;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < {T}; ++k) acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
    __syncthreads();
  }}
  if (row < {M} && col < {N}) C[row * {N} + col] = acc;
}}
""", [("mm", (-(-N // T), -(-M // T), 1), (T, T, 1), ("A", "B", "C"))],
    [("A", (M, K), "float32"), ("B", (K, N), "float32"), ("C", (M, N), "float32")])

N_RED, B_RED = 1000, 256
REDUCE = source("reduce", f"""
extern "C" __global__ void block_sum(const float* __restrict__ X, float* __restrict__ P) {{
  __shared__ float s[{B_RED}];
  int t = threadIdx.x, i = blockIdx.x * {B_RED} + t;
  s[t] = i < {N_RED} ? X[i] : 0.0f;
  __syncthreads();
  for (int stride = {B_RED // 2}; stride > 0; stride >>= 1) {{
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }}
  if (t == 0) P[blockIdx.x] = s[0];
}}
""", [("block_sum", (4, 1, 1), (B_RED, 1, 1), ("X", "P"))],
    [("X", (N_RED,), "float32"), ("P", (4,), "float32")])

N_WARP, B_WARP, G_WARP = 777, 96, 9
WARP = source("warp", f"""
extern "C" __global__ void warp_ops(const float* __restrict__ X, float* __restrict__ W,
                                    float* __restrict__ Mx, float* __restrict__ Bc,
                                    float* __restrict__ S) {{
  int i = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x % 32;
  float x = i < {N_WARP} ? X[i] : 0.0f;
  float sum = x;
  for (int d = 16; d > 0; d /= 2) sum += __shfl_down_sync({FULL}, sum, d);
  float m = x;
  for (int d = 1; d < 32; d *= 2) m = fmaxf(m, __shfl_xor_sync({FULL}, m, d));
  float b = __shfl_sync({FULL}, x, 3);
  float scan = x;
  for (int d = 1; d < 32; d *= 2) {{
    float y = __shfl_up_sync({FULL}, scan, d);
    if (lane >= d) scan += y;
  }}
  if (lane == 0) W[i / 32] = sum;
  if (i < {N_WARP}) {{
    Mx[i] = m;
    Bc[i] = b;
    S[i] = scan;
  }}
}}
""", [("warp_ops", (G_WARP, 1, 1), (B_WARP, 1, 1), ("X", "W", "Mx", "Bc", "S"))],
    [("X", (N_WARP,), "float32"), ("W", (G_WARP * B_WARP // 32,), "float32"),
     ("Mx", (N_WARP,), "float32"), ("Bc", (N_WARP,), "float32"), ("S", (N_WARP,), "float32")])

N_ATOM = 100_000
ATOMIC = source("atomic", f"""
extern "C" __global__ void zero(float* __restrict__ Total, int* __restrict__ Count) {{
  Total[0] = 0.0f;
  Count[0] = 0;
}}
extern "C" __global__ void accumulate(const float* __restrict__ X, float* __restrict__ Total,
                                      int* __restrict__ Count) {{
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < {N_ATOM}) {{
    atomicAdd(Total, X[i]);
    if (X[i] > 0.5f) atomicAdd(Count, 1);
  }}
}}
""", [("zero", (1, 1, 1), (1, 1, 1), ("Total", "Count")),
      ("accumulate", (-(-N_ATOM // 256), 1, 1), (256, 1, 1), ("X", "Total", "Count"))],
    [("X", (N_ATOM,), "float32"), ("Total", (1,), "float32"), ("Count", (1,), "int32")])

VECTOR_HALF = source("vec_half", """
#include <cuda_fp16.h>
extern "C" __global__ void vec_half(const float* __restrict__ X, const __half* __restrict__ H,
                                    float* __restrict__ Y, __half* __restrict__ G) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < 250) {
    float4 v = *(const float4*)(X + 4 * i);
    *(float4*)(Y + 4 * i) = make_float4(v.w, v.z, v.y, v.x);
  }
  if (i < 999) G[i] = __float2half(__half2float(H[i]) * 2.0f + 1.0f);
}
""", [("vec_half", (8, 1, 1), (128, 1, 1), ("X", "H", "Y", "G"))],
    [("X", (1000,), "float32"), ("H", (999,), "float16"), ("Y", (1000,), "float32"),
     ("G", (999,), "float16")])


def shift_source(name, barrier):
    """Each thread writes X to shared memory, then reads its neighbour's slot: racy without a
    barrier between."""
    return source(name, f"""
extern "C" __global__ void {name}(const float* __restrict__ X, float* __restrict__ Y) {{
  __shared__ float s[128];
  int t = threadIdx.x;
  s[t] = X[blockIdx.x * 128 + t];
  {"__syncthreads();" if barrier else ""}
  Y[blockIdx.x * 128 + t] = s[(t + 1) % 128];
}}
""", [(name, (5, 1, 1), (128, 1, 1), ("X", "Y"))],
        [("X", (640,), "float32"), ("Y", (640,), "float32")])


SHIFT, RACY = shift_source("shift", True), shift_source("racy", False)

BARRIER_IN_IF = source("barrier_if", """
extern "C" __global__ void barrier_if(const float* __restrict__ X, float* __restrict__ Y) {
  __shared__ float s[64];
  s[threadIdx.x] = X[threadIdx.x];
  if (threadIdx.x < 16) __syncthreads();
  Y[blockIdx.x * 64 + threadIdx.x] = s[63 - threadIdx.x];
}
""", [("barrier_if", (2, 1, 1), (64, 1, 1), ("X", "Y"))],
    [("X", (64,), "float32"), ("Y", (128,), "float32")])

TWO_BARRIERS = source("two_barriers", """
extern "C" __global__ void two_barriers(const float* __restrict__ X, float* __restrict__ Y) {
  __shared__ float s[64];
  s[threadIdx.x] = X[threadIdx.x];
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  Y[threadIdx.x] = s[63 - threadIdx.x];
}
""", [("two_barriers", (1, 1, 1), (64, 1, 1), ("X", "Y"))],
    [("X", (64,), "float32"), ("Y", (64,), "float32")])

SHUFFLE_EXIT = source("shuffle_exit", f"""
extern "C" __global__ void shuffle_exit(const float* __restrict__ X, float* __restrict__ Y) {{
  if (threadIdx.x >= 8) return;
  Y[threadIdx.x] = __shfl_down_sync({FULL}, X[threadIdx.x], 1);
}}
""", [("shuffle_exit", (1, 1, 1), (32, 1, 1), ("X", "Y"))],
    [("X", (32,), "float32"), ("Y", (32,), "float32")])

VALID_CUDA = (ELEMENTWISE, MATMUL, REDUCE, WARP, ATOMIC, VECTOR_HALF, SHIFT, RACY, BARRIER_IN_IF,
              TWO_BARRIERS, SHUFFLE_EXIT)


def rand(*shape):
    return np.random.default_rng(sum(shape)).random(shape, dtype=np.float32)


def test_elementwise_with_guard():
    x, y = rand(N_EW), rand(N_EW)
    (z,) = run_both_orders(build_emu(ELEMENTWISE), (x, y), [((N_EW,), "float32")])
    i = np.arange(N_EW)
    want = (np.tanh(x) * y + np.maximum(x, 0.5) + np.exp(-y * y) + 1 / np.sqrt(1 + x)
            + np.maximum(i - 990, 0) + np.minimum(i, 3))
    np.testing.assert_allclose(z, want, rtol=1e-5)


def test_tiled_matmul_with_shared_memory_and_barriers():
    a, b = rand(M, K), rand(K, N) - 0.5
    (c,) = run_both_orders(build_emu(MATMUL), (a, b), [((M, N), "float32")])
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


def test_block_reduction_tree():
    x = rand(N_RED)
    (p,) = run_both_orders(build_emu(REDUCE), (x,), [((4,), "float32")])
    want = np.pad(x, (0, 4 * B_RED - N_RED)).reshape(4, B_RED).sum(axis=1)
    np.testing.assert_allclose(p, want, rtol=1e-5)


def test_warp_shuffles():
    x = rand(N_WARP) - 0.5
    w, mx, bc, s = run_both_orders(build_emu(WARP), (x,), [
        ((G_WARP * B_WARP // 32,), "float32"), ((N_WARP,), "float32"), ((N_WARP,), "float32"),
        ((N_WARP,), "float32")])
    warps = np.pad(x, (0, G_WARP * B_WARP - N_WARP)).reshape(-1, 32)
    np.testing.assert_allclose(w, warps.sum(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mx, np.repeat(warps.max(axis=1), 32)[:N_WARP])
    np.testing.assert_array_equal(bc, np.repeat(warps[:, 3], 32)[:N_WARP])
    np.testing.assert_allclose(s, np.cumsum(warps, axis=1).reshape(-1)[:N_WARP],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("order", ORDERS)
def test_atomic_add_across_blocks(order):
    x = rand(N_ATOM)
    total, count = np.full(1, np.nan, "float32"), np.full(1, -7, "int32")
    build_emu(ATOMIC)(x, total, count, order=order)
    np.testing.assert_allclose(total[0], x.astype(np.float64).sum(), rtol=1e-4)
    assert count[0] == np.count_nonzero(x > 0.5)


def test_float4_and_half():
    x = rand(1000)
    h = (rand(999) * 8 - 4).astype("float16")
    y, g = run_both_orders(build_emu(VECTOR_HALF), (x, h), [((1000,), "float32"),
                                                             ((999,), "float16")])
    np.testing.assert_array_equal(y, x.reshape(-1, 4)[:, ::-1].reshape(-1))
    np.testing.assert_array_equal(g, (h.astype("float32") * 2 + 1).astype("float16"))


def test_race_free_kernel_agrees_across_orders_racy_kernel_does_not():
    """Reading a neighbour's shared-memory slot is correct only after __syncthreads: without it,
    the thread order decides whether the neighbour has written yet, so the two orders differ."""
    x = rand(640)
    (y,) = run_both_orders(build_emu(SHIFT), (x,), [((640,), "float32")])
    np.testing.assert_array_equal(y, np.roll(x.reshape(5, 128), -1, axis=1).reshape(-1))
    racy = build_emu(RACY)
    forward, reverse = np.full(640, np.nan, "float32"), np.full(640, np.nan, "float32")
    racy(x, forward, order="forward")
    racy(x, reverse, order="reverse")
    assert not np.array_equal(forward, reverse)


@pytest.mark.parametrize("order", ORDERS)
def test_barrier_not_reached_by_every_thread_is_an_error(order):
    mod = build_emu(BARRIER_IN_IF)
    with pytest.raises(CudaEmuError, match=r"kernel 'barrier_if' block \([01],0,0\): thread "
                       r"\(16,0,0\) exited without reaching the __syncthreads \(line 5\) where "
                       r"thread \(0,0,0\) waits"):
        mod(rand(64), np.full(128, np.nan, "float32"), order=order)


def test_threads_at_different_barriers_is_an_error():
    with pytest.raises(CudaEmuError, match=r"threads \(0,0,0\) and \(16,0,0\) wait at different "
                       r"__syncthreads \(lines 6 and 8\)"):
        build_emu(TWO_BARRIERS)(rand(64), np.full(64, np.nan, "float32"))


def test_shuffle_with_exited_lane_is_an_error():
    with pytest.raises(CudaEmuError, match=r"thread \(0,0,0\) waits at a warp operation \(line 4\)"
                       r" that thread \(8,0,0\) of its warp never reaches \(it exited\)"):
        build_emu(SHUFFLE_EXIT)(rand(32), np.full(32, np.nan, "float32"))


def test_portable_ucontext_fibers():
    """The fallback fiber switch for CPUs without the hand-written one gives the same results."""
    a, b = rand(M, K), rand(K, N) - 0.5
    (c,) = run_both_orders(_build(MATMUL, ("-DTENSORC_EMU_UCONTEXT",)), (a, b),
                           [((M, N), "float32")])
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


def test_arguments_are_checked():
    mod = build_emu(REDUCE)
    assert mod.get_source("cuda") == REDUCE.text
    with pytest.raises(ValueError, match=r"argument 'X' \(#0\): expected shape \(1000,\)"):
        mod(rand(999), np.zeros(4, "float32"))
    with pytest.raises(TypeError, match="argument 'P' .*expected dtype float32, got float64"):
        mod(rand(1000), np.zeros(4))
    with pytest.raises(ValueError, match="order must be one of forward, reverse"):
        mod(rand(1000), np.zeros(4, "float32"), order="random")
    with pytest.raises(ValueError, match="only 'cuda' source"):
        mod.get_source("llvm")
    written = build_emu(REDUCE, output_params=(1,))
    x = rand(1000)
    with pytest.raises(ValueError, match="output argument 'P' .* overlaps argument 'X'"):
        written(x, x[:4])


def test_bad_launches_and_sources():
    with pytest.raises(ValueError, match="kernel 'block_sum' is launched with 'Q'"):
        build_emu(source("r", REDUCE.text, [("block_sum", (4,), (256,), ("X", "Q"))],
                         REDUCE.params))
    short = build_emu(source("r", REDUCE.text, [("block_sum", (4,), (256,), ("X",))],
                             REDUCE.params))
    with pytest.raises(CudaEmuError, match="kernel 'block_sum' takes 2 arguments, the launch "
                       "passes 1"):
        short(rand(1000), np.zeros(4, "float32"))
    huge = build_emu(source("r", REDUCE.text, [("block_sum", (4,), (2048,), ("X", "P"))],
                            REDUCE.params))
    with pytest.raises(CudaEmuError, match=r"block \(2048,1,1\) exceeds CUDA's limits"):
        huge(rand(1000), np.zeros(4, "float32"))
    broken = source("broken", 'extern "C" __global__ void k(float* X) {\n  X[0] = undefined;\n}\n',
                    [("k", (1,), (1,), ("X",))], [("X", (1,), "float32")])
    with pytest.raises(CudaEmuError, match="kernel.cu:2:.*undefined"):
        build_emu(broken)


def test_libraries_are_cached_on_disk(monkeypatch):
    x = rand(1000)
    build_emu(REDUCE)
    monkeypatch.setattr(cuda_emu, "_libraries", {})
    monkeypatch.setattr(cuda_emu, "_compile", lambda *a: pytest.fail("compiled a cached source"))
    (p,) = run_both_orders(build_emu(REDUCE), (x,), [((4,), "float32")])
    np.testing.assert_allclose(p, np.pad(x, (0, 24)).reshape(4, -1).sum(axis=1), rtol=1e-5)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_kernels_are_valid_cuda(tmp_path):
    cu = tmp_path / "all.cu"
    cu.write_text("\n".join(s.text for s in VALID_CUDA))
    done = subprocess.run(["nvcc", "-arch=sm_80", "-cubin", "-o", str(tmp_path / "all.cubin"),
                           str(cu)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_built_from_a_te_schedule():
    """tc.build(target="cuda-emu") runs the generated kernel of a bound elementwise stage."""
    n = 1000
    A, B = te.placeholder((n,), name="A"), te.placeholder((n,), name="B")
    C = te.compute((n,), lambda i: A[i] * 2.0 + te.exp(B[i]), name="C")
    s = te.create_schedule(C.op)
    bx, tx = s[C].split(C.op.axis[0], factor=128)
    s[C].bind(bx, te.thread_axis("blockIdx.x"))
    s[C].bind(tx, te.thread_axis("threadIdx.x"))
    f = tc.build(s, [A, B, C], target="cuda-emu")
    assert "threadIdx.x" in f.get_source("cuda")
    a, b = rand(n), rand(n) - 0.5
    (c,) = run_both_orders(f, (a, b), [((n,), "float32")])
    np.testing.assert_allclose(c, a * 2 + np.exp(b), rtol=1e-6)


def test_shared_memory_matmul_from_a_te_schedule():
    """Cooperative fetches into shared memory, with the barriers the code generator places."""
    m, k, n = 64, 48, 32
    A, B = te.placeholder((m, k), name="A"), te.placeholder((k, n), name="B")
    r = te.reduce_axis((0, k), name="r")
    C = te.compute((m, n), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    s = te.create_schedule(C.op)
    shared = [s.cache_read(A, "shared", [C]), s.cache_read(B, "shared", [C])]
    bi, ti = s[C].split(C.op.axis[0], factor=16)
    bj, tj = s[C].split(C.op.axis[1], factor=16)
    ro, _ = s[C].split(C.op.reduce_axis[0], factor=16)
    s[C].reorder(bi, bj, ti, tj, ro)
    for axis, tag in ((bi, "blockIdx.y"), (bj, "blockIdx.x"), (ti, "threadIdx.y"),
                      (tj, "threadIdx.x")):
        s[C].bind(axis, te.thread_axis(tag))
    for stage in shared:
        s[stage].compute_at(s[C], ro)
        s[stage].bind(s[stage].op.axis[0], te.thread_axis("threadIdx.y"))
        s[stage].bind(s[stage].op.axis[1], te.thread_axis("threadIdx.x"))
    f = tc.build(s, [A, B, C], target="cuda-emu")
    assert "__syncthreads" in f.get_source("cuda")
    a, b = rand(m, k), rand(k, n) - 0.5
    (c,) = run_both_orders(f, (a, b), [((m, n), "float32")])
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
