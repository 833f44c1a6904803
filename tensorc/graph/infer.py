"""Shape and dtype inference: build each node's TE on placeholders and read the result.

A node means ``getattr(tensorc.ops, node.op)(*inputs, **node.attrs)``, so the operator library
is the single source of truth for output shapes: ``build_node`` makes a placeholder per input
value, calls the operator and returns its result tensors. Every failure (an unknown operator, a
wrong attribute, incompatible shapes, a wrong number of outputs) is re-raised as a
``GraphError`` naming the node, its operator and its input shapes.

- ``resolve_op(name)``: the operator function (``tensorc.ops.<name>``, or one of the operator
  modules loaded on first use: matmul, conv, pool, resize, nn);
- ``build_node(node, tensors)``: the node's result tensors over the given input tensors;
- ``infer_node(node)``: (shape, dtype) per output;
- ``infer_shapes(graph)``: a copy of the graph with every node output's shape and dtype set
  from inference (the input graph is not changed); ``check_graph(graph)`` verifies that the
  shapes recorded in a graph are the inferred ones.

Two graph-level conventions on top of ``tensorc.ops``: the operator ``shape`` (ONNX Shape: the
static shape as int64, always folded to a constant), and static operands (``reshape``'s
newshape, ``slice``'s starts/ends, ...; see SHAPE_OPERANDS) given as constant inputs after the
data instead of attributes. Inference evaluates small values computed from constants only
(``track_known``), so a shape computed by Shape -> Gather -> Concat is known before folding.
"""
import difflib
import importlib
import re

import numpy as np

from .ir import Graph, Node, Value

#: Operator modules of ``tensorc.ops`` that load on first use; their functions are operators too.
_OP_MODULES = ("matmul", "conv", "pool", "resize", "nn")

#: Names in the modules above that are helpers, not operators.
_NOT_OPS = {"conv2d_blocking", "conv2d_algorithm", "pack_conv2d_weight", "find_anchor",
            "pool_output_size", "schedule_for", "register_schedule", "schedule_injective",
            "schedule_reduce", "schedule_softmax", "schedule_norm", "is_injective",
            "map_elements"}


#: Operators whose operands after the data are static values (Python ints or lists) in
#: ``tensorc.ops``: a node may also give them as constant inputs after the data (the form ONNX
#: importers emit: ``reshape(x, shape_tensor)``); they are read from the constants' data.
SHAPE_OPERANDS = {"reshape": ("newshape",), "expand": ("shape",), "broadcast_to": ("shape",),
                  "tile": ("reps",), "slice": ("starts", "ends", "axes", "steps"),
                  "topk": ("k",), "split": ("sizes",)}


class GraphError(ValueError):
    """A graph that cannot be compiled or run: names the node, its operator and its inputs."""


def _ops():
    from .. import ops
    return ops


def shape_of(x):
    """Graph-level operator ``shape``: x's static shape as an int64 vector (ONNX Shape).

    Shapes are static, so constant folding always replaces it with a constant; as a TE it is a
    compute selecting among the extents, so it also runs everywhere a node must.
    """
    from .. import te
    from ..te.tensor import Tensor
    if not isinstance(x, Tensor):
        raise TypeError(f"shape: expected a tensor, got {type(x).__name__}")
    dims = [int(d) for d in x.shape]
    if not dims:
        raise ValueError(f"shape: tensor {x.name!r} is 0-dimensional; its shape is empty")

    def body(i):
        v = te.const(dims[-1], "int64")
        for k in range(len(dims) - 2, -1, -1):
            v = te.if_then_else(i == k, te.const(dims[k], "int64"), v)
        return v
    return te.compute((len(dims),), body, name="shape", tag="injective")


def capsule_routing(x, W=None, **attrs):
    """Graph-level operator ``capsule_routing``: ``ops.capsule.capsule_routing`` (the capsule
    module loads on first use)."""
    from ..ops import capsule
    return capsule.capsule_routing(x, W, **attrs)


#: Operators of the graph IR that are not in ``tensorc.ops``: ``shape`` (always folded away)
#: and ``capsule_routing`` (made by ``passes.capsule`` from an imported routing loop).
GRAPH_OPS = {"shape": shape_of, "capsule_routing": capsule_routing}


def resolve_op(name):
    """The operator function a node's ``op`` names."""
    if isinstance(name, str) and name in GRAPH_OPS:
        return GRAPH_OPS[name]
    if not isinstance(name, str) or not name or name.startswith("_") or name in _NOT_OPS:
        raise GraphError(f"unknown operator {name!r}")
    ops = _ops()
    fn = getattr(ops, name, None) if name not in _OP_MODULES else None
    if callable(fn) and not isinstance(fn, type):
        return fn
    for mod in _OP_MODULES:
        try:
            m = importlib.import_module(f"tensorc.ops.{mod}")
        except ImportError:
            continue
        fn = getattr(m, name, None)
        if callable(fn) and not isinstance(fn, type) and not name.startswith("_"):
            return fn
    raise GraphError(f"unknown operator {name!r}" + _did_you_mean(name))


