"""Converters of shape ops (view/reshape, flatten, permute, squeeze, expand, repeat, cat,
stack), padding, triangular masks, and the tensors made from another's shape.

Shapes are static, so size arguments must be static ints and ``-1`` is resolved here; the
``*_like``/``new_*`` ops make constants, not graph nodes.
"""
import numpy as np

from tensorc.graph.ir import Value
from tensorc.ir import dtype as dt

from .errors import ImporterError, UnsupportedFeatureError
from .torchscript_dtypes import _torch, torch_dtype
from .torchscript_ops_common import (_emit_reshape, _static_tensor, dtype_of, norm_axis,
                                     result_dtype, shape_of, static_ints)
from .torchscript_registry import converter

# ------------------------------------------------------------------------------ shapes

def _infer_reshape(c, x, shape):
    shape = static_ints(c, shape, "shape")
    total = int(np.prod(x.shape, dtype=np.int64))
    if shape.count(-1) == 1:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise ImporterError(f"{c}: cannot view a tensor of shape {x.shape} as {shape}")
        shape[shape.index(-1)] = total // known
    if int(np.prod(shape, dtype=np.int64)) != total:
        raise ImporterError(f"{c}: cannot view a tensor of shape {x.shape} ({total} elements) "
                            f"as {shape}")
    return shape


@converter("aten::view", "aten::reshape", "aten::_reshape_alias", "aten::_unsafe_view")
def _view(ctx, c):
    x = ctx.tensor(c[0])
    if c.kind == "aten::view" and c.overload == "dtype":
        raise UnsupportedFeatureError(f"{c}: view(dtype) reinterprets bits")
    return _emit_reshape(ctx, x, _infer_reshape(c, x, c[1]))


@converter("aten::view_as", "aten::reshape_as")
def _view_as(ctx, c):
    x = ctx.tensor(c[0])
    return _emit_reshape(ctx, x, shape_of(c[1]))


@converter("aten::flatten")
def _flatten(ctx, c):
    x = ctx.tensor(c[0])
    r = len(x.shape)
    if r == 0:
        return _emit_reshape(ctx, x, [1])
    s = norm_axis(c, c.arg("start_dim", 0), r)
    e = norm_axis(c, c.arg("end_dim", -1), r)
    shape = list(x.shape[:s]) + [int(np.prod(x.shape[s:e + 1], dtype=np.int64))] + \
        list(x.shape[e + 1:])
    return _emit_reshape(ctx, x, shape)


@converter("aten::unflatten")
def _unflatten(ctx, c):
    x = ctx.tensor(c[0])
    d = norm_axis(c, c[1], len(x.shape))
    sizes = static_ints(c, c[2], "sizes")
    if -1 in sizes:
        known = int(np.prod([s for s in sizes if s != -1]))
        sizes[sizes.index(-1)] = x.shape[d] // known
    return _emit_reshape(ctx, x, list(x.shape[:d]) + sizes + list(x.shape[d + 1:]))


@converter("aten::permute")
def _permute(ctx, c):
    x = ctx.tensor(c[0])
    perm = [norm_axis(c, d, len(x.shape)) for d in static_ints(c, c[1], "dims")]
    if perm == list(range(len(x.shape))):
        return x
    return ctx.emit("transpose", [x], perm=perm)


@converter("aten::transpose", "aten::swapaxes", "aten::swapdims")
def _transpose(ctx, c):
    x = ctx.tensor(c[0])
    r = len(x.shape)
    if r < 2:
        return x
    a, b = norm_axis(c, c[1], r), norm_axis(c, c[2], r)
    if a == b:
        return x
    perm = list(range(r))
    perm[a], perm[b] = perm[b], perm[a]
    return ctx.emit("transpose", [x], perm=perm)


@converter("aten::unsqueeze")
def _unsqueeze(ctx, c):
    x = ctx.tensor(c[0])
    d = norm_axis(c, c[1], len(x.shape) + 1)
    return _emit_reshape(ctx, x, list(x.shape[:d]) + [1] + list(x.shape[d:]))


