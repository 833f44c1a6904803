"""Where a model's time goes: tensorc's kernels against ONNX Runtime's nodes, layer by layer.

Whole-model figures (bench_models.py) say how far apart two runtimes are, not where. This
script runs the same ONNX file both ways, in model order as a real run does (so each kernel
sees its weights and inputs as cold or warm as they are in the model), and lists the time of
every tensorc kernel call (``GraphModule.profile`` with one call per round) and of every ONNX
Runtime node (its built-in profiler, ``*_kernel_time`` events). The two are interleaved round
by round, medians reported; ONNX Runtime's idle workers do not spin (they would steal the cores
tensorc's next call needs). The names differ (tensorc fuses a conv with its bias, residual add
and ReLU into one kernel; ONNX Runtime folds them into its NCHWc conv nodes), so the tables are
printed side by side in model order, not matched.

    python benchmarks/bench_layers.py [--model resnet18] [--onnx FILE] [--threads 2]
                                      [--rounds 10] [--tuning-db tune.db] [--json out.json]
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

import numpy as np
from common import cpu_pressure
from records import Records

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "frontend"))


def export(name, directory):
    """(ONNX path, input arrays) of a model of tests/frontend/torch_models.py."""
    import torch
    import torch_models
    model, inputs = torch_models.MODELS[name]()
    path = os.path.join(directory, f"{name}.onnx")
    torch.onnx.export(model, inputs, path, dynamo=False, opset_version=17,
                      input_names=[f"in{k}" for k in range(len(inputs))])
    return path, [x.numpy() for x in inputs]


def random_inputs(path):
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    return [rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape])
            .astype("float32") for i in sess.get_inputs()]


def profile(path, arrays, threads, rounds, tuning_db):
    """({kernel call: [ms]} for tensorc in plan order, {node: [ms]} for ORT, rel L2 error)."""
    import onnxruntime as ort

    import tensorc as tc
    from frontend_importers import from_onnx
    tc.runtime.set_num_threads(threads)
    mod = tc.compile(from_onnx(path), tuning_db=tuning_db)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = os.path.join(tmp, "ort")
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        feed = {i.name: a for i, a in zip(sess.get_inputs(), arrays)}
        want = sess.run(None, feed)[0]
        got = mod(*arrays)
        got = got[0] if isinstance(got, (list, tuple)) else got
        rel = float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))
        warm = 2
        ours = []
        for r in range(warm + rounds):
            sess.run(None, feed)
            timings = mod.profile(*arrays, number=1, repeat=1)
            if r >= warm:
                ours.append(timings)
        with open(sess.end_profiling()) as f:
            events = json.load(f)
    nodes = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            nodes.setdefault(e["name"][:-len("_kernel_time")], []).append(e["dur"] / 1e3)
    # the first runs are the correctness check and the warm-up rounds
    nodes = {k: v[1 + warm:] for k, v in nodes.items()}
    kernels = {}
    for k, call in enumerate(ours[0]):
        kernels[f"{k:2d} {call.kernel}"] = [run[k].median * 1e3 for run in ours]
    return kernels, nodes, rel


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18",
                    help="a model of tests/frontend/torch_models.py (ignored with --onnx)")
    ap.add_argument("--onnx", help="an ONNX file instead (random float32 inputs)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--tuning-db", help="compile tensorc with the best records of this database")
    ap.add_argument("--json", help="also write the figures to this JSON file (run_all.py)")
    args = ap.parse_args()
    print(f"threads {args.threads}; cpu pressure before: {cpu_pressure()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.onnx:
            path, arrays, name = args.onnx, random_inputs(args.onnx), os.path.basename(args.onnx)
        else:
            (path, arrays), name = export(args.model, tmp), args.model
        kernels, nodes, rel = profile(path, arrays, args.threads, args.rounds, args.tuning_db)
    print(f"cpu pressure after: {cpu_pressure()}; tensorc rel L2 vs ONNX Runtime {rel:.1e}")
    records = Records("layers", "tensorc")
    rows = [(k, statistics.median(v)) for k, v in kernels.items()]
    ort_rows = [(k, statistics.median(v)) for k, v in nodes.items()]
    width = max(len(k) for k, _ in rows + ort_rows)
    print(f"\n{'tensorc kernel':<{width}} {'ms':>7}   {'ONNX Runtime node':<{width}} {'ms':>7}")
    for k in range(max(len(rows), len(ort_rows))):
        left = f"{rows[k][0]:<{width}} {rows[k][1]:>7.3f}" if k < len(rows) else " " * (width + 8)
        right = f"{ort_rows[k][0]:<{width}} {ort_rows[k][1]:>7.3f}" if k < len(ort_rows) else ""
        print(f"{left}   {right}")
    ours, theirs = sum(ms for _, ms in rows), sum(ms for _, ms in ort_rows)
    print(f"{'sum':<{width}} {ours:>7.2f}   {'sum':<{width}} {theirs:>7.2f}   "
          f"(tensorc / ORT {ours / theirs:.3f})")
    records.add(f"{name} sum of kernels", "tensorc", args.threads, ours)
    records.add(f"{name} sum of kernels", "onnxruntime", args.threads, theirs)
    records.write(args.json)


if __name__ == "__main__":
    main()
