"""ONNX -> tensorc graph IR.

    from frontend_importers import from_onnx
    g = from_onnx("resnet18.onnx", shape_overrides={"input": (1, 3, 224, 224)})
    outs = tensorc.graph.interpret.run_graph(g, [x])     # or tc.compile(g)

What the importer does, in order:

1. **Load.** A path, bytes or an ``onnx.ModelProto``; a file that does not parse is a
   ``ModelParseError`` ("cannot parse ONNX model 'x.onnx': ..."), never a protobuf traceback.
   Model-local functions are inlined.
2. **Opset.** The default domain must be opset 13 or newer. An older model is accepted when
   none of its operators changed between its opset and 13 (it then means exactly what it
   would at 13); otherwise ``OpsetError`` names the changed operators.
3. **Operators.** Every node's type is checked first; all the unsupported ones are reported in
   one ``UnsupportedOpsError`` (type, count, node names).
4. **Shapes.** Graph inputs that are initializers are constants. Every other input needs a
   static shape: dims that are symbolic or unknown must come from ``shape_overrides``, else a
   ``DynamicShapeError`` lists each such input with its dims.
5. **Conversion.** Each node is converted by ``onnx_ops.CONVERTERS[op_type]`` into one or more
   graph ``Node``s with ``tensorc.ops`` names and keyword attributes (ONNX conventions --
   pads order, auto_pad, truncating integer division, Gemm flags... -- are translated there).
   A node whose inputs are all constants is evaluated at once (``te.evaluate`` on the
   operator's TE, the same oracle ``run_graph`` uses) and becomes a constant, so
   shape-computing subgraphs (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) fold away
   and the graph never holds a dynamic-shape operator. A constant node tensorc's operators
   cannot express (its result is an empty vector, say ``shape[:0]``) is evaluated with ONNX's
   reference implementation instead. Operands that must be static (shapes, axes, pads, K...)
   are read from constants; a run-time one is a ``NonConstantInputError`` naming the node.
   An operator without a converter that ONNX defines as a function of other operators
   (Attention, RotaryEmbedding, SwiGLU, the losses) is expanded into its function body, whose
   nodes are converted in turn and named ``<node>/<body node>``.
6. **Clean-up.** Nodes whose results nobody reads are dropped; nodes carry their ONNX node
   name (the extra nodes of a multi-node conversion get ``name/op_k``), and node results that
   are ONNX values keep the ONNX value name.
"""
import os

import numpy as np

from tensorc.graph.ir import Graph, Node, Value

from .errors import (DynamicShapeError, ImporterError, MissingDependencyError, ModelParseError,
                     NonConstantInputError, OpsetError, UnsupportedDtypeError,
                     UnsupportedFeatureError, UnsupportedOpsError)

#: The oldest default-domain opset the converters implement.
MIN_OPSET = 13

#: A node with only constant inputs is folded when its outputs hold at most this many elements
#: in all (bigger results stay nodes, so an import never materialises a huge array).
FOLD_LIMIT = 1 << 24

_DEFAULT_DOMAINS = ("", "ai.onnx")

#: Operators that return a list of tensors (``Context.emit`` returns a tuple for them always).
MULTI_OUTPUT_OPS = ("split", "topk")

#: ONNX TensorProto element types tensorc has a dtype for.
_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
                7: "int64", 9: "bool", 10: "float16", 11: "float64", 12: "uint32",
                13: "uint64"}


def _onnx():
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError("onnx", "onnx") from e
    return onnx


def onnx_dtype_name(elem_type):
    """'BFLOAT16' for 16, etc. (for messages)."""
    try:
        return _onnx().TensorProto.DataType.Name(int(elem_type))
    except ValueError:
        return f"type {elem_type}"


def to_tensorc_dtype(elem_type, what="tensor"):
    """The tensorc dtype of an ONNX element type, or UnsupportedDtypeError."""
    d = _ONNX_DTYPES.get(int(elem_type))
    if d is None:
        raise UnsupportedDtypeError(f"{what} has element type {onnx_dtype_name(elem_type)}, "
                                    "which tensorc does not support (supported: bool, "
                                    "(u)int8-64, float16, float32, float64)")
    return d


def array_dtype(a, what="tensor"):
    """The tensorc dtype of a numpy array."""
    a = np.asarray(a)
    if a.dtype == np.bool_:
        return "bool"
    name = a.dtype.name
    if name not in _ONNX_DTYPES.values():
        raise UnsupportedDtypeError(f"{what} has numpy dtype {a.dtype}, which tensorc does not "
                                    "support")
    return name


