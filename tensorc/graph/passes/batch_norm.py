"""Batch-norm folding: a linear op followed by an inference batch_norm becomes the same op with
scaled weights plus a bias.

With s = scale / sqrt(var + epsilon) per channel, batch_norm(y) = y * s + (bias - mean * s),
and y * s only needs the weights of y's producer scaled per output channel:

- conv2d / conv1d / depthwise_conv2d (OIHW weight, channels on axis 1): W[o] *= s[o]; the
  shift becomes an ``add`` of a (C, 1, 1) constant (fused into the conv's epilogue). A constant
  bias ``add`` between the conv and the batch_norm is folded into that shift too;
- dense (channels last): W[n] *= s[n], the shift goes into dense's bias;
- gemm (channels on axis 1): B's columns scaled, C := (beta * C - mean) * s + bias, beta := 1;
- matmul with a constant 2-D right operand: B[:, n] *= s[n], then an ``add`` of the shift.

The producer's output must feed only the batch_norm, and the weights and statistics must be
constants; otherwise the batch_norm stays (it is elementwise and fuses anyway).
"""
import numpy as np

from ..infer import const_array
from .common import Rewrite, consumers, new_const, new_node, new_value

CONVS = ("conv2d", "conv1d", "depthwise_conv2d")


def _bn_params(bn):
    """(s, shift) in float64, or None when the statistics are not constants."""
    if len(bn.inputs) != 5 or not all(v.is_const for v in bn.inputs[1:]):
        return None
    scale, bias, mean, var = (const_array(v).astype(np.float64) for v in bn.inputs[1:])
    eps = float(bn.attrs.get("epsilon", 1e-5))
    s = scale / np.sqrt(var + eps)
    return s, bias - mean * s


def _channel_axis(bn):
    nd = len(bn.inputs[0].shape)
    axis = bn.attrs.get("axis", 1)
    return axis + nd if axis < 0 else axis


def _per_channel(c, out_shape, axis):
    """A constant bias c (broadcasting to out_shape) as a per-channel float64 vector, or None
    when it varies along some other axis."""
    a = const_array(c).astype(np.float64)
    nd = len(out_shape)
    if a.ndim > nd:
        return None
    full = (1,) * (nd - a.ndim) + a.shape
    if any(d != 1 for k, d in enumerate(full) if k != axis):
        return None
    vec = a.reshape(-1)
    if vec.size == 1:
        return np.full(out_shape[axis], vec[0])
    return vec if vec.size == out_shape[axis] else None


def _single_use(users, v, node):
    return users.get(id(v), []) == [node]


def fold_batch_norm(graph):
    rw = Rewrite(graph)
    g = rw.graph
    users = consumers(g)
    producer = {id(v): n for n in g.nodes for v in n.outputs}
    replaced = {}  # id(bn node) -> list of new nodes; id(removed node) -> []
    for bn in g.nodes:
        if bn.op != "batch_norm" or id(bn) in replaced:
            continue
        params = _bn_params(bn)
        if params is None:
            continue
        s, shift = params
        y = bn.inputs[0]
        axis = _channel_axis(bn)
        p = producer.get(id(y))
        if p is None or not _single_use(users, y, bn):
            continue
        extra_bias, bias_add = None, None
        if p.op == "add" and len(p.inputs) == 2:  # conv -> add(const bias) -> batch_norm
            a, b = p.inputs
            if a.is_const and not b.is_const:
                a, b = b, a
            inner = producer.get(id(a)) if b.is_const and not a.is_const else None
            if inner is None or inner.op not in CONVS or not _single_use(users, a, p) or \
                    tuple(a.shape) != tuple(y.shape):
                continue
            extra_bias = _per_channel(b, y.shape, axis)
            if extra_bias is None:
                continue
            bias_add, p = p, inner
        new = _fold(p, bn, s, shift, axis, extra_bias)
        if new is None:
            continue
        replaced[id(p)] = []
        if bias_add is not None:
            replaced[id(bias_add)] = []
        replaced[id(bn)] = new
    kept = []
    for n in g.nodes:
        if id(n) in replaced:
            kept.extend(replaced[id(n)])
        else:
            kept.append(n)
    return rw.finish(kept)


