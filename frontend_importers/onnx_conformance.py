"""ONNX backend node-test conformance of the importer (and of the operators behind it).

    python -m frontend_importers.onnx_conformance                 # all claimed ops, interpreter
    python -m frontend_importers.onnx_conformance --ops Conv,Resize -v
    python -m frontend_importers.onnx_conformance --compile       # also through tc.compile
    python -m frontend_importers.onnx_conformance --write-docs    # regenerate docs/onnx_support.md

The ``onnx`` package ships a test case per operator feature (``test_conv_with_strides_padding``,
...): a one-node model, inputs and the expected outputs. For every case whose operator the
importer claims (``CLAIMED_OPS``: the op types with a converter), the runner imports the model
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

Test cases come from ``onnx.backend.test.loader.load_node_model_tests()`` (recent onnx builds
them in memory; only the modules of the requested operators are imported, which keeps loading
fast) or, for older onnx versions, from ``onnx/backend/test/data/node/<case>/``.
"""
import argparse
import dataclasses
import importlib
import os
import pkgutil
import sys
import time
import traceback
import warnings

import numpy as np

DEFAULT_RTOL, DEFAULT_ATOL = 1e-3, 1e-7
TARGET = 0.95

#: How some operators are imported, or why their failures happen (docs/onnx_support.md).
NOTES = {
    "Attention": "expanded into its ONNX function body; the float16 failures are 1-2 ulp "
                 "differences: tensorc's float16 matmul accumulates in float16, numpy's in "
                 "float32",
    "RotaryEmbedding": "expanded into its ONNX function body",
    "SwiGLU": "expanded into its ONNX function body",
    "NegativeLogLikelihoodLoss": "expanded into its ONNX function body",
    "SoftmaxCrossEntropyLoss": "expanded into its ONNX function body",
    "Resize": "nearest/linear on the last one or two axes: `resize`; cubic, antialias, "
              "tf_crop_and_resize, other axes: per-axis interpolation matrices (einsum / "
              "gather) computed at import with onnx.reference",
    "MaxPool": "3-D and higher: separable pool2d + pool1d",
    "AveragePool": "3-D and higher: separable pool2d + pool1d",
    "LpPool": "average pool of abs(x)^p, counting padding",
    "Div": "integer Div truncates (floor_divide plus a sign correction)",
    "Mod": "fmod=1 on integers: a - trunc(a / b) * b",
    "HannWindow": "constant size only: evaluated at import",
    "HammingWindow": "constant size only: evaluated at import",
    "BlackmanWindow": "constant size only: evaluated at import",
    "Compress": "constant condition only (a gather)",
    "LpNormalization": "p=1 sums |x| (onnxruntime's behaviour; onnx.reference sums x)",
    "Dropout": "inference: identity (mask of ones); training mode only with ratio 0",
    "ConvTranspose": "1-D through conv_transpose2d on a height-1 view; no 3-D",
}


def claimed_ops():
    """The ONNX op types the importer converts (default domain): those with a converter, and
    those it expands into their ONNX function body on purpose (``FUNCTION_OPS``)."""
    from .onnx_importer import FUNCTION_OPS
    from .onnx_ops import CONVERTERS
    return sorted({k for k in CONVERTERS if "::" not in k} | set(FUNCTION_OPS))


# ------------------------------------------------------------------------------ test cases

@dataclasses.dataclass
class NodeCase:
    name: str
    op_type: str          # the operator the case tests (the base op of an expanded case)
    model: object         # onnx.ModelProto
    inputs: list          # numpy arrays (or other objects: sequences, TensorProtos...)
    outputs: list
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL

    @property
    def expanded(self):
        return "_expanded" in self.name


def _norm(s):
    return s.lower().replace("_", "")


def _module_names():
    import onnx.backend.test.case.node as pkg
    return [name for _, name, ispkg in pkgutil.iter_modules(pkg.__path__) if not ispkg]


def _module_matches(mod, wanted):
    m = _norm(mod)
    return m in wanted or (m.endswith("op") and m[:-2] in wanted)