# ------------------------------------------------------------------------------ loading

def load_model(model):
    """An ``onnx.ModelProto`` from a path, bytes or a ModelProto (external data loaded)."""
    return _load(model)[0]


def _load(model):
    """(ModelProto, label for messages)."""
    onnx = _onnx()
    if isinstance(model, onnx.ModelProto):
        return model, None
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, label, base = bytes(model), "<bytes>", None
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.exists(path):
            raise FileNotFoundError(f"ONNX model {path!r} does not exist")
        with open(path, "rb") as f:
            data = f.read()
        label, base = path, os.path.dirname(os.path.abspath(path))
    else:
        raise TypeError(f"from_onnx: model must be a path, bytes or onnx.ModelProto, got "
                        f"{type(model).__name__}")
    m = onnx.ModelProto()
    try:
        m.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise ModelParseError(f"cannot parse ONNX model {label!r}: {type(e).__name__}: {e} "
                              f"(the file is {len(data)} bytes; truncated or not an ONNX "
                              "model?)") from None
    if not m.HasField("graph") or (not m.graph.node and not m.graph.output):
        raise ModelParseError(f"cannot parse ONNX model {label!r}: it has no graph (the file "
                              f"is {len(data)} bytes; truncated or not an ONNX model?)")
    if base is not None and _uses_external_data(m):
        from onnx.external_data_helper import load_external_data_for_model
        try:
            load_external_data_for_model(m, base)
        except Exception as e:
            raise ModelParseError(f"cannot load the external data of ONNX model {label!r}: "
                                  f"{type(e).__name__}: {e}") from None
    return m, label


def _uses_external_data(m):
    return any(t.data_location == 1 for t in m.graph.initializer)


# ------------------------------------------------------------------------------ the context

class NodeView:
    """One ONNX node as converters see it: inputs resolved to graph Values (None where
    omitted), attributes as Python values, the opset of its domain."""

    def __init__(self, node, inputs, opset, index):
        onnx = _onnx()
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


# ------------------------------------------------------------------------------ the importer

def from_onnx(model, shape_overrides=None, name=None):
    """Import an ONNX model (path, bytes or ``onnx.ModelProto``) as a tensorc ``Graph``.

    ``shape_overrides`` maps graph input names to static shapes for inputs whose dims are
    symbolic or unknown (``{"input": (8, 3, 224, 224)}``); ``name`` names the graph (default:
    the ONNX graph's name). See the module docstring for the steps and the errors.
    """
    m, label = _load(model)
    return _Importer(m, shape_overrides, name, label).run()


def default_opset(m):
    for imp in m.opset_import:
        if imp.domain in _DEFAULT_DOMAINS:
            return int(imp.version)
    return None


def _graph_label(m, name, label=None):
    return name or (f"ONNX model {label!r}" if label else
                    f"ONNX model {m.graph.name!r}" if m.graph.name else "ONNX model")