@converter("aten::squeeze")
def _squeeze(ctx, c):
    x = ctx.tensor(c[0])
    r = len(x.shape)
    dims = c[1] if len(c.args) > 1 else None
    if dims is None:
        axes = [d for d in range(r) if x.shape[d] == 1]
    else:
        dims = dims if isinstance(dims, (list, tuple)) else [dims]
        axes = [norm_axis(c, d, r) for d in dims]
        axes = [d for d in axes if x.shape[d] == 1]   # torch: squeezing a non-1 dim is a no-op
    return _emit_reshape(ctx, x, [n for d, n in enumerate(x.shape) if d not in axes])


@converter("aten::expand", "aten::broadcast_to")
def _expand(ctx, c):
    x = ctx.tensor(c[0])
    size = static_ints(c, c[1], "size")
    lead = len(size) - len(x.shape)
    if lead < 0:
        raise ImporterError(f"{c}: cannot expand a tensor of shape {x.shape} to {size}")
    shape = [x.shape[d - lead] if s == -1 else s for d, s in enumerate(size)]
    if tuple(shape) == tuple(x.shape):
        return x
    return ctx.emit("broadcast_to", [x], shape=shape)


@converter("aten::expand_as")
def _expand_as(ctx, c):
    x = ctx.tensor(c[0])
    shape = list(shape_of(c[1]))
    if tuple(shape) == tuple(x.shape):
        return x
    return ctx.emit("broadcast_to", [x], shape=shape)


@converter("aten::repeat", "aten::tile")
def _repeat(ctx, c):
    x = ctx.tensor(c[0])
    reps = static_ints(c, c[1], "repeats")
    if c.kind == "aten::repeat" and len(reps) < len(x.shape):
        raise ImporterError(f"{c}: repeat needs at least {len(x.shape)} repeat counts")
    if all(r == 1 for r in reps) and len(reps) <= len(x.shape):
        return x
    return ctx.emit("tile", [x], reps=reps)


@converter("aten::repeat_interleave")
def _repeat_interleave(ctx, c):
    x = ctx.tensor(c[0])
    reps = c[1]
    dim = c.arg("dim")
    if not isinstance(reps, int):
        raise UnsupportedFeatureError(f"{c}: repeat_interleave with per-element repeats")
    if dim is None:
        x = _emit_reshape(ctx, x, [int(np.prod(x.shape))])
        dim = 0
    d = norm_axis(c, dim, len(x.shape))
    y = _emit_reshape(ctx, x, list(x.shape[:d + 1]) + [1] + list(x.shape[d + 1:]))
    shape = list(x.shape[:d + 1]) + [reps] + list(x.shape[d + 1:])
    y = ctx.emit("broadcast_to", [y], shape=shape)
    return _emit_reshape(ctx, y, list(x.shape[:d]) + [x.shape[d] * reps] + list(x.shape[d + 1:]))


@converter("aten::cat", "aten::concat", "aten::concatenate")
def _cat(ctx, c):
    ts = [t for t in c[0] if not (_static_tensor(t) and t.dim() == 1 and t.numel() == 0)]
    rt = result_dtype(*ts)
    vals = [ctx.tensor(t, rt) for t in ts]
    if len(vals) == 1:
        return vals[0]
    axis = norm_axis(c, c.arg("dim", 0), len(vals[0].shape))
    return ctx.emit("concat", vals, axis=axis)


@converter("aten::stack")
def _stack(ctx, c):
    ts = list(c[0])
    rt = result_dtype(*ts)
    vals = [ctx.tensor(t, rt) for t in ts]
    r = len(vals[0].shape)
    axis = norm_axis(c, c.arg("dim", 0), r + 1)
    parts = [_emit_reshape(ctx, v, list(v.shape[:axis]) + [1] + list(v.shape[axis:]))
             for v in vals]
    if len(parts) == 1:
        return parts[0]
    return ctx.emit("concat", parts, axis=axis)


