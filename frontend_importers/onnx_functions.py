"""Operators that ONNX defines as functions of other operators (Attention, RotaryEmbedding,
SwiGLU, the losses...): the importer expands a node without a converter into its function
body, with the node's inputs, outputs and attributes substituted, and converts the body's
nodes in turn."""
from .onnx_common import DEFAULT_DOMAINS, MIN_OPSET, TO_ONNX_DTYPE, import_onnx, op_key

#: Operators with a function body that the importer expands on purpose (the conformance
#: runner claims them). Others with bodies expand too; these are the ones checked.
#: (AffineGrid's body needs If, LinearAttention's Scan; CausalConvWithState expands but
#: misses the target on float16 rounding.)
FUNCTION_OPS = ("Attention", "RotaryEmbedding", "SwiGLU", "NegativeLogLikelihoodLoss",
                "SoftmaxCrossEntropyLoss")
#: Bodies that would not mean the operator to tensorc (random numbers, sequences).
_NO_EXPAND = ("Bernoulli", "SequenceMap")


def _schema(node, opset):
    onnx = import_onnx()
    if node.domain not in DEFAULT_DOMAINS or node.op_type in _NO_EXPAND:
        return None
    try:
        return onnx.defs.get_schema(node.op_type, opset, "")
    except Exception:
        return None


def expandable(node, opset, converters, depth=0):
    """Whether ``node`` has a function body (for context-dependent bodies: assumed to use
    convertible operators; checked when expanded)."""
    s = _schema(node, opset)
    if s is None:
        return False
    if s.has_function and not s.has_context_dependent_function:
        onnx = import_onnx()
        versions = [v for v in s.function_opset_versions if v <= opset]
        if not versions:
            return False
        f = onnx.FunctionProto()
        f.ParseFromString(s.get_function_with_opset_version(max(versions)))
        body_opset = next((o.version for o in f.opset_import if o.domain in DEFAULT_DOMAINS),
                          opset)
        return depth < 8 and all(op_key(b) in converters or
                                 expandable(b, body_opset, converters, depth + 1)
                                 for b in f.node)
    return bool(s.has_context_dependent_function)


def function_body(node, inputs, opset, name):
    """(body nodes, body opset) of an operator defined as a function, with the node's inputs,
    outputs and attributes substituted; (None, None) when it has no body."""
    onnx = import_onnx()
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
                types.append(helper.make_tensor_type_proto(TO_ONNX_DTYPE[v.dtype],
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
    body_opset = next((o.version for o in f.opset_import if o.domain in DEFAULT_DOMAINS),
                      opset)
    return body, max(body_opset, MIN_OPSET)