def known_ops():
    """Names of every operator a node may name."""
    ops = _ops()
    names = set()
    mods = [ops]
    for mod in _OP_MODULES:
        try:
            mods.append(importlib.import_module(f"tensorc.ops.{mod}"))
        except ImportError:
            pass
    for m in mods:
        public = getattr(m, "__all__", None) or [n for n in dir(m) if not n.startswith("_")]
        for n in public:
            fn = getattr(m, n, None)
            if callable(fn) and not isinstance(fn, type) and n not in _NOT_OPS and \
                    getattr(fn, "__module__", "").startswith("tensorc.ops"):
                names.add(n)
    return sorted(names)


def _did_you_mean(name):
    close = difflib.get_close_matches(str(name), known_ops(), n=3)
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


def describe_node(node):
    """'node 'conv1' (conv2d)' -- how errors name a node."""
    return f"node {node.name or '?'!r} ({node.op})"


def describe_inputs(node):
    return ", ".join(f"%{v.name}: {'const ' if v.is_const else ''}{v.dtype}{list(v.shape)}"
                     for v in node.inputs) or "none"


def _ident(name, k):
    s = re.sub(r"[^0-9A-Za-z_]", "_", str(name))
    if not s or s[0].isdigit():
        s = f"v{k}_{s}"
    return s


def placeholders(values):
    """A te.placeholder per graph value, of the value's shape and dtype."""
    from .. import te
    return [te.placeholder(tuple(int(d) for d in v.shape), v.dtype, _ident(v.name, k))
            for k, v in enumerate(values)]


def build_node(node, tensors, known=None):
    """The node's result tensors (a list, one per output) over the input ``tensors``.

    ``known`` (id(value) -> array) gives the values of non-constant static operands (a shape
    computed by Shape -> Gather -> Concat before constant folding)."""
    try:
        fn = resolve_op(node.op)
    except GraphError as e:
        raise GraphError(f"{describe_node(node)}: {e}") from None
    tensors, attrs = list(tensors), dict(node.attrs)
    if node.op in SHAPE_OPERANDS and len(node.inputs) > 1:
        tensors, extra = tensors[:1], shape_operands(node, known)
        clash = set(extra) & set(attrs)
        if clash:
            raise GraphError(f"{describe_node(node)} gives {sorted(clash)[0]!r} both as an "
                             "input and as an attribute")
        attrs.update(extra)
    try:
        res = fn(*tensors, **attrs)
    except GraphError:
        raise
    except Exception as e:  # noqa: BLE001 - any operator failure, reported with the node
        raise GraphError(f"{describe_node(node)} with inputs ({describe_inputs(node)}) and "
                         f"attributes {_attrs(node)}: {type(e).__name__}: {e}") from e
    from ..te.tensor import Tensor
    outs = [res] if isinstance(res, Tensor) else list(res) if isinstance(res, (list, tuple)) \
        else None
    if outs is None or not all(isinstance(t, Tensor) for t in outs):
        raise GraphError(f"{describe_node(node)}: the operator returned {type(res).__name__}, "
                         "not tensors")
    if node.outputs and len(outs) != len(node.outputs):
        raise GraphError(f"{describe_node(node)} has {len(node.outputs)} outputs but the "
                         f"operator returns {len(outs)} tensors")
    return outs


def const_array(v):
    """A constant value's data as an array of exactly its recorded dtype and shape."""
    from ..ir import dtype as dt
    a = np.asarray(v.data)
    want = np.dtype(dt.to_numpy(v.dtype))
    if a.dtype != want:
        a = a.astype(want)
    if v.shape is not None and tuple(a.shape) != tuple(v.shape):
        a = a.reshape(tuple(v.shape))
    return a


def shape_operands(node, known=None):
    """The static operands a SHAPE_OPERANDS node gives as constant inputs, as keywords."""
    names = SHAPE_OPERANDS[node.op]
    extra = node.inputs[1:]
    if len(extra) > len(names):
        raise GraphError(f"{describe_node(node)} has {len(node.inputs)} inputs; {node.op} takes "
                         f"the data and at most {len(names)} static operands ({', '.join(names)})")
    out = {}
    for what, v in zip(names, extra):
        if not v.is_const and known is not None and id(v) in known:
            a = np.asarray(known[id(v)])
        elif not v.is_const:
            raise GraphError(f"{describe_node(node)}: operand {what!r} (%{v.name}) must be a "
                             "constant (shapes are static); fold the values it depends on "
                             "first")
        else:
            a = np.asarray(v.data)
        if a.dtype.kind not in "iub":
            raise GraphError(f"{describe_node(node)}: operand {what!r} (%{v.name}) must hold "
                             f"integers, got {a.dtype}")
        vals = [int(x) for x in a.reshape(-1)]
        out[what] = vals[0] if what == "k" and len(vals) == 1 else vals
    return out


