"""Converters of reductions: sum/mean/prod, max/min and their arg forms, logsumexp, cumsum,
norms, var/std and all/any.

torch sums integers in int64 and defines ``norm``'s ``p`` and ``var``'s ``correction`` its own
way; the converters translate both, so results match torch in dtype as well as value.
"""
import math

import numpy as np

from tensorc.ir import dtype as dt

from .errors import UnsupportedDtypeError, UnsupportedFeatureError
from .torchscript_dtypes import _torch, tc_dtype
from .torchscript_ops_common import (_binary_operands, _emit_reshape, _is_tensor, as_float,
                                     norm_axes, norm_axis)
from .torchscript_registry import converter


def _reduce_dims(c, x, dims):
    torch = _torch()
    if isinstance(dims, torch.Tensor):
        dims = dims.tolist()
    return norm_axes(c, dims, len(x.shape))


def _reduce(ctx, c, op, x, dims, keepdim, dtype=None):
    axes = _reduce_dims(c, x, dims)
    if len(x.shape) == 0:
        return x
    if op == "mean" and not dt.is_float(x.dtype) and dtype is None:
        raise UnsupportedDtypeError(f"{c}: mean of a {x.dtype} tensor (torch requires a "
                                    "floating-point or complex input)")
    if dtype is not None:
        x = ctx.cast(x, tc_dtype(dtype))
    elif op in ("sum", "prod") and (dt.is_integral(x.dtype) or x.dtype == "bool"):
        x = ctx.cast(x, "int64")    # torch sums integers (and bools) in int64
    return ctx.emit(op, [x], axis=axes, keepdims=bool(keepdim))


@converter("aten::sum", "aten::mean", "aten::nansum")
def _sum_mean(ctx, c):
    x = ctx.tensor(c[0])
    op = "mean" if c.kind == "aten::mean" else "sum"
    if c.kind == "aten::nansum":
        raise UnsupportedFeatureError(f"{c}: nansum")
    return _reduce(ctx, c, op, x, c.arg("dim"), c.arg("keepdim", False), c.arg("dtype"))


@converter("aten::prod")
def _prod(ctx, c):
    x = ctx.tensor(c[0])
    return _reduce(ctx, c, "prod", x, c.arg("dim"), c.arg("keepdim", False), c.arg("dtype"))


@converter("aten::amax", "aten::amin")
def _amax(ctx, c):
    x = ctx.tensor(c[0])
    return _reduce(ctx, c, "max" if c.kind == "aten::amax" else "min", x, c.arg("dim"),
                   c.arg("keepdim", False))


@converter("aten::max", "aten::min")
def _max_min(ctx, c):
    op = "max" if c.kind == "aten::max" else "min"
    if c.overload == "other" or (len(c.args) == 2 and _is_tensor(c[1])):
        a, b, _ = _binary_operands(ctx, c[0], c[1])
        return ctx.emit("maximum" if op == "max" else "minimum", [a, b])
    x = ctx.tensor(c[0])
    if len(c.args) == 1:
        return _reduce(ctx, c, op, x, None, False)
    dim = norm_axis(c, c[1], len(x.shape))
    keep = bool(c.arg("keepdim", False))
    values = ctx.emit(op, [x], axis=[dim], keepdims=keep)
    indices = ctx.emit("argmax" if op == "max" else "argmin", [x], axis=dim, keepdims=keep)
    return [values, indices]


@converter("aten::argmax", "aten::argmin")
def _argmax(ctx, c):
    x = ctx.tensor(c[0])
    dim = c.arg("dim")
    keep = bool(c.arg("keepdim", False))
    op = "argmax" if c.kind == "aten::argmax" else "argmin"
    if dim is None:
        y = ctx.emit(op, [x], axis=None, keepdims=False)
        if keep:
            y = _emit_reshape(ctx, y, [1] * len(x.shape))
        return y
    return ctx.emit(op, [x], axis=norm_axis(c, dim, len(x.shape)), keepdims=keep)


@converter("aten::logsumexp")
def _logsumexp(ctx, c):
    x = as_float(ctx, c[0])
    return ctx.emit("log_sum_exp", [x], axis=_reduce_dims(c, x, c.arg("dim")),
                    keepdims=bool(c.arg("keepdim", False)))


@converter("aten::cumsum")
def _cumsum(ctx, c):
    x = ctx.tensor(c[0])
    dtype = c.arg("dtype")
    d = tc_dtype(dtype) if dtype is not None else \
        ("int64" if dt.is_integral(x.dtype) or x.dtype == "bool" else x.dtype)
    return ctx.emit("cumsum", [ctx.cast(x, d)], axis=norm_axis(c, c[1], len(x.shape)))


