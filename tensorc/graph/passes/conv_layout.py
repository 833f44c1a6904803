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

``choose_winograd`` (CPU targets, before the above) gives stride-1 3x3 convolutions on planes
of at least ``WINOGRAD_MIN_TILES`` 4x4 output tiles Winograd's F(4x4, 3x3)
(``ops.conv_winograd``), their kernel transformed here (``weight_layout="winograd"``). It
rounds differently from the direct sum (relative L2 error 2-4e-6 per layer instead of about
3e-7); TENSORC_WINOGRAD=0 turns it off.
"""
import os

from ..infer import const_array
from .common import Rewrite, new_const

#: Winograd F(4x4, 3x3) pays from this many output tiles per image: a 14x14 plane (16 tiles)
#: ran 1.8x faster than the direct kernel, a 7x7 one (4 tiles) 2.2x slower (benchmarks/
#: RESULTS.md, "Winograd").
WINOGRAD_MIN_TILES = 16
#: ... and from this many input channels (the transforms' cost is per input channel and
#: tile, the products' per channel pair).
WINOGRAD_MIN_CHANNELS = 32


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


def _relayout_weights(graph, layout, suffix, qualifies, transform):
    """Every conv2d with a constant OIHW weight for which ``qualifies(node, array)`` reads
    ``transform(node, array)`` instead, a constant named ``<weight>.<suffix>``, with
    ``weight_layout=layout``; a weight shared by several convolutions is transformed once."""
    rw = Rewrite(graph)
    done = {}  # id(weight value) -> transformed constant
    for n in rw.graph.nodes:
        if n.op != "conv2d" or len(n.inputs) != 2 or not n.inputs[1].is_const or \
                n.attrs.get("weight_layout", "OIHW") != "OIHW":
            continue
        w = n.inputs[1]
        wa = const_array(w)
        if not qualifies(n, wa):
            continue
        if id(w) not in done:
            done[id(w)] = new_const(f"{w.name}.{suffix}", transform(n, wa))
        n.inputs = [n.inputs[0], done[id(w)]]
        n.attrs = dict(n.attrs, weight_layout=layout)
    return rw.finish(list(rw.graph.nodes))


def choose_conv_layout(graph):
    from ...ops.conv import pack_conv2d_weight
    return _relayout_weights(
        graph, "packed", "packed",
        lambda n, wa: _blocked(n, wa, n.attrs.get("groups", 1)) is not None,
        lambda n, wa: pack_conv2d_weight(wa, n.attrs.get("groups", 1)))


def winograd_pays(in_channels, kernel_shape, out_hw, strides=1, padding=0, dilation=1,
                  groups=1):
    """Whether this convolution runs faster as Winograd F(4x4, 3x3) on the CPU (the rule
    ``choose_winograd`` applies; ``out_hw``: the output plane)."""
    from ...ops.conv_winograd import TILE, winograd_applicable
    if not winograd_applicable(in_channels, kernel_shape, strides, padding, dilation, groups):
        return False
    tiles = -(-out_hw[0] // TILE) * -(-out_hw[1] // TILE)
    return in_channels >= WINOGRAD_MIN_CHANNELS and tiles >= WINOGRAD_MIN_TILES


def _winograd_ok(node, wa):
    x, (y,) = node.inputs[0], node.outputs
    if len(x.shape) != 4 or wa.ndim != 4:
        return False
    a = node.attrs
    return winograd_pays(x.shape[1], wa.shape, y.shape[2:], a.get("strides", 1),
                         a.get("padding", 0), a.get("dilation", 1), a.get("groups", 1))


def choose_winograd(graph):
    if os.environ.get("TENSORC_WINOGRAD", "1") == "0":
        return graph
    from ...ops.conv_winograd import winograd_weight
    return _relayout_weights(graph, "winograd", "winograd", _winograd_ok,
                             lambda n, wa: winograd_weight(wa))