def _import_case_modules(op_types):
    """Import the onnx test-case modules of ``op_types`` (all when None); their class bodies
    append the cases to onnx's global list, which is returned."""
    import onnx.backend.test.case.node as pkg
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            if op_types is None:
                from onnx.backend.test.loader import load_node_model_tests
                return list(load_node_model_tests())
            wanted = {_norm(t) for t in op_types}
            mods = [m for m in _module_names() if _module_matches(m, wanted)]
            found = {_norm(m) for m in mods} | {_norm(m)[:-2] for m in mods}
            if any(w not in found for w in wanted):
                # an op whose module name does not follow the pattern: load everything
                from onnx.backend.test.loader import load_node_model_tests
                return list(load_node_model_tests())
            for m in mods:
                importlib.import_module(f"{pkg.__name__}.{m}")
    return list(pkg._NodeTestCases)  # noqa: SLF001


def _case_op_type(model, name, base_ops):
    ops = [n.op_type for n in model.graph.node]
    if "_expanded" in name:
        base = name.split("_expanded")[0]
        if base in base_ops:
            return base_ops[base]
    kinds = sorted(set(ops))
    if len(kinds) == 1:
        return kinds[0]
    non_const = sorted(set(o for o in ops if o != "Constant"))
    return non_const[0] if len(non_const) == 1 else "+".join(kinds)


def _from_memory(op_types):
    raw = _import_case_modules(op_types)
    base_ops = {}
    for c in raw:
        if "_expanded" not in c.name and len(c.model.graph.node) >= 1:
            kinds = {n.op_type for n in c.model.graph.node}
            if len(kinds) == 1:
                base_ops[c.name] = next(iter(kinds))
    cases = []
    for c in raw:
        ins, outs = c.data_sets[0]
        cases.append(NodeCase(c.name, _case_op_type(c.model, c.name, base_ops), c.model,
                              list(ins), list(outs), c.rtol, c.atol))
    return cases


def _from_disk(data_dir):
    import json

    import onnx
    from onnx import numpy_helper
    cases, base_ops = [], {}
    node_dir = os.path.join(data_dir, "node")
    entries = []
    for name in sorted(os.listdir(node_dir)):
        d = os.path.join(node_dir, name)
        if not os.path.exists(os.path.join(d, "model.onnx")):
            continue
        model = onnx.load(os.path.join(d, "model.onnx"))
        entries.append((name, d, model))
        if "_expanded" not in name:
            kinds = {n.op_type for n in model.graph.node}
            if len(kinds) == 1:
                base_ops[name] = next(iter(kinds))
    for name, d, model in entries:
        rtol, atol = DEFAULT_RTOL, DEFAULT_ATOL
        if os.path.exists(os.path.join(d, "data.json")):
            with open(os.path.join(d, "data.json")) as f:
                meta = json.load(f)
            rtol, atol = meta.get("rtol", rtol), meta.get("atol", atol)
        sets = sorted(x for x in os.listdir(d) if x.startswith("test_data_set_"))
        if not sets:
            continue

        def read(prefix, ds):
            files = sorted((f for f in os.listdir(os.path.join(d, ds)) if f.startswith(prefix)),
                           key=lambda f: int(f[len(prefix):].split(".")[0]))
            out = []
            for f in files:
                t = onnx.TensorProto()
                with open(os.path.join(d, ds, f), "rb") as fh:
                    t.ParseFromString(fh.read())
                try:
                    out.append(numpy_helper.to_array(t))
                except Exception:
                    out.append(t)
            return out
        cases.append(NodeCase(name, _case_op_type(model, name, base_ops), model,
                              read("input_", sets[0]), read("output_", sets[0]), rtol, atol))
    return cases


def load_cases(op_types=None, include_expanded=True):
    """The node test cases of ``op_types`` (all when None), sorted by op type and name."""
    from onnx.backend.test import loader
    if hasattr(loader, "load_node_model_tests"):
        cases = _from_memory(op_types)
    else:  # older onnx: the cases are files under onnx/backend/test/data/node
        cases = _from_disk(loader.DATA_DIR)
    if op_types is not None:
        keep = set(op_types)
        cases = [c for c in cases if c.op_type in keep]
    if not include_expanded:
        cases = [c for c in cases if not c.expanded]
    seen, out = set(), []
    for c in sorted(cases, key=lambda c: (c.op_type, c.name)):
        if c.name not in seen:
            seen.add(c.name)
            out.append(c)
    return out