def _norm(ctx, c, x, p, dims, keepdim, dtype=None):
    x = ctx.tensor(x)
    if dtype is not None:
        x = ctx.cast(x, tc_dtype(dtype))
    elif not dt.is_float(x.dtype):
        raise UnsupportedDtypeError(f"{c}: norm of a {x.dtype} tensor")
    axes = _reduce_dims(c, x, dims)
    keep = bool(keepdim)
    p = 2.0 if p is None else p
    if isinstance(p, str):
        if p != "fro":
            raise UnsupportedFeatureError(f"{c}: norm p={p!r}")
        p = 2.0
    p = float(p)
    if p == 2.0:
        return ctx.emit("l2", [x], axis=axes, keepdims=keep)
    if p == 1.0:
        return ctx.emit("l1", [x], axis=axes, keepdims=keep)
    a = ctx.emit("abs", [x])
    if p == math.inf:
        return ctx.emit("max", [a], axis=axes, keepdims=keep)
    if p == -math.inf:
        return ctx.emit("min", [a], axis=axes, keepdims=keep)
    if p == 0.0:
        nz = ctx.cast(ctx.emit("not_equal", [x, ctx.scalar(0, x.dtype)]), x.dtype)
        return ctx.emit("sum", [nz], axis=axes, keepdims=keep)
    s = ctx.emit("sum", [ctx.emit("power", [a, ctx.scalar(p, x.dtype)])], axis=axes,
                 keepdims=keep)
    return ctx.emit("power", [s, ctx.scalar(1.0 / p, x.dtype)])


@converter("aten::norm")
def _norm_conv(ctx, c):
    return _norm(ctx, c, c[0], c.arg("p"), c.arg("dim"), c.arg("keepdim", False),
                 c.arg("dtype"))


@converter("aten::linalg_vector_norm")
def _vector_norm(ctx, c):
    return _norm(ctx, c, c[0], c.arg("ord", 2), c.arg("dim"), c.arg("keepdim", False),
                 c.arg("dtype"))


@converter("aten::frobenius_norm")
def _frobenius(ctx, c):
    return _norm(ctx, c, c[0], 2.0, c.arg("dim"), c.arg("keepdim", False))


def _var(ctx, c, x, dims, correction, keepdim):
    x = as_float(ctx, x)
    axes = _reduce_dims(c, x, dims)
    reduced = axes if axes is not None else range(len(x.shape))
    count = int(np.prod([x.shape[a] for a in reduced]))
    m = ctx.emit("mean", [x], axis=axes, keepdims=True)
    d = ctx.emit("subtract", [x, m])
    s = ctx.emit("sum", [ctx.emit("square", [d])], axis=axes, keepdims=bool(keepdim))
    return ctx.emit("divide", [s, ctx.scalar(float(max(count - correction, 0)), x.dtype)])


def _correction(c):
    if c.has("correction"):
        corr = c.arg("correction")
        return 1.0 if corr is None else float(corr)
    return 1.0 if c.arg("unbiased", True) else 0.0


@converter("aten::var", "aten::std")
def _var_std(ctx, c):
    v = _var(ctx, c, c[0], c.arg("dim"), _correction(c), c.arg("keepdim", False))
    return ctx.emit("sqrt", [v]) if c.kind == "aten::std" else v


@converter("aten::var_mean", "aten::std_mean")
def _var_mean(ctx, c):
    x = as_float(ctx, c[0])
    v = _var(ctx, c, x, c.arg("dim"), _correction(c), c.arg("keepdim", False))
    if c.kind == "aten::std_mean":
        v = ctx.emit("sqrt", [v])
    m = ctx.emit("mean", [x], axis=_reduce_dims(c, x, c.arg("dim")),
                 keepdims=bool(c.arg("keepdim", False)))
    return [v, m]


@converter("aten::all", "aten::any")
def _all_any(ctx, c):
    x = ctx.tensor(c[0])
    b = x if x.dtype == "bool" else ctx.emit("not_equal", [x, ctx.scalar(0, x.dtype)])
    i = ctx.cast(b, "int32")
    dims = c.arg("dim")
    op = "min" if c.kind == "aten::all" else "max"
    r = ctx.emit(op, [i], axis=_reduce_dims(c, x, dims), keepdims=bool(c.arg("keepdim", False)))
    return ctx.cast(r, "bool")
