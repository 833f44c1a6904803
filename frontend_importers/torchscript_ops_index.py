"""Converters of slicing and indexing: slice, narrow, select, unbind, flip, roll,
split/chunk, advanced indexing, gather and embedding.

Python's slice semantics (negative and past-the-end bounds, the sizes ``chunk`` picks) are
resolved here to the static starts, ends and sizes tensorc takes; an empty result is refused
because tensorc has no empty tensors.
"""
import numpy as np

from tensorc.ir import dtype as dt

from .errors import (ImporterError, NonConstantInputError, UnsupportedDtypeError,
                     UnsupportedFeatureError)
from .torchscript_dtypes import _torch
from .torchscript_ops_common import _emit_reshape, _static_tensor, norm_axis, static_ints
from .torchscript_registry import converter


_INT64_MAX = 2 ** 63 - 1


def _slice_emit(ctx, x, axis, start, end, step):
    n = x.shape[axis]
    start = 0 if start is None else int(start)
    end = n if end is None or end >= _INT64_MAX // 2 else int(end)
    step = 1 if step is None else int(step)
    if step <= 0:
        raise UnsupportedFeatureError("slice step must be positive (torch requires it)")
    b = start + n if start < 0 else start
    e = end + n if end < 0 else end
    b, e = min(max(b, 0), n), min(max(e, 0), n)
    if b == 0 and e == n and step == 1:
        return x
    if e <= b:
        raise UnsupportedFeatureError(f"the slice [{start}:{end}:{step}] of axis {axis} "
                                      f"(extent {n}) is empty; tensorc has no empty tensors")
    return ctx.emit("slice", [x], starts=[b], ends=[e], axes=[axis], steps=[step])


@converter("aten::slice")
def _slice(ctx, c):
    x = ctx.tensor(c[0])
    if len(x.shape) == 0:
        raise ImporterError(f"{c}: slice of a 0-d tensor")
    axis = norm_axis(c, c.arg("dim", 0), len(x.shape))
    try:
        return _slice_emit(ctx, x, axis, c.arg("start"), c.arg("end"), c.arg("step", 1))
    except UnsupportedFeatureError as e:
        raise UnsupportedFeatureError(f"{c}: {e}") from None


@converter("aten::narrow")
def _narrow(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c[1], len(x.shape))
    start = int(c[2]) if not _static_tensor(c[2]) else int(c[2].item())
    start = start + x.shape[axis] if start < 0 else start
    return _slice_emit(ctx, x, axis, start, start + int(c[3]), 1)


def _select_emit(ctx, x, axis, index):
    n = x.shape[axis]
    i = index + n if index < 0 else index
    if not 0 <= i < n:
        raise ImporterError(f"index {index} is out of range for axis {axis} of extent {n}")
    y = ctx.emit("slice", [x], starts=[i], ends=[i + 1], axes=[axis]) if n > 1 else x
    return _emit_reshape(ctx, y, [d for k, d in enumerate(x.shape) if k != axis])


@converter("aten::select")
def _select(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c[1], len(x.shape))
    idx = c[2]
    if not isinstance(idx, int):
        raise NonConstantInputError(f"{c}: the index must be static, got {idx!r}")
    return _select_emit(ctx, x, axis, idx)


@converter("aten::unbind")
def _unbind(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c.arg("dim", 0), len(x.shape))
    return [_select_emit(ctx, x, axis, i) for i in range(x.shape[axis])]


@converter("aten::flip")
def _flip(ctx, c):
    x = ctx.tensor(c[0])
    axes = [norm_axis(c, d, len(x.shape)) for d in static_ints(c, c[1], "dims")]
    axes = [a for a in axes if x.shape[a] > 1]
    if not axes:
        return x
    return ctx.emit("slice", [x], starts=[-1] * len(axes), ends=[-(2 ** 62)] * len(axes),
                    axes=axes, steps=[-1] * len(axes))


@converter("aten::roll")
def _roll(ctx, c):
    x = ctx.tensor(c[0])
    shifts = static_ints(c, c[1], "shifts")
    dims = static_ints(c, c[2], "dims") if c[2] not in (None, []) else None
    if dims is None:
        flat = _emit_reshape(ctx, x, [int(np.prod(x.shape))])
        return _emit_reshape(ctx, _roll_axis(ctx, flat, 0, shifts[0]), x.shape)
    for s, d in zip(shifts, dims):
        x = _roll_axis(ctx, x, norm_axis(c, d, len(x.shape)), s)
    return x


