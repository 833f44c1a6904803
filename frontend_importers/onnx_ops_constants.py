"""Converters of operators whose result is known at import: Constant, ConstantOfShape,
Shape, Size, EyeLike, Range (an ``arange``) and the window functions (evaluated with ONNX's
reference implementation from their constant size)."""
import math

import numpy as np

from .errors import UnsupportedDtypeError
from .onnx_common import to_tensorc_dtype
from .onnx_context import reference_fold
from .onnx_registry import converter, rank_of, unsupported


@converter("Constant")
def _constant(ctx, n):
    from onnx import numpy_helper
    a = n.attrs
    if "value" in a:
        t = a["value"]
        to_tensorc_dtype(t.data_type, f"{n}: value")
        arr = numpy_helper.to_array(t)
    elif "value_float" in a:
        arr = np.array(a["value_float"], np.float32)
    elif "value_floats" in a:
        arr = np.array(a["value_floats"], np.float32)
    elif "value_int" in a:
        arr = np.array(a["value_int"], np.int64)
    elif "value_ints" in a:
        arr = np.array(a["value_ints"], np.int64)
    elif "sparse_value" in a:
        unsupported(n, "sparse constants are not supported")
    else:
        raise UnsupportedDtypeError(f"{n}: string constants are not supported")
    return ctx.const(arr)


@converter("ConstantOfShape")
def _constant_of_shape(ctx, n):
    from onnx import numpy_helper
    shape = ctx.static_ints(n.input(0), "input")
    t = n.attr("value")
    if t is not None:
        to_tensorc_dtype(t.data_type, f"{n}: value")
        val = numpy_helper.to_array(t).reshape(-1)
    else:
        val = np.zeros(1, np.float32)
    return ctx.const(np.full(tuple(shape), val[0], dtype=val.dtype))


@converter("Shape")
def _shape(ctx, n):
    shape = list(n.input(0).shape)
    r = len(shape)
    start, end = int(n.attr("start", 0)), n.attr("end", None)
    start = min(max(start + r if start < 0 else start, 0), r)
    end = r if end is None else int(end)
    end = min(max(end + r if end < 0 else end, 0), r)
    return ctx.const(np.array(shape[start:end], np.int64))


@converter("Size")
def _size(ctx, n):
    return ctx.const(np.array(int(np.prod(n.input(0).shape, dtype=np.int64)), np.int64))


@converter("EyeLike")
def _eye_like(ctx, n):
    x = n.input(0)
    if rank_of(x) != 2:
        raise ValueError(f"{n}: input must be 2-D, got shape {x.shape}")
    dtype = to_tensorc_dtype(n.attr("dtype"), f"{n}: dtype") if n.attr("dtype") is not None \
        else x.dtype
    return ctx.const(np.eye(x.shape[0], x.shape[1], k=int(n.attr("k", 0)), dtype=dtype))


@converter("Range")
def _range(ctx, n):
    vals = [ctx.static(n.input(k), w).reshape(()) for k, w in
            enumerate(("start", "limit", "delta"))]
    dtype = n.input(0).dtype
    start, limit, delta = (v.item() for v in vals)
    count = max(int(math.ceil((limit - start) / delta)), 0)
    if count == 0:
        unsupported(n, f"Range({start}, {limit}, {delta}) is empty; tensorc does not support "
                        "empty tensors")
    return ctx.emit("arange", [], start=start, stop=start + count * delta, step=delta,
                    dtype=dtype)


@converter("HannWindow", "HammingWindow", "BlackmanWindow")
def _window(ctx, n):
    """Window functions depend only on their (constant) size: evaluated at import with ONNX's
    reference implementation, like any constant node."""
    ctx.static(n.input(0), "size")
    return reference_fold(ctx, n, max(n.opset, 17))
