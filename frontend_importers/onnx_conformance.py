"""ONNX backend node-test conformance of the importer (and of the operators behind it).

    python -m frontend_importers.onnx_conformance                 # all claimed ops, interpreter
    python -m frontend_importers.onnx_conformance --ops Conv,Resize -v
    python -m frontend_importers.onnx_conformance --compile       # also through tc.compile
    python -m frontend_importers.onnx_conformance --write-docs    # regenerate docs/onnx_support.md

The ``onnx`` package ships a test case per operator feature (``test_conv_with_strides_padding``,
...): a one-node model, inputs and the expected outputs. For every case whose operator the
importer claims (``claimed_ops()``: the op types with a converter), the runner imports the model
with shape overrides taken from the case's inputs, runs it through the reference interpreter
``tensorc.graph.interpret.run_graph`` (numpy, node by node: checks the importer and the
operators' semantics) and optionally through ``tc.compile``, and compares with the expected
outputs the way onnx's backend runner does: same shapes and dtypes, values within the case's
rtol/atol (default 1e-3 / 1e-7). Function-expanded variants of a case (``..._expanded``: the
operator's function body as a graph of primitive nodes) count for that operator too.

A case is *skipped* -- with the reason recorded -- when it needs something outside the
importer's contract: an element type tensorc has no dtype for (bfloat16, float8, string...), an
empty tensor, a non-tensor input (sequences, optionals), an operator configuration tensorc's
operators cannot express (``UnsupportedFeatureError``, e.g. 3-D convolution), operators of
another type that are not claimed (in expanded cases), or an opset older than 13 in which the
operator still had a different definition. Everything else that does not match is a failure.
The target is a pass rate of at least 95 % of the non-skipped cases of every claimed op type.

The parts: ``onnx_conformance_cases`` (the claimed ops and the test cases, in memory from
``onnx.backend.test.loader`` or from onnx's data directory), ``onnx_conformance_run``
(importing, running and comparing one case, on worker processes) and
``onnx_conformance_report`` (summaries, the table, ``docs/onnx_support.md``); this module is
the command line and the names the tests use.
"""
import argparse
import sys
import time

from .onnx_conformance_cases import (DEFAULT_ATOL, DEFAULT_RTOL, NodeCase, claimed_ops,
                                     load_cases, unclaimed_counts)
from .onnx_conformance_report import (NOTES, TARGET, OpSummary, format_table, summarize,
                                      write_docs)
from .onnx_conformance_run import (CaseResult, compare, freeze_inputs, import_case, run_case,
                                   run_cases)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m frontend_importers.onnx_conformance",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", help="comma-separated ONNX op types (default: all claimed)")
    p.add_argument("--all", action="store_true",
                   help="run every node test, claimed or not (finds importer bugs in the "
                        "expanded tests of unclaimed ops)")
    p.add_argument("--backend", choices=("interpret", "compile", "both"), default="interpret",
                   help="run_graph (default), tc.compile (slow), or both")
    p.add_argument("--compile", action="store_true", help="the same as --backend compile")
    p.add_argument("--jobs", "-j", type=int, default=None, help="worker processes")
    p.add_argument("--no-expanded", action="store_true",
                   help="leave out the function-expanded variants")
    p.add_argument("--write-docs", nargs="?", const="docs/onnx_support.md", default=None,
                   metavar="PATH", help="write the table (default docs/onnx_support.md)")
    p.add_argument("-v", "--verbose", action="store_true", help="list failures and skips")
    a = p.parse_args(argv)
    backend = "compile" if a.compile else a.backend
    ops = None if a.all else a.ops.split(",") if a.ops else claimed_ops()
    t0 = time.perf_counter()
    cases = load_cases(ops, include_expanded=not a.no_expanded)
    t_load = time.perf_counter() - t0
    runs = {}
    for b in (("interpret", "compile") if backend == "both" else (backend,)):
        runs[b] = summarize(run_cases(cases, b, a.jobs))
    seconds = time.perf_counter() - t0
    ok = True
    for b, summaries in runs.items():
        print(f"== {b}")
        print(format_table(summaries))
        ok = ok and all(s.meets_target for s in summaries.values())
        if a.verbose:
            for s in summaries.values():
                for name, reason in s.failures:
                    print(f"FAIL {s.op_type} {name}: {reason}")
                for name, reason in s.skips:
                    print(f"skip {s.op_type} {name}: {reason}")
    print(f"{len(cases)} cases in {seconds:.1f} s (loading {t_load:.1f} s)")
    if a.write_docs:
        main_run = runs.get("interpret") or runs["compile"]
        write_docs(main_run, a.write_docs, seconds,
                   unclaimed_counts() if not a.ops and not a.all else None,
                   compiled=runs.get("compile") if "interpret" in runs else None,
                   ops=sorted(main_run) if (a.ops or a.all) else None)
        print(f"wrote {a.write_docs}")
    return 0 if ok else 1


__all__ = ["DEFAULT_ATOL", "DEFAULT_RTOL", "NOTES", "TARGET", "CaseResult", "NodeCase",
           "OpSummary", "claimed_ops", "compare", "format_table", "freeze_inputs",
           "import_case", "load_cases", "main", "run_case", "run_cases", "summarize",
           "write_docs"]


if __name__ == "__main__":
    sys.exit(main())
