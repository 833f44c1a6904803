"""GFLOP/s of float32 matmul: numpy (OpenBLAS) against tensorc schedules, 1 and all threads.

Everything is timed in one process, interleaved round by round (numpy, then each tensorc
variant, repeated), and medians are reported, because the machine is shared: absolute figures
move 2-50x with other jobs, ratios measured side by side much less. /proc/pressure/cpu is read
before and after so a reader can tell a quiet run from a loaded one.

    python benchmarks/bench_matmul.py [--size 1024] [--rounds 7] [--json results.json]
"""
import argparse
import os
import statistics
import time

import numpy as np
from common import cpu_pressure
from records import Records

import tensorc as tc
from tensorc import te


def matmul_default(n):
    k = te.reduce_axis((0, n), name="k")
    A = te.placeholder((n, n), name="A")
    B = te.placeholder((n, n), name="B")
    C = te.compute((n, n), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    return te.create_schedule(C.op), [A, B, C]


def matmul_classic(n, bn=32):
    """The blocking recipe of TVM's CPU matmul tutorial: tile, split k, pack B, cache_write."""
    k = te.reduce_axis((0, n), name="k")
    A = te.placeholder((n, n), name="A")
    B = te.placeholder((n, n), name="B")
    BP = te.compute((n // bn, n, bn), lambda x, y, z: B[y, x * bn + z], name="BP")
    C = te.compute((n, n), lambda i, j: te.sum(A[i, k] * BP[j // bn, k, j % bn], axis=k),
                   name="C")
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    mo, no, _mi, ni = s[C].tile(C.op.axis[0], C.op.axis[1], bn, bn)
    s[CC].compute_at(s[C], no)
    mc, nc = s[CC].op.axis
    (kc,) = s[CC].op.reduce_axis
    ko, ki = s[CC].split(kc, factor=4)
    s[CC].reorder(ko, mc, ki, nc)
    s[CC].vectorize(nc)
    s[CC].unroll(ki)
    s[C].parallel(mo)
    s[C].vectorize(ni)
    x, _y, z = s[BP].op.axis
    s[BP].vectorize(z)
    s[BP].parallel(x)
    return s, [A, B, C]


def matmul_best(n, mr=6, nr=16):
    """Register-blocked micro-kernel: an mr x nr tile of C lives in vector registers.

    nr = two 8-lane vectors, mr = 6 rows: 12 accumulators + 2 loads of B + 1 broadcast of A
    fit the 16 AVX2 registers (the BLIS Haswell/Zen kernel shape). B is packed into column
    panels and A into groups of mr interleaved rows, so the kernel streams both
    contiguously; the tail rows (n % mr) are a separate copy of the loop made by loop
    partitioning.
    """
    k = te.reduce_axis((0, n), name="k")
    A = te.placeholder((n, n), name="A")
    B = te.placeholder((n, n), name="B")
    panels, groups = -(-n // nr), -(-n // mr)
    BP = te.compute((panels, n, nr), lambda x, y, z: te.if_then_else(
        x * nr + z < n, B[y, x * nr + z], 0.0), name="BP")
    AP = te.compute((groups, n, mr), lambda x, y, z: te.if_then_else(
        x * mr + z < n, A[x * mr + z, y], 0.0), name="AP")
    C = te.compute((n, n), lambda i, j: te.sum(AP[i // mr, k, i % mr] * BP[j // nr, k, j % nr],
                                               axis=k), name="C")
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    mo, no, mi, ni = s[C].tile(C.op.axis[0], C.op.axis[1], mr, nr)
    s[C].reorder(no, mo, mi, ni)
    s[CC].compute_at(s[C], mo)
    mc, nc = s[CC].op.axis
    (kc,) = s[CC].op.reduce_axis
    s[CC].reorder(kc, mc, nc)
    s[CC].unroll(mc)
    s[CC].vectorize(nc)
    s[C].vectorize(ni)
    s[C].parallel(no)
    x, _y, z = s[BP].op.axis
    s[BP].vectorize(z)
    s[BP].parallel(x)
    x, _y, z = s[AP].op.axis
    s[AP].unroll(z)
    s[AP].parallel(x)
    return s, [A, B, C]


def matmul_library(n):
    """``ops.matmul`` with its default CPU schedule: what ``tc.compile`` builds for a MatMul
    node (the same micro-kernel and packings, parallel over column panels)."""
    from tensorc.ops import matmul as ops_matmul
    from tensorc.ops import schedule_nn
    A = te.placeholder((n, n), name="A")
    B = te.placeholder((n, n), name="B")
    C = ops_matmul.matmul(A, B)
    return schedule_nn.create_schedule(C), [A, B, C]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="*", default=None,
                    help="thread counts to run (default: 1 and all cores)")
    ap.add_argument("--json", help="also write the figures to this JSON file (run_all.py)")
    args = ap.parse_args()
    records = Records("matmul", "tensorc best")
    n = args.size
    flop = 2.0 * n ** 3
    cores = len(os.sched_getaffinity(0))
    threads = args.threads or sorted({1, cores})
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
        print("threadpoolctl missing (pip install '.[bench]'): numpy uses all threads")
        records.note("threadpoolctl missing: numpy used all threads in every row")

    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (n, n)).astype("float32")
    b = rng.uniform(-1, 1, (n, n)).astype("float32")
    ref = a @ b
    variants = {}
    for name, make in (("default", matmul_default), ("classic", matmul_classic),
                       ("best", matmul_best), ("library", matmul_library)):
        if name == "classic" and n % 32:
            continue
        s, targs = make(n)
        t0 = time.perf_counter()
        f = tc.build(s, targs, name=f"matmul_{name}")
        c = np.full((n, n), np.nan, "float32")
        f(a, b, c)
        np.testing.assert_allclose(c, ref, rtol=1e-3, atol=1e-3)
        variants[name] = (f, c, time.perf_counter() - t0)

    print(f"matmul {n}^3 float32; cpu pressure before: {cpu_pressure()}")
    print(f"{'threads':>7} {'variant':>10} {'median ms':>10} {'GFLOP/s':>8} {'vs numpy':>8}")
    for nt in threads:
        tc.runtime.set_num_threads(nt)
        times = {k: [] for k in ["numpy", *variants]}
        for r in range(args.rounds):
            ctx = threadpool_limits(nt) if threadpool_limits else None
            with ctx if ctx else _null():
                times["numpy"].append(_time(lambda: np.matmul(a, b, out=ref)))
            for name, (f, c, _) in variants.items():
                if name == "default" and r >= 1:
                    continue  # seconds per call; one round is enough to rank it
                times[name].append(_time(lambda f=f, c=c: f(a, b, c)))
        base = statistics.median(times["numpy"])
        for name, ts in times.items():
            t = statistics.median(ts)
            print(f"{nt:>7} {name:>10} {t * 1e3:>10.2f} {flop / t / 1e9:>8.1f} {base / t:>8.2f}")
            records.add(f"{n}^3 float32", name if name == "numpy" else f"tensorc {name}", nt,
                        t * 1e3, min(ts) * 1e3)
    print(f"cpu pressure after: {cpu_pressure()}")
    for name, (_, _, secs) in variants.items():
        print(f"build time {name}: {secs:.2f} s")
    records.write(args.json)


def _time(fn):
    fn()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


if __name__ == "__main__":
    main()
