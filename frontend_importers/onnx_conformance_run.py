"""Running one ONNX node-test case: import it with the shapes of its inputs (freezing the
operands tensorc needs at import time), run it through ``run_graph`` or ``tc.compile``, and
compare with the expected outputs the way onnx's backend runner does; a case that needs
something outside the importer's contract is a skip with the reason recorded."""
import dataclasses
import os
import time
import traceback
import warnings

import numpy as np


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
        from .onnx_common import ONNX_DTYPES, onnx_dtype_name
        if a.data_type not in ONNX_DTYPES:
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
