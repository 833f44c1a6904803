"""Converters of data movement: Transpose, Reshape, Flatten, (Un)Squeeze, Expand, Tile,
Concat, Split, Slice, Pad (with numpy's wrap mode built from slices), DepthToSpace,
SpaceToDepth and CenterCropPad. Shapes, axes, pads and split sizes are constant operands
(``ctx.static``), whether attributes or, in newer opsets, inputs."""
import numpy as np

from tensorc.ir import dtype as dt

from .onnx_registry import converter, norm_axis, rank_of, unsupported


@converter("Transpose")
def _transpose(ctx, n):
    perm = n.attr("perm")
    return ctx.emit("transpose", [n.input(0)], perm=tuple(perm) if perm is not None else None)


@converter("Reshape")
def _reshape(ctx, n):
    x = n.input(0)
    shape = ctx.static_ints(n.input(1), "shape")
    allowzero = int(n.attr("allowzero", 0))
    new = []
    for k, s in enumerate(shape):
        if s == 0 and not allowzero:
            if k >= rank_of(x):
                raise ValueError(f"{n}: shape {shape} copies dimension {k}, which input "
                                 f"%{x.name} of shape {x.shape} does not have")
            new.append(x.shape[k])
        else:
            new.append(s)
    if 0 in new:
        unsupported(n, f"reshape to {new} gives an empty tensor")
    return ctx.emit("reshape", [x], newshape=new)


@converter("Flatten")
def _flatten(ctx, n):
    x = n.input(0)
    axis = int(n.attr("axis", 1))
    if rank_of(x) == 0:
        return ctx.emit("reshape", [x], newshape=[1, 1])
    return ctx.emit("flatten", [x], axis=axis)


@converter("Squeeze")
def _squeeze(ctx, n):
    x = n.input(0)
    axes = ctx.static_ints(n.input(1), "axes") if n.input(1) is not None else n.attr("axes")
    if axes is not None:
        axes = tuple(norm_axis(n, int(a), rank_of(x), "axes") for a in axes)
        if not axes:
            axes = None
    return ctx.emit("squeeze", [x], axis=axes)


@converter("Unsqueeze")
def _unsqueeze(ctx, n):
    x = n.input(0)
    axes = ctx.static_ints(n.input(1), "axes") if n.input(1) is not None else n.attr("axes")
    return ctx.emit("unsqueeze", [x], axis=tuple(int(a) for a in axes))


@converter("Expand")
def _expand(ctx, n):
    shape = ctx.static_ints(n.input(1), "shape")
    return ctx.emit("expand", [n.input(0)], shape=tuple(shape))


@converter("Tile")
def _tile(ctx, n):
    reps = ctx.static_ints(n.input(1), "repeats")
    if 0 in reps:
        unsupported(n, f"repeats {reps} give an empty tensor")
    return ctx.emit("tile", [n.input(0)], reps=tuple(reps))


@converter("Concat")
def _concat(ctx, n):
    xs = [v for v in n.inputs if v is not None and 0 not in v.shape]
    if len(xs) == 1:
        return xs[0]
    return ctx.emit("concat", xs, axis=int(n.attr("axis")))


