"""Converters of elementwise operators: unary math and activations, binary arithmetic and
comparisons (integer Div truncating like ONNX where tensorc floors, Pow in the base's type),
variadic Max/Min/Sum/Mean, Where, Clip, casts, Identity and inference-mode Dropout."""
import numpy as np

from tensorc.ir import dtype as dt

from .onnx_common import to_tensorc_dtype
from .onnx_registry import CONVERTERS, converter, float_only, unsupported

_UNARY = {
    "Abs": "abs", "Neg": "neg", "Exp": "exp", "Log": "log", "Sqrt": "sqrt",
    "Reciprocal": "reciprocal", "Sin": "sin", "Cos": "cos", "Tan": "tan", "Tanh": "tanh",
    "Sigmoid": "sigmoid", "Erf": "erf", "Floor": "floor", "Ceil": "ceil", "Round": "round",
    "Sign": "sign", "IsNaN": "isnan", "Not": "logical_not", "Relu": "relu",
    "Softplus": "softplus", "HardSwish": "hard_swish",
}


def _unary(op):
    def conv(ctx, n):
        return ctx.emit(op, [n.input(0)])
    return conv


for _t, _o in _UNARY.items():
    CONVERTERS[_t] = _unary(_o)


@converter("LeakyRelu")
def _leaky_relu(ctx, n):
    return ctx.emit("leaky_relu", [n.input(0)], alpha=float(n.attr("alpha", 0.01)))


@converter("Elu")
def _elu(ctx, n):
    return ctx.emit("elu", [n.input(0)], alpha=float(n.attr("alpha", 1.0)))


@converter("Selu")
def _selu(ctx, n):
    return ctx.emit("selu", [n.input(0)], alpha=float(n.attr("alpha", 1.67326319217681884765625)),
                    gamma=float(n.attr("gamma", 1.05070102214813232421875)))


@converter("HardSigmoid")
def _hard_sigmoid(ctx, n):
    return ctx.emit("hard_sigmoid", [n.input(0)], alpha=float(n.attr("alpha", 0.2)),
                    beta=float(n.attr("beta", 0.5)))


@converter("Gelu")
def _gelu(ctx, n):
    return ctx.emit("gelu", [n.input(0)], approximate=n.attr("approximate", "none"))


@converter("Mish")
def _mish(ctx, n):
    x = n.input(0)
    return ctx.emit("multiply", [x, ctx.emit("tanh", [ctx.emit("softplus", [x])])])


@converter("Swish")
def _swish(ctx, n):
    x = n.input(0)
    alpha = float(n.attr("alpha", 1.0))
    if alpha == 1.0:
        return ctx.emit("silu", [x])
    ax = ctx.emit("multiply", [x, ctx.scalar(alpha, x)])
    return ctx.emit("multiply", [x, ctx.emit("sigmoid", [ax])])


@converter("Softsign")
def _softsign(ctx, n):
    x = n.input(0)
    return ctx.emit("divide", [x, ctx.emit("add", [ctx.emit("abs", [x]), ctx.scalar(1, x)])])


@converter("ThresholdedRelu")
def _thresholded_relu(ctx, n):
    x = n.input(0)
    alpha = float(n.attr("alpha", 1.0))
    return ctx.emit("where", [ctx.emit("greater", [x, ctx.scalar(alpha, x)]), x,
                              ctx.scalar(0, x)])


@converter("Celu")
def _celu(ctx, n):
    x = n.input(0)
    alpha = float(n.attr("alpha", 1.0))
    z = ctx.emit("multiply", [x, ctx.scalar(1.0 / alpha, x)])
    return ctx.emit("multiply", [ctx.emit("elu", [z], alpha=1.0), ctx.scalar(alpha, x)])


