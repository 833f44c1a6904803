"""Model subcommands of the ``tensorc`` command line: compile, run, inspect.

Each handler imports the importers and the compiler only when it runs, so ``tensorc info``
and ``--help`` stay fast and work without the optional extras.
"""
from __future__ import annotations

import os
import sys
import time


def _reported(handler):
    """Print a model's problems (unsupported ops, bad shapes, missing files) as one message
    instead of a traceback; TENSORC_DEBUG=1 shows the traceback."""
    def run(args):
        from frontend_importers.errors import ImporterError
        try:
            return handler(args)
        except BrokenPipeError:      # `tensorc inspect m.onnx | head`: main() handles it
            raise
        except (ImporterError, ValueError, TypeError, KeyError, OSError, ImportError) as e:
            if os.environ.get("TENSORC_DEBUG"):
                raise
            print(f"tensorc {args.command}: error: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
    return run


def _shape_overrides(items):
    """["input=1,3,224,224", ...] -> {"input": (1, 3, 224, 224)}."""
    out = {}
    for item in items or ():
        name, _, dims = item.partition("=")
        if not dims:
            raise SystemExit(f"--shape {item!r}: expected NAME=D0,D1,... (e.g. input=1,3,224,224)")
        try:
            out[name] = tuple(int(d) for d in dims.split(","))
        except ValueError:
            raise SystemExit(f"--shape {item!r}: the dimensions must be integers "
                             "(e.g. input=1,3,224,224)") from None
    return out


def load_graph(path, shapes=None):
    """A Graph from an ONNX file (``.onnx``) or a TorchScript file (``.pt``/``.pth``)."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".pt", ".pth", ".torchscript"):
        import torch

        from frontend_importers import from_torchscript
        if not shapes:
            raise SystemExit(f"{path}: a TorchScript model needs --shape NAME=D0,D1,... for "
                             "every input (in order)")
        return from_torchscript(torch.jit.load(path), input_shapes=list(shapes.values()))
    from frontend_importers import from_onnx
    return from_onnx(path, shape_overrides=shapes or None)


def _add_compile(sub):
    p = sub.add_parser("compile", help="compile a model (ONNX or TorchScript) to a .tcm module",
                       description="Import, optimise and compile a model into one file that "
                                   "`tensorc run` and tensorc.load() use without recompiling.")
    p.add_argument("model", help="model file (.onnx, or .pt for TorchScript)")
    p.add_argument("-o", "--output", help="output file (default: MODEL with .tcm)")
    p.add_argument("--shape", action="append", metavar="NAME=D0,D1,...",
                   help="static shape of an input with dynamic dims (repeatable)")
    p.add_argument("--dump", action="store_true", help="print the graph after every pass")
    p.set_defaults(func=_reported(_cmd_compile))


def _cmd_compile(args) -> int:
    import tensorc as tc
    graph = load_graph(args.model, _shape_overrides(args.shape))
    t0 = time.perf_counter()
    mod = tc.compile(graph, dump=args.dump)
    out = args.output or os.path.splitext(args.model)[0] + ".tcm"
    mod.save(out)
    print(f"{args.model}: {len(graph.nodes)} nodes -> {len(mod.kernel_names)} kernels, "
          f"compiled in {time.perf_counter() - t0:.1f} s, written to {out}")
    return 0


def _add_run(sub):
    p = sub.add_parser("run", help="run a compiled .tcm module on .npy inputs",
                       description="Load a compiled module and run it on numpy files.")
    p.add_argument("module", help="a .tcm file written by `tensorc compile` or mod.save()")
    p.add_argument("--input", action="append", required=True, metavar="X.npy",
                   help="input array, one per model input, in order (repeatable)")
    p.add_argument("--output", action="append", metavar="Y.npy",
                   help="where to write each output (default: print a summary only)")
    p.set_defaults(func=_reported(_cmd_run))


def _cmd_run(args) -> int:
    import numpy as np

    import tensorc as tc
    mod = tc.load(args.module)
    inputs = [np.load(p) for p in args.input]
    outputs = mod(*inputs)
    names = args.output or []
    if names and len(names) != len(outputs):
        print(f"error: the module has {len(outputs)} outputs but {len(names)} --output "
              "files were given", file=sys.stderr)
        return 2
    for k, y in enumerate(outputs):
        if names:
            np.save(names[k], y)
        print(f"output {k}: {y.dtype}{list(y.shape)} min {y.min():.6g} max {y.max():.6g}"
              + (f" -> {names[k]}" if names else ""))
    return 0


def _add_inspect(sub):
    p = sub.add_parser("inspect", help="list a model's ops, shapes and what tensorc supports",
                       description="Show the operator types of an ONNX model with counts and "
                                   "whether tensorc's importer supports each, then the imported "
                                   "graph's inputs, outputs and op counts.")
    p.add_argument("model", help="an .onnx file")
    p.add_argument("--shape", action="append", metavar="NAME=D0,D1,...",
                   help="static shape of an input with dynamic dims (repeatable)")
    p.set_defaults(func=_reported(_cmd_inspect))


def _cmd_inspect(args) -> int:
    from frontend_importers.onnx_importer import load_model
    from frontend_importers.onnx_ops import CONVERTERS
    from frontend_importers.errors import ImporterError
    m = load_model(args.model)
    counts = {}
    for node in m.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    print(f"{args.model}: {len(m.graph.node)} nodes")
    for op, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {op:<24} {n:>5}  {'supported' if op in CONVERTERS else 'NOT SUPPORTED'}")
    try:
        graph = load_graph(args.model, _shape_overrides(args.shape))
    except ImporterError as e:
        print(f"\nimport: {e}")
        return 1
    print("\ninputs:  " + ", ".join(repr(v) for v in graph.inputs))
    print("outputs: " + ", ".join(repr(v) for v in graph.outputs))
    print("tensorc ops: " + ", ".join(f"{k}×{v}" for k, v in sorted(graph.op_counts().items())))
    return 0


COMMANDS = [_add_compile, _add_run, _add_inspect]

__all__ = ["COMMANDS", "load_graph"]