@converter("Split")
def _split(ctx, n):
    x = n.input(0)
    axis = norm_axis(n, int(n.attr("axis", 0)), rank_of(x))
    length = x.shape[axis]
    nout = len(n.output_names)
    if n.input(1) is not None:
        sizes = ctx.static_ints(n.input(1), "split")
    elif n.attr("split") is not None:
        sizes = [int(s) for s in n.attr("split")]
    elif n.attr("num_outputs") is not None:
        k = int(n.attr("num_outputs"))
        chunk = -(-length // k)
        sizes = [chunk] * (k - 1) + [length - chunk * (k - 1)]
    else:
        if length % nout:
            raise ValueError(f"{n}: axis {axis} of extent {length} does not split into {nout} "
                             "equal parts")
        sizes = [length // nout] * nout
    if any(s < 0 for s in sizes) or sum(sizes) != length:
        raise ValueError(f"{n}: split sizes {sizes} do not add up to {length}, the extent of "
                         f"axis {axis}")
    # empty parts become empty constants: only shape arithmetic (or a Concat, which drops
    # them) may read them; tensorc has no empty run-time tensors
    keep = [s for s in sizes if s > 0]
    parts = [x] if len(keep) == 1 else list(ctx.emit("split", [x], sizes=keep, axis=axis))
    it = iter(parts)
    return [next(it) if s > 0 else
            ctx.const(np.empty([s if d == axis else e for d, e in enumerate(x.shape)],
                               np.dtype(x.dtype))) for s in sizes]


@converter("Slice")
def _slice(ctx, n):
    x = n.input(0)
    starts = ctx.static_ints(n.input(1), "starts")
    ends = ctx.static_ints(n.input(2), "ends")
    axes = ctx.static_ints(n.input(3), "axes") if n.input(3) is not None else \
        list(range(len(starts)))
    steps = ctx.static_ints(n.input(4), "steps") if n.input(4) is not None else \
        [1] * len(starts)
    axes = [norm_axis(n, a, rank_of(x), "axes") for a in axes]
    big = 2 ** 62  # clamp INT64 extremes so index arithmetic stays small
    starts = [max(min(s, big), -big) for s in starts]
    ends = [max(min(e, big), -big) for e in ends]
    return ctx.emit("slice", [x], starts=starts, ends=ends, axes=axes, steps=steps)


@converter("Pad")
def _pad(ctx, n):
    x = n.input(0)
    r = rank_of(x)
    pads = ctx.static_ints(n.input(1), "pads")
    mode = n.attr("mode", "constant")
    value = 0
    cv = n.input(2)
    if cv is not None and not (cv.is_const and cv.data.size == 0):
        value = ctx.static(cv, "constant_value").reshape(-1)[0].item()
    axes = ctx.static_ints(n.input(3), "axes") if n.input(3) is not None else list(range(r))
    axes = [norm_axis(n, a, r, "axes") for a in axes]
    width = [(0, 0)] * r
    k = len(axes)
    for j, a in enumerate(axes):
        width[a] = (pads[j], pads[k + j])
    if mode == "wrap":
        return _wrap_pad(ctx, x, width)
    if mode not in ("constant", "reflect", "edge"):
        unsupported(n, f"mode={mode!r}")
    if not dt.is_float(x.dtype):
        value = int(value)
    if all(w == (0, 0) for w in width):
        return x
    return ctx.emit("pad", [x], pad_width=[list(w) for w in width], mode=mode, value=value)


def _wrap_pad(ctx, x, width):
    """numpy's "wrap" padding: slices of the other end, concatenated."""
    y = x
    for a, (b, e) in enumerate(width):
        n = y.shape[a]
        if b < 0 or e < 0:  # crop first
            y = ctx.emit("slice", [y], starts=[max(-b, 0)], ends=[n - max(-e, 0)], axes=[a])
            n = y.shape[a]
            b, e = max(b, 0), max(e, 0)
        parts = []
        reps_b, reps_e = [], []
        while b > 0:
            t = min(b, n)
            reps_b.insert(0, ctx.emit("slice", [y], starts=[n - t], ends=[n], axes=[a]))
            b -= t
        while e > 0:
            t = min(e, n)
            reps_e.append(ctx.emit("slice", [y], starts=[0], ends=[t], axes=[a]))
            e -= t
        parts = reps_b + [y] + reps_e
        if len(parts) > 1:
            y = ctx.emit("concat", parts, axis=a)
    return y


@converter("DepthToSpace")
def _depth_to_space(ctx, n):
    x = n.input(0)
    b = int(n.attr("blocksize"))
    N, C, H, W = x.shape
    if n.attr("mode", "DCR") == "DCR":
        t = ctx.emit("reshape", [x], newshape=[N, b, b, C // (b * b), H, W])
        t = ctx.emit("transpose", [t], perm=(0, 3, 4, 1, 5, 2))
    else:
        t = ctx.emit("reshape", [x], newshape=[N, C // (b * b), b, b, H, W])
        t = ctx.emit("transpose", [t], perm=(0, 1, 4, 2, 5, 3))
    return ctx.emit("reshape", [t], newshape=[N, C // (b * b), H * b, W * b])


@converter("SpaceToDepth")
def _space_to_depth(ctx, n):
    x = n.input(0)
    b = int(n.attr("blocksize"))
    N, C, H, W = x.shape
    t = ctx.emit("reshape", [x], newshape=[N, C, H // b, b, W // b, b])
    perm = (0, 3, 5, 1, 2, 4) if n.attr("mode", "DCR") == "DCR" else (0, 1, 3, 5, 2, 4)
    t = ctx.emit("transpose", [t], perm=perm)
    return ctx.emit("reshape", [t], newshape=[N, C * b * b, H // b, W // b])


@converter("CenterCropPad")
def _center_crop_pad(ctx, n):
    x = n.input(0)
    shape = ctx.static_ints(n.input(1), "shape")
    r = rank_of(x)
    axes = [norm_axis(n, int(a), r, "axes") for a in n.attr("axes", list(range(r)))]
    starts, ends, cut_axes = [], [], []
    width = [[0, 0] for _ in range(r)]
    for a, target in zip(axes, shape):
        dim = x.shape[a]
        if target < dim:
            b = (dim - target) // 2
            starts.append(b)
            ends.append(b + target)
            cut_axes.append(a)
        elif target > dim:
            b = (target - dim) // 2
            width[a] = [b, target - dim - b]
    y = ctx.emit("slice", [x], starts=starts, ends=ends, axes=cut_axes) if cut_axes else x
    if any(w != [0, 0] for w in width):
        y = ctx.emit("pad", [y], pad_width=width)
    return y
