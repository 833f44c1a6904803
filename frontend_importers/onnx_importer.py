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

This module runs those steps; the pieces live beside it: ``onnx_load`` (step 1),
``onnx_context`` (what converters see and build with, constant folding), ``onnx_functions``
(function bodies), ``onnx_ops`` (the converters, by operator family in ``onnx_ops_*``) and
``onnx_common`` (element types, the opset floor).
"""
from tensorc.graph.ir import Graph, Node, Value
from tensorc.graph.passes.dce import live_nodes

from .errors import (DynamicShapeError, ImporterError, ModelParseError, NonConstantInputError,
                     OpsetError, UnsupportedFeatureError, UnsupportedOpsError)
from .onnx_common import (DEFAULT_DOMAINS, MIN_OPSET, array_dtype, import_onnx, op_key,
                          to_tensorc_dtype)
from .onnx_context import Context, NodeView, reference_fold
from .onnx_functions import expandable, function_body
from .onnx_load import load_model, read_model
from .onnx_ops import CONVERTERS

# ------------------------------------------------------------------------------ the importer

def from_onnx(model, shape_overrides=None, name=None):
    """Import an ONNX model (path, bytes or ``onnx.ModelProto``) as a tensorc ``Graph``.

    ``shape_overrides`` maps graph input names to static shapes for inputs whose dims are
    symbolic or unknown (``{"input": (8, 3, 224, 224)}``); ``name`` names the graph (default:
    the ONNX graph's name). See the module docstring for the steps and the errors.
    """
    m, label = read_model(model)
    return _Importer(m, shape_overrides, name, label).run()


def default_opset(m):
    for imp in m.opset_import:
        if imp.domain in DEFAULT_DOMAINS:
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
        import_onnx()
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
        nodes = live_nodes(ctx.nodes, outputs)
        return Graph(inputs, nodes, outputs, self.name)

    def _convert_node(self, ctx, node, env, opset, k, depth=0):
        """Convert one ONNX node (``env``: ONNX value name -> Value, updated with its
        outputs). An operator without a converter whose schema defines it as a function of
        other operators is expanded into that body, node by node."""
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
        conv = CONVERTERS.get(op_key(node))
        if conv is None:
            body, body_opset = function_body(node, ins, opset, nv.name)
            if body is None or depth > 8:
                raise UnsupportedOpsError({op_key(node): [nv.name]}, self.label)
            for j, sub in enumerate(body):
                self._convert_node(ctx, sub, env, body_opset, j, depth + 1)
            return
        ctx.begin(nv)
        present = [v for v in ins if v is not None]
        foldable = all(v.is_const for v in present) and node.domain in DEFAULT_DOMAINS
        if foldable and any(0 in v.shape for v in present):
            outs = reference_fold(ctx, nv, opset)  # empty operands: shape arithmetic
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
                        outs = reference_fold(ctx, nv, opset)
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
        onnx = import_onnx()
        opset = default_opset(m)
        if opset is None:
            if any(n.domain in DEFAULT_DOMAINS for n in m.graph.node):
                raise OpsetError(f"{self.label} does not declare an opset for the default ONNX "
                                 "domain")
            return MIN_OPSET
        if opset >= MIN_OPSET:
            return opset
        changed = {}
        for n in m.graph.node:
            if n.domain not in DEFAULT_DOMAINS:
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
            key = op_key(n)
            if key not in converters and not expandable(n, opset, converters):
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


__all__ = ["default_opset", "from_onnx", "load_model"]
