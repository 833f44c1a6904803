"""Whole-model latency: tensorc against ONNX Runtime and torch eager, in one process.

Each model (plain-torch definitions in tests/frontend/torch_models.py, random weights) is
exported to ONNX; tensorc compiles that ONNX file (from_onnx + tc.compile), ONNX Runtime runs
the same file with the same thread count, and torch runs the module eagerly. Runs are
interleaved round by round and medians reported, with /proc/pressure/cpu beside them.

Two optional runners join them (``--extra``), each skipped with the reason printed when it is
not installed or fails to compile:

- ``torch.compile``: the module compiled by inductor (compile time printed; slow on 2 cores);
- ``tvm``: Apache TVM (the ``apache-tvm`` wheel, not a tensorc dependency) importing the same
  ONNX file with its Relax frontend and building it with ``tvm.compile``'s default pipeline for
  ``llvm`` and the host's -mcpu, untuned: TVM 0.27's default CPU pipeline legalizes every
  operator to plain loops and schedules nothing (no tuning database), so this is TVM out of
  the box, not TVM after MetaSchedule.

    python benchmarks/bench_models.py [--models resnet18,mobilenet_v2] [--batch 1 8]
                                      [--threads 2] [--rounds 10] [--extra tvm,torch.compile]
                                      [--json results.json]
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
from common import cpu_pressure, interleaved, summarize
from records import Records

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "frontend"))


def tvm_runner(path, arrays, threads):
    """(callable, compile seconds) running the ONNX file at ``path`` with Apache TVM, or
    (None, why not)."""
    os.environ["TVM_NUM_THREADS"] = str(threads)  # read when TVM's thread pool starts
    try:
        import onnx
        import tvm
        from tvm import relax
        from tvm.relax.frontend.onnx import from_onnx as tvm_from_onnx
    except ImportError as e:
        return None, f"not installed ({e}; pip install apache-tvm)"
    try:
        t0 = time.perf_counter()
        target = tvm.target.Target({"kind": "llvm", "num-cores": threads,
                                    "mcpu": tvm.target.codegen.llvm_get_system_cpu()})
        vm = relax.VirtualMachine(tvm.compile(tvm_from_onnx(onnx.load(path)), target=target),
                                  tvm.cpu())
        compile_s = time.perf_counter() - t0
        tensors = [tvm.runtime.tensor(a, tvm.cpu()) for a in arrays]
        vm["main"](*tensors)
    except Exception as e:  # noqa: BLE001 -- any import or build failure is reported, not fatal
        return None, f"failed: {type(e).__name__}: {str(e).strip().splitlines()[-1][:160]}"
    return (lambda: vm["main"](*tensors)), compile_s


def torch_compile_runner(model, inputs):
    """(callable, compile seconds) running ``torch.compile(model)``, or (None, why not)."""
    import torch
    try:
        compiled = torch.compile(model)
        t0 = time.perf_counter()
        with torch.no_grad():
            compiled(*inputs)
        return (lambda: compiled(*inputs)), time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001 -- report any compile failure and go on
        return None, f"failed: {type(e).__name__}: {str(e).strip().splitlines()[0][:160]}"


def bench_model(name, batch, threads, rounds, extra=()):
    """Compile seconds, rel L2 error of tensorc, {runner: median ms}, {runner: min ms} and
    {optional runner: its compile seconds and rel L2 error, or why it was skipped}."""
    import onnxruntime as ort
    import torch
    import torch_models

    import tensorc as tc
    from frontend_importers import from_onnx
    model, inputs = torch_models.MODELS[name]()
    if batch != inputs[0].shape[0]:
        inputs = tuple(x.repeat(batch, *([1] * (x.dim() - 1))) for x in inputs)
    arrays = [x.numpy() for x in inputs]
    extras = {}
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
        if "tvm" in extra:
            extras["tvm"] = tvm_runner(path, arrays, threads)
    feed = {f"in{k}": a for k, a in enumerate(arrays)}
    tc.runtime.set_num_threads(threads)
    torch.set_num_threads(threads)
    if "torch.compile" in extra:
        extras["torch.compile"] = torch_compile_runner(model, inputs)
    with torch.no_grad():
        want = model(*inputs)
    want = (want[0] if isinstance(want, (tuple, list)) else want).numpy()
    got = mod(*arrays)[0]
    rel = rel_l2(got, want)
    infos = {}
    for k, (fn, info) in extras.items():
        if fn is None:
            infos[k] = f"skipped, {info}"
        else:
            with torch.no_grad():
                out = fn()
            out = out[0] if isinstance(out, (tuple, list)) else out
            infos[k] = f"compile {info:.1f} s, rel L2 {rel_l2(np.asarray(out.numpy()), want):.1e}"
    fns = {"tensorc": lambda: mod(*arrays), "onnxruntime": lambda: sess.run(None, feed),
           "torch": lambda: model(*inputs)}
    fns.update({k: fn for k, (fn, _) in extras.items() if fn is not None})
    with torch.no_grad():
        stats = summarize(interleaved(fns, rounds, warmup=2))
    return (compile_s, rel, {k: v["median_ms"] for k, v in stats.items()},
            {k: v["min_ms"] for k, v in stats.items()}, infos)


def rel_l2(got, want):
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet18,mobilenet_v2")
    ap.add_argument("--batch", type=int, nargs="*", default=[1, 8])
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--extra", default="tvm",
                    help="comma list of optional runners: tvm, torch.compile ('' for none)")
    ap.add_argument("--json", help="also write the figures to this JSON file (run_all.py)")
    args = ap.parse_args()
    extra = tuple(filter(None, args.extra.split(",")))
    unknown = set(extra) - {"tvm", "torch.compile"}
    if unknown:
        raise SystemExit(f"--extra: unknown runner(s) {', '.join(sorted(unknown))}; "
                         "known: tvm, torch.compile")
    records = Records("models", "tensorc")
    print(f"threads {args.threads}; cpu pressure before: {cpu_pressure()}")
    print(f"{'model':<14} {'batch':>5} {'compile s':>9} {'rel L2':>8} {'tensorc ms':>10} "
          f"{'ORT ms':>8} {'torch ms':>9} {'ORT/tc':>6} {'torch/tc':>8}"
          + "".join(f" {e + ' ms':>17} {e + '/tc':>17}" for e in extra))
    for name in args.models.split(","):
        for batch in args.batch:
            c, rel, t, tmin, infos = bench_model(name, batch, args.threads, args.rounds, extra)
            print(f"{name:<14} {batch:>5} {c:>9.1f} {rel:>8.1e} {t['tensorc']:>10.2f} "
                  f"{t['onnxruntime']:>8.2f} {t['torch']:>9.2f} "
                  f"{t['onnxruntime'] / t['tensorc']:>6.2f} {t['torch'] / t['tensorc']:>8.2f}"
                  + "".join(f" {t[e]:>17.2f} {t[e] / t['tensorc']:>17.2f}" if e in t
                            else f" {'n/a':>17} {'n/a':>17}" for e in extra))
            for e, info in infos.items():
                print(f"{'':<14} {e}: {info}")
                records.note(f"{name} batch {batch}: {e} {info}")
            for impl, ms in t.items():
                records.add(f"{name} batch {batch}", impl, args.threads, ms, tmin[impl])
    print(f"cpu pressure after: {cpu_pressure()}")
    records.write(args.json)


if __name__ == "__main__":
    main()
