"""Layout choice for convolutions on the CPU.

The CPU conv2d runs on NCHW[x]c blocks: its input is packed to ``[N, C/icb, H, W, icb]`` at the
tile (activations stay NCHW between ops, so no layout transforms appear in the graph) and its
kernel to ``[OC/ocb, IC/icb, KH, KW, icb, ocb]``, output channels in vector lanes. A constant
weight can be packed once, here, instead of on every call: the node then reads the packed
array (``weight_layout="packed"``, same op, same result).

Only convolutions that the library runs with the blocked (NCHWc) algorithm are changed; 1x1
convolutions without padding (a matmul over channels) and depthwise ones read OIHW directly.
A weight whose output channels do not fill whole blocks stays OIHW too (packed, the padded
channels would show in the output).
"""
from ..infer import const_array
from .common import Rewrite, new_const


def _algorithm(ic, wshape, padding, groups):
    """The algorithm conv2d picks (the library's own rule when it exports it)."""
    from ...ops import conv
    if hasattr(conv, "conv2d_algorithm"):
        return conv.conv2d_algorithm(ic, wshape, padding, groups)
    _, icg, kh, kw = wshape
    flat = [padding] if isinstance(padding, int) else list(padding)
    if groups > 1 and groups == ic and icg == 1:
        return "spatial"
    if groups == 1 and kh == 1 and kw == 1 and not any(flat):
        return "1x1"
    return "nchwc"


def _blocked(node, wa, groups):
    from ...ops.conv import conv2d_blocking
    x = node.inputs[0]
    if len(x.shape) != 4 or wa.ndim != 4:
        return None
    ic, oc = x.shape[1], wa.shape[0]
    if _algorithm(ic, wa.shape, node.attrs.get("padding", 0), groups) != "nchwc":
        return None  # depthwise and 1x1 convolutions read OIHW directly
    icb, ocb, ocp = conv2d_blocking(ic, oc, groups)
    return None if ocp != oc else (icb, ocb)


def choose_conv_layout(graph):
    rw = Rewrite(graph)
    from ...ops.conv import pack_conv2d_weight
    packed = {}  # id(weight value) -> packed constant (a weight shared by two convs packs once)
    for n in rw.graph.nodes:
        if n.op != "conv2d" or len(n.inputs) != 2 or not n.inputs[1].is_const or \
                n.attrs.get("weight_layout", "OIHW") != "OIHW":
            continue
        groups = n.attrs.get("groups", 1)
        w = n.inputs[1]
        wa = const_array(w)
        if _blocked(n, wa, groups) is None:
            continue
        if id(w) not in packed:
            packed[id(w)] = new_const(f"{w.name}.packed", pack_conv2d_weight(wa, groups))
        n.inputs = [n.inputs[0], packed[id(w)]]
        n.attrs = dict(n.attrs, weight_layout="packed")
    return rw.finish(list(rw.graph.nodes))
