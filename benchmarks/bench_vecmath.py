"""Elements/s of float32 exp, tanh and sigmoid: numpy against tensorc, vectorized math and libm.

Three ways per function, over the same 16M-element float32 array, single thread each:
- numpy: ``np.exp``, ``np.tanh``, and sigmoid as ``1 / (1 + np.exp(-x))`` in place (numpy has
  no sigmoid ufunc), all into preallocated outputs;
- tensorc vecmath: ``te.exp`` etc. vectorized 8 wide, the straight-line vector code of
  codegen/llvm_vecmath.py;
- tensorc libm: the same schedule built with ``llvm_vecmath.disabled()``, the previous path
  (each vector op split into one libm call per lane).

Everything is timed in one process, interleaved round by round, and medians are reported,
because the machine is shared: absolute figures move with other jobs, ratios measured side by
side much less. /proc/pressure/cpu is read before and after so a reader can tell a quiet run from
a loaded one.

    python benchmarks/bench_vecmath.py [--size 16777216] [--rounds 7] [--lanes 8]
                                       [--json results.json]
"""
import argparse
import statistics
import time

import numpy as np
from records import Records

import tensorc as tc
from tensorc import te
from tensorc.codegen import llvm_vecmath

FUNCS = ("exp", "tanh", "sigmoid")


def pressure():
    try:
        with open("/proc/pressure/cpu") as f:
            return f.read().strip().replace("\n", " | ")
    except OSError:
        return "unavailable"


def build(name, n, lanes, libm):
    x = te.placeholder((n,), name="x")
    y = te.compute((n,), lambda i: getattr(te, name)(x[i]), name="y")
    s = te.create_schedule(y.op)
    _, inner = s[y].split(y.op.axis[0], factor=lanes)
    s[y].vectorize(inner)
    if libm:
        with llvm_vecmath.disabled():
            return tc.build(s, [x, y], name=f"{name}_libm")
    return tc.build(s, [x, y], name=f"{name}_vec")


def numpy_fn(name):
    if name == "sigmoid":
        def sigmoid(x, out):
            np.negative(x, out=out)
            np.exp(out, out=out)
            out += 1
            np.reciprocal(out, out=out)
        return sigmoid
    fn = getattr(np, name)
    return lambda x, out: fn(x, out=out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1 << 24)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--lanes", type=int, default=8)
    ap.add_argument("--json", help="also write the figures to this JSON file (run_all.py)")
    args = ap.parse_args()
    records = Records("vecmath", "tensorc vecmath")
    n = args.size
    print(f"float32, n = {n}, {args.lanes} lanes, {args.rounds} rounds, single thread")
    print(f"cpu pressure before: {pressure()}")

    x = np.random.default_rng(0).uniform(-10, 10, n).astype(np.float32)
    out = np.empty_like(x)
    variants = {}
    for name in FUNCS:
        variants[(name, "numpy")] = numpy_fn(name)
        for kind in ("vecmath", "libm"):
            variants[(name, kind)] = build(name, n, args.lanes, kind == "libm")
    for fn in variants.values():  # warm-up: page in the output, load the code
        fn(x, out)

    times = {key: [] for key in variants}
    for _ in range(args.rounds):
        for key, fn in variants.items():
            t0 = time.perf_counter()
            fn(x, out)
            times[key].append(time.perf_counter() - t0)

    print(f"cpu pressure after:  {pressure()}")
    print(f"{'function':9s} {'numpy':>14s} {'tensorc vecmath':>16s} {'tensorc libm':>14s}"
          f" {'vecmath/numpy':>14s} {'vecmath/libm':>13s}   (Melem/s, median)")
    for name in FUNCS:
        rate = {kind: n / statistics.median(times[(name, kind)]) / 1e6
                for kind in ("numpy", "vecmath", "libm")}
        print(f"{name:9s} {rate['numpy']:14.0f} {rate['vecmath']:16.0f} {rate['libm']:14.0f}"
              f" {rate['vecmath'] / rate['numpy']:13.2f}x {rate['vecmath'] / rate['libm']:12.2f}x")
        for kind in ("numpy", "vecmath", "libm"):
            ts = times[(name, kind)]
            records.add(f"{name} n={n}", kind if kind == "numpy" else f"tensorc {kind}", 1,
                        statistics.median(ts) * 1e3, min(ts) * 1e3)
    records.write(args.json)


if __name__ == "__main__":
    main()