def _attrs(node):
    if not node.attrs:
        return "{}"
    parts = []
    for k, v in sorted(node.attrs.items()):
        if isinstance(v, np.ndarray):
            v = f"array{list(v.shape)}"
        parts.append(f"{k}={v!r}")
    return "{" + ", ".join(parts) + "}"


def infer_node(node, known=None):
    """[(shape, dtype)] of the node's outputs, by building its TE on placeholders."""
    outs = build_node(node, placeholders(node.inputs), known)
    return [(tuple(int(d) for d in t.shape), str(t.dtype)) for t in outs]


def clone(graph, name=None):
    """A copy of ``graph`` with fresh Value and Node objects (constant arrays are shared: treat
    them as immutable). Returns (copy, map from id(old value) to new value)."""
    vmap = {}

    def v(x):
        y = vmap.get(id(x))
        if y is None:
            y = Value(x.name, None if x.shape is None else tuple(x.shape), x.dtype, x.data)
            vmap[id(x)] = y
        return y

    inputs = [v(x) for x in graph.inputs]
    nodes = [Node(n.op, [v(x) for x in n.inputs], [v(x) for x in n.outputs], dict(n.attrs),
                  n.name) for n in graph.nodes]
    outputs = [v(x) for x in graph.outputs]
    return Graph(inputs, nodes, outputs, name or graph.name), vmap


def check_structure(graph):
    """Every value a node reads is a graph input, a constant or an earlier node's output, each
    value is produced once, and the outputs exist."""
    avail = {id(v) for v in graph.inputs}
    for k, n in enumerate(graph.nodes):
        if not isinstance(n.op, str):
            raise GraphError(f"node #{k} {n.name!r}: op must be a string, got {n.op!r}")
        for v in n.inputs:
            if not isinstance(v, Value):
                raise GraphError(f"{describe_node(n)}: input {v!r} is not a graph Value")
            if not v.is_const and id(v) not in avail:
                raise GraphError(f"{describe_node(n)} reads %{v.name}, which no earlier node "
                                 "produces and which is neither a graph input nor a constant")
        for v in n.outputs:
            if id(v) in avail:
                raise GraphError(f"{describe_node(n)} writes %{v.name}, which is already "
                                 "defined (a value must be produced once)")
            if v.is_const:
                raise GraphError(f"{describe_node(n)} writes %{v.name}, which is a constant")
            avail.add(id(v))
    for v in graph.outputs:
        if not v.is_const and id(v) not in avail:
            raise GraphError(f"graph output %{v.name} is not produced by any node")


#: Values of at most this many elements computed from constants only are evaluated during
#: inference, so static operands computed in the graph (shape arithmetic) are known.
KNOWN_LIMIT = 4096


def track_known(node, known):
    """Record in ``known`` the outputs of ``node`` when they follow from constants alone and are
    small (shape arithmetic); ``node`` must have its shapes set."""
    if node.op == "shape" and len(node.inputs) == 1:
        known[id(node.outputs[0])] = np.array(node.inputs[0].shape, np.int64)
        return
    if not all(v.is_const or id(v) in known for v in node.inputs):
        return
    if any(v.shape is None or int(np.prod(v.shape)) > KNOWN_LIMIT for v in node.outputs):
        return
    from .interpret import eval_node
    arrays = [const_array(v) if v.is_const else known[id(v)] for v in node.inputs]
    for v, a in zip(node.outputs, eval_node(node, arrays, known)):
        known[id(v)] = a


def infer_shapes(graph):
    """A copy of ``graph`` with each node output's shape and dtype set by inference."""
    check_structure(graph)
    g, _ = clone(graph)
    known = {}
    for n in g.nodes:
        for (shape, dtype), v in zip(infer_node(n, known), n.outputs):
            v.shape, v.dtype = shape, dtype
        track_known(n, known)
    return g


def check_graph(graph):
    """Raise GraphError when a recorded output shape or dtype differs from the inferred one."""
    check_structure(graph)
    known = {}
    for n in graph.nodes:
        inferred = infer_node(n, known)
        track_known(n, known)
        for (shape, dtype), v in zip(inferred, n.outputs):
            if tuple(v.shape) != shape or v.dtype != dtype:
                raise GraphError(f"{describe_node(n)}: output %{v.name} is recorded as "
                                 f"{v.dtype}{list(v.shape)} but the operator gives "
                                 f"{dtype}{list(shape)} (inputs: {describe_inputs(n)})")
    return graph
