"""Converters of activation functions and softmax.

Where tensorc has no operator taking torch's parameter (elu's ``input_scale``, softplus's
``beta``, celu, mish, log_sigmoid) the activation is composed from elementwise ops, so the
parameters keep torch's meaning.
"""
from tensorc.ir import dtype as dt

from .errors import UnsupportedFeatureError
from .torchscript_dtypes import tc_dtype
from .torchscript_ops_common import as_float, norm_axis
from .torchscript_registry import converter


@converter("aten::hardtanh", "aten::relu6")
def _hardtanh(ctx, c):
    x = ctx.tensor(c[0])
    lo, hi = (0.0, 6.0) if c.kind == "aten::relu6" else \
        (c.arg("min_val", -1.0), c.arg("max_val", 1.0))
    if not dt.is_float(x.dtype):
        x = ctx.cast(x, "float32")
    return ctx.emit("clip", [x], a_min=float(lo), a_max=float(hi))


@converter("aten::leaky_relu")
def _leaky_relu(ctx, c):
    return ctx.emit("leaky_relu", [as_float(ctx, c[0])],
                    alpha=float(c.arg("negative_slope", 0.01)))


@converter("aten::gelu")
def _gelu(ctx, c):
    approx = c.arg("approximate", "none") or "none"
    if approx not in ("none", "tanh"):
        raise UnsupportedFeatureError(f"{c}: gelu approximate={approx!r}")
    return ctx.emit("gelu", [as_float(ctx, c[0])], approximate=approx)


@converter("aten::elu")
def _elu(ctx, c):
    x = as_float(ctx, c[0])
    alpha, scale, iscale = (float(c.arg("alpha", 1.0)), float(c.arg("scale", 1.0)),
                            float(c.arg("input_scale", 1.0)))
    if iscale != 1.0:
        # scale * (x if x > 0 else alpha * (exp(input_scale * x) - 1))
        neg = ctx.emit("multiply", [ctx.emit("expm1", [ctx.emit("multiply", [
            x, ctx.scalar(iscale, x.dtype)])]), ctx.scalar(alpha, x.dtype)])
        y = ctx.emit("where", [ctx.emit("greater", [x, ctx.scalar(0, x.dtype)]), x, neg])
    else:
        y = ctx.emit("elu", [x], alpha=alpha)
    if scale != 1.0:
        y = ctx.emit("multiply", [y, ctx.scalar(scale, x.dtype)])
    return y


@converter("aten::selu")
def _selu(ctx, c):
    return ctx.emit("selu", [as_float(ctx, c[0])])


@converter("aten::celu")
def _celu(ctx, c):
    x = as_float(ctx, c[0])
    alpha = float(c.arg("alpha", 1.0))
    z = ctx.emit("multiply", [x, ctx.scalar(1.0 / alpha, x.dtype)])
    return ctx.emit("multiply", [ctx.emit("elu", [z], alpha=1.0), ctx.scalar(alpha, x.dtype)])


@converter("aten::hardsigmoid")
def _hardsigmoid(ctx, c):
    return ctx.emit("hard_sigmoid", [as_float(ctx, c[0])], alpha=1.0 / 6.0, beta=0.5)


@converter("aten::softplus")
def _softplus(ctx, c):
    x = as_float(ctx, c[0])
    beta = float(c.arg("beta", 1.0))
    if beta == 1.0:
        return ctx.emit("softplus", [x])
    y = ctx.emit("softplus", [ctx.emit("multiply", [x, ctx.scalar(beta, x.dtype)])])
    return ctx.emit("multiply", [y, ctx.scalar(1.0 / beta, x.dtype)])


@converter("aten::mish")
def _mish(ctx, c):
    x = as_float(ctx, c[0])
    return ctx.emit("multiply", [x, ctx.emit("tanh", [ctx.emit("softplus", [x])])])


@converter("aten::log_sigmoid")
def _log_sigmoid(ctx, c):
    x = as_float(ctx, c[0])
    return ctx.emit("neg", [ctx.emit("softplus", [ctx.emit("neg", [x])])])


@converter("aten::prelu")
def _prelu(ctx, c):
    x = as_float(ctx, c[0])
    w = ctx.tensor(c[1], x.dtype)
    if w.shape == (1,) or w.shape == ():
        return ctx.emit("prelu", [x, w], axis=None)
    return ctx.emit("prelu", [x, w], axis=1 if len(x.shape) > 1 else 0)


@converter("aten::threshold")
def _threshold(ctx, c):
    x = ctx.tensor(c[0])
    th, val = c.arg("threshold"), c.arg("value")
    return ctx.emit("where", [ctx.emit("greater", [x, ctx.scalar(th, x.dtype)]), x,
                              ctx.scalar(val, x.dtype)])


@converter("aten::glu")
def _glu(ctx, c):
    x = as_float(ctx, c[0])
    a, b = ctx.emit("split", [x], sizes=2, axis=c.arg("dim", -1))
    return ctx.emit("multiply", [a, ctx.emit("sigmoid", [b])])


@converter("aten::softmax", "aten::log_softmax", "aten::_softmax", "aten::_log_softmax",
           "aten::special_softmax")
def _softmax(ctx, c):
    x = ctx.tensor(c[0])
    dtype = c.arg("dtype")
    if dtype is not None:
        x = ctx.cast(x, tc_dtype(dtype))
    elif not dt.is_float(x.dtype):
        x = ctx.cast(x, "float32")
    axis = norm_axis(c, c[1], len(x.shape))
    op = "log_softmax" if "log_softmax" in c.kind else "softmax"
    return ctx.emit(op, [x], axis=axis)
