"""What converters see and build with: ``NodeView`` (one ONNX node, inputs resolved to graph
Values) and ``Context`` (emits graph nodes, folding those whose inputs are all constants, and
names them after the ONNX node), plus ``reference_fold`` for constant nodes tensorc's
operators cannot express."""
import numpy as np

from tensorc.graph.ir import Node, Value

from .errors import NonConstantInputError, UnsupportedFeatureError
from .onnx_common import array_dtype, import_onnx

#: A node with only constant inputs is folded when its outputs hold at most this many elements
#: in all (bigger results stay nodes, so an import never materialises a huge array).
FOLD_LIMIT = 1 << 24
#: Operators that return a list of tensors (``Context.emit`` returns a tuple for them always).
MULTI_OUTPUT_OPS = ("split", "topk")


class NodeView:
    """One ONNX node as converters see it: inputs resolved to graph Values (None where
    omitted), attributes as Python values, the opset of its domain."""

    def __init__(self, node, inputs, opset, index):
        onnx = import_onnx()
        self.proto = node
        self.op_type = node.op_type
        self.domain = node.domain
        self.name = node.name or f"{node.op_type}_{index}"
        self.inputs = inputs
        self.output_names = list(node.output)
        self.opset = opset
        self.attrs = {}
        for a in node.attribute:
            if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise UnsupportedFeatureError(f"ONNX node {self.name!r} ({self.op_type}) has a "
                                              f"subgraph attribute {a.name!r}; control flow is "
                                              "not supported")
            if a.ref_attr_name:
                raise UnsupportedFeatureError(f"ONNX node {self.name!r} ({self.op_type}): "
                                              f"attribute {a.name!r} refers to a function "
                                              "attribute outside a function")
            self.attrs[a.name] = onnx.helper.get_attribute_value(a)
            if isinstance(self.attrs[a.name], bytes):
                self.attrs[a.name] = self.attrs[a.name].decode()

    def input(self, k):
        """Input k, or None when it is omitted."""
        return self.inputs[k] if k < len(self.inputs) else None

    def attr(self, name, default=None):
        return self.attrs.get(name, default)

    def wants(self, k):
        """Whether output k is requested (present and named)."""
        return k < len(self.output_names) and self.output_names[k] != ""

    def __repr__(self):
        return f"ONNX node {self.name!r} ({self.op_type})"


