"""Converters of the spatial network operators: Conv and ConvTranspose (1-D and 2-D), the
pools (any number of spatial axes, pooled separably beyond two) and Resize. ONNX pads lists
([x1_begin, x2_begin, ..., x1_end, ...]) and auto_pad are resolved against the static input
shape."""
import string

import numpy as np

from .onnx_registry import converter, norm_axis, rank_of, unsupported


def _spatial_attr(n, name, nd, default):
    v = n.attr(name)
    return tuple(int(x) for x in v) if v is not None else (default,) * nd


def resolve_pads(n, in_shape, kernel, strides, dilations, ceil_mode=False):
    """ONNX pads [x1_begin, x2_begin, ..., x1_end, ...] with auto_pad resolved against the
    static spatial input shape."""
    nd = len(kernel)
    auto = n.attr("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = n.attr("pads")
        return tuple(int(p) for p in pads) if pads is not None else (0,) * (2 * nd)
    if auto == "VALID":
        return (0,) * (2 * nd)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise ValueError(f"{n}: unknown auto_pad {auto!r}")
    begins, ends = [], []
    for d in range(nd):
        out = -(-in_shape[d] // strides[d])
        total = max(0, (out - 1) * strides[d] + (kernel[d] - 1) * dilations[d] + 1 - in_shape[d])
        small, big = total // 2, total - total // 2
        b, e = (small, big) if auto == "SAME_UPPER" else (big, small)
        begins.append(b)
        ends.append(e)
    return tuple(begins + ends)


@converter("Conv")
def _conv(ctx, n):
    x, w, b = n.input(0), n.input(1), n.input(2)
    nd = rank_of(x) - 2
    if nd not in (1, 2):
        unsupported(n, f"{nd}-D convolution (input shape {x.shape}); tensorc supports 1-D and "
                        "2-D")
    kernel = tuple(w.shape[2:])
    strides = _spatial_attr(n, "strides", nd, 1)
    dil = _spatial_attr(n, "dilations", nd, 1)
    pads = resolve_pads(n, x.shape[2:], kernel, strides, dil)
    attrs = dict(strides=strides, padding=pads, dilation=dil, groups=int(n.attr("group", 1)))
    y = ctx.emit("conv2d" if nd == 2 else "conv1d", [x, w], **attrs)
    if b is not None:
        y = ctx.emit("add", [y, ctx.emit("reshape", [b], newshape=[b.shape[0]] + [1] * nd)])
    return y


@converter("ConvTranspose")
def _conv_transpose(ctx, n):
    x, w, b = n.input(0), n.input(1), n.input(2)
    nd = rank_of(x) - 2
    if nd not in (1, 2):
        unsupported(n, f"{nd}-D transposed convolution (input shape {x.shape}); tensorc "
                        "supports 1-D and 2-D")
    kernel = tuple(w.shape[2:])
    strides = _spatial_attr(n, "strides", nd, 1)
    dil = _spatial_attr(n, "dilations", nd, 1)
    out_pad = list(_spatial_attr(n, "output_padding", nd, 0))
    group = int(n.attr("group", 1))
    spatial = x.shape[2:]
    auto = n.attr("auto_pad", "NOTSET")
    out_shape = n.attr("output_shape")
    if out_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        if out_shape is None:
            out_shape = [spatial[d] * strides[d] for d in range(nd)]
        out_shape = list(out_shape)[-nd:]
        begins, ends = [], []
        for d in range(nd):
            total = (strides[d] * (spatial[d] - 1) + out_pad[d] + (kernel[d] - 1) * dil[d] + 1
                     - out_shape[d])
            if total < 0:  # the output is bigger than the natural one: extra end padding
                out_pad[d] += -total
                total = 0
            if auto == "SAME_UPPER":
                begins.append(total // 2)
                ends.append(total - total // 2)
            else:
                begins.append(total - total // 2)
                ends.append(total // 2)
        pads = tuple(begins + ends)
    elif auto == "VALID":
        pads = (0,) * (2 * nd)
    else:
        pads = tuple(int(p) for p in n.attr("pads", [0] * (2 * nd)))
    if nd == 1:
        x4 = ctx.emit("reshape", [x], newshape=[x.shape[0], x.shape[1], 1, x.shape[2]])
        w4 = ctx.emit("reshape", [w], newshape=[w.shape[0], w.shape[1], 1, w.shape[2]])
        y = ctx.emit("conv_transpose2d", [x4, w4], strides=(1, strides[0]),
                     padding=(0, pads[0], 0, pads[1]), output_padding=(0, out_pad[0]),
                     dilation=(1, dil[0]), groups=group)
        y = ctx.emit("reshape", [y], newshape=[y.shape[0], y.shape[1], y.shape[3]])
    else:
        y = ctx.emit("conv_transpose2d", [x, w], strides=strides, padding=pads,
                     output_padding=tuple(out_pad), dilation=dil, groups=group)
    if b is not None:
        y = ctx.emit("add", [y, ctx.emit("reshape", [b], newshape=[b.shape[0]] + [1] * nd)])
    return y


def pool_nd(ctx, x, kernel, strides, pads, dil, ceil_mode, pool_type, count_include_pad=False):
    """Max or average pooling over the spatial axes of (N, C, *spatial), any number of them.

    1-D and 2-D map to pool1d / pool2d. More axes are pooled separably -- pool2d over the last
    two, then pool1d along each leading one (moved last by a transpose) -- which is exact for
    max and for both average modes: the window and its count factor per axis, and so does
    ceil_mode's output size.
    """
    nd = len(kernel)
    if nd <= 2:
        return ctx.emit("pool2d" if nd == 2 else "pool1d", [x], kernel=tuple(kernel),
                        strides=tuple(strides), padding=tuple(pads), dilation=tuple(dil),
                        pool_type=pool_type, ceil_mode=ceil_mode,
                        **({"count_include_pad": count_include_pad} if pool_type == "avg"
                           else {}))
    shape = list(x.shape)
    lead = shape[2:-2]
    v = ctx.emit("reshape", [x], newshape=[shape[0], int(np.prod(shape[1:-2]))] + shape[-2:])
    v = pool_nd(ctx, v, kernel[-2:], strides[-2:], pads[nd - 2:nd] + pads[2 * nd - 2:],
                dil[-2:], ceil_mode, pool_type, count_include_pad)
    cur = shape[:2] + lead + list(v.shape[2:])
    v = ctx.emit("reshape", [v], newshape=cur)
    for d in range(nd - 3, -1, -1):            # the leading spatial axes, innermost first
        axis = 2 + d
        perm = [a for a in range(len(cur)) if a != axis] + [axis]
        t = ctx.emit("transpose", [v], perm=tuple(perm))
        rows = int(np.prod(t.shape[:-1]))
        t = ctx.emit("reshape", [t], newshape=[rows, 1, cur[axis]])
        t = pool_nd(ctx, t, kernel[d:d + 1], strides[d:d + 1], (pads[d], pads[nd + d]),
                    dil[d:d + 1], ceil_mode, pool_type, count_include_pad)
        out_len = t.shape[-1]
        moved = [cur[a] for a in perm[:-1]] + [out_len]
        t = ctx.emit("reshape", [t], newshape=moved)
        inverse = [perm.index(a) for a in range(len(cur))]
        v = ctx.emit("transpose", [t], perm=tuple(inverse))
        cur = list(v.shape)
    return v


@converter("MaxPool", "AveragePool")
def _pool(ctx, n):
    x = n.input(0)
    nd = rank_of(x) - 2
    if nd < 1:
        raise ValueError(f"{n}: input must be (N, C, spatial...), got shape {x.shape}")
    if n.wants(1):
        unsupported(n, "the Indices output of MaxPool is not supported")
    kernel = tuple(int(k) for k in n.attr("kernel_shape"))
    strides = _spatial_attr(n, "strides", nd, 1)
    dil = _spatial_attr(n, "dilations", nd, 1)
    pads = resolve_pads(n, x.shape[2:], kernel, strides, dil)
    if n.op_type == "MaxPool":
        return pool_nd(ctx, x, kernel, strides, pads, dil, bool(n.attr("ceil_mode", 0)), "max")
    return pool_nd(ctx, x, kernel, strides, pads, dil, bool(n.attr("ceil_mode", 0)), "avg",
                   bool(n.attr("count_include_pad", 0)))


@converter("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx, n):
    return ctx.emit("global_pool", [n.input(0)],
                    pool_type="avg" if n.op_type == "GlobalAveragePool" else "max")


@converter("LpPool")
def _lp_pool(ctx, n):
    # (sum over the window of |x|^p)^(1/p): an average pool counting the padding, times the
    # window size; padded taps add 0.
    x = n.input(0)
    nd = rank_of(x) - 2
    p = float(n.attr("p", 2))
    kernel = tuple(int(k) for k in n.attr("kernel_shape"))
    strides = _spatial_attr(n, "strides", nd, 1)
    dil = _spatial_attr(n, "dilations", nd, 1)
    pads = resolve_pads(n, x.shape[2:], kernel, strides, dil)
    xp = ctx.emit("power", [ctx.emit("abs", [x]), ctx.scalar(p, x)])
    s = pool_nd(ctx, xp, kernel, strides, pads, dil, bool(n.attr("ceil_mode", 0)), "avg", True)
    s = ctx.emit("multiply", [s, ctx.scalar(float(np.prod(kernel)), x)])
    return ctx.emit("power", [s, ctx.scalar(1.0 / p, x)])


@converter("Resize")
def _resize(ctx, n):
    """Resize: tensorc's ``resize`` operator where it expresses the node (nearest / linear on
    the last one or two axes); otherwise one interpolation step per resized axis (see
    ``_resize_by_axis``), which covers cubic, antialiasing, tf_crop_and_resize and any axes."""
    x, roi, scales, sizes = (n.input(k) for k in range(4))
    r = rank_of(x)
    mode = n.attr("mode", "nearest")
    ctm = n.attr("coordinate_transformation_mode", "half_pixel")
    if mode not in ("nearest", "linear", "cubic"):
        raise ValueError(f"{n}: unknown mode {mode!r}")
    axes = n.attr("axes")
    axes = [norm_axis(n, int(a), r, "axes") for a in axes] if axes is not None else list(range(r))
    sc = ctx.static(scales, "scales") if scales is not None else None
    sz = ctx.static(sizes, "sizes") if sizes is not None else None
    if sc is not None and sc.size == 0:
        sc = None
    if sz is not None and sz.size == 0:
        sz = None
    full_scale = [1.0] * r
    out = list(x.shape)
    policy = n.attr("keep_aspect_ratio_policy", "stretch")
    if sz is not None:
        for a, v in zip(axes, sz.reshape(-1)):
            out[a] = int(v)
            full_scale[a] = int(v) / x.shape[a]
        if policy != "stretch":
            pick = min if policy == "not_larger" else max
            common = pick(full_scale[a] for a in axes)
            for a in axes:
                full_scale[a] = common
                out[a] = int(common * x.shape[a] + 0.5)
    elif sc is not None:
        for a, v in zip(axes, sc.reshape(-1)):
            full_scale[a] = float(v)
            out[a] = int(x.shape[a] * float(v))
    else:
        raise ValueError(f"{n}: needs scales or sizes")
    if any(o <= 0 for o in out):
        unsupported(n, f"the output shape {out} is empty")
    changed = [d for d in range(r) if full_scale[d] != 1.0 or out[d] != x.shape[d]]
    if not changed:
        return x
    antialias = int(n.attr("antialias", 0)) and any(full_scale[d] < 1 for d in changed)
    # align_corners with a non-integral in * scale: ONNX maps through that fractional length,
    # tensorc's resize through the integer output length
    fractional = ctm == "align_corners" and sz is None and \
        any(x.shape[d] * full_scale[d] != out[d] for d in changed)
    native = (mode in ("nearest", "linear") and not antialias and not fractional and
              ctm != "tf_crop_and_resize" and policy == "stretch" and len(changed) <= 2 and
              changed[-1] == r - 1 and changed[0] >= r - 2)
    if not native:
        roi_arr = ctx.static(roi, "roi") if roi is not None else None
        if roi_arr is not None and roi_arr.size == 0:
            roi_arr = None
        return _resize_by_axis(ctx, n, x, changed, full_scale, out, axes, roi_arr)
    k = 2 if changed[0] == r - 2 else 1
    attrs = dict(method=mode, coordinate_transformation_mode=ctm,
                 nearest_mode=n.attr("nearest_mode", "round_prefer_floor"))
    spatial, o_sp = x.shape[r - k:], out[r - k:]
    sc_sp = full_scale[r - k:]
    if sz is not None or not all(int(i * v) == o for i, v, o in zip(spatial, sc_sp, o_sp)):
        attrs["size"] = tuple(o_sp)
    else:
        attrs["scales"] = tuple(sc_sp)
    if r - k == 2:
        return ctx.emit("resize", [x], **attrs)
    # view as (rows, 1, *resized axes): resize works on NCW / NCHW
    lead_n = int(np.prod(x.shape[:r - k], dtype=np.int64))
    xv = ctx.emit("reshape", [x], newshape=[lead_n, 1] + list(spatial))
    y = ctx.emit("resize", [xv], **attrs)
    return ctx.emit("reshape", [y], newshape=list(x.shape[:r - k]) + list(o_sp))


def _resize_by_axis(ctx, n, x, changed, full_scale, out, axes, roi):
    """ONNX Resize is separable: each resized axis is a linear map (an out x in matrix) of the
    input along that axis, plus, for tf_crop_and_resize, the extrapolation value where a
    source coordinate leaves the input. The matrices are computed once, at import, by running
    ONNX's reference Resize on an identity matrix (so they follow the specification to the
    letter for every mode); nearest maps become a gather, the others an einsum with the
    constant matrix."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator
    r = rank_of(x)
    attrs = {k: v for k, v in n.attrs.items() if k not in ("axes", "keep_aspect_ratio_policy")}
    extrap = float(n.attr("extrapolation_value", 0.0))
    outside = None
    y = x
    letters = string.ascii_lowercase[:r]
    for d in changed:
        m = x.shape[d]
        feeds = {"x": np.eye(m, dtype=np.float64), "s": np.array([1.0, full_scale[d]],
                                                                 np.float32)}
        ins = ["x", "", "s"]
        if roi is not None:
            j = axes.index(d)
            k = len(axes)
            feeds["roi"] = np.array([0.0, roi[j], 1.0, roi[k + j]], np.float32)
            ins[1] = "roi"
        if int(x.shape[d] * full_scale[d]) != out[d]:   # keep_aspect_ratio rounding
            del feeds["s"]
            feeds["z"] = np.array([m, out[d]], np.int64)
            ins = ins[:2] + ["", "z"]
        node = helper.make_node("Resize", ins, ["y"], **dict(attrs, extrapolation_value=0.0))
        with np.errstate(all="ignore"):
            w = ReferenceEvaluator(node, opsets={"": max(n.opset, 19)}).run(None, feeds)[0]
        w = np.asarray(w, np.float64).T   # (out, in): row o holds the weights of output o
        if w.shape != (out[d], m):
            raise ValueError(f"{n}: internal error: interpolation matrix of axis {d} has shape "
                             f"{w.shape}, expected {(out[d], m)}")
        lost = np.abs(w).sum(axis=1) == 0   # tf_crop_and_resize: extrapolated positions
        if lost.any():
            shape = [out[d] if a == d else 1 for a in range(r)]
            mask = ctx.const(lost.reshape(shape))
            outside = mask if outside is None else ctx.emit("logical_or", [outside, mask])
        onehot = ((w == 0) | (w == 1)).all() and (w.sum(axis=1) <= 1).all()
        if onehot:
            idx = np.where(lost, 0, w.argmax(axis=1)).astype(np.int64)
            y = ctx.emit("gather", [y, ctx.const(idx)], axis=d)
        else:
            o = "Z" if "Z" not in letters else "Y"
            sub = letters + "," + o + letters[d] + "->" + letters[:d] + o + letters[d + 1:]
            y = ctx.emit("einsum", [y, ctx.const(w.astype(np.dtype(x.dtype)))], subscripts=sub)
    if outside is not None:
        y = ctx.emit("where", [outside, ctx.scalar(extrap, y), y])
    return y