class _Importer:
    def __init__(self, model, shape_overrides, name, label=None):
        self.m = model
        self.shape_overrides = dict(shape_overrides or {})
        self.name = name or model.graph.name or "model"
        self.label = _graph_label(model, name, label)

    def run(self):
        from .onnx_ops import CONVERTERS
        _onnx()
        m = self.m
        if m.functions:
            try:
                from onnx import inliner
                m = inliner.inline_local_functions(m)
            except Exception as e:
                raise ModelParseError(f"{self.label}: cannot inline its local functions: "
                                      f"{type(e).__name__}: {e}") from None
        g = m.graph
        opset = self._check_opset(m)
        self._check_ops(g, CONVERTERS)
        ctx = Context(self.name)
        env = {}
        init_names = set()
        for t in g.initializer:
            init_names.add(t.name)
            ctx.reserve(t.name)
        for node in g.node:   # ONNX value names win over generated ones
            for o in node.output:
                ctx.reserve(o)
        for t in g.sparse_initializer:
            raise UnsupportedFeatureError(f"{self.label}: sparse initializer "
                                          f"{t.values.name!r} is not supported")
        inputs = self._inputs(g, init_names, ctx)
        for v in inputs:
            env[v.name] = v
        for t in g.initializer:
            env[t.name] = self._initializer(t, ctx)
        for k, node in enumerate(g.node):
            self._convert_node(ctx, node, env, opset, k)
        outputs = []
        for o in g.output:
            if o.name not in env:
                raise ModelParseError(f"{self.label}: graph output {o.name!r} is not produced "
                                      "by any node (truncated model?)")
            outputs.append(env[o.name])
        outputs = self._materialize_outputs(ctx, g, outputs, inputs)
        nodes = _dead_code(ctx.nodes, outputs)
        return Graph(inputs, nodes, outputs, self.name)

    def _convert_node(self, ctx, node, env, opset, k, depth=0):
        """Convert one ONNX node (``env``: ONNX value name -> Value, updated with its
        outputs). An operator without a converter whose schema defines it as a function of
        other operators is expanded into that body, node by node."""
        from .onnx_ops import CONVERTERS
        ins = []
        for i in node.input:
            if i == "":
                ins.append(None)
            elif i in env:
                ins.append(env[i])
            else:
                raise ModelParseError(f"{self.label}: node {node.name or node.op_type!r} "
                                      f"({node.op_type}) reads {i!r}, which no earlier node "
                                      "produces and which is neither a graph input nor an "
                                      "initializer (nodes out of order, or a truncated model?)")
        nv = NodeView(node, ins, opset, k)
        conv = CONVERTERS.get(_op_key(node))
        if conv is None:
            body, body_opset = function_body(node, ins, opset, nv.name)
            if body is None or depth > 8:
                raise UnsupportedOpsError({_op_key(node): [nv.name]}, self.label)
            for j, sub in enumerate(body):
                self._convert_node(ctx, sub, env, body_opset, j, depth + 1)
            return
        ctx.begin(nv)
        present = [v for v in ins if v is not None]
        foldable = all(v.is_const for v in present) and node.domain in _DEFAULT_DOMAINS
        if foldable and any(0 in v.shape for v in present):
            outs = _reference_fold(ctx, nv, opset)  # empty operands: shape arithmetic
        else:
            try:
                outs = conv(ctx, nv)
            except Exception as e:
                outs = None
                if foldable and not isinstance(e, NonConstantInputError):
                    # a constant node tensorc's operators cannot express (an empty result,
                    # say): evaluate it with ONNX's reference implementation
                    ctx.begin(nv)
                    try:
                        outs = _reference_fold(ctx, nv, opset)
                    except Exception:
                        outs = None
                if outs is None:
                    if isinstance(e, ImporterError):
                        raise
                    raise ImporterError(f"{nv}: conversion failed: {type(e).__name__}: "
                                        f"{e}") from e
        if outs is None:
            outs = ()
        elif isinstance(outs, Value):
            outs = (outs,)
        outs = list(outs)
        missing = [nm for j, nm in enumerate(nv.output_names)
                   if nm and (j >= len(outs) or outs[j] is None)]
        if missing:
            raise UnsupportedFeatureError(f"{nv}: output(s) {missing} are not supported")
        env.update(ctx.finish(outs))

    # steps ------------------------------------------------------------------------------

    def _check_opset(self, m):
        onnx = _onnx()
        opset = default_opset(m)
        if opset is None:
            if any(n.domain in _DEFAULT_DOMAINS for n in m.graph.node):
                raise OpsetError(f"{self.label} does not declare an opset for the default ONNX "
                                 "domain")
            return MIN_OPSET
        if opset >= MIN_OPSET:
            return opset
        changed = {}
        for n in m.graph.node:
            if n.domain not in _DEFAULT_DOMAINS:
                continue
            try:
                then = onnx.defs.get_schema(n.op_type, opset, n.domain).since_version
                now = onnx.defs.get_schema(n.op_type, MIN_OPSET, n.domain).since_version
            except Exception:
                continue  # unknown operators are reported by _check_ops
            if then != now:
                changed[n.op_type] = (then, now)
        if changed:
            ops = ", ".join(f"{k} (version {a} at opset {opset}, {b} at opset {MIN_OPSET})"
                            for k, (a, b) in sorted(changed.items()))
            raise OpsetError(f"{self.label} uses opset {opset}; tensorc imports opset "
                             f"{MIN_OPSET} and newer, and these operators changed since: {ops}. "
                             "Upgrade the model first: onnx.version_converter.convert_version("
                             f"model, {MIN_OPSET})")
        return MIN_OPSET  # every operator means what it means at MIN_OPSET

    def _check_ops(self, g, converters):
        missing = {}
        opset = default_opset(self.m) or MIN_OPSET
        for k, n in enumerate(g.node):
            key = _op_key(n)
            if key not in converters and not _expandable(n, opset, converters):
                missing.setdefault(key, []).append(n.name or f"{n.op_type}_{k}")
        if missing:
            raise UnsupportedOpsError(missing, self.label)

    def _inputs(self, g, init_names, ctx):
        known = [i.name for i in g.input if i.name not in init_names]
        unknown = [k for k in self.shape_overrides if k not in known]
        if unknown:
            raise ValueError(f"{self.label}: shape_overrides names {unknown}, which are not "
                             f"graph inputs; the inputs are {known}")
        values, dynamic = [], {}
        for i in g.input:
            if i.name in init_names:
                continue
            if not i.type.HasField("tensor_type"):
                raise UnsupportedFeatureError(f"{self.label}: graph input {i.name!r} is not a "
                                              f"tensor ({i.type.WhichOneof('value')}); only "
                                              "tensor inputs are supported")
            tt = i.type.tensor_type
            dtype = to_tensorc_dtype(tt.elem_type, f"graph input {i.name!r}")
            dims = None
            if tt.HasField("shape"):
                dims = []
                for d in tt.shape.dim:
                    if d.HasField("dim_value"):
                        dims.append(int(d.dim_value))
                    elif d.HasField("dim_param"):
                        dims.append(d.dim_param)
                    else:
                        dims.append(None)
            if i.name in self.shape_overrides:
                shape = tuple(int(x) for x in self.shape_overrides[i.name])
                if dims is not None:
                    if len(dims) != len(shape):
                        raise ValueError(f"{self.label}: shape_overrides[{i.name!r}] = {shape} "
                                         f"has rank {len(shape)}, but the input has rank "
                                         f"{len(dims)} (dims {dims})")
                    clash = [(k, d, s) for k, (d, s) in enumerate(zip(dims, shape))
                             if isinstance(d, int) and d > 0 and d != s]
                    if clash:
                        k, d, s = clash[0]
                        raise ValueError(f"{self.label}: shape_overrides[{i.name!r}] = {shape} "
                                         f"gives dimension {k} as {s}, but the model fixes it "
                                         f"to {d}")
            elif dims is None or not all(isinstance(d, int) and d > 0 for d in dims):
                if dims is not None and all(isinstance(d, int) for d in dims) and 0 in dims:
                    raise UnsupportedFeatureError(f"{self.label}: graph input {i.name!r} has "
                                                  f"shape {dims}; tensorc does not support "
                                                  "empty tensors")
                dynamic[i.name] = dims if dims is not None else ["<unknown rank>"]
                continue
            else:
                shape = tuple(dims)
            if any(s <= 0 for s in shape):
                raise UnsupportedFeatureError(f"{self.label}: graph input {i.name!r} would have "
                                              f"shape {shape}; dimensions must be positive "
                                              "(tensorc does not support empty tensors)")
            ctx.reserve(i.name)
            values.append(Value(i.name, shape, dtype))
        if dynamic:
            raise DynamicShapeError(dynamic)
        return values

    def _initializer(self, t, ctx):
        from onnx import numpy_helper
        what = f"{self.label}: initializer {t.name!r}"
        to_tensorc_dtype(t.data_type, what)
        try:
            a = numpy_helper.to_array(t)
        except Exception as e:
            raise ModelParseError(f"{what}: cannot read its data: {type(e).__name__}: "
                                  f"{e}") from None
        if 0 in a.shape:
            # an empty initializer (e.g. an unused optional operand) is fine until a node uses
            # it; converters see the empty array through Value.data
            return Value(t.name, tuple(a.shape), array_dtype(a, what), a)
        return Value(t.name, tuple(int(d) for d in a.shape), array_dtype(a, what),
                     a if a.flags.c_contiguous else a.copy(order="C"))

    def _materialize_outputs(self, ctx, g, outputs, inputs):
        """Outputs that are graph inputs, or repeat another output, get a copy node of their
        own, so each graph output is a distinct value with its ONNX name."""
        seen = set()
        input_ids = {id(v) for v in inputs}
        result = []
        for o, v in zip(g.output, outputs):
            if id(v) in input_ids or id(v) in seen:
                copy = Value(ctx.fresh(o.name), v.shape, v.dtype)
                ctx.nodes.append(Node("reshape", [v], [copy], {"newshape": list(v.shape)},
                                      f"{o.name}/copy"))
                v = copy
            seen.add(id(v))
            result.append(v)
        return result