def _fold(p, bn, s, shift, axis, extra_bias):
    """New nodes computing bn's output from p's inputs, or None when the pattern does not
    apply."""
    y, out = p.outputs[0], bn.outputs[0]
    nd = len(y.shape)
    if len(p.outputs) != 1:
        return None
    if p.op in CONVS:
        if axis != 1 or len(p.inputs) != 2 or not p.inputs[1].is_const or \
                p.attrs.get("weight_layout", "OIHW") != "OIHW":
            return None
        w = p.inputs[1]
        wa = const_array(w)
        if wa.shape[0] != s.size:
            return None
        if extra_bias is not None:
            shift = shift + extra_bias * s
        scaled = wa.astype(np.float64) * s.reshape((-1,) + (1,) * (wa.ndim - 1))
        w2 = new_const(f"{w.name}.bn", scaled, wa.dtype)
        b2 = new_const(f"{out.name}.bias", shift.reshape((-1,) + (1,) * (nd - 2)), y.dtype)
        mid = new_value(f"{y.name}.scaled", y.shape, y.dtype)
        return [new_node(p.op, [p.inputs[0], w2], [mid], p.attrs, p.name),
                new_node("add", [mid, b2], [out], {}, bn.name or f"{p.name}.bn")]
    if extra_bias is not None:
        return None
    if p.op == "dense":
        if axis != nd - 1 or not p.inputs[1].is_const or len(p.inputs) not in (2, 3):
            return None
        w = p.inputs[1]
        wa = const_array(w)
        if wa.shape[0] != s.size:
            return None
        bias = shift.copy()
        if len(p.inputs) == 3:
            if not p.inputs[2].is_const:
                return None
            bias += const_array(p.inputs[2]).astype(np.float64).reshape(-1) * s
        w2 = new_const(f"{w.name}.bn", (wa.astype(np.float64) * s[:, None]).astype(wa.dtype))
        b2 = new_const(f"{out.name}.bias", bias, out.dtype)
        return [new_node("dense", [p.inputs[0], w2, b2], [out], p.attrs, p.name)]
    if p.op == "gemm":
        if axis != 1 or nd != 2 or not p.inputs[1].is_const:
            return None
        attrs = dict(p.attrs)
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        b = p.inputs[1]
        ba = const_array(b).astype(np.float64)
        ba = ba * (s[:, None] if attrs.get("trans_b", False) else s[None, :])
        M, N = y.shape
        if len(p.inputs) >= 3:
            if not p.inputs[2].is_const:
                return None
            c = np.broadcast_to(beta * const_array(p.inputs[2]).astype(np.float64).reshape(
                (1,) * (2 - len(p.inputs[2].shape)) + tuple(p.inputs[2].shape)), (M, N))
            if np.all(c == c[:1]):
                c = c[0]
            c2 = c * s + shift if c.ndim == 1 else c * s[None, :] + shift[None, :]
        else:
            c2 = shift
        attrs["beta"] = 1.0
        attrs["alpha"] = alpha
        b2 = new_const(f"{b.name}.bn", ba, b.dtype)
        c2v = new_const(f"{out.name}.bias", c2, out.dtype)
        return [new_node("gemm", [p.inputs[0], b2, c2v], [out], attrs, p.name)]
    if p.op == "matmul":
        if len(p.inputs) != 2 or not p.inputs[1].is_const or len(p.inputs[1].shape) != 2 or \
                axis != nd - 1:
            return None
        b = p.inputs[1]
        ba = const_array(b).astype(np.float64) * s[None, :]
        b2 = new_const(f"{b.name}.bn", ba, b.dtype)
        mid = new_value(f"{y.name}.scaled", y.shape, y.dtype)
        bias = new_const(f"{out.name}.bias", shift, out.dtype)
        return [new_node("matmul", [p.inputs[0], b2], [mid], p.attrs, p.name),
                new_node("add", [mid, bias], [out], {}, bn.name or f"{p.name}.bn")]
    return None