class Context:
    """What converters build with: ``emit`` (add a node, or fold it when its inputs are
    constants), ``const`` (a constant value), ``static`` (an operand that must be a
    constant, as numpy)."""

    def __init__(self, graph_name):
        self.graph_name = graph_name
        self.nodes = []
        self.node = None           # the NodeView being converted
        self._fresh_values = []    # values created while converting self.node
        self._emitted = []         # nodes emitted while converting self.node
        self._names = set()
        self._counter = 0

    # names ------------------------------------------------------------------------------

    def reserve(self, name):
        self._names.add(name)

    def fresh(self, base):
        base = str(base) or "v"
        if base not in self._names:
            self._names.add(base)
            return base
        while True:
            self._counter += 1
            name = f"{base}_{self._counter}"
            if name not in self._names:
                self._names.add(name)
                return name

    def _base(self, op):
        return f"{self.node.name}/{op}" if self.node is not None else op

    # values -----------------------------------------------------------------------------

    def const(self, array, name=None, dtype=None):
        """A constant value holding ``array`` (cast to ``dtype`` when given)."""
        a = np.asarray(array) if dtype is None else np.asarray(array, dtype=dtype)
        if not a.flags.c_contiguous:
            a = a.copy(order="C")   # (np.ascontiguousarray would make a 0-d array 1-d)
        v = Value(self.fresh(name or self._base("const")), tuple(int(d) for d in a.shape),
                  array_dtype(a, f"{self.node or 'constant'}"), a)
        self._fresh_values.append(v)
        return v

    def scalar(self, value, like):
        """A 0-d constant of ``like``'s dtype (a Value or a dtype string)."""
        dtype = like.dtype if isinstance(like, Value) else like
        return self.const(np.array(value, dtype=np.dtype(dtype)))

    def static(self, v, what, node=None):
        """The numpy data of ``v``, which must be a constant."""
        node = node or self.node
        if v is None:
            return None
        if not v.is_const:
            raise NonConstantInputError(
                f"{node}: input {what!r} (%{v.name}, {v.dtype}{list(v.shape)}) must be known "
                "when the model is imported -- an initializer, a Constant node or a value "
                "computed only from those and static shapes -- but it is computed at run time. "
                "tensorc compiles static shapes, so this operand cannot depend on the model's "
                "inputs", node=getattr(node, "name", None), value=v.name)
        return np.asarray(v.data)

    def static_ints(self, v, what):
        a = self.static(v, what)
        return None if a is None else [int(x) for x in a.reshape(-1)]

    # nodes ------------------------------------------------------------------------------

    def emit(self, op, inputs, **attrs):
        """Add ``ops.<op>(*inputs, **attrs)``; returns its output Value (a tuple for ops with
        several results). Folded to constants when every input is a constant."""
        from tensorc import te
        from tensorc.graph.infer import build_node, placeholders
        inputs = list(inputs)
        for k, v in enumerate(inputs):
            if not isinstance(v, Value):
                raise TypeError(f"{self.node}: emit({op!r}): input #{k} is {v!r}, not a Value")
        for v in inputs:
            if 0 in v.shape:
                raise UnsupportedFeatureError(f"{self.node}: operand %{v.name} of {op} has shape "
                                              f"{v.shape}; tensorc does not support empty "
                                              "tensors")
        node = Node(op, inputs, [], dict(attrs), "")
        phs = placeholders(inputs)
        tensors = build_node(node, phs)
        size = sum(int(np.prod(t.shape, dtype=np.int64)) for t in tensors)
        if all(v.is_const for v in inputs) and size <= FOLD_LIMIT:
            from tensorc.graph.infer import const_array
            arrays = te.evaluate(tensors, {p: const_array(v) for p, v in zip(phs, inputs)})
            outs = []
            for t, a in zip(tensors, arrays):
                a = np.asarray(a)
                want = np.dtype(str(t.dtype)) if str(t.dtype) != "bool" else np.dtype(bool)
                outs.append(self.const(a.astype(want, copy=False), self._base(op)))
        else:
            base = self._base(op)
            outs = []
            for j, t in enumerate(tensors):
                v = Value(self.fresh(base if len(tensors) == 1 else f"{base}.{j}"),
                          tuple(int(d) for d in t.shape), str(t.dtype))
                outs.append(v)
                self._fresh_values.append(v)
            node.outputs = outs
            self.nodes.append(node)
            self._emitted.append(node)
        if len(outs) == 1 and op not in MULTI_OUTPUT_OPS:
            return outs[0]
        return tuple(outs)

    # bookkeeping per ONNX node ----------------------------------------------------------

    def begin(self, nv):
        self.node = nv
        self._fresh_values = []
        self._emitted = []

    def finish(self, outputs):
        """Name the emitted nodes and the ONNX outputs; returns {onnx name: Value}."""
        nv = self.node
        fresh = {id(v) for v in self._fresh_values}
        bound = {}
        renamed = set()
        for name, v in zip(nv.output_names, outputs):
            if not name or v is None:
                continue
            if id(v) in fresh and id(v) not in renamed:
                self._names.discard(v.name)
                v.name = name
                self._names.add(name)
                renamed.add(id(v))
            bound[name] = v
        first_out = {id(v) for v in outputs if v is not None}
        main = None
        for n in self._emitted:
            if any(id(v) in first_out for v in n.outputs):
                main = n
                break
        if main is None and self._emitted:
            main = self._emitted[-1]
        for k, n in enumerate(self._emitted):
            n.name = nv.name if n is main else f"{nv.name}/{n.op}_{k}"
        self.node = None
        return bound


def reference_fold(ctx, nv, opset):
    """The outputs of a node whose inputs are all constants, computed by ONNX's reference
    evaluator (``onnx.reference``) -- the fallback for constant shape arithmetic that tensorc
    tensors cannot hold (empty vectors such as ``shape[:0]``)."""
    from onnx.reference import ReferenceEvaluator
    feeds = {name: np.asarray(v.data) for name, v in zip(nv.proto.input, nv.inputs)
             if name and v is not None}
    with np.errstate(all="ignore"):
        res = ReferenceEvaluator(nv.proto, opsets={"": opset}).run(None, feeds)
    return [ctx.const(np.asarray(r)) if name else None
            for name, r in zip(nv.output_names, res)]
