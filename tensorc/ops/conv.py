"""Convolutions on NCHW tensors: conv1d, conv2d (groups, depthwise), conv_transpose2d.

Each op takes te.Tensors plus Python attributes and returns an NCHW (NCW for conv1d) tensor
whose compute carries the op's tag ("conv2d_nchw", "depthwise_conv2d_nchw",
"conv2d_transpose"; conv1d reuses "conv2d_nchw"). Inside, the computation is laid out for the
CPU schedules of ``schedule_nn`` -- the returned tensor is an injective view of an internal
*anchor* compute that does the reduction:

- ``algo="nchwc"`` (any kernel, groups): the input is padded and packed into NCHW[x]c blocks
  (``data_vec[n, C/icb, Hp, Wp, icb]``), the kernel into ``[OC/ocb, IC/icb, KH, KW, icb, ocb]``,
  and the anchor ``conv[n, OC/ocb, OH, OW, ocb]`` is vectorised over the ``ocb`` output
  channels of a block (TVM's conv2d_NCHWc). The op result unpacks it to NCHW.
- ``algo="1x1"`` (1x1 kernels, no padding, groups=1): a matmul over channels on the
  flattened pixels, ``conv[n, oc, p] = sum_ic W[oc, ic] * X[n, ic, p]`` with p = y * OW + x;
  X is the NCHW input itself (stride 1) or a strided copy of it (stride > 1).
- ``algo="spatial"`` (depthwise): vectorised along the output width (computed over a width
  rounded up to the 8/16-lane block); the padded input is split into stride phases so every
  tap reads contiguous memory.

The packing steps are separate injective computes (tag "injective") built with
te.if_then_else so that a schedule can inline them or compute them at a tile. The kernel
packing compute has tag "conv2d_kernel_pack"; when the weights are constants a graph compiler
can evaluate it ahead of time (see ``pack_conv2d_weight`` for the numpy equivalent and the
``weight_layout="packed"`` argument of conv2d).

Padding is explicit per side: an int, (pad_h, pad_w), or ONNX's (top, left, bottom, right).

The anchor accumulates in ``util.accumulation_dtype`` of the output type (float32 for
float16), and the result view rounds it to the output type, so float16 sums are rounded once.
"""

from .. import te
from ..ir import dtype as dt
from ..te.tensor import Tensor
from .util import accumulation_dtype, static_ints

#: tag of the internal reduction compute (every algorithm) behind a conv op's result
ANCHOR_TAG = "conv2d_NCHWc"


# ---------------------------------------------------------------------------------- helpers

def _check_tensor(op, x, what):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {what} must be a te.Tensor, got {type(x).__name__} {x!r}")
    return x


def _pads(op, padding, nd):
    """(begin..., end...) per spatial dim from int | per-dim | ONNX (begins..., ends...)."""
    if isinstance(padding, bool):
        raise TypeError(f"{op}: padding must be ints, got {padding!r}")
    if isinstance(padding, int):
        p = (padding,) * (2 * nd)
    else:
        p = tuple(padding)
        if len(p) == nd:
            p = p + p
        if len(p) != 2 * nd:
            raise ValueError(f"{op}: padding must be an int, {nd} ints or {2 * nd} ints "
                             f"(begins then ends, ONNX order), got {padding!r}")
    if any(isinstance(x, bool) or not isinstance(x, int) for x in p):
        raise ValueError(f"{op}: padding must be ints, got {padding!r}")
    if any(x < 0 for x in p):
        raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
    return p


def _out_dim(op, what, n, k, s, pb, pe, d, tensor):
    ext = (k - 1) * d + 1
    o = (n + pb + pe - ext) // s + 1
    if o <= 0:
        raise ValueError(f"{op}: the {what} of tensor {tensor.name!r} ({n}, padded by {pb}+{pe}) "
                         f"is smaller than the dilated kernel extent {ext}; the output would "
                         "be empty")
    return o


def _largest_divisor(n, limit):
    for b in range(min(n, limit), 0, -1):
        if n % b == 0:
            return b
    return 1


