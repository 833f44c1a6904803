#!/usr/bin/env python
"""A float32 matmul two ways: scheduled by hand the classic way, and the library's own.

Builds C = A @ B (M = N = K = --size) with a 32x32 tiled, k-split-by-4, vectorised, parallel
schedule written here (the TE scheduling tutorial's), checks it against numpy and prints the
first lines of its lowered IR. Beside it, ``ops.matmul`` with its default schedule (what
``tc.compile`` builds for a MatMul node: packed panels, a register-tiled micro-kernel). Then
GFLOP/s of both and of numpy, measured in this same process (median of interleaved rounds),
and the host's CPU pressure line, which tells whether other load could have skewed the
numbers.

    python examples/matmul.py                 # 1024^3
    python examples/matmul.py --size 256      # the CI smoke test
    python examples/matmul.py --threads 1     # single-threaded tensorc and numpy BLAS
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1024, help="M = N = K (default: 1024)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for tensorc and for numpy's BLAS (default: tensorc uses "
                        "$TENSORC_NUM_THREADS or all usable cores, numpy its own default)")
    p.add_argument("--rounds", type=int, default=5,
                   help="interleaved timing rounds; the median is reported (default: 5)")
    p.add_argument("--ir-lines", type=int, default=25,
                   help="lines of lowered IR to print (default: 25)")
    args = p.parse_args(argv)
    if args.size < 1:
        p.error("--size must be >= 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    return args


def matmul(te, M: int, N: int, K: int):
    """The classic CPU matmul schedule; returns (schedule, [A, B, C])."""
    k = te.reduce_axis((0, K), name="k")
    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = te.create_schedule(C.op)
    mo, no, mi, ni = s[C].tile(C.op.axis[0], C.op.axis[1], 32, 32)
    ko, ki = s[C].split(k, factor=4)
    s[C].reorder(mo, no, ko, mi, ki, ni)
    s[C].vectorize(ni)
    s[C].parallel(mo)
    return s, [A, B, C]


def library_matmul(te, M: int, N: int, K: int):
    """``ops.matmul`` with its default CPU schedule; returns (schedule, [A, B, C])."""
    from tensorc.ops import matmul as ops_matmul
    from tensorc.ops import schedule_nn
    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    C = ops_matmul.matmul(A, B)
    return schedule_nn.create_schedule(C), [A, B, C]


def cpu_pressure() -> str | None:
    """The 'some' line of /proc/pressure/cpu (Linux PSI), or None where there is none."""
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as fh:
            return fh.readline().strip() or None
    except OSError:
        return None


def _calls_for(seconds_per_call: float, budget: float = 0.1) -> int:
    """Calls per measurement so that one measurement lasts about `budget` seconds."""
    return max(1, min(10_000, int(budget / max(seconds_per_call, 1e-9))))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        # Before numpy and tensorc are imported: BLAS and OpenMP read these at load time.
        os.environ["TENSORC_NUM_THREADS"] = str(args.threads)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    if importlib.util.find_spec("tensorc") is None:  # run from a checkout, not installed
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    import numpy as np

    import tensorc as tc
    from tensorc import info, te

    M = N = K = args.size
    cpu = info.host_cpu()
    print(f"matmul {M}x{K} @ {K}x{N} float32 | cpu {cpu['cpu_name']} "
          f"({cpu['float32_vector_width']} f32 lanes) | tensorc threads {info.num_threads()} "
          f"| numpy {np.__version__}")
    if os.environ.get("OPENBLAS_CORETYPE"):
        print(f"note: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} is set; numpy's "
              "OpenBLAS may run a slower kernel than this CPU allows")

    s, arrays = matmul(te, M, N, K)
    lowered = str(tc.lower(s, arrays)).splitlines()
    print(f"\n--- lowered IR (first {min(args.ir_lines, len(lowered))} of {len(lowered)} lines)")
    print("\n".join(lowered[: args.ir_lines]))
    print("---\n")

    rng = np.random.default_rng(0)
    a = rng.random((M, K), dtype=np.float32)
    b = rng.random((K, N), dtype=np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    kernels = {}
    builds = {"tensorc, this schedule": (s, arrays),
              "tensorc, ops.matmul": library_matmul(te, M, N, K)}
    for label, (sched, tensors) in builds.items():
        t0 = time.perf_counter()
        f = tc.build(sched, tensors, target="llvm", name="mmult")
        build = time.perf_counter() - t0
        c = np.full((M, N), np.nan, dtype=np.float32)
        t0 = time.perf_counter()
        f(a, b, c)
        first_call = time.perf_counter() - t0
        err = float(np.max(np.abs(c - ref) / np.maximum(np.abs(ref), 1.0)))
        ok = bool(np.allclose(c, ref, rtol=1e-4, atol=1e-4))
        print(f"{label}: build {build:.2f} s, check against numpy: "
              f"{'OK' if ok else 'MISMATCH'} (max relative error {err:.2e})")
        if not ok:
            bad = np.argwhere(~np.isclose(c, ref, rtol=1e-4, atol=1e-4))
            i, j = bad[0]
            print(f"  {len(bad)} wrong elements; e.g. C[{i},{j}] = {float(c[i, j])!r}, "
                  f"expected {float(ref[i, j])!r}", file=sys.stderr)
            return 1
        f(a, b, c)
        t0 = time.perf_counter()
        f(a, b, c)
        calls = _calls_for(min(first_call, time.perf_counter() - t0))
        kernels[label] = (f.time_evaluator(number=calls, repeat=1), c, calls)

    # Interleave tensorc and numpy rounds so that all see the same machine load.
    c_np = np.empty((M, N), dtype=np.float32)
    np.matmul(a, b, out=c_np)  # warm-up (thread pool start, page faults)
    t0 = time.perf_counter()
    np.matmul(a, b, out=c_np)
    np_calls = _calls_for(time.perf_counter() - t0)
    times = {label: [] for label in kernels}
    np_times = []
    for _ in range(args.rounds):
        for label, (timer, c, _) in kernels.items():
            times[label].append(timer(a, b, c).median)
        t0 = time.perf_counter()
        for _ in range(np_calls):
            np.matmul(a, b, out=c_np)
        np_times.append((time.perf_counter() - t0) / np_calls)

    flops = 2.0 * M * N * K
    np_t = statistics.median(np_times)
    print()
    for label, (_, _, calls) in kernels.items():
        t = statistics.median(times[label])
        print(f"{label + ':':24s} {flops / t / 1e9:8.2f} GFLOP/s  ({t * 1e3:.3f} ms; median of "
              f"{args.rounds} rounds x {calls} calls; {np_t / t:.2f}x numpy)")
    print(f"{'numpy:':24s} {flops / np_t / 1e9:8.2f} GFLOP/s  ({np_t * 1e3:.3f} ms; median of "
          f"{args.rounds} rounds x {np_calls} calls)")
    pressure = cpu_pressure()
    if pressure is not None:
        print(f"cpu pressure (/proc/pressure/cpu): {pressure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
