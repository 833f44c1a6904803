"""Shape and axis bookkeeping shared by the operator modules.

Every operator validates its attributes here, up front, so a wrong axis or an incompatible
shape fails with a ValueError that names the operator, the tensor and the offending axis or
shape, instead of surfacing later as an out-of-bounds read found by bound checking.
"""
import math

from ..ir import dtype as dt
from ..te.tensor import Tensor

#: Tags of computes that only move or map elements one to one (no reduction, no data reuse):
#: a graph compiler may inline them into their consumers, and the schedules here do.
INJECTIVE_TAGS = ("elemwise", "broadcast", "injective")


def is_injective(tag):
    return tag in INJECTIVE_TAGS


def accumulation_dtype(dtype):
    """The type that sums and products of ``dtype`` values accumulate in before the result is
    rounded back: float32 for float16 (as numpy's float16 matmul and sum and ONNX Runtime
    do: a float16 running total of 1000 terms drifts by tens of ulps), else ``dtype``."""
    return "float32" if dt.check(dtype) == "float16" else dtype


def check_tensor(op, x, what="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {what} must be a te.Tensor, got {type(x).__name__} {x!r}")
    return x


def normalize_axis(op, x, axis, ndim=None):
    """axis in [-ndim, ndim) as a non-negative int; ``ndim`` defaults to x's rank."""
    ndim = x.ndim if ndim is None else ndim
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"{op}: axis must be an int, got {type(axis).__name__} {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for tensor {x.name!r} of shape "
                         f"{x.shape} (valid: {-ndim} to {ndim - 1})")
    return axis + ndim if axis < 0 else axis


def normalize_axes(op, x, axis):
    """A sorted tuple of distinct non-negative axes; None means all axes."""
    if axis is None:
        return tuple(range(x.ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = tuple(normalize_axis(op, x, a) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: axes {tuple(axes)} of tensor {x.name!r} name the same axis "
                         "twice")
    return tuple(sorted(out))


def broadcast_shape(op, tensors):
    """numpy's broadcast of the shapes of ``tensors`` (te.Tensor or Python scalars)."""
    shapes = [(t.name, t.shape) for t in tensors if isinstance(t, Tensor)]
    ndim = max((len(s) for _, s in shapes), default=0)
    out = [1] * ndim
    owner = [None] * ndim
    for name, shape in shapes:
        for d, n in enumerate(shape, ndim - len(shape)):
            if n == 1:
                continue
            if out[d] not in (1, n):
                raise ValueError(f"{op}: cannot broadcast tensor {name!r} of shape {shape} "
                                 f"with tensor {owner[d]!r}: axis {d - ndim} has extent {n} "
                                 f"there and {out[d]} in {owner[d]!r}")
            out[d], owner[d] = n, name
    return tuple(out)


def broadcast_index(x, index):
    """The element of ``x`` that output ``index`` reads under numpy broadcasting."""
    lead = len(index) - x.ndim
    return tuple(0 if n == 1 else i for n, i in zip(x.shape, index[lead:]))


def read_broadcast(x, index):
    """x at a broadcast output index; a Python scalar is returned as it is."""
    if isinstance(x, Tensor):
        return x[broadcast_index(x, index)]
    return x


def prod(xs):
    return math.prod(xs)


def ravel(index, shape):
    """Row-major flat offset of ``index`` in ``shape`` (an expression)."""
    flat = 0
    for i, n in zip(index, shape):
        flat = flat * n + i
    return flat


def unravel(flat, shape):
    """Row-major multi-index of flat offset ``flat`` in ``shape``."""
    out = []
    for d in range(len(shape) - 1, 0, -1):
        out.append(flat % shape[d] if shape[d] != 1 else 0)
        flat = flat // shape[d]
    if shape:
        out.append(flat)  # the outermost index needs no modulo: flat < prod(shape)
    return tuple(reversed(out))


def static_int(op, what, v):
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{op}: {what} must be an int, got {type(v).__name__} {v!r}")
    return v


def static_ints(op, what, v, n, minimum=1):
    """v (an int, repeated, or a sequence of n ints) as a tuple of n ints >= ``minimum``:
    strides, dilations, kernel sizes."""
    if isinstance(v, bool):
        raise TypeError(f"{op}: {what} must be an int or a tuple of {n} ints, got {v!r}")
    if isinstance(v, int):
        v = (v,) * n
    try:
        v = tuple(v)
    except TypeError:
        raise TypeError(f"{op}: {what} must be an int or a tuple of {n} ints, got "
                        f"{type(v).__name__} {v!r}") from None
    if len(v) != n or any(isinstance(x, bool) or not isinstance(x, int) for x in v):
        raise ValueError(f"{op}: {what} must be an int or a tuple of {n} ints, got {v!r}")
    if any(x < minimum for x in v):
        raise ValueError(f"{op}: {what} must be {'positive' if minimum == 1 else f'>= {minimum}'}"
                         f", got {v!r}")
    return v