@converter("Shrink")
def _shrink(ctx, n):
    x = n.input(0)
    bias, lambd = float(n.attr("bias", 0.0)), float(n.attr("lambd", 0.5))
    lo = ctx.emit("less", [x, ctx.scalar(-lambd, x)])
    hi = ctx.emit("greater", [x, ctx.scalar(lambd, x)])
    inner = ctx.emit("where", [hi, ctx.emit("subtract", [x, ctx.scalar(bias, x)]),
                               ctx.scalar(0, x)])
    return ctx.emit("where", [lo, ctx.emit("add", [x, ctx.scalar(bias, x)]), inner])


@converter("Sinh", "Cosh")
def _sinh_cosh(ctx, n):
    x = n.input(0)
    float_only(n, x)
    if n.op_type == "Sinh":  # (expm1(x) - expm1(-x)) / 2: exact near 0
        neg = ctx.emit("neg", [x])
        d = ctx.emit("subtract", [ctx.emit("expm1", [x]), ctx.emit("expm1", [neg])])
    else:
        d = ctx.emit("add", [ctx.emit("exp", [x]), ctx.emit("exp", [ctx.emit("neg", [x])])])
    return ctx.emit("multiply", [d, ctx.scalar(0.5, x)])


@converter("Asinh")
def _asinh(ctx, n):
    # sign(x) * log(|x| + sqrt(x^2 + 1)), symmetric so large negative x does not cancel
    x = n.input(0)
    float_only(n, x)
    a = ctx.emit("abs", [x])
    r = ctx.emit("sqrt", [ctx.emit("add", [ctx.emit("square", [a]), ctx.scalar(1, x)])])
    return ctx.emit("multiply", [ctx.emit("sign", [x]), ctx.emit("log", [ctx.emit("add", [a, r])])])


@converter("Acosh")
def _acosh(ctx, n):
    x = n.input(0)
    float_only(n, x)
    r = ctx.emit("sqrt", [ctx.emit("subtract", [ctx.emit("square", [x]), ctx.scalar(1, x)])])
    return ctx.emit("log", [ctx.emit("add", [x, r])])


@converter("Atanh")
def _atanh(ctx, n):
    # (log1p(x) - log1p(-x)) / 2
    x = n.input(0)
    float_only(n, x)
    d = ctx.emit("subtract", [ctx.emit("log1p", [x]), ctx.emit("log1p", [ctx.emit("neg", [x])])])
    return ctx.emit("multiply", [d, ctx.scalar(0.5, x)])


@converter("IsInf")
def _isinf(ctx, n):
    x = n.input(0)
    pos, neg = int(n.attr("detect_positive", 1)), int(n.attr("detect_negative", 1))
    inf = ctx.emit("isinf", [x])
    if pos and neg:
        return inf
    if not pos and not neg:
        return ctx.emit("logical_and", [inf, ctx.scalar(False, "bool")])
    side = ctx.emit("greater" if pos else "less", [x, ctx.scalar(0, x)])
    return ctx.emit("logical_and", [inf, side])


@converter("PRelu")
def _prelu(ctx, n):
    x, slope = n.input(0), n.input(1)
    return ctx.emit("prelu", [x, slope], axis=None)


_BINARY = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Equal": "equal",
           "Less": "less", "LessOrEqual": "less_equal", "Greater": "greater",
           "GreaterOrEqual": "greater_equal", "And": "logical_and", "Or": "logical_or",
           "Xor": "logical_xor"}


def _binary(op):
    def conv(ctx, n):
        return ctx.emit(op, [n.input(0), n.input(1)])
    return conv


for _t, _o in _BINARY.items():
    CONVERTERS[_t] = _binary(_o)


def trunc_divide(ctx, a, b):
    """ONNX integer Div (truncating toward zero) from tensorc's floor division:
    q = a // b, plus 1 where the remainder is nonzero and a and b have opposite signs."""
    q = ctx.emit("floor_divide", [a, b])
    if dt.is_uint(a.dtype):
        return q
    zero = ctx.scalar(0, a)
    r = ctx.emit("mod", [a, b])
    opposite = ctx.emit("not_equal", [ctx.emit("less", [a, zero]), ctx.emit("less", [b, zero])])
    fix = ctx.emit("logical_and", [ctx.emit("not_equal", [r, zero]), opposite])
    return ctx.emit("add", [q, ctx.emit("cast", [fix], dtype=q.dtype)])