#: Operators with a function body that the importer expands on purpose (the conformance
#: runner claims them). Others with bodies expand too; these are the ones checked.
#: (AffineGrid's body needs If, LinearAttention's Scan; CausalConvWithState expands but
#: misses the target on float16 rounding.)
FUNCTION_OPS = ("Attention", "RotaryEmbedding", "SwiGLU", "NegativeLogLikelihoodLoss",
                "SoftmaxCrossEntropyLoss")
#: Bodies that would not mean the operator to tensorc (random numbers, sequences).
_NO_EXPAND = ("Bernoulli", "SequenceMap")


def _schema(node, opset):
    onnx = _onnx()
    if node.domain not in _DEFAULT_DOMAINS or node.op_type in _NO_EXPAND:
        return None
    try:
        return onnx.defs.get_schema(node.op_type, opset, "")
    except Exception:
        return None


def _expandable(node, opset, converters, depth=0):
    """Whether ``node`` has a function body (for context-dependent bodies: assumed to use
    convertible operators; checked when expanded)."""
    s = _schema(node, opset)
    if s is None:
        return False
    if s.has_function and not s.has_context_dependent_function:
        onnx = _onnx()
        versions = [v for v in s.function_opset_versions if v <= opset]
        if not versions:
            return False
        f = onnx.FunctionProto()
        f.ParseFromString(s.get_function_with_opset_version(max(versions)))
        body_opset = next((o.version for o in f.opset_import if o.domain in _DEFAULT_DOMAINS),
                          opset)
        return depth < 8 and all(_op_key(b) in converters or
                                 _expandable(b, body_opset, converters, depth + 1)
                                 for b in f.node)
    return bool(s.has_context_dependent_function)