def _roll_axis(ctx, x, axis, shift):
    n = x.shape[axis]
    s = shift % n
    if s == 0:
        return x
    a = ctx.emit("slice", [x], starts=[n - s], ends=[n], axes=[axis])
    b = ctx.emit("slice", [x], starts=[0], ends=[n - s], axes=[axis])
    return ctx.emit("concat", [a, b], axis=axis)


def _split_sizes(ctx, c, x, sizes, axis):
    if len(sizes) == 1:
        return [x]
    return list(ctx.emit("split", [x], sizes=sizes, axis=axis))


@converter("aten::split", "aten::unsafe_split", "aten::split_with_sizes",
           "aten::unsafe_split_with_sizes")
def _split(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c.arg("dim", 0), len(x.shape))
    n = x.shape[axis]
    arg = c[1]
    if isinstance(arg, int):
        sizes = [min(arg, n - k) for k in range(0, n, arg)]
    else:
        sizes = static_ints(c, arg, "split sizes")
    return _split_sizes(ctx, c, x, sizes, axis)


@converter("aten::chunk", "aten::unsafe_chunk")
def _chunk(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c.arg("dim", 0), len(x.shape))
    n, chunks = x.shape[axis], int(c[1])
    size = -(-n // chunks)
    sizes = [min(size, n - k) for k in range(0, n, size)]
    return _split_sizes(ctx, c, x, sizes, axis)


@converter("prim::ConstantChunk")
def _constant_chunk(ctx, c):
    x = ctx.tensor(c[0])
    chunks, dim = c.node.i("chunks"), c.node.i("dim")
    axis = norm_axis(c, dim, len(x.shape))
    n = x.shape[axis]
    size = -(-n // chunks)
    return _split_sizes(ctx, c, x, [min(size, n - k) for k in range(0, n, size)], axis)


@converter("aten::tensor_split")
def _tensor_split(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c.arg("dim", 0), len(x.shape))
    n = x.shape[axis]
    arg = c[1]
    if isinstance(arg, int):
        q, r = divmod(n, arg)
        sizes = [q + 1] * r + [q] * (arg - r)
    else:
        idx = [0] + static_ints(c, arg, "indices") + [n]
        sizes = [b - a for a, b in zip(idx, idx[1:])]
    if any(s <= 0 for s in sizes):
        raise UnsupportedFeatureError(f"{c}: a part would be empty")
    return _split_sizes(ctx, c, x, sizes, axis)


@converter("aten::index")
def _index(ctx, c):
    x = ctx.tensor(c[0])
    idx = list(c[1])
    torch = _torch()
    used = [(k, t) for k, t in enumerate(idx) if t is not None]
    if len(used) != 1:
        raise UnsupportedFeatureError(f"{c}: advanced indexing with {len(used)} index tensors "
                                      "(tensorc supports one)")
    axis, t = used[0]
    if isinstance(t, torch.Tensor):
        if t.dtype == torch.bool:
            if t.dim() != 1:
                raise UnsupportedFeatureError(f"{c}: a boolean mask index of rank {t.dim()}")
            t = torch.nonzero(t).reshape(-1)
            if t.numel() == 0:
                raise UnsupportedFeatureError(f"{c}: the boolean mask selects nothing")
        t = ctx.const_tensor(t.to(torch.int64), "int64")
    else:
        if t.dtype == "bool":
            raise NonConstantInputError(f"{c}: a boolean mask computed at run time selects a "
                                        "data-dependent number of elements")
    return ctx.emit("gather", [x, t], axis=axis)


@converter("aten::index_select")
def _index_select(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c[1], len(x.shape))
    idx = ctx.tensor(c[2])
    return ctx.emit("gather", [x, idx], axis=axis)


@converter("aten::gather", "aten::take_along_dim")
def _gather(ctx, c):
    x = ctx.tensor(c[0])
    if c.kind == "aten::take_along_dim":
        idx, dim = ctx.tensor(c[1]), c.arg("dim")
    else:
        dim, idx = c[1], ctx.tensor(c[2])
    axis = norm_axis(c, dim, len(x.shape))
    return ctx.emit("gather_elements", [x, idx], axis=axis)


@converter("aten::embedding")
def _embedding(ctx, c):
    w = ctx.tensor(c[0])
    idx = ctx.tensor(c[1])
    if not dt.is_integral(idx.dtype):
        raise UnsupportedDtypeError(f"{c}: embedding indices have dtype {idx.dtype}")
    return ctx.emit("gather", [w, idx], axis=0)