@converter("Div")
def _div(ctx, n):
    a, b = n.input(0), n.input(1)
    if dt.is_float(a.dtype):
        return ctx.emit("divide", [a, b])
    return trunc_divide(ctx, a, b)


@converter("Mod")
def _mod(ctx, n):
    a, b = n.input(0), n.input(1)
    if int(n.attr("fmod", 0)) == 0:
        return ctx.emit("mod", [a, b])
    if dt.is_float(a.dtype):
        return ctx.emit("fmod", [a, b])
    # C fmod on integers: a - trunc(a / b) * b
    return ctx.emit("subtract", [a, ctx.emit("multiply", [trunc_divide(ctx, a, b), b])])


@converter("Pow")
def _pow(ctx, n):
    x, y = n.input(0), n.input(1)
    if x.dtype == y.dtype:
        return ctx.emit("power", [x, y])
    if dt.is_float(x.dtype):
        return ctx.emit("power", [x, ctx.emit("cast", [y], dtype=x.dtype)])
    if dt.is_float(y.dtype):  # integer base, float exponent: compute in float, cast back
        p = ctx.emit("power", [ctx.emit("cast", [x], dtype=y.dtype), y])
        return ctx.emit("cast", [p], dtype=x.dtype)
    return ctx.emit("power", [x, ctx.emit("cast", [y], dtype=x.dtype)])


@converter("Max", "Min", "Sum", "Mean")
def _variadic(ctx, n):
    op = {"Max": "maximum", "Min": "minimum", "Sum": "add", "Mean": "add"}[n.op_type]
    xs = [v for v in n.inputs if v is not None]
    acc = xs[0]
    for v in xs[1:]:
        acc = ctx.emit(op, [acc, v])
    if n.op_type == "Mean" and len(xs) > 1:
        acc = ctx.emit("divide", [acc, ctx.scalar(len(xs), acc)])
    if acc is xs[0] and len(xs) == 1:
        return xs[0]
    return acc


@converter("Where")
def _where(ctx, n):
    return ctx.emit("where", [n.input(0), n.input(1), n.input(2)])


@converter("Clip")
def _clip(ctx, n):
    x, lo, hi = n.input(0), n.input(1), n.input(2)
    attrs, out = {}, x
    for v, key, op in ((lo, "a_min", "maximum"), (hi, "a_max", "minimum")):
        if v is None or (v.is_const and v.data.size == 0):
            continue
        if v.is_const and v.data.size == 1:
            attrs[key] = np.asarray(v.data).reshape(()).astype(np.dtype(x.dtype)).item()
        else:
            out = ctx.emit(op, [out, v])
    if attrs:
        out = ctx.emit("clip", [out], **attrs)
    return out


@converter("Cast")
def _cast(ctx, n):
    to = to_tensorc_dtype(n.attr("to"), f"{n}: target type")
    x = n.input(0)
    if x.dtype == to:
        return x
    return ctx.emit("cast", [x], dtype=to)


@converter("CastLike")
def _cast_like(ctx, n):
    x, like = n.input(0), n.input(1)
    return x if x.dtype == like.dtype else ctx.emit("cast", [x], dtype=like.dtype)


@converter("Identity")
def _identity(ctx, n):
    return n.input(0)


@converter("Dropout")
def _dropout(ctx, n):
    x, ratio, training = n.input(0), n.input(1), n.input(2)
    train = bool(ctx.static(training, "training_mode").reshape(-1)[0]) if training is not None \
        else False
    r = float(ctx.static(ratio, "ratio").reshape(-1)[0]) if train and ratio is not None else 0.5
    if train and r != 0.0:
        unsupported(n, "training-mode dropout (random) is not supported; export the model "
                        "in inference mode")
    mask = ctx.const(np.ones(x.shape, bool)) if n.wants(1) else None
    return x, mask
