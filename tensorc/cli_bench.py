"""``tensorc bench``: a model's latency under tensorc beside ONNX Runtime or PyTorch.

The model is imported and compiled as ``tensorc compile`` does; the reference runs the same
file in its own library: ONNX Runtime (CPU execution provider) for an ``.onnx`` file, PyTorch
(``torch.jit.load``, eval mode, no grad) for a TorchScript ``.pt``. Every library gets the same
thread count, all are timed interleaved round by round after warm-up calls
(tensorc.runtime.timing), and medians are reported with the machine's CPU pressure, since on a
shared machine only figures taken side by side compare. Each reference's outputs are checked
against tensorc's (relative L2 error), so a fast wrong answer does not pass unnoticed.

Inputs are random unless given with ``--input NAME=FILE.npy``: floats standard normal, integers
and booleans drawn from [0, 2) (a range every index-like input, a token id or a gather index,
accepts), all from a fixed seed.
"""
from __future__ import annotations

import argparse
import json
import os

from tensorc.cli_models import _reported, _shape_overrides, load_graph

#: seed of the random inputs (fixed, so two runs time the same data)
SEED = 0
#: integer and boolean inputs are drawn from [0, INT_HIGH)
INT_HIGH = 2

#: what load_graph reads as TorchScript (any other file is read as ONNX)
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".torchscript")
ONNX_EXTRA = "pip install 'tensorc[onnx]'"
TORCH_EXTRA = "pip install 'tensorc[torch]'"


