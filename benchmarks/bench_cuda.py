"""The default GPU schedules (tensorc.ops.schedule_gpu) against the vendor libraries: a 4096^3
float32 matmul against cuBLAS and a ResNet-50 3x3 convolution (1x64x56x56, 64 filters) against
cuDNN, both reached through torch.cuda (or cupy for the matmul), and CapsNet's DigitCaps
prediction + 3 routing rounds (batch 32, 1152 -> 10 capsules, 8 -> 16 dimensions) against the
same computation in torch eager on CUDA; printed as time ratios.

Kernels are timed on the device with CUDA events around ``--reps`` back-to-back launches on
buffers already on the GPU (no copies), after a warm-up launch; the median of ``--rounds`` is
reported. Where no kernel can run (no GPU, or pycuda missing: ``cuda_status()``) it says so and
exits 0, so it can sit in a CPU-only CI job.

    python benchmarks/bench_cuda.py [--size 4096] [--capsule-batch 32] [--rounds 5] [--reps 10]
"""
import argparse
import statistics
import sys

import numpy as np

from tensorc import ops, te
from tensorc.codegen.cuda import emit_cuda
from tensorc.codegen.cuda_compile import compile_cubin
from tensorc.driver import lower
from tensorc.ops import capsule
from tensorc.ops.schedule_gpu import schedule_for_gpu
from tensorc.runtime.cuda_module import cuda_status


def tensorc_timer(out, ins, rounds, reps):
    """Median milliseconds of one run of the kernels of ``out``'s default GPU schedule."""
    import pycuda.autoinit  # noqa: F401 - the context the kernels run in
    import pycuda.driver as drv
    args = ins + [out]
    src = emit_cuda(lower(schedule_for_gpu(out), args, target="cuda"))
    cubin, usage = compile_cubin(src.text, _arch(drv))
    module = drv.module_from_buffer(cubin)
    rng = np.random.default_rng(0)
    device = {t.name: drv.to_device(rng.standard_normal(t.shape).astype("float32"))
              for t in args}
    launches = [(module.get_function(k.name), [device[a] for a in k.args], k)
                for k in src.kernels]

    def run():
        for fn, bufs, k in launches:
            fn(*bufs, grid=tuple(k.grid), block=tuple(k.block))
    return _median_ms(drv, run, rounds, reps), usage


def _arch(drv):
    major, minor = drv.Device(0).compute_capability()
    return f"sm_{major}{minor}"


def _median_ms(drv, run, rounds, reps):
    run()
    times = []
    for _ in range(rounds):
        start, end = drv.Event(), drv.Event()
        start.record()
        for _ in range(reps):
            run()
        end.record()
        end.synchronize()
        times.append(end.time_since(start) / reps)
    return statistics.median(times)


def torch_timer(fn, shapes, rounds, reps):
    """Median milliseconds of fn(*tensors) with torch.cuda events, or None without torch.cuda."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    xs = [torch.randn(s, device="cuda") for s in shapes]
    fn(*xs)
    times = []
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn(*xs)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / reps)
    return statistics.median(times)


def cupy_matmul_timer(n, rounds, reps):
    try:
        import cupy as cp
    except ImportError:
        return None
    a, b = cp.random.rand(n, n, dtype=cp.float32), cp.random.rand(n, n, dtype=cp.float32)
    a @ b
    times = []
    for _ in range(rounds):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        for _ in range(reps):
            a @ b
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) / reps)
    return statistics.median(times)


def torch_capsule_routing(iterations):
    """Prediction + dynamic routing (Sabour et al.) as torch eager ops: u (B, I, Din),
    W (I, J, Dout, Din) -> v (B, J, Dout)."""
    def run(u, W):
        import torch
        u_hat = torch.einsum("ijdk,bik->bijd", W, u)
        logits = torch.zeros(u_hat.shape[:3], device=u.device)
        for r in range(iterations):
            c = torch.softmax(logits, dim=2)
            s = (c[..., None] * u_hat).sum(dim=1)
            n2 = (s * s).sum(dim=-1, keepdim=True)
            v = n2 / (1 + n2) * s / torch.sqrt(n2 + capsule.EPS)
            if r < iterations - 1:
                logits = logits + (u_hat * v[:, None]).sum(dim=-1)
        return v
    return run


def report(name, flops, ours, usage, ref, ref_name):
    regs = ", ".join(f"{r['registers']} regs {r['shared_bytes']} B smem "
                     f"{r['spill_stores']} B spilled" for r in usage.values())
    line = f"{name}: tensorc {ours:.3f} ms ({flops / ours / 1e9:.0f} TFLOP/s; {regs})"
    if ref is None:
        line += f"; {ref_name} not available (install torch with CUDA or cupy)"
    else:
        line += f"; {ref_name} {ref:.3f} ms; tensorc / {ref_name} time = {ours / ref:.2f}x"
    print(line)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--capsule-batch", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reps", type=int, default=10)
    a = p.parse_args()
    status = cuda_status()
    if status != "ready":
        print(f"bench_cuda: skipped, no CUDA kernel can run here ({status}); the GPU schedules "
              "are checked without a GPU by tests/ops/test_schedule_gpu.py and "
              "tests/ops/test_capsule_cuda.py (nvcc / NVRTC + cuda-emu)")
        return 0
    n = a.size
    A, B = te.placeholder((n, n), name="A"), te.placeholder((n, n), name="B")
    ours, usage = tensorc_timer(ops.matmul.matmul(A, B), [A, B], a.rounds, a.reps)
    ref = torch_timer(lambda x, y: x @ y, [(n, n), (n, n)], a.rounds, a.reps)
    ref_name = "cuBLAS (torch)"
    if ref is None:
        ref, ref_name = cupy_matmul_timer(n, a.rounds, a.reps), "cuBLAS (cupy)"
    report(f"matmul {n}^3 fp32", 2 * n ** 3, ours, usage, ref, ref_name)

    X, W = te.placeholder((1, 64, 56, 56), name="X"), te.placeholder((64, 64, 3, 3), name="W")
    ours, usage = tensorc_timer(ops.conv.conv2d(X, W, padding=1), [X, W], a.rounds, a.reps)

    def conv(x, w):
        import torch
        return torch.nn.functional.conv2d(x, w, padding=1)
    ref = torch_timer(conv, [(1, 64, 56, 56), (64, 64, 3, 3)], a.rounds, a.reps)
    report("conv2d 1x64x56x56 3x3x64", 2 * 64 * 56 * 56 * 64 * 9, ours, usage, ref,
           "cuDNN (torch)")

    b, caps, out_caps, din, dout, rounds = a.capsule_batch, 1152, 10, 8, 16, 3
    U, Wc = te.placeholder((b, caps, din), name="u"), te.placeholder((caps, out_caps, dout, din),
                                                                    name="W")
    ours, usage = tensorc_timer(capsule.capsule_routing(U, Wc, rounds), [U, Wc], a.rounds,
                                a.reps)
    ref = torch_timer(torch_capsule_routing(rounds), [(b, caps, din), (caps, out_caps, dout, din)],
                      a.rounds, a.reps)
    report(f"capsule routing {b}x{caps}x{din} -> {out_caps}x{dout}, {rounds} rounds",
           2 * b * caps * out_caps * dout * (din + 2 * rounds - 1), ours, usage, ref,
           "torch eager")
    return 0


if __name__ == "__main__":
    sys.exit(main())
