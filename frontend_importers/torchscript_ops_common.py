"""Helpers the TorchScript converter families share.

Operands reach converters as graph values, constant torch tensors or Python numbers; these
helpers give all three one view of shape and dtype and apply torch's type promotion, so each
converter follows torch's semantics without special-casing where an operand came from.
"""
from tensorc.graph.ir import Value
from tensorc.ir import dtype as dt

from .errors import ImporterError, NonConstantInputError
from .torchscript_dtypes import _torch, tc_dtype, torch_dtype


def _is_tensor(x):
    return isinstance(x, Value) or isinstance(x, _torch().Tensor)


def shape_of(x):
    if isinstance(x, Value):
        return tuple(x.shape)
    torch = _torch()
    if isinstance(x, torch.Tensor):
        return tuple(int(d) for d in x.shape)
    return ()


def rank(x):
    return len(shape_of(x))


def dtype_of(x):
    if isinstance(x, Value):
        return x.dtype
    torch = _torch()
    if isinstance(x, torch.Tensor):
        return tc_dtype(x.dtype)
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int):
        return "int64"
    return "float32"


def norm_axis(c, d, r, what="dim"):
    if not isinstance(d, int) or isinstance(d, bool):
        raise NonConstantInputError(f"{c}: {what} must be a static int, got {d!r}")
    if r == 0 and d in (0, -1):
        return 0
    if not -r <= d < r:
        raise ImporterError(f"{c}: {what} {d} is out of range for a tensor of rank {r}")
    return d + r if d < 0 else d


def norm_axes(c, dims, r):
    if dims is None:
        return None
    if isinstance(dims, int):
        dims = [dims]
    dims = list(dims)
    if not dims:
        return None
    return sorted({norm_axis(c, d, r) for d in dims})


def _proto(x):
    torch = _torch()
    if isinstance(x, Value):
        return torch.empty((1,) * len(x.shape), dtype=torch_dtype(x.dtype), device="meta")
    if isinstance(x, torch.Tensor):
        return torch.empty(tuple(x.shape), dtype=x.dtype, device="meta")
    return x


def result_dtype(*xs):
    """torch.result_type of the operands (graph values, constant tensors, Python numbers)."""
    torch = _torch()
    xs = [x for x in xs if x is not None]
    tensors = [x for x in xs if _is_tensor(x)]
    if not tensors:
        return dtype_of(xs[0]) if xs else "float32"
    # tensors with dims first, then 0-dim ones, then scalars: torch's categories
    acc = _proto(tensors[0])
    for x in xs:
        if x is tensors[0]:
            continue
        t = torch.result_type(acc, _proto(x))
        acc = torch.empty((1,) * max(acc.dim(), rank(x)), dtype=t, device="meta")
    return tc_dtype(acc.dtype)


def as_float(ctx, x):
    v = ctx.tensor(x)
    return ctx.cast(v, "float32") if not dt.is_float(v.dtype) else v


def static_ints(c, v, what):
    torch = _torch()
    if isinstance(v, torch.Tensor):
        v = v.tolist()
    if isinstance(v, int) and not isinstance(v, bool):
        return [v]
    if isinstance(v, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool)
                                            for x in v):
        return list(v)
    raise NonConstantInputError(f"{c}: {what} must be static ints (shapes are static in "
                                f"tensorc), got {v!r}")


def _pairs(v, n):
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    if len(v) == 1:
        v = v * n
    return [int(x) for x in v]


def _emit_reshape(ctx, v, shape):
    shape = [int(d) for d in shape]
    if tuple(shape) == tuple(v.shape):
        return v
    return ctx.emit("reshape", [v], newshape=shape)


def _static_tensor(t):
    return isinstance(t, _torch().Tensor)


def _binary_operands(ctx, a, b, dtype=None):
    rt = dtype or result_dtype(a, b)
    return ctx.tensor(a, rt), ctx.tensor(b, rt), rt


def _scaled(ctx, x, alpha, rt):
    """alpha * x for a static or graph operand."""
    if alpha == 1:
        return x
    if isinstance(x, Value):
        return ctx.emit("multiply", [x, ctx.scalar(alpha, rt)])
    torch = _torch()
    if isinstance(x, torch.Tensor):
        return x * alpha
    return x * alpha
