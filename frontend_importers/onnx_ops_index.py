"""Converters of indexing and selection: Gather, GatherElements, GatherND (flattened to one
gather), TopK, Trilu (a constant mask), OneHot and Compress (a gather with the constant
condition's indices)."""
import numpy as np

from .onnx_registry import converter, norm_axis, rank_of, unsupported


@converter("Gather")
def _gather(ctx, n):
    x, idx = n.input(0), n.input(1)
    return ctx.emit("gather", [x, idx], axis=norm_axis(n, int(n.attr("axis", 0)), rank_of(x)))


@converter("GatherElements")
def _gather_elements(ctx, n):
    x, idx = n.input(0), n.input(1)
    return ctx.emit("gather_elements", [x, idx],
                    axis=norm_axis(n, int(n.attr("axis", 0)), rank_of(x)))


@converter("TopK")
def _topk(ctx, n):
    x = n.input(0)
    k = ctx.static_ints(n.input(1), "K")[0]
    axis = norm_axis(n, int(n.attr("axis", -1)), rank_of(x))
    vals, idx = ctx.emit("topk", [x], k=k, axis=axis, largest=bool(n.attr("largest", 1)))
    return vals, idx


@converter("Trilu")
def _trilu(ctx, n):
    x = n.input(0)
    k = ctx.static_ints(n.input(1), "k")[0] if n.input(1) is not None else 0
    rows, cols = x.shape[-2:]
    mask = np.triu(np.ones((rows, cols), bool), k) if int(n.attr("upper", 1)) else \
        np.tril(np.ones((rows, cols), bool), k)
    if mask.all():
        return x
    return ctx.emit("where", [ctx.const(mask), x, ctx.scalar(0, x)])


@converter("OneHot")
def _one_hot(ctx, n):
    idx, depth_v, values = n.input(0), n.input(1), n.input(2)
    depth = int(ctx.static(depth_v, "depth").reshape(-1)[0])
    r = rank_of(idx)
    axis = int(n.attr("axis", -1))
    axis = axis + r + 1 if axis < 0 else axis
    if idx.dtype != "int64":
        idx = ctx.emit("cast", [idx], dtype="int64")
    idx = ctx.emit("where", [ctx.emit("less", [idx, ctx.scalar(0, idx)]),
                             ctx.emit("add", [idx, ctx.scalar(depth, idx)]), idx])
    idx = ctx.emit("unsqueeze", [idx], axis=axis)
    pos = np.arange(depth, dtype=np.int64).reshape([depth if d == axis else 1
                                                    for d in range(r + 1)])
    hit = ctx.emit("equal", [idx, ctx.const(pos)])
    off = ctx.emit("slice", [values], starts=[0], ends=[1])
    on = ctx.emit("slice", [values], starts=[1], ends=[2])
    return ctx.emit("where", [hit, on, off])


@converter("GatherND")
def _gather_nd(ctx, n):
    """data[idx[..., 0], ..., idx[..., k-1]] per index tuple, after ``batch_dims`` shared
    leading axes: the tuple (with the batch position in front) is flattened to one offset
    into data viewed as (prod(leading axes), *trailing axes), then a gather."""
    x, idx = n.input(0), n.input(1)
    b = int(n.attr("batch_dims", 0))
    k = idx.shape[-1]
    lead = list(x.shape[:b + k])
    strides = [int(np.prod(lead[d + 1:], dtype=np.int64)) for d in range(b + k)]
    if idx.dtype != "int64":
        idx = ctx.emit("cast", [idx], dtype="int64")
    out_idx_shape = list(idx.shape[:-1])
    flat = None
    for j in range(k):
        c = ctx.emit("slice", [idx], starts=[j], ends=[j + 1], axes=[rank_of(idx) - 1])
        c = ctx.emit("reshape", [c], newshape=out_idx_shape)
        dim = x.shape[b + j]
        c = ctx.emit("where", [ctx.emit("less", [c, ctx.scalar(0, c)]),
                              ctx.emit("add", [c, ctx.scalar(dim, c)]), c])
        term = ctx.emit("multiply", [c, ctx.scalar(strides[b + j], c)])
        flat = term if flat is None else ctx.emit("add", [flat, term])
    for d in range(b):  # the batch position of each index tuple
        pos = np.arange(x.shape[d], dtype=np.int64) * strides[d]
        pos = pos.reshape([x.shape[d] if a == d else 1 for a in range(len(out_idx_shape))])
        flat = ctx.emit("add", [flat, ctx.const(pos)]) if flat is not None else None
    data = ctx.emit("reshape", [x], newshape=[int(np.prod(lead, dtype=np.int64))] +
                    list(x.shape[b + k:]))
    if flat is None:   # k == 0 and no batch dims: every tuple selects all of data
        flat = ctx.const(np.zeros(out_idx_shape, np.int64))
    return ctx.emit("gather", [data, flat], axis=0)


@converter("Compress")
def _compress(ctx, n):
    """The slices of x selected by a constant condition: a gather with constant indices."""
    x = n.input(0)
    cond = ctx.static(n.input(1), "condition").reshape(-1).astype(bool)
    axis = n.attr("axis")
    if axis is None:
        x = ctx.emit("reshape", [x], newshape=[-1])
        axis = 0
    axis = norm_axis(n, int(axis), rank_of(x))
    picked = np.nonzero(cond[:x.shape[axis]])[0].astype(np.int64)
    if picked.size == 0:
        unsupported(n, "the condition selects nothing (an empty result)")
    return ctx.emit("gather", [x, ctx.const(picked)], axis=axis)