# ------------------------------------------------------------------------------ running

@dataclasses.dataclass
class CaseResult:
    name: str
    op_type: str
    status: str           # "pass" | "fail" | "skip"
    reason: str = ""
    seconds: float = 0.0


class _Skip(Exception):
    pass


_BAD_KINDS = {"O": "string", "V": "custom", "c": "complex", "U": "string", "S": "bytes"}


def _check_array(a, what):
    import onnx
    if isinstance(a, onnx.TensorProto):
        from .onnx_importer import _ONNX_DTYPES, onnx_dtype_name
        if a.data_type not in _ONNX_DTYPES:
            raise _Skip(f"dtype {onnx_dtype_name(a.data_type).lower()} not supported ({what})")
        from onnx import numpy_helper
        a = numpy_helper.to_array(a)
    if not isinstance(a, np.ndarray):
        if isinstance(a, (np.generic, int, float, bool)):
            a = np.asarray(a)
        else:
            raise _Skip(f"non-tensor {what} ({type(a).__name__}: sequences/optionals are not "
                        "supported)")
    if a.dtype.kind in _BAD_KINDS or a.dtype.name not in (
            "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "float16", "float32", "float64"):
        raise _Skip(f"dtype {a.dtype.name if a.dtype.kind not in 'OUS' else 'string'} not "
                    f"supported ({what})")
    if 0 in a.shape and not what.startswith("input"):
        raise _Skip(f"empty tensor ({what} of shape {a.shape})")
    return a


def _graph_inputs(model):
    inits = {t.name for t in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


def freeze_inputs(model, values):
    """A copy of ``model`` whose graph inputs named in ``values`` are initializers holding
    the given arrays (so the importer sees them as constants)."""
    from onnx import numpy_helper
    m = type(model)()
    m.CopyFrom(model)
    keep = [i for i in m.graph.input if i.name not in values]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    for name, a in values.items():
        m.graph.initializer.append(numpy_helper.from_array(np.asarray(a), name))
    return m


def _upstream_inputs(model, value, names):
    """The graph inputs (among ``names``) that ``value`` depends on."""
    producer = {o: n for n in model.graph.node for o in n.output}
    seen, stack, found = set(), [value], []
    while stack:
        v = stack.pop()
        if v in seen or not v:
            continue
        seen.add(v)
        if v in names:
            found.append(v)
        elif v in producer:
            stack.extend(producer[v].input)
    return found


def import_case(model, names, inputs, name):
    """(graph, frozen inputs): ``from_onnx`` with the shapes of ``inputs``.

    The node tests feed operands that tensorc needs at import time (axes, pads, shapes, K...)
    as graph inputs; a model meant for tensorc has them as initializers. When the importer
    reports such an operand, the graph input it is, or the integer graph inputs it is
    computed from (a target shape, a window size), get their test values frozen into the
    model and the import is retried.
    """
    from .errors import NonConstantInputError
    from .onnx_importer import from_onnx
    frozen, m = {}, model
    # empty vectors (axes=[], CastLike's dtype donor) are operands, not data: freeze them
    for n, a in zip(names, inputs):
        if a.ndim == 1 and a.size == 0:
            frozen[n] = a
    if frozen:
        m = freeze_inputs(model, frozen)
    while True:
        overrides = {n: a.shape for n, a in zip(names, inputs) if n not in frozen}
        try:
            return from_onnx(m, shape_overrides=overrides, name=name), frozen
        except NonConstantInputError as e:
            sources = [v for v in _upstream_inputs(model, e.value, names)
                       if v not in frozen and
                       (v == e.value or inputs[names.index(v)].dtype.kind in "iub")]
            if not sources:
                raise
            for v in sources:
                frozen[v] = inputs[names.index(v)]
            m = freeze_inputs(model, frozen)


def _interpret(graph, inputs):
    from tensorc.graph.interpret import run_graph
    return run_graph(graph, inputs)


_COMPILED = {}


def _compiled(graph, inputs):
    import tensorc as tc
    mod = tc.compile(graph)
    outs = mod(*inputs)
    if isinstance(outs, np.ndarray):
        outs = [outs]
    return [np.asarray(o) for o in outs]


def compare(outputs, expected, rtol, atol):
    """None when ``outputs`` match ``expected`` as onnx's backend runner requires, else a
    message."""
    if len(outputs) != len(expected):
        return f"{len(outputs)} outputs, expected {len(expected)}"
    for k, (o, e) in enumerate(zip(outputs, expected)):
        o = np.asarray(o)
        if o.shape != e.shape:
            return f"output {k}: shape {o.shape}, expected {e.shape}"
        if o.dtype != e.dtype:
            return f"output {k}: dtype {o.dtype}, expected {e.dtype}"
        try:
            np.testing.assert_allclose(o, e, rtol=rtol, atol=atol)
        except AssertionError as err:
            lines = [ln for ln in str(err).splitlines() if ln.strip()]
            return f"output {k}: " + " | ".join(lines[1:4])
    return None


def run_case(case, backend="interpret"):
    """Import and run one case; returns a CaseResult."""
    from .errors import (ModelParseError, OpsetError, UnsupportedDtypeError,
                         UnsupportedFeatureError, UnsupportedOpsError)
    t0 = time.perf_counter()
    np.random.seed(0)

    def result(status, reason=""):
        return CaseResult(case.name, case.op_type, status, reason, time.perf_counter() - t0)
    try:
        names = _graph_inputs(case.model)
        if len(names) != len(case.inputs):
            raise _Skip(f"{len(case.inputs)} inputs given for {len(names)} graph inputs")
        inputs = [_check_array(a, f"input {n!r}") for n, a in zip(names, case.inputs)]
        expected = [_check_array(a, f"output {k}") for k, a in enumerate(case.outputs)]
        try:
            graph, frozen = import_case(case.model, names, inputs, case.name)
        except UnsupportedOpsError as e:
            raise _Skip("uses unclaimed ops: " + ", ".join(sorted(e.ops))) from None
        except UnsupportedDtypeError as e:
            raise _Skip(f"dtype not supported: {_first_line(e)}") from None
        except UnsupportedFeatureError as e:
            raise _Skip(f"feature not supported: {_first_line(e)}") from None
        except OpsetError as e:
            raise _Skip(f"opset older than 13 with a changed definition: "
                        f"{_first_line(e)[:160]}") from None
        except ModelParseError as e:
            return result("fail", f"import: {_first_line(e)}")
        inputs = [a for n, a in zip(names, inputs) if n not in frozen]
        run = _compiled if backend == "compile" else _interpret
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outputs = run(graph, inputs)
        msg = compare(outputs, expected, case.rtol, case.atol)
        return result("pass") if msg is None else result("fail", msg)
    except _Skip as s:
        return result("skip", str(s))
    except Exception as e:  # noqa: BLE001 - a failure of the case, reported
        where = traceback.extract_tb(e.__traceback__)[-1]
        return result("fail", f"{type(e).__name__}: {_first_line(e)} "
                              f"[{os.path.basename(where.filename)}:{where.lineno}]")


def _first_line(e):
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


_POOL_CASES = None


def _run_index(args):
    k, backend = args
    return run_case(_POOL_CASES[k], backend)


def run_cases(cases, backend="interpret", jobs=1, progress=None):
    """CaseResults of ``cases`` (in order), on ``jobs`` forked worker processes."""
    global _POOL_CASES
    if jobs is None:
        jobs = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else (os.cpu_count() or 1), 8)
    if jobs <= 1 or len(cases) < 8 or not hasattr(os, "fork"):
        out = []
        for c in cases:
            out.append(run_case(c, backend))
            if progress:
                progress(out[-1])
        return out
    import multiprocessing as mp
    _POOL_CASES = cases
    # interleave so expensive op families are spread over the workers
    order = list(range(len(cases)))
    try:
        with mp.get_context("fork").Pool(jobs) as pool:
            res = [None] * len(cases)
            for k, r in zip(order, pool.imap(_run_index, [(k, backend) for k in order],
                                              chunksize=4)):
                res[k] = r
                if progress:
                    progress(r)
            return res
    finally:
        _POOL_CASES = None


# ------------------------------------------------------------------------------ reporting

@dataclasses.dataclass
class OpSummary:
    op_type: str
    cases: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list = dataclasses.field(default_factory=list)   # (name, reason)
    skips: list = dataclasses.field(default_factory=list)      # (name, reason)

    @property
    def considered(self):
        return self.passed + self.failed

    @property
    def rate(self):
        return self.passed / self.considered if self.considered else 1.0

    @property
    def meets_target(self):
        return self.considered == 0 or self.rate >= TARGET


def summarize(results):
    by_op = {}
    for r in results:
        s = by_op.setdefault(r.op_type, OpSummary(r.op_type))
        s.cases += 1
        if r.status == "pass":
            s.passed += 1
        elif r.status == "fail":
            s.failed += 1
            s.failures.append((r.name, r.reason))
        else:
            s.skipped += 1
            s.skips.append((r.name, r.reason))
    return dict(sorted(by_op.items()))


def _skip_kind(reason):
    for key in ("dtype", "feature not supported", "uses unclaimed ops", "empty tensor",
                "non-tensor", "opset"):
        if reason.startswith(key):
            return key
    return reason.split(":")[0]


def format_table(summaries):
    lines = [f"{'op type':24} {'cases':>5} {'pass':>5} {'fail':>5} {'skip':>5} {'rate':>7}"]
    for s in summaries.values():
        flag = "" if s.meets_target else "   < target"
        lines.append(f"{s.op_type:24} {s.cases:5d} {s.passed:5d} {s.failed:5d} {s.skipped:5d} "
                     f"{100 * s.rate:6.1f}%{flag}")
    tot = [sum(getattr(s, f) for s in summaries.values())
           for f in ("cases", "passed", "failed", "skipped")]
    rate = tot[1] / (tot[1] + tot[2]) if tot[1] + tot[2] else 1.0
    lines.append(f"{'total':24} {tot[0]:5d} {tot[1]:5d} {tot[2]:5d} {tot[3]:5d} "
                 f"{100 * rate:6.1f}%")
    return "\n".join(lines)


def _md_escape(s):
    return s.replace("|", "\\|").replace("\n", " ")


def write_docs(summaries, path, seconds, unclaimed=None, compiled=None, ops=None):
    """docs/onnx_support.md: the per-op conformance table and the reasons behind it.

    ``summaries``: the interpreter run; ``compiled``: the same cases through ``tc.compile``
    (an extra column) or None; ``ops``: the rows (default: every claimed op type)."""
    import onnx
    claimed = list(ops) if ops is not None else claimed_ops()

    def totals(sm):
        return [sum(getattr(x, f) for x in sm.values())
                for f in ("cases", "passed", "failed", "skipped")]
    tot = totals(summaries)
    lines = [
        "# ONNX support",
        "",
        "<!-- Generated by `python -m frontend_importers.onnx_conformance --write-docs"
        f"{' --backend both' if compiled else ''}`; do not edit by hand. -->",
        "",
        "`frontend_importers.from_onnx(model, shape_overrides=None, name=None)` imports ONNX "
        "models of opset 13 and newer into the tensorc graph IR (an older model is accepted "
        "when none of its operators changed between its opset and 13). Shapes are static: "
        "graph inputs with symbolic dims need `shape_overrides`. Shape-computing subgraphs "
        "(Shape, Gather, Concat... on constants) are folded at import, so operands such as "
        "Reshape's shape, Slice's starts or TopK's K must be computable from initializers, "
        "Constant nodes and static shapes (`NonConstantInputError` otherwise). Models using "
        "operators outside the table raise one `UnsupportedOpsError` listing all of them.",
        "",
        "## Conformance",
        "",
        f"The ONNX backend node tests shipped with onnx {onnx.__version__}: every test case of "
        "a claimed operator, and its function-expanded variants (`*_expanded`, the operator's "
        "function body as a graph of primitive operators), is imported with the shapes of its "
        "inputs, run through the reference interpreter (`tensorc.graph.interpret.run_graph`)"
        + (" and through `tc.compile`" if compiled else "") +
        ", and compared with the expected outputs using the case's own tolerances (default "
        "rtol 1e-3, atol 1e-7), shapes and dtypes exactly. Operands the tests feed as graph "
        "inputs but tensorc needs at import time (axes, pads, K, ...) are frozen to the "
        "test's values. Rate = passed / (passed + failed); the target is "
        f"{int(TARGET * 100)} % for every claimed operator. Skipped cases need something outside "
        "tensorc's scope (listed below the table): element types tensorc has no dtype for "
        "(bfloat16, float8, int4, string...), empty tensors, sequence or optional values, "
        "the Indices output of MaxPool, random training-mode Dropout, 3-D convolutions, "
        "opsets older than 13 in which the operator had another definition.",
        "",
        f"Interpreter: {tot[0]} cases, {tot[1]} passed, {tot[2]} failed, {tot[3]} skipped "
        f"({len(claimed)} operators)." + (
            " Compiled: {1} passed, {2} failed, {3} skipped.".format(*totals(compiled))
            if compiled else "") + f" Run time {seconds:.0f} s.",
        "",
        "| ONNX op | cases | passed | failed | skipped | rate |"
        + (" compiled |" if compiled else "") + " notes |",
        "|---|---:|---:|---:|---:|---:|" + ("---:|" if compiled else "") + "---|",
    ]
    for op in claimed:
        s = summaries.get(op)
        if s is None:
            lines.append(f"| {op} | 0 | 0 | 0 | 0 | - |" + (" - |" if compiled else "") +
                         f" no node tests in onnx {onnx.__version__} |")
            continue
        notes = [NOTES[op]] if op in NOTES else []
        kinds = {}
        for _, reason in s.skips:
            k = _skip_kind(reason)
            kinds[k] = kinds.get(k, 0) + 1
        if kinds:
            notes.append("skipped: " + ", ".join(f"{k} ({v})" for k, v in sorted(kinds.items())))
        if s.failures:
            notes.append("failed: " + ", ".join(f"`{name}`" for name, _ in s.failures[:4]) +
                         (" ..." if len(s.failures) > 4 else ""))
        col = ""
        if compiled:
            c = compiled.get(op)
            col = f" {c.passed}/{c.considered} |" if c else " - |"
        lines.append(f"| {op} | {s.cases} | {s.passed} | {s.failed} | {s.skipped} | "
                     f"{100 * s.rate:.0f}% |{col} {_md_escape('; '.join(notes))} |")
    lines += ["", "## Failures", ""]
    fails = [(op, name, reason, "") for op in claimed
             for name, reason in (summaries[op].failures if op in summaries else [])]
    if compiled:
        fails += [(op, name, reason, " (compiled)") for op in claimed
                  for name, reason in (compiled[op].failures if op in compiled else [])]
    lines += [f"- **{op}**{tag} `{name}`: {_md_escape(reason[:300])}"
              for op, name, reason, tag in fails] or ["None."]
    lines += ["", "## Skipped cases", ""]
    for op in claimed:
        s = summaries.get(op)
        if s and s.skips:
            for name, reason in s.skips:
                lines.append(f"- **{op}** `{name}`: {_md_escape(reason[:200])}")
    if unclaimed:
        lines += ["", "## Operators not claimed", "",
                  "ONNX operators with node tests that the importer has no converter for "
                  "(importing a model that uses them raises `UnsupportedOpsError`, which lists "
                  "every such operator with its node names). Several are expressible with "
                  "tensorc's operators and only wait for a converter; others need operators "
                  "tensorc lacks (bitwise, scatter, control flow, recurrent cells, quantised "
                  "arithmetic, sequences, strings, random numbers, data-dependent shapes):", "",
                  ", ".join(f"{op} ({n})" for op, n in sorted(unclaimed.items())), ""]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _unclaimed_counts():
    """{op type: number of node tests} for the op types of all node tests not claimed."""
    cases = load_cases(None, include_expanded=False)
    claimed = set(claimed_ops())
    out = {}
    for c in cases:
        if c.op_type not in claimed and "+" not in c.op_type:
            out[c.op_type] = out.get(c.op_type, 0) + 1
    return out


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
                   _unclaimed_counts() if not a.ops and not a.all else None,
                   compiled=runs.get("compile") if "interpret" in runs else None,
                   ops=sorted(main_run) if (a.ops or a.all) else None)
        print(f"wrote {a.write_docs}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
