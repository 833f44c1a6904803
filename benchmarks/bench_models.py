"""Whole-model latency: tensorc against ONNX Runtime and torch eager, in one process.

Each model (plain-torch definitions in tests/frontend/torch_models.py, random weights) is
exported to ONNX; tensorc compiles that ONNX file (from_onnx + tc.compile), ONNX Runtime runs
the same file with the same thread count, and torch runs the module eagerly. Runs are
interleaved round by round and medians reported, with /proc/pressure/cpu beside them.

    python benchmarks/bench_models.py [--models resnet18,mobilenet_v2] [--batch 1 8]
                                      [--threads 2] [--rounds 10]
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
from common import cpu_pressure, interleaved, summarize

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "frontend"))


def bench_model(name, batch, threads, rounds):
    import onnxruntime as ort
    import torch
    import torch_models

    import tensorc as tc
    from frontend_importers import from_onnx
    model, inputs = torch_models.MODELS[name]()
    if batch != inputs[0].shape[0]:
        inputs = tuple(x.repeat(batch, *([1] * (x.dim() - 1))) for x in inputs)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.onnx")
        torch.onnx.export(model, inputs, path, dynamo=False, opset_version=17,
                          input_names=[f"in{k}" for k in range(len(inputs))])
        t0 = time.perf_counter()
        mod = tc.compile(from_onnx(path))
        compile_s = time.perf_counter() - t0
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # ORT's idle threads spin by default and would starve the other two runners
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    arrays = [x.numpy() for x in inputs]
    feed = {f"in{k}": a for k, a in enumerate(arrays)}
    tc.runtime.set_num_threads(threads)
    torch.set_num_threads(threads)
    with torch.no_grad():
        want = model(*inputs)
    want = (want[0] if isinstance(want, (tuple, list)) else want).numpy()
    got = mod(*arrays)[0]
    rel = float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))
    with torch.no_grad():
        times = interleaved({"tensorc": lambda: mod(*arrays),
                             "onnxruntime": lambda: sess.run(None, feed),
                             "torch": lambda: model(*inputs)}, rounds, warmup=2)
    return compile_s, rel, {k: v["median_ms"] for k, v in summarize(times).items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet18,mobilenet_v2")
    ap.add_argument("--batch", type=int, nargs="*", default=[1, 8])
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    print(f"threads {args.threads}; cpu pressure before: {cpu_pressure()}")
    print(f"{'model':<14} {'batch':>5} {'compile s':>9} {'rel L2':>8} {'tensorc ms':>10} "
          f"{'ORT ms':>8} {'torch ms':>9} {'ORT/tc':>6} {'torch/tc':>8}")
    for name in args.models.split(","):
        for batch in args.batch:
            c, rel, t = bench_model(name, batch, args.threads, args.rounds)
            print(f"{name:<14} {batch:>5} {c:>9.1f} {rel:>8.1e} {t['tensorc']:>10.2f} "
                  f"{t['onnxruntime']:>8.2f} {t['torch']:>9.2f} "
                  f"{t['onnxruntime'] / t['tensorc']:>6.2f} {t['torch'] / t['tensorc']:>8.2f}")
    print(f"cpu pressure after: {cpu_pressure()}")


if __name__ == "__main__":
    main()