def _add_bench(sub):
    p = sub.add_parser("bench", help="time a model under tensorc against ONNX Runtime / PyTorch",
                       description="Compile a model (ONNX or TorchScript) and report the median "
                                   "latency of tensorc and of ONNX Runtime (for .onnx) or "
                                   "PyTorch (for .pt) at the same thread count, interleaved "
                                   "after warm-up. Inputs are random (seeded; floats standard "
                                   "normal, integers and booleans in [0, 2)) unless given with "
                                   "--input.")
    p.add_argument("model", help="model file (.onnx, or .pt for TorchScript)")
    p.add_argument("--shape", action="append", metavar="NAME=D0,D1,...",
                   help="static shape of an input with dynamic dims (repeatable; a TorchScript "
                        "model needs one per input, in order)")
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                   help="use this array for input NAME instead of random data (repeatable)")
    p.add_argument("--rounds", type=_count(1), default=20, help="timed calls per library "
                   "(default 20)")
    p.add_argument("--warmup", type=_count(0), default=3, help="untimed calls per library "
                   "first (default 3)")
    p.add_argument("--threads", type=_count(1), default=None,
                   help="threads for every library (default: tensorc's, TENSORC_NUM_THREADS or "
                        "the usable cores)")
    p.add_argument("--tuning-db", metavar="DB",
                   help="compile with the best records of this tuning database (tensorc tune)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=_reported(_cmd_bench))


def _count(least):
    def parse(text):
        try:
            n = int(text)
        except ValueError:
            n = None
        if n is None or n < least:
            raise argparse.ArgumentTypeError(f"expected an integer >= {least}, got {text!r}")
        return n
    return parse


def _input_files(items):
    """["x=a.npy", ...] -> {"x": array}."""
    import numpy as np
    out = {}
    for item in items or ():
        name, _, path = item.partition("=")
        if not name or not path:
            raise SystemExit(f"--input {item!r}: expected NAME=FILE.npy")
        out[name] = np.load(path)
    return out


def _inputs(mod, given):
    """One array per model input: the given ones (checked; their names were checked by the
    importer, which received their shapes) and random ones; with where each came from."""
    import numpy as np
    rng = np.random.default_rng(SEED)
    arrays, described = [], []
    for t in mod.inputs:
        dtype = np.dtype(t.dtype)
        if t.name in given:
            a = given[t.name]
            if a.shape != t.shape or a.dtype != dtype:
                raise ValueError(f"--input {t.name}: the file holds {a.dtype}{list(a.shape)}, "
                                 f"the compiled model takes {dtype}{list(t.shape)}")
            source = "file"
        elif dtype.kind == "f":
            a = rng.standard_normal(t.shape).astype(dtype)
            source = "random normal"
        else:
            a = rng.integers(0, INT_HIGH, t.shape).astype(dtype)
            source = f"random in [0, {INT_HIGH})"
        arrays.append(np.ascontiguousarray(a))
        described.append({"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                          "source": source})
    return arrays, described


def _onnx_runtime(path, names, arrays, threads):
    """A callable running the file in ONNX Runtime on ``arrays``, or the reason there is none."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None, f"onnxruntime is not installed ({ONNX_EXTRA})"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # idle ORT workers spin by default and would take the cores tensorc's next call needs
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    ort_names = [i.name for i in sess.get_inputs()]
    if sorted(ort_names) != sorted(names):
        return None, (f"its inputs ({', '.join(ort_names)}) differ from the compiled model's "
                      f"({', '.join(names)})")
    feed = dict(zip(names, arrays))
    return (lambda: sess.run(None, feed)), None


def _torch_script(path, arrays, threads):
    """A callable running the TorchScript file in PyTorch on ``arrays``."""
    import torch
    torch.set_num_threads(threads)
    model = torch.jit.load(path).eval()
    tensors = [torch.from_numpy(a) for a in arrays]

    def run():
        with torch.no_grad():
            out = model(*tensors)
        return [t.numpy() for t in (out if isinstance(out, (tuple, list)) else [out])]
    return run


def _rel_l2(got, want):
    """Largest relative L2 error over the outputs (None when the counts or shapes differ)."""
    import numpy as np
    if len(got) != len(want):
        return None
    worst = 0.0
    for a, b in zip(got, want):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            return None
        worst = max(worst, float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)))
    return worst


def bench(path, shapes=None, inputs=None, rounds=20, warmup=3, threads=None, tuning_db=None):
    """Compile (with ``tuning_db``'s best records, when given) and time the model; returns the
    report as a dict (what --json prints)."""
    import time

    import tensorc as tc
    from tensorc.runtime.timing import cpu_pressure, interleaved, summarize
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path}")
    if tuning_db is not None and not os.path.isfile(tuning_db):
        raise FileNotFoundError(f"--tuning-db: no tuning database at {tuning_db}")
    torchscript = os.path.splitext(path)[1].lower() in TORCHSCRIPT_SUFFIXES
    if torchscript:
        try:
            import torch  # noqa: F401  (load_graph and the comparison need it)
        except ImportError:
            raise ImportError(f"{path}: reading a TorchScript file needs torch "
                              f"({TORCH_EXTRA})") from None
    given = inputs or {}
    shapes = dict(shapes or {})
    for name, a in given.items():  # an input file fixes its input's shape too
        shapes.setdefault(name, a.shape)
    graph = load_graph(path, shapes)
    threads = threads or tc.runtime.get_num_threads()
    tc.runtime.set_num_threads(threads)
    start = time.perf_counter()
    mod = tc.compile(graph, tuning_db=tuning_db)
    compile_s = time.perf_counter() - start
    arrays, described = _inputs(mod, given)
    fns, skipped = {"tensorc": lambda: mod(*arrays)}, {}
    if torchscript:
        fns["torch"] = _torch_script(path, arrays, threads)
        skipped["onnxruntime"] = "a TorchScript file is not an ONNX model (bench the .onnx for it)"
    else:
        fn, why = _onnx_runtime(path, list(mod.input_names), arrays, threads)
        if fn is None:
            skipped["onnxruntime"] = why
        else:
            fns["onnxruntime"] = fn
        skipped["torch"] = "an ONNX file holds no torch model (bench the TorchScript .pt for it)"
    outputs = {name: fn() for name, fn in fns.items()}
    pressure_before = cpu_pressure()
    stats = summarize(interleaved(fns, rounds, warmup))
    pressure_after = cpu_pressure()
    base = stats["tensorc"]["median_ms"]
    for name, st in stats.items():
        if name != "tensorc":
            st["tensorc_over_this"] = base / st["median_ms"]
            st["rel_l2_vs_tensorc"] = _rel_l2(outputs["tensorc"], outputs[name])
    return {"model": path, "nodes": len(graph.nodes), "kernels": len(mod.kernel_names),
            "compile_s": compile_s, "tuning_db": tuning_db, "threads": threads,
            "rounds": rounds, "warmup": warmup,
            "inputs": described, "results": stats, "skipped": skipped,
            "cpu_pressure_before": pressure_before, "cpu_pressure_after": pressure_after}


def format_text(report):
    inputs = ", ".join(f"{t['name']} {t['dtype']}{t['shape']} ({t['source']})"
                       for t in report["inputs"])
    lines = [(f"{report['model']}: {report['nodes']} nodes -> {report['kernels']} kernels, "
              f"compiled in {report['compile_s']:.2f} s"
              + (f" with the records of {report['tuning_db']}" if report["tuning_db"] else "")),
             f"inputs: {inputs}",
             (f"threads {report['threads']}; {report['rounds']} timed rounds after "
              f"{report['warmup']} warm-up calls, interleaved"),
             f"{'':<12} {'median ms':>10} {'min ms':>9} {'tensorc/this':>13} {'rel L2':>8}"]
    for name, st in report["results"].items():
        ratio = st.get("tensorc_over_this")
        err = st.get("rel_l2_vs_tensorc")
        lines.append(f"{name:<12} {st['median_ms']:>10.3f} {st['min_ms']:>9.3f} "
                     f"{'' if ratio is None else f'{ratio:.2f}':>13} "
                     f"{'' if err is None else f'{err:.1e}':>8}")
    for name, why in report["skipped"].items():
        lines.append(f"{name}: comparison skipped: {why}")
    lines.append(f"cpu pressure before: {report['cpu_pressure_before']}")
    lines.append(f"cpu pressure after:  {report['cpu_pressure_after']}")
    return "\n".join(lines)


def _cmd_bench(args) -> int:
    report = bench(args.model, _shape_overrides(args.shape), _input_files(args.input),
                   args.rounds, args.warmup, args.threads, args.tuning_db)
    print(json.dumps(report, indent=2) if args.json else format_text(report))
    return 0


COMMANDS = [_add_bench]

__all__ = ["COMMANDS", "bench", "format_text"]