_TO_ONNX_DTYPE = {v: k for k, v in _ONNX_DTYPES.items()}


def function_body(node, inputs, opset, name):
    """(body nodes, body opset) of an operator defined as a function, with the node's inputs,
    outputs and attributes substituted; (None, None) when it has no body."""
    onnx = _onnx()
    from onnx import helper
    s = _schema(node, opset)
    if s is None or not (s.has_function or s.has_context_dependent_function):
        return None, None
    attrs = {a.name: a for a in node.attribute}
    full = onnx.NodeProto()
    full.CopyFrom(node)
    for aname, spec in s.attributes.items():   # schema defaults for attributes left out
        if aname not in attrs and spec.default_value and spec.default_value.type:
            full.attribute.append(spec.default_value)
            attrs[aname] = spec.default_value
    f = onnx.FunctionProto()
    if s.has_context_dependent_function:
        versions = [v for v in s.context_dependent_function_opset_versions if v <= opset]
        types = []
        for v in inputs:
            if v is None:
                types.append(onnx.TypeProto())
            else:
                types.append(helper.make_tensor_type_proto(_TO_ONNX_DTYPE[v.dtype],
                                                           list(v.shape)))
        if not versions:
            return None, None
        f.ParseFromString(s.get_context_dependent_function_with_opset_version(
            max(versions), full.SerializeToString(), [t.SerializeToString() for t in types]))
    else:
        versions = [v for v in s.function_opset_versions if v <= opset]
        if not versions:
            return None, None
        f.ParseFromString(s.get_function_with_opset_version(max(versions)))
    prefix = f"{name}/"
    io = {}
    for k, i in enumerate(f.input):
        io[i] = node.input[k] if k < len(node.input) else ""
    for k, o in enumerate(f.output):
        if k < len(node.output) and node.output[k]:
            io[o] = node.output[k]

    def rename(x):
        return io[x] if x in io else ("" if x == "" else prefix + x)
    body = []
    for b in f.node:
        nb = onnx.NodeProto()
        nb.CopyFrom(b)
        del nb.input[:]
        nb.input.extend(rename(x) for x in b.input)
        del nb.output[:]
        nb.output.extend(rename(x) for x in b.output)
        del nb.attribute[:]
        for a in b.attribute:
            if a.ref_attr_name:
                if a.ref_attr_name in attrs:
                    na = onnx.AttributeProto()
                    na.CopyFrom(attrs[a.ref_attr_name])
                    na.name = a.name
                    nb.attribute.append(na)
            else:
                nb.attribute.append(a)
        nb.name = prefix + (b.name or f"{b.op_type}_{len(body)}")
        body.append(nb)
    body_opset = next((o.version for o in f.opset_import if o.domain in _DEFAULT_DOMAINS),
                      opset)
    return body, max(body_opset, MIN_OPSET)


def _reference_fold(ctx, nv, opset):
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


def _op_key(node):
    return node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}::{node.op_type}"


def _dead_code(nodes, outputs):
    live = {id(v) for v in outputs}
    keep = []
    for n in reversed(nodes):
        if any(id(v) in live for v in n.outputs):
            keep.append(n)
            live.update(id(v) for v in n.inputs)
    return list(reversed(keep))
