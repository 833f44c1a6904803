"""The ONNX backend node-test cases the conformance runner uses: which op types the importer
claims, and each case's one-node model, inputs, expected outputs and tolerances.

Cases come from ``onnx.backend.test.loader.load_node_model_tests()`` (recent onnx builds them
in memory; only the modules of the requested operators are imported, which keeps loading
fast) or, for older onnx versions, from ``onnx/backend/test/data/node/<case>/``. A
function-expanded variant (``..._expanded``) counts for the operator it expands.
"""
import dataclasses
import importlib
import os
import pkgutil
import warnings

import numpy as np

DEFAULT_RTOL, DEFAULT_ATOL = 1e-3, 1e-7


def claimed_ops():
    """The ONNX op types the importer converts (default domain): those with a converter, and
    those it expands into their ONNX function body on purpose (``FUNCTION_OPS``)."""
    from .onnx_functions import FUNCTION_OPS
    from .onnx_ops import CONVERTERS
    return sorted({k for k in CONVERTERS if "::" not in k} | set(FUNCTION_OPS))


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

        def read(prefix, ds, d=d):
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


def unclaimed_counts():
    """{op type: number of node tests} for the op types of all node tests not claimed."""
    cases = load_cases(None, include_expanded=False)
    claimed = set(claimed_ops())
    out = {}
    for c in cases:
        if c.op_type not in claimed and "+" not in c.op_type:
            out[c.op_type] = out.get(c.op_type, 0) + 1
    return out