# ------------------------------------------------------------------------ padding, masks, fills

@converter("aten::constant_pad_nd", "aten::pad", "aten::reflection_pad1d",
           "aten::reflection_pad2d", "aten::replication_pad1d", "aten::replication_pad2d",
           "aten::zero_pad2d")
def _pad(ctx, c):
    x = ctx.tensor(c[0])
    pad = static_ints(c, c[1], "pad")
    mode = {"aten::reflection_pad1d": "reflect", "aten::reflection_pad2d": "reflect",
            "aten::replication_pad1d": "replicate", "aten::replication_pad2d": "replicate"}.get(
        c.kind, c.arg("mode", "constant"))
    value = c.arg("value", 0.0)
    value = 0.0 if value is None else value
    if len(pad) % 2 or len(pad) // 2 > len(x.shape):
        raise ImporterError(f"{c}: pad {pad} does not fit a tensor of rank {len(x.shape)}")
    widths = [(0, 0)] * len(x.shape)
    for k in range(len(pad) // 2):
        widths[len(x.shape) - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    modes = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}
    if mode not in modes:
        raise UnsupportedFeatureError(f"{c}: pad mode {mode!r}")
    if all(p == (0, 0) for p in widths):
        return x
    if modes[mode] == "constant":
        return ctx.emit("pad", [x], pad_width=widths, mode="constant",
                        value=float(value) if dt.is_float(x.dtype) else int(value))
    return ctx.emit("pad", [x], pad_width=widths, mode=modes[mode])


@converter("aten::tril", "aten::triu")
def _tril(ctx, c):
    x = ctx.tensor(c[0])
    k = int(c.arg("diagonal", 0))
    n, m = x.shape[-2:]
    rows = np.arange(n)[:, None]
    cols = np.arange(m)[None, :]
    mask = (cols - rows <= k) if c.kind == "aten::tril" else (cols - rows >= k)
    zero = ctx.scalar(0, x.dtype) if x.dtype != "bool" else ctx.const(np.array(False))
    return ctx.emit("where", [ctx.const(mask), x, zero])


def _static_like(c, fill):
    torch = _torch()
    x = c[0]
    dtype = c.arg("dtype")
    d = torch_dtype(dtype) if dtype is not None else torch_dtype(dtype_of(x))
    return torch.full(shape_of(x), fill, dtype=d)


@converter("aten::zeros_like")
def _zeros_like(ctx, c):
    return _static_like(c, 0)


@converter("aten::ones_like")
def _ones_like(ctx, c):
    return _static_like(c, 1)


@converter("aten::full_like")
def _full_like(ctx, c):
    return _static_like(c, c[1])


@converter("aten::new_zeros", "aten::new_ones", "aten::new_full", "aten::new_empty")
def _new_filled(ctx, c):
    torch = _torch()
    size = static_ints(c, c[1], "size")
    dtype = c.arg("dtype")
    d = torch_dtype(dtype) if dtype is not None else torch_dtype(dtype_of(c[0]))
    fill = {"aten::new_zeros": 0, "aten::new_ones": 1, "aten::new_empty": 0}.get(c.kind)
    if fill is None:
        fill = c[2]
    return torch.full(size, fill, dtype=d)


@converter("aten::fill", "aten::zero")
def _fill(ctx, c):
    """x.fill_(v) / x.zero_(): a constant of x's shape (the in-place form rebinds x)."""
    x = c[0]
    torch = _torch()
    v = 0 if c.kind == "aten::zero" else c[1]
    if isinstance(v, Value):
        return ctx.emit("broadcast_to", [ctx.cast(v, x.dtype)], shape=list(x.shape))
    if isinstance(v, torch.Tensor):
        v = v.item()
    from tensorc.ir import dtype as tdt
    return ctx.const(np.full(x.shape, v, dtype=np.dtype(tdt.to_numpy(x.dtype))))