def _ceil(a, b):
    return -(-a // b)


def conv2d_blocking(in_channels, out_channels, groups=1):
    """(ic_bn, oc_bn, oc_padded) of the NCHWc layout for these channel counts.

    The output-channel block is the vector width or two (16 = two AVX2 registers); with one
    group the output channels are padded up to a whole block, with several each group must
    hold whole blocks, so the block is a divisor of the channels per group.
    """
    icg, ocg = in_channels // groups, out_channels // groups
    icb = _largest_divisor(icg, 16)
    if groups == 1:
        ocb = min((16, 8), key=lambda b: (_ceil(out_channels, b) * b, -b))
        return icb, ocb, _ceil(out_channels, ocb) * ocb
    if ocg % 16 == 0:
        ocb = 16
    elif ocg % 8 == 0:
        ocb = 8
    else:
        ocb = _largest_divisor(ocg, 16)
    return icb, ocb, out_channels


def conv2d_algorithm(in_channels, kernel_shape, padding=0, groups=1):
    """Which algorithm conv2d picks: "spatial" (depthwise), "1x1" or "nchwc".

    Only "nchwc" reads a packed weight, so only there does pre-packing the weight
    (``pack_conv2d_weight`` + ``weight_layout="packed"``) save work per call.
    kernel_shape: the OIHW weight shape.
    """
    _, icg, kh, kw = kernel_shape
    pads = _pads("conv2d_algorithm", padding, 2)
    if groups > 1 and groups == in_channels and icg == 1:
        return "spatial"
    if groups == 1 and kh == 1 and kw == 1 and not any(pads):
        return "1x1"
    return "nchwc"


def pack_conv2d_weight(weight, groups=1):
    """numpy: an OIHW weight in the packed layout ``conv2d(..., weight_layout="packed")`` reads.

    Shape [OCp/ocb, IC/groups/icb, KH, KW, icb, ocb]; padded output channels are zero.
    """
    import numpy as np
    w = np.asarray(weight)
    oc, icg, kh, kw = w.shape
    icb, ocb, ocp = conv2d_blocking(icg * groups, oc, groups)
    wp = np.zeros((ocp,) + w.shape[1:], w.dtype)
    wp[:oc] = w
    wp = wp.reshape(ocp // ocb, ocb, icg // icb, icb, kh, kw)
    return np.ascontiguousarray(wp.transpose(0, 2, 4, 5, 3, 1))


# ----------------------------------------------------------------------- internal builders

def _pack_input(data_at, N, C, H, W, dtype, icb, Hp, Wp, pt, pl, name, up=(1, 1)):
    """data_vec[n, C/icb, Hp, Wp, icb] = data at (h - pt, w - pl) (zero outside).

    ``up`` > 1 reads the input as if zeros were inserted between its elements (the input of a
    transposed convolution): source row r = (h - pt) / up when divisible.
    """
    uh, uw = up
    zero = te.const(0, dtype)

    def f(n, c, h, w, cb):
        r, q = h - pt, w - pl
        conds = [r >= 0, q >= 0]
        if uh > 1:
            conds += [r % uh == 0, r < (H - 1) * uh + 1]
            r = r // uh
        else:
            conds.append(r < H)
        if uw > 1:
            conds += [q % uw == 0, q < (W - 1) * uw + 1]
            q = q // uw
        else:
            conds.append(q < W)
        return te.if_then_else(te.all(*conds), data_at(n, c * icb + cb, r, q), zero)
    return te.compute((N, C // icb, Hp, Wp, icb), f, name=f"{name}_data_vec", tag="injective",
                      attrs={"layout": f"NCHW{icb}c"})


def _conv_nchwc(op, data_at, N, IC, H, W, dtype, weight_at, OC, KH, KW, strides, pads,
                dilation, groups, out_dtype, name, tag, up=(1, 1), Hin=None, Win=None,
                packed_weight=None, attrs=None):
    """The NCHWc algorithm; returns (anchor conv, OH, OW, ocb).

    (H, W) are the extents of the (possibly up-sampled) input the convolution runs over.
    """
    sh, sw = strides
    dh, dw = dilation
    pt, pl, pb, pr = pads
    OH = (H + pt + pb - (KH - 1) * dh - 1) // sh + 1
    OW = (W + pl + pr - (KW - 1) * dw - 1) // sw + 1
    icb, ocb, ocp = conv2d_blocking(IC, OC, groups)
    icg, ocg = IC // groups, OC // groups
    Hp = (OH - 1) * sh + (KH - 1) * dh + 1
    Wp = (OW - 1) * sw + (KW - 1) * dw + 1
    dv = _pack_input(data_at, N, IC, Hin if Hin else H, Win if Win else W, dtype, icb, Hp, Wp,
                     pt, pl, name, up)
    if packed_weight is not None:
        kv = packed_weight
    else:
        def fk(o, i, kh, kw, ib, ob):
            oc = o * ocb + ob
            v = weight_at(oc, i * icb + ib, kh, kw)
            if ocp != OC:
                v = te.if_then_else(oc < OC, v, te.const(0, v.dtype))
            return v
        kv = te.compute((ocp // ocb, icg // icb, KH, KW, icb, ocb), fk,
                        name=f"{name}_kernel_vec", tag="conv2d_kernel_pack",
                        attrs={"layout": f"OIHW{icb}i{ocb}o", "ic_bn": icb, "oc_bn": ocb})
    ico = te.reduce_axis((0, icg // icb), name="ico")
    ici = te.reduce_axis((0, icb), name="ici")
    rh = te.reduce_axis((0, KH), name="kh")
    rw = te.reduce_axis((0, KW), name="kw")
    blocks_per_group = ocg // ocb if groups > 1 else None
    icblocks = icg // icb

    def fc(n, o, y, x, ob):
        c = ico if groups == 1 else (o // blocks_per_group) * icblocks + ico
        a = dv[n, c, y * sh + rh * dh, x * sw + rw * dw, ici]
        b = kv[o, ico, rh, rw, ici, ob]
        acc = accumulation_dtype(out_dtype)
        return te.sum(a.astype(acc) * b.astype(acc), axis=[ico, rh, rw, ici])
    info = {"algo": "nchwc", "ic_bn": icb, "oc_bn": ocb, "kernel": (KH, KW),
            "strides": strides, "dilation": dilation, "groups": groups, "op": op}
    info.update(attrs or {})
    conv = te.compute((N, ocp // ocb, OH, OW, ocb), fc, name=f"{name}_NCHWc", tag=ANCHOR_TAG,
                      attrs=info)
    return conv, OH, OW, ocb


def _unpack(conv, N, OC, OH, OW, ocb, out_dtype, name, tag, attrs, nd=2):
    if nd == 2:
        return te.compute((N, OC, OH, OW),
                          lambda n, c, y, x: conv[n, c // ocb, y, x, c % ocb].astype(out_dtype),
                          name=name, tag=tag, attrs=attrs)
    return te.compute((N, OC, OW),
                      lambda n, c, x: conv[n, c // ocb, 0, x, c % ocb].astype(out_dtype),
                      name=name, tag=tag, attrs=attrs)


def _spatial_width(OW):
    """(vector block along the width, padded width) for the width-vectorised algorithms."""
    w8, w16 = _ceil(OW, 8) * 8, _ceil(OW, 16) * 16
    if w8 < w16:
        return 8, w8
    return 16, w16


def _conv1x1(data, weight_at, N, IC, H, W, OC, strides, out_dtype, name, tag, attrs, nd=2,
             data_at=None):
    """A matmul over channels on the flattened pixels: conv[n, oc, p], p = y * OW + x."""
    sh, sw = strides
    OH = (H - 1) // sh + 1
    OW = (W - 1) // sw + 1
    P = OH * OW
    if data_at is None:
        def data_at(n, c, y, x):
            return data[n, c, y, x]
    if sh == 1 and sw == 1:
        packed = False

        def xat(n, c, p):
            return data_at(n, c, p // OW, p % OW)
    else:
        X = te.compute((N, IC, P), lambda n, c, p: data_at(n, c, p // OW * sh, p % OW * sw),
                       name=f"{name}_data_pack", tag="injective")
        packed = True

        def xat(n, c, p):
            return X[n, c, p]
    k = te.reduce_axis((0, IC), name="ic")

    def fc(n, o, p):
        acc = accumulation_dtype(out_dtype)
        a, b = xat(n, k, p).astype(acc), weight_at(o, k, 0, 0).astype(acc)
        return te.sum(b * a, axis=k)
    info = {"algo": "1x1", "strides": strides, "op": attrs.get("op"), "packed_input": packed,
            "out_hw": (OH, OW)}
    conv = te.compute((N, OC, P), fc, name=f"{name}_1x1", tag=ANCHOR_TAG, attrs=info)
    if nd == 2:
        return te.compute((N, OC, OH, OW),
                          lambda n, c, y, x: conv[n, c, y * OW + x].astype(out_dtype),
                          name=name, tag=tag, attrs=attrs)
    return te.compute((N, OC, OW), lambda n, c, x: conv[n, c, x].astype(out_dtype), name=name,
                      tag=tag, attrs=attrs)


def _depthwise(data_at, N, IC, H, W, dtype, weight_at, OC, KH, KW, strides, pads, dilation,
               out_dtype, name, tag, attrs, nd=2):
    """Width-vectorised depthwise conv over a stride-phase-split padded input."""
    sh, sw = strides
    dh, dw = dilation
    pt, pl, pb, pr = pads
    mult = OC // IC
    OH = (H + pt + pb - (KH - 1) * dh - 1) // sh + 1
    OW = (W + pl + pr - (KW - 1) * dw - 1) // sw + 1
    vx, OWp = _spatial_width(OW)
    Hq = OH + ((KH - 1) * dh) // sh
    Wq = OWp + ((KW - 1) * dw) // sw
    zero = te.const(0, dtype)

    def fp(n, c, ph, pw, hh, ww):
        r, q = hh * sh + ph - pt, ww * sw + pw - pl
        return te.if_then_else(te.all(r >= 0, r < H, q >= 0, q < W), data_at(n, c, r, q), zero)
    dp = te.compute((N, IC, sh, sw, Hq, Wq), fp, name=f"{name}_data_phase", tag="injective")
    rh = te.reduce_axis((0, KH), name="kh")
    rw = te.reduce_axis((0, KW), name="kw")

    def fc(n, c, y, x):
        a = dp[n, c // mult if mult > 1 else c, (rh * dh) % sh, (rw * dw) % sw,
               y + (rh * dh) // sh, x + (rw * dw) // sw]
        b = weight_at(c, 0, rh, rw)
        acc = accumulation_dtype(out_dtype)
        return te.sum(b.astype(acc) * a.astype(acc), axis=[rh, rw])
    info = {"algo": "spatial", "vx": vx, "kernel": (KH, KW), "strides": strides,
            "dilation": dilation, "op": attrs.get("op")}
    conv = te.compute((N, OC, OH, OWp), fc, name=f"{name}_dw", tag=ANCHOR_TAG, attrs=info)
    if nd == 2:
        return te.compute((N, OC, OH, OW), lambda n, c, y, x: conv[n, c, y, x].astype(out_dtype),
                          name=name, tag=tag, attrs=attrs)
    return te.compute((N, OC, OW), lambda n, c, x: conv[n, c, 0, x].astype(out_dtype),
                      name=name, tag=tag, attrs=attrs)


# ------------------------------------------------------------------------------- the ops

def _conv_nd(op, data, weight, strides, padding, dilation, groups, out_dtype, name, nd,
             weight_layout="OIHW", out_channels=None):
    _check_tensor(op, data, "data")
    _check_tensor(op, weight, "weight")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if data.ndim != nd + 2:
        raise ValueError(f"{op}: data {data.name!r} must have {nd + 2} dimensions "
                         f"({'NCHW' if nd == 2 else 'NCW'}), got shape {data.shape}")
    strides = static_ints(op, "strides", strides, nd)
    dilation = static_ints(op, "dilation", dilation, nd)
    pads = _pads(op, padding, nd)
    N, IC = data.shape[:2]
    if IC % groups:
        raise ValueError(f"{op}: data {data.name!r} dimension 1 (channels) is {IC}, not "
                         f"divisible by groups={groups}")
    if weight_layout == "winograd":
        from .conv_winograd import conv2d_winograd
        if nd != 2 or groups != 1 or tuple(strides) != (1, 1) or tuple(dilation) != (1, 1):
            raise ValueError(f"{op}: weight_layout='winograd' is for 3x3 convolutions with "
                             f"stride 1, dilation 1 and one group; got strides {strides}, "
                             f"dilation {dilation}, groups {groups}")
        return conv2d_winograd(data, weight, padding, out_dtype, name, "winograd")
    packed = weight_layout == "packed"
    if weight_layout not in ("OIHW", "packed"):
        raise ValueError(f"{op}: weight_layout must be 'OIHW', 'packed' or 'winograd', got "
                         f"{weight_layout!r}")
    if packed:
        if nd != 2 or weight.ndim != 6:
            raise ValueError(f"{op}: a packed weight {weight.name!r} must have 6 dimensions "
                             "(from pack_conv2d_weight), got shape {weight.shape}")
        occ, icc, KH, KW, icb_w, ocb_w = weight.shape
        icg = icc * icb_w
        OC = None
    else:
        if weight.ndim != nd + 2:
            raise ValueError(f"{op}: weight {weight.name!r} must have {nd + 2} dimensions "
                             f"(OI{'HW' if nd == 2 else 'W'}), got shape {weight.shape}")
        OC, icg = weight.shape[:2]
        KH, KW = (weight.shape[2], weight.shape[3]) if nd == 2 else (1, weight.shape[2])
    if icg * groups != IC:
        raise ValueError(f"{op}: weight {weight.name!r} dimension 1 (input channels per group) "
                         f"is {icg}, but data {data.name!r} has {IC} channels in {groups} "
                         f"groups ({IC // groups} per group)")
    if OC is not None and OC % groups:
        raise ValueError(f"{op}: weight {weight.name!r} dimension 0 (output channels) is {OC}, "
                         f"not divisible by groups={groups}")
    if nd == 2:
        H, W = data.shape[2:]
        sh, sw = strides
        dh, dw = dilation
    else:
        H, W = 1, data.shape[2]
        (sw,), (dw,) = strides, dilation
        sh, dh = 1, 1
        strides, dilation = (1, sw), (1, dw)
        pads = (0, pads[0], 0, pads[1])
    pt, pl, pb, pr = pads
    _out_dim(op, "height", H, KH, sh, pt, pb, dh, data)
    _out_dim(op, "width", W, KW, sw, pl, pr, dw, data)
    out_dtype = dt.check(out_dtype) if out_dtype is not None else data.dtype
    if not dt.is_float(out_dtype) and not dt.is_int(out_dtype):
        raise TypeError(f"{op}: out_dtype {out_dtype} is not numeric")

    if nd == 2:
        def data_at(n, c, y, x):
            return data[n, c, y, x]

        def weight_at(o, i, kh, kw):
            return weight[o, i, kh, kw]
    else:
        def data_at(n, c, y, x):
            return data[n, c, x]

        def weight_at(o, i, kh, kw):
            return weight[o, i, kw]
    attrs = {"op": op, "strides": strides, "padding": pads, "dilation": dilation,
             "groups": groups}
    if packed:
        OC = occ * ocb_w if out_channels is None else out_channels
        icb, ocb, ocp = conv2d_blocking(IC, OC, groups)
        if (icb, ocb, ocp) != (icb_w, ocb_w, occ * ocb_w):
            raise ValueError(f"{op}: packed weight {weight.name!r} of shape {weight.shape} does "
                             f"not hold {OC} output channels of {IC} inputs in the blocks this "
                             f"layout uses (ic {icb}, oc {ocb}, {ocp} padded output channels): "
                             "pack it with pack_conv2d_weight")
        conv, OH, OW, ocb = _conv_nchwc(op, data_at, N, IC, H, W, data.dtype, None, OC, KH, KW,
                                        strides, pads, dilation, groups, out_dtype, name,
                                        "conv2d_nchw", packed_weight=weight)
        return _unpack(conv, N, OC, OH, OW, ocb, out_dtype, name, "conv2d_nchw", attrs, nd)
    depthwise = groups > 1 and groups == IC and icg == 1
    if depthwise:
        attrs["op"] = "depthwise_" + op if not op.startswith("depthwise") else op
        return _depthwise(data_at, N, IC, H, W, data.dtype, weight_at, OC, KH, KW, strides,
                          pads, dilation, out_dtype, name, "depthwise_conv2d_nchw", attrs, nd)
    if groups == 1 and KH == 1 and KW == 1 and not any(pads):
        return _conv1x1(data, weight_at, N, IC, H, W, OC, strides, out_dtype, name,
                        "conv2d_nchw", attrs, nd, data_at=data_at)
    conv, OH, OW, ocb = _conv_nchwc(op, data_at, N, IC, H, W, data.dtype, weight_at, OC, KH,
                                    KW, strides, pads, dilation, groups, out_dtype, name,
                                    "conv2d_nchw")
    return _unpack(conv, N, OC, OH, OW, ocb, out_dtype, name, "conv2d_nchw", attrs, nd)


def conv2d(data, weight, strides=1, padding=0, dilation=1, groups=1, out_dtype=None,
           name="conv2d", weight_layout="OIHW", out_channels=None):
    """2-D convolution (cross-correlation, as ONNX Conv / torch conv2d) of NCHW data.

    weight: [OC, IC/groups, KH, KW] (or, with ``weight_layout="packed"``, the array made by
    ``pack_conv2d_weight``; then ``out_channels`` gives OC when the packed weight holds zero
    padding channels, default: all of them; or, with ``weight_layout="winograd"``, the
    transformed 3x3 kernel of ``conv_winograd.winograd_weight``: a stride-1 3x3 convolution
    computed by ``conv_winograd.conv2d_winograd``). padding: int, (pad_h, pad_w) or
    (top, left, bottom, right). groups == IC with one input channel per group is a depthwise
    convolution (tag "depthwise_conv2d_nchw"); everything else is tagged "conv2d_nchw".
    """
    return _conv_nd("conv2d", data, weight, strides, padding, dilation, groups, out_dtype, name,
                    2, weight_layout, out_channels)


def depthwise_conv2d(data, weight, strides=1, padding=0, dilation=1, out_dtype=None,
                     name="depthwise_conv2d"):
    """conv2d with groups = channels; weight [C * multiplier, 1, KH, KW]."""
    _check_tensor("depthwise_conv2d", data, "data")
    if data.ndim != 4:
        raise ValueError(f"depthwise_conv2d: data {data.name!r} must have 4 dimensions (NCHW), "
                         f"got shape {data.shape}")
    return _conv_nd("depthwise_conv2d", data, weight, strides, padding, dilation, data.shape[1],
                    out_dtype, name, 2)


def conv1d(data, weight, strides=1, padding=0, dilation=1, groups=1, out_dtype=None,
           name="conv1d"):
    """1-D convolution of NCW data; weight [OC, IC/groups, KW]; padding int or (left, right)."""
    return _conv_nd("conv1d", data, weight, strides, padding, dilation, groups, out_dtype, name,
                    1)


def conv_transpose2d(data, weight, strides=1, padding=0, output_padding=0, dilation=1,
                     groups=1, out_dtype=None, name="conv2d_transpose"):
    """Transposed 2-D convolution (ONNX ConvTranspose / torch conv_transpose2d) of NCHW data.

    weight: [IC, OC/groups, KH, KW]. Output height
    (H - 1) * stride - pad_top - pad_bottom + dilation * (KH - 1) + output_padding + 1.
    Computed as a convolution of the zero-upsampled, padded input with the flipped kernel.
    """
    op = "conv_transpose2d"
    _check_tensor(op, data, "data")
    _check_tensor(op, weight, "weight")
    if data.ndim != 4:
        raise ValueError(f"{op}: data {data.name!r} must have 4 dimensions (NCHW), got shape "
                         f"{data.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight {weight.name!r} must have 4 dimensions (IOHW), got "
                         f"shape {weight.shape}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    strides = static_ints(op, "strides", strides, 2)
    dilation = static_ints(op, "dilation", dilation, 2)
    pads = _pads(op, padding, 2)
    if isinstance(output_padding, int) and not isinstance(output_padding, bool):
        output_padding = (output_padding,) * 2
    output_padding = tuple(output_padding)
    if len(output_padding) != 2 or any(not isinstance(x, int) or x < 0 for x in output_padding):
        raise ValueError(f"{op}: output_padding must be two non-negative ints, got "
                         f"{output_padding!r}")
    N, IC, H, W = data.shape
    wic, ocg, KH, KW = weight.shape
    if wic != IC:
        raise ValueError(f"{op}: weight {weight.name!r} dimension 0 (input channels) is {wic}, "
                         f"but data {data.name!r} has {IC} channels")
    if IC % groups:
        raise ValueError(f"{op}: data {data.name!r} dimension 1 (channels) is {IC}, not "
                         f"divisible by groups={groups}")
    for what, op_, s, d in (("height", output_padding[0], strides[0], dilation[0]),
                            ("width", output_padding[1], strides[1], dilation[1])):
        if op_ >= max(s, d):
            raise ValueError(f"{op}: output_padding {op_} along the {what} must be smaller than "
                             f"the stride ({s}) or the dilation ({d})")
    sh, sw = strides
    dh, dw = dilation
    pt, pl, pb, pr = pads
    OC = ocg * groups
    icg = IC // groups
    OH = (H - 1) * sh - pt - pb + dh * (KH - 1) + output_padding[0] + 1
    OW = (W - 1) * sw - pl - pr + dw * (KW - 1) + output_padding[1] + 1
    if OH <= 0 or OW <= 0:
        raise ValueError(f"{op}: the output of data {data.name!r} would be empty "
                         f"({OH}x{OW}); the padding is too large")
    out_dtype = dt.check(out_dtype) if out_dtype is not None else data.dtype
    # Equivalent convolution: input up-sampled by the stride (Hu = (H-1)*sh + 1), padded by
    # dh*(KH-1) - pt before and dh*(KH-1) - pb + output_padding after, stride 1, kernel
    # flipped and transposed per group.
    Hu, Wu = (H - 1) * sh + 1, (W - 1) * sw + 1
    cpt, cpl = dh * (KH - 1) - pt, dw * (KW - 1) - pl
    cpb = OH - 1 + (KH - 1) * dh + 1 - Hu - cpt
    cpr = OW - 1 + (KW - 1) * dw + 1 - Wu - cpl

    def data_at(n, c, y, x):
        return data[n, c, y, x]

    def weight_at(o, i, kh, kw):
        g = o // ocg
        return weight[g * icg + i, o % ocg, KH - 1 - kh, KW - 1 - kw]
    attrs = {"op": op, "strides": strides, "padding": pads, "dilation": dilation,
             "groups": groups, "output_padding": output_padding}
    conv, OH2, OW2, ocb = _conv_nchwc(op, data_at, N, IC, Hu, Wu, data.dtype, weight_at, OC,
                                      KH, KW, (1, 1), (cpt, cpl, cpb, cpr), dilation, groups,
                                      out_dtype, name, "conv2d_transpose", up=strides, Hin=H,
                                      Win=W)
    assert (OH2, OW2) == (OH, OW), (OH2, OW2, OH, OW)
    return _unpack(conv, N, OC, OH, OW, ocb, out_dtype, name, "conv2d_transpose", attrs)


def find_anchor(t):
    """The internal reduction compute behind a conv op's result tensor (or None): read by the
    result directly, or through the injective stages of an inverse transform (Winograd)."""
    stack, seen = list(t.op.input_tensors), set()
    while stack:
        x = stack.pop(0)
        if x.op in seen or not hasattr(x.op, "reduce_axis"):
            continue
        seen.add(x.op)
        if x.op.tag == ANCHOR_TAG:
            return x
        if not x.op.reduce_axis:
            stack.extend(x.op.input_tensors)
    return None


__all__ = [
    "conv1d",
    "conv2d",
    "conv2d_algorithm",
    "conv2d_blocking",
    "conv_transpose2d",
    "depthwise_conv2d",
    "find_anchor",
    "pack_conv2d_weight",
]
