"""The main job: compile a bundled model (ResNet-18 or MobileNetV2, random weights) into one
native module, run it, and print its result and speed.

    python examples/run_model.py [--model resnet18|mobilenet_v2] [--batch 1] [--threads N]

Correctness of compiled graphs against the numpy interpreter is what tests/graph checks; this
script shows the whole flow at full size: build the graph, compile, run, time.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

import tensorc as tc  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["resnet18", "mobilenet_v2"], default="resnet18")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    if args.threads:
        tc.runtime.set_num_threads(args.threads)

    graph = getattr(models, args.model)(batch=args.batch)
    print(f"{args.model}: {len(graph.nodes)} nodes, "
          f"{sum(v.data.size for v in graph.constants()) / 1e6:.1f} M weights")
    t0 = time.perf_counter()
    mod = tc.compile(graph)
    print(f"compiled in {time.perf_counter() - t0:.1f} s: {len(mod.kernel_names)} kernels")

    x = np.random.default_rng(1).standard_normal((args.batch, 3, 224, 224)).astype("float32")
    (y,) = mod(x)
    top5 = np.argsort(-y[0])[:5]
    print(f"output {y.shape}, finite: {bool(np.isfinite(y).all())}, top-5 classes of image 0: "
          f"{top5.tolist()}")
    mod(x)
    times = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        mod(x)
        times.append(time.perf_counter() - t0)
    print(f"latency: median {statistics.median(times) * 1e3:.2f} ms, min "
          f"{min(times) * 1e3:.2f} ms over {args.rounds} runs, "
          f"{tc.runtime.get_num_threads()} threads")
    try:
        with open("/proc/pressure/cpu") as f:
            print("cpu pressure:", f.readline().strip())
    except OSError:
        pass
    if not np.isfinite(y).all():
        sys.exit("non-finite output")


if __name__ == "__main__":
    main()
