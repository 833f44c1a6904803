"""Per-operator converters: ONNX node -> graph nodes naming ``tensorc.ops`` operators.

A converter is ``f(ctx, n) -> output Values`` (one per ONNX output, None for unrequested
optional ones), registered in ``CONVERTERS`` under the ONNX op type. ``n`` is an
``onnx_importer.NodeView`` (inputs as graph Values, attributes as Python values, the opset);
``ctx.emit(op, inputs, **attrs)`` adds ``ops.<op>(*inputs, **attrs)`` (or folds it when every
input is a constant), ``ctx.static(v, what)`` reads an operand that must be a constant.

Where ONNX and tensorc conventions differ the converter translates: pads lists
([x1_begin, x2_begin, ..., x1_end, ...]) become per-axis pairs, auto_pad is resolved against
the static input shape, integer Div truncates (ONNX) where tensorc floors, Pow takes the
base's type, opset-dependent operand forms (axes as attribute or input, Split's num_outputs,
GroupNormalization's per-group scale in opset 18) are normalised.
"""
import math
import string

import numpy as np

from tensorc.ir import dtype as dt

from .errors import UnsupportedDtypeError, UnsupportedFeatureError
from .onnx_importer import to_tensorc_dtype

CONVERTERS = {}


def converter(*op_types):
    def deco(fn):
        for t in op_types:
            CONVERTERS[t] = fn
        return fn
    return deco


def _unsupported(n, what):
    raise UnsupportedFeatureError(f"{n}: {what}")


def _rank(v):
    return len(v.shape)


def _axis(n, axis, rank, what="axis"):
    if not -rank <= axis < rank:
        raise ValueError(f"{n}: {what} {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _float_only(n, v, what="input"):
    if not dt.is_float(v.dtype):
        raise UnsupportedDtypeError(f"{n}: {what} %{v.name} has dtype {v.dtype}; this operator "
                                    "needs a floating-point tensor")


def _same_dtype(ctx, v, dtype):
    return v if v.dtype == dtype else ctx.emit("cast", [v], dtype=dtype)


# ------------------------------------------------------------------------------ elementwise

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
    _float_only(n, x)
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
    _float_only(n, x)
    a = ctx.emit("abs", [x])
    r = ctx.emit("sqrt", [ctx.emit("add", [ctx.emit("square", [a]), ctx.scalar(1, x)])])
    return ctx.emit("multiply", [ctx.emit("sign", [x]), ctx.emit("log", [ctx.emit("add", [a, r])])])


@converter("Acosh")
def _acosh(ctx, n):
    x = n.input(0)
    _float_only(n, x)
    r = ctx.emit("sqrt", [ctx.emit("subtract", [ctx.emit("square", [x]), ctx.scalar(1, x)])])
    return ctx.emit("log", [ctx.emit("add", [x, r])])


@converter("Atanh")
def _atanh(ctx, n):
    # (log1p(x) - log1p(-x)) / 2
    x = n.input(0)
    _float_only(n, x)
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
        _unsupported(n, "training-mode dropout (random) is not supported; export the model "
                        "in inference mode")
    mask = ctx.const(np.ones(x.shape, bool)) if n.wants(1) else None
    return x, mask


# ------------------------------------------------------------------------------ constants

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
        _unsupported(n, "sparse constants are not supported")
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
    if _rank(x) != 2:
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
        _unsupported(n, f"Range({start}, {limit}, {delta}) is empty; tensorc does not support "
                        "empty tensors")
    return ctx.emit("arange", [], start=start, stop=start + count * delta, step=delta,
                    dtype=dtype)


# ------------------------------------------------------------------------------ reductions

_REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
           "ReduceProd": "prod", "ReduceL1": "l1", "ReduceL2": "l2",
           "ReduceSumSquare": "sum_square", "ReduceLogSumExp": "log_sum_exp",
           "ReduceLogSum": "log_sum"}


@converter(*_REDUCE)
def _reduce(ctx, n):
    x = n.input(0)
    axes = None
    if n.input(1) is not None:
        v = n.input(1)
        axes = [] if (v.is_const and v.data.size == 0) else ctx.static_ints(v, "axes")
    elif n.attr("axes") is not None:
        axes = list(n.attr("axes"))
    keepdims = bool(n.attr("keepdims", 1))
    if not axes:
        if int(n.attr("noop_with_empty_axes", 0)):
            return x
        axis = None
    else:
        axis = tuple(sorted({_axis(n, a, _rank(x), "axes") for a in axes}))
    if _rank(x) == 0:
        return x
    op = _REDUCE[n.op_type]
    src = x
    back = None
    if op in ("l2", "log_sum_exp", "log_sum") and not dt.is_float(x.dtype):
        src, back = ctx.emit("cast", [x], dtype="float32"), x.dtype
    if op == "log_sum":
        y = ctx.emit("log", [ctx.emit("sum", [src], axis=axis, keepdims=keepdims)])
    else:
        y = ctx.emit(op, [src], axis=axis, keepdims=keepdims)
    if op == "mean" and y.dtype != x.dtype:
        back = x.dtype
    return ctx.emit("cast", [y], dtype=back) if back else y


@converter("ArgMax", "ArgMin")
def _arg(ctx, n):
    x = n.input(0)
    return ctx.emit("argmax" if n.op_type == "ArgMax" else "argmin", [x],
                    axis=_axis(n, int(n.attr("axis", 0)), _rank(x)),
                    keepdims=bool(n.attr("keepdims", 1)),
                    select_last_index=bool(n.attr("select_last_index", 0)))


@converter("Softmax", "LogSoftmax")
def _softmax(ctx, n):
    return ctx.emit("softmax" if n.op_type == "Softmax" else "log_softmax", [n.input(0)],
                    axis=int(n.attr("axis", -1)))


@converter("Hardmax")
def _hardmax(ctx, n):
    x = n.input(0)
    axis = _axis(n, int(n.attr("axis", -1)), _rank(x))
    idx = ctx.emit("argmax", [x], axis=axis, keepdims=True)
    pos = np.arange(x.shape[axis], dtype=np.int64).reshape(
        [x.shape[axis] if d == axis else 1 for d in range(_rank(x))])
    return ctx.emit("cast", [ctx.emit("equal", [idx, ctx.const(pos)])], dtype=x.dtype)


@converter("CumSum")
def _cumsum(ctx, n):
    x = n.input(0)
    axis = ctx.static_ints(n.input(1), "axis")[0]
    return ctx.emit("cumsum", [x], axis=_axis(n, axis, _rank(x)),
                    exclusive=bool(n.attr("exclusive", 0)), reverse=bool(n.attr("reverse", 0)))


# ------------------------------------------------------------------------------ normalisation

def _moments(ctx, x, axes):
    """(mean, centred x, biased variance) over ``axes``, keepdims."""
    m = ctx.emit("mean", [x], axis=axes, keepdims=True)
    d = ctx.emit("subtract", [x, m])
    var = ctx.emit("mean", [ctx.emit("square", [d])], axis=axes, keepdims=True)
    return m, d, var


@converter("LayerNormalization")
def _layer_norm(ctx, n):
    x, scale, bias = n.input(0), n.input(1), n.input(2)
    axis = _axis(n, int(n.attr("axis", -1)), _rank(x))
    eps = float(n.attr("epsilon", 1e-5))
    ins = [x] + ([scale] if scale is not None else []) + ([bias] if bias is not None else [])
    if scale is None and bias is not None:
        y = ctx.emit("layer_norm", [x, ctx.const(np.ones(x.shape[axis:], x.dtype)), bias],
                     axis=axis, epsilon=eps)
    else:
        y = ctx.emit("layer_norm", ins, axis=axis, epsilon=eps)
    mean = inv = None
    if n.wants(1) or n.wants(2):
        stash = to_tensorc_dtype(n.attr("stash_type", 1), f"{n}: stash_type")
        xs = _same_dtype(ctx, x, stash)
        axes = tuple(range(axis, _rank(x)))
        mean, _, var = _moments(ctx, xs, axes)
        inv = ctx.emit("rsqrt", [ctx.emit("add", [var, ctx.scalar(eps, var)])])
    return y, mean, inv


@converter("RMSNormalization")
def _rms_norm(ctx, n):
    x, scale = n.input(0), n.input(1)
    axis = _axis(n, int(n.attr("axis", -1)), _rank(x))
    eps = float(n.attr("epsilon", 1e-5))
    stash = to_tensorc_dtype(n.attr("stash_type", 1), f"{n}: stash_type")
    xs = _same_dtype(ctx, x, stash)
    ms = ctx.emit("mean", [ctx.emit("square", [xs])], axis=tuple(range(axis, _rank(x))),
                  keepdims=True)
    inv = ctx.emit("rsqrt", [ctx.emit("add", [ms, ctx.scalar(eps, ms)])])
    y = _same_dtype(ctx, ctx.emit("multiply", [xs, inv]), x.dtype)
    return ctx.emit("multiply", [y, _same_dtype(ctx, scale, x.dtype)])


@converter("BatchNormalization")
def _batch_norm(ctx, n):
    x, scale, bias, mean, var = (n.input(k) for k in range(5))
    eps = float(n.attr("epsilon", 1e-5))
    if not int(n.attr("training_mode", 0)):
        return ctx.emit("batch_norm", [x, scale, bias, mean, var], epsilon=eps, axis=1)
    momentum = float(n.attr("momentum", 0.9))
    axes = tuple(d for d in range(_rank(x)) if d != 1)
    bm = ctx.emit("mean", [x], axis=axes)
    bshape = [x.shape[1] if d == 1 else 1 for d in range(_rank(x))]
    d = ctx.emit("subtract", [x, ctx.emit("reshape", [bm], newshape=bshape)])
    bv = ctx.emit("mean", [ctx.emit("square", [d])], axis=axes)
    y = ctx.emit("batch_norm", [x, scale, bias, bm, bv], epsilon=eps, axis=1)

    def running(old, new):
        return ctx.emit("add", [ctx.emit("multiply", [old, ctx.scalar(momentum, old)]),
                                ctx.emit("multiply", [new, ctx.scalar(1 - momentum, new)])])
    return y, running(mean, bm), running(var, bv)


@converter("InstanceNormalization")
def _instance_norm(ctx, n):
    return ctx.emit("instance_norm", [n.input(0), n.input(1), n.input(2)],
                    epsilon=float(n.attr("epsilon", 1e-5)))


@converter("GroupNormalization")
def _group_norm(ctx, n):
    x, scale, bias = n.input(0), n.input(1), n.input(2)
    g = int(n.attr("num_groups"))
    c = x.shape[1]
    params = []
    for p in (scale, bias):
        if p.shape == (g,) and g != c:  # opset 18: one value per group
            idx = ctx.const(np.arange(c, dtype=np.int64) // (c // g))
            p = ctx.emit("gather", [p, idx], axis=0)
        params.append(p)
    stash = to_tensorc_dtype(n.attr("stash_type", 1), f"{n}: stash_type")
    xs = _same_dtype(ctx, x, stash) if x.dtype != "float16" else x
    y = ctx.emit("group_norm", [xs] + [_same_dtype(ctx, p, xs.dtype) for p in params],
                 num_groups=g, epsilon=float(n.attr("epsilon", 1e-5)))
    return _same_dtype(ctx, y, x.dtype)


@converter("MeanVarianceNormalization")
def _mvn(ctx, n):
    x = n.input(0)
    axes = tuple(sorted(_axis(n, a, _rank(x)) for a in n.attr("axes", [0, 2, 3])))
    _, d, var = _moments(ctx, x, axes)
    std = ctx.emit("sqrt", [var])
    return ctx.emit("divide", [d, ctx.emit("add", [std, ctx.scalar(1e-9, std)])])


@converter("LpNormalization")
def _lp_norm(ctx, n):
    x = n.input(0)
    p = int(n.attr("p", 2))
    if p not in (1, 2):
        _unsupported(n, f"p={p} (only 1 and 2 are defined)")
    axis = _axis(n, int(n.attr("axis", -1)), _rank(x))
    norm = ctx.emit("l1" if p == 1 else "l2", [x], axis=axis, keepdims=True)
    zero = ctx.scalar(0, norm)
    # a zero norm gives 0, not 0/0 (as the ONNX reference does)
    return ctx.emit("where", [ctx.emit("equal", [norm, zero]), zero,
                              ctx.emit("divide", [x, norm])])


# ------------------------------------------------------------------------------ linear algebra

@converter("MatMul")
def _matmul(ctx, n):
    a, b = n.input(0), n.input(1)
    if _rank(a) == 1 and _rank(b) == 1:
        return ctx.emit("sum", [ctx.emit("multiply", [a, b])], axis=0)
    return ctx.emit("matmul", [a, b])


@converter("Gemm")
def _gemm(ctx, n):
    a, b, c = n.input(0), n.input(1), n.input(2)
    attrs = dict(alpha=float(n.attr("alpha", 1.0)), beta=float(n.attr("beta", 1.0)),
                 trans_a=bool(n.attr("transA", 0)), trans_b=bool(n.attr("transB", 0)))
    return ctx.emit("gemm", [a, b] + ([c] if c is not None else []), **attrs)


@converter("Einsum")
def _einsum(ctx, n):
    xs = [v for v in n.inputs if v is not None]
    eq = expand_ellipsis(n, n.attr("equation").replace(" ", ""), [v.shape for v in xs])
    lhs, _, rhs = eq.partition("->")
    subs = lhs.split(",")
    # 0-d operands (empty subscripts) are scalar factors: einsum takes the others
    scalars = [v for v, sub in zip(xs, subs) if sub == ""]
    rest = [(v, sub) for v, sub in zip(xs, subs) if sub != ""]
    if rest:
        y = ctx.emit("einsum", [v for v, _ in rest],
                     subscripts=",".join(sub for _, sub in rest) + "->" + rhs)
    else:
        y = scalars.pop(0)
    for v in scalars:
        y = ctx.emit("multiply", [y, v])
    return y


def expand_ellipsis(n, eq, shapes):
    """Einsum subscripts with '...' replaced by explicit letters (static shapes)."""
    if "..." not in eq:
        return eq
    lhs, arrow, rhs = eq.partition("->")
    ins = lhs.split(",")
    used = set(c for c in eq if c.isalpha())
    free = [c for c in string.ascii_letters if c not in used]
    nell = 0
    for sub, shape in zip(ins, shapes):
        if "..." in sub:
            nell = max(nell, len(shape) - (len(sub) - 3))
    letters = "".join(free[:nell])
    new_ins = []
    for sub, shape in zip(ins, shapes):
        if "..." in sub:
            k = len(shape) - (len(sub) - 3)
            sub = sub.replace("...", letters[nell - k:])
        new_ins.append(sub)
    if arrow:
        rhs = rhs.replace("...", letters)
    else:
        single = sorted(c for c in used if lhs.count(c) == 1)
        rhs = letters + "".join(single)
    return ",".join(new_ins) + "->" + rhs


# ------------------------------------------------------------------------------ conv / pool

def _spatial_attr(n, name, nd, default):
    v = n.attr(name)
    return tuple(int(x) for x in v) if v is not None else (default,) * nd


def resolve_pads(n, in_shape, kernel, strides, dilations, ceil_mode=False):
    """ONNX pads [x1_begin, x2_begin, ..., x1_end, ...] with auto_pad resolved against the
    static spatial input shape."""
    nd = len(kernel)
    auto = n.attr("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = n.attr("pads")
        return tuple(int(p) for p in pads) if pads is not None else (0,) * (2 * nd)
    if auto == "VALID":
        return (0,) * (2 * nd)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise ValueError(f"{n}: unknown auto_pad {auto!r}")
    begins, ends = [], []
    for d in range(nd):
        out = -(-in_shape[d] // strides[d])
        total = max(0, (out - 1) * strides[d] + (kernel[d] - 1) * dilations[d] + 1 - in_shape[d])
        small, big = total // 2, total - total // 2
        b, e = (small, big) if auto == "SAME_UPPER" else (big, small)
        begins.append(b)
        ends.append(e)
    return tuple(begins + ends)


@converter("Conv")
def _conv(ctx, n):
    x, w, b = n.input(0), n.input(1), n.input(2)
    nd = _rank(x) - 2
    if nd not in (1, 2):
        _unsupported(n, f"{nd}-D convolution (input shape {x.shape}); tensorc supports 1-D and "
                        "2-D")
    kernel = tuple(w.shape[2:])
    strides = _spatial_attr(n, "strides", nd, 1)
    dil = _spatial_attr(n, "dilations", nd, 1)
    pads = resolve_pads(n, x.shape[2:], kernel, strides, dil)
    attrs = dict(strides=strides, padding=pads, dilation=dil, groups=int(n.attr("group", 1)))
    y = ctx.emit("conv2d" if nd == 2 else "conv1d", [x, w], **attrs)
    if b is not None:
        y = ctx.emit("add", [y, ctx.emit("reshape", [b], newshape=[b.shape[0]] + [1] * nd)])
    return y


@converter("ConvTranspose")
def _conv_transpose(ctx, n):
    x, w, b = n.input(0), n.input(1), n.input(2)
    nd = _rank(x) - 2
    if nd not in (1, 2):
        _unsupported(n, f"{nd}-D transposed convolution (input shape {x.shape}); tensorc "
                        "supports 1-D and 2-D")
    kernel = tuple(w.shape[2:])
    strides = _spatial_attr(n, "strides", nd, 1)
    dil = _spatial_attr(n, "dilations", nd, 1)
    out_pad = list(_spatial_attr(n, "output_padding", nd, 0))
    group = int(n.attr("group", 1))
    spatial = x.shape[2:]
    auto = n.attr("auto_pad", "NOTSET")
    out_shape = n.attr("output_shape")
    if out_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        if out_shape is None:
            out_shape = [spatial[d] * strides[d] for d in range(nd)]
        out_shape = list(out_shape)[-nd:]
        begins, ends = [], []
        for d in range(nd):
            total = (strides[d] * (spatial[d] - 1) + out_pad[d] + (kernel[d] - 1) * dil[d] + 1
                     - out_shape[d])
            if total < 0:  # the output is bigger than the natural one: extra end padding
                out_pad[d] += -total
                total = 0
            if auto == "SAME_UPPER":
                begins.append(total // 2)
                ends.append(total - total // 2)
            else:
                begins.append(total - total // 2)
                ends.append(total // 2)
        pads = tuple(begins + ends)
    elif auto == "VALID":
        pads = (0,) * (2 * nd)
    else:
        pads = tuple(int(p) for p in n.attr("pads", [0] * (2 * nd)))
    if nd == 1:
        x4 = ctx.emit("reshape", [x], newshape=[x.shape[0], x.shape[1], 1, x.shape[2]])
        w4 = ctx.emit("reshape", [w], newshape=[w.shape[0], w.shape[1], 1, w.shape[2]])
        y = ctx.emit("conv_transpose2d", [x4, w4], strides=(1, strides[0]),
                     padding=(0, pads[0], 0, pads[1]), output_padding=(0, out_pad[0]),
                     dilation=(1, dil[0]), groups=group)
        y = ctx.emit("reshape", [y], newshape=[y.shape[0], y.shape[1], y.shape[3]])
    else:
        y = ctx.emit("conv_transpose2d", [x, w], strides=strides, padding=pads,
                     output_padding=tuple(out_pad), dilation=dil, groups=group)
    if b is not None:
        y = ctx.emit("add", [y, ctx.emit("reshape", [b], newshape=[b.shape[0]] + [1] * nd)])
    return y


def pool_nd(ctx, x, kernel, strides, pads, dil, ceil_mode, pool_type, count_include_pad=False):
    """Max or average pooling over the spatial axes of (N, C, *spatial), any number of them.

    1-D and 2-D map to pool1d / pool2d. More axes are pooled separably -- pool2d over the last
    two, then pool1d along each leading one (moved last by a transpose) -- which is exact for
    max and for both average modes: the window and its count factor per axis, and so does
    ceil_mode's output size.
    """
    nd = len(kernel)
    if nd <= 2:
        return ctx.emit("pool2d" if nd == 2 else "pool1d", [x], kernel=tuple(kernel),
                        strides=tuple(strides), padding=tuple(pads), dilation=tuple(dil),
                        pool_type=pool_type, ceil_mode=ceil_mode,
                        **({"count_include_pad": count_include_pad} if pool_type == "avg"
                           else {}))
    shape = list(x.shape)
    lead = shape[2:-2]
    v = ctx.emit("reshape", [x], newshape=[shape[0], int(np.prod(shape[1:-2]))] + shape[-2:])
    v = pool_nd(ctx, v, kernel[-2:], strides[-2:], pads[nd - 2:nd] + pads[2 * nd - 2:],
                dil[-2:], ceil_mode, pool_type, count_include_pad)
    cur = shape[:2] + lead + list(v.shape[2:])
    v = ctx.emit("reshape", [v], newshape=cur)
    for d in range(nd - 3, -1, -1):            # the leading spatial axes, innermost first
        axis = 2 + d
        perm = [a for a in range(len(cur)) if a != axis] + [axis]
        t = ctx.emit("transpose", [v], perm=tuple(perm))
        rows = int(np.prod(t.shape[:-1]))
        t = ctx.emit("reshape", [t], newshape=[rows, 1, cur[axis]])
        t = pool_nd(ctx, t, kernel[d:d + 1], strides[d:d + 1], (pads[d], pads[nd + d]),
                    dil[d:d + 1], ceil_mode, pool_type, count_include_pad)
        out_len = t.shape[-1]
        moved = [cur[a] for a in perm[:-1]] + [out_len]
        t = ctx.emit("reshape", [t], newshape=moved)
        inverse = [perm.index(a) for a in range(len(cur))]
        v = ctx.emit("transpose", [t], perm=tuple(inverse))
        cur = list(v.shape)
    return v


@converter("MaxPool", "AveragePool")
def _pool(ctx, n):
    x = n.input(0)
    nd = _rank(x) - 2
    if nd < 1:
        raise ValueError(f"{n}: input must be (N, C, spatial...), got shape {x.shape}")
    if n.wants(1):
        _unsupported(n, "the Indices output of MaxPool is not supported")
    kernel = tuple(int(k) for k in n.attr("kernel_shape"))
    strides = _spatial_attr(n, "strides", nd, 1)
    dil = _spatial_attr(n, "dilations", nd, 1)
    pads = resolve_pads(n, x.shape[2:], kernel, strides, dil)
    if n.op_type == "MaxPool":
        return pool_nd(ctx, x, kernel, strides, pads, dil, bool(n.attr("ceil_mode", 0)), "max")
    return pool_nd(ctx, x, kernel, strides, pads, dil, bool(n.attr("ceil_mode", 0)), "avg",
                   bool(n.attr("count_include_pad", 0)))


@converter("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx, n):
    return ctx.emit("global_pool", [n.input(0)],
                    pool_type="avg" if n.op_type == "GlobalAveragePool" else "max")


@converter("LpPool")
def _lp_pool(ctx, n):
    # (sum over the window of |x|^p)^(1/p): an average pool counting the padding, times the
    # window size; padded taps add 0.
    x = n.input(0)
    nd = _rank(x) - 2
    p = float(n.attr("p", 2))
    kernel = tuple(int(k) for k in n.attr("kernel_shape"))
    strides = _spatial_attr(n, "strides", nd, 1)
    dil = _spatial_attr(n, "dilations", nd, 1)
    pads = resolve_pads(n, x.shape[2:], kernel, strides, dil)
    xp = ctx.emit("power", [ctx.emit("abs", [x]), ctx.scalar(p, x)])
    s = pool_nd(ctx, xp, kernel, strides, pads, dil, bool(n.attr("ceil_mode", 0)), "avg", True)
    s = ctx.emit("multiply", [s, ctx.scalar(float(np.prod(kernel)), x)])
    return ctx.emit("power", [s, ctx.scalar(1.0 / p, x)])


@converter("Resize")
def _resize(ctx, n):
    """Resize: tensorc's ``resize`` operator where it expresses the node (nearest / linear on
    the last one or two axes); otherwise one interpolation step per resized axis (see
    ``_resize_by_axis``), which covers cubic, antialiasing, tf_crop_and_resize and any axes."""
    x, roi, scales, sizes = (n.input(k) for k in range(4))
    r = _rank(x)
    mode = n.attr("mode", "nearest")
    ctm = n.attr("coordinate_transformation_mode", "half_pixel")
    if mode not in ("nearest", "linear", "cubic"):
        raise ValueError(f"{n}: unknown mode {mode!r}")
    axes = n.attr("axes")
    axes = [_axis(n, int(a), r, "axes") for a in axes] if axes is not None else list(range(r))
    sc = ctx.static(scales, "scales") if scales is not None else None
    sz = ctx.static(sizes, "sizes") if sizes is not None else None
    if sc is not None and sc.size == 0:
        sc = None
    if sz is not None and sz.size == 0:
        sz = None
    full_scale = [1.0] * r
    out = list(x.shape)
    policy = n.attr("keep_aspect_ratio_policy", "stretch")
    if sz is not None:
        for a, v in zip(axes, sz.reshape(-1)):
            out[a] = int(v)
            full_scale[a] = int(v) / x.shape[a]
        if policy != "stretch":
            pick = min if policy == "not_larger" else max
            common = pick(full_scale[a] for a in axes)
            for a in axes:
                full_scale[a] = common
                out[a] = int(common * x.shape[a] + 0.5)
    elif sc is not None:
        for a, v in zip(axes, sc.reshape(-1)):
            full_scale[a] = float(v)
            out[a] = int(x.shape[a] * float(v))
    else:
        raise ValueError(f"{n}: needs scales or sizes")
    if any(o <= 0 for o in out):
        _unsupported(n, f"the output shape {out} is empty")
    changed = [d for d in range(r) if full_scale[d] != 1.0 or out[d] != x.shape[d]]
    if not changed:
        return x
    antialias = int(n.attr("antialias", 0)) and any(full_scale[d] < 1 for d in changed)
    # align_corners with a non-integral in * scale: ONNX maps through that fractional length,
    # tensorc's resize through the integer output length
    fractional = ctm == "align_corners" and sz is None and \
        any(x.shape[d] * full_scale[d] != out[d] for d in changed)
    native = (mode in ("nearest", "linear") and not antialias and not fractional and
              ctm != "tf_crop_and_resize" and policy == "stretch" and len(changed) <= 2 and
              changed[-1] == r - 1 and changed[0] >= r - 2)
    if not native:
        roi_arr = ctx.static(roi, "roi") if roi is not None else None
        if roi_arr is not None and roi_arr.size == 0:
            roi_arr = None
        return _resize_by_axis(ctx, n, x, changed, full_scale, out, axes, roi_arr)
    k = 2 if changed[0] == r - 2 else 1
    attrs = dict(method=mode, coordinate_transformation_mode=ctm,
                 nearest_mode=n.attr("nearest_mode", "round_prefer_floor"))
    spatial, o_sp = x.shape[r - k:], out[r - k:]
    sc_sp = full_scale[r - k:]
    if sz is not None or not all(int(i * v) == o for i, v, o in zip(spatial, sc_sp, o_sp)):
        attrs["size"] = tuple(o_sp)
    else:
        attrs["scales"] = tuple(sc_sp)
    if r - k == 2:
        return ctx.emit("resize", [x], **attrs)
    # view as (rows, 1, *resized axes): resize works on NCW / NCHW
    lead_n = int(np.prod(x.shape[:r - k], dtype=np.int64))
    xv = ctx.emit("reshape", [x], newshape=[lead_n, 1] + list(spatial))
    y = ctx.emit("resize", [xv], **attrs)
    return ctx.emit("reshape", [y], newshape=list(x.shape[:r - k]) + list(o_sp))


def _resize_by_axis(ctx, n, x, changed, full_scale, out, axes, roi):
    """ONNX Resize is separable: each resized axis is a linear map (an out x in matrix) of the
    input along that axis, plus, for tf_crop_and_resize, the extrapolation value where a
    source coordinate leaves the input. The matrices are computed once, at import, by running
    ONNX's reference Resize on an identity matrix (so they follow the specification to the
    letter for every mode); nearest maps become a gather, the others an einsum with the
    constant matrix."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator
    r = _rank(x)
    attrs = {k: v for k, v in n.attrs.items() if k not in ("axes", "keep_aspect_ratio_policy")}
    extrap = float(n.attr("extrapolation_value", 0.0))
    outside = None
    y = x
    letters = string.ascii_lowercase[:r]
    for d in changed:
        m = x.shape[d]
        feeds = {"x": np.eye(m, dtype=np.float64), "s": np.array([1.0, full_scale[d]],
                                                                 np.float32)}
        ins = ["x", "", "s"]
        if roi is not None:
            j = axes.index(d)
            k = len(axes)
            feeds["roi"] = np.array([0.0, roi[j], 1.0, roi[k + j]], np.float32)
            ins[1] = "roi"
        if int(x.shape[d] * full_scale[d]) != out[d]:   # keep_aspect_ratio rounding
            del feeds["s"]
            feeds["z"] = np.array([m, out[d]], np.int64)
            ins = ins[:2] + ["", "z"]
        node = helper.make_node("Resize", ins, ["y"], **dict(attrs, extrapolation_value=0.0))
        with np.errstate(all="ignore"):
            w = ReferenceEvaluator(node, opsets={"": max(n.opset, 19)}).run(None, feeds)[0]
        w = np.asarray(w, np.float64).T   # (out, in): row o holds the weights of output o
        if w.shape != (out[d], m):
            raise ValueError(f"{n}: internal error: interpolation matrix of axis {d} has shape "
                             f"{w.shape}, expected {(out[d], m)}")
        lost = np.abs(w).sum(axis=1) == 0   # tf_crop_and_resize: extrapolated positions
        if lost.any():
            shape = [out[d] if a == d else 1 for a in range(r)]
            mask = ctx.const(lost.reshape(shape))
            outside = mask if outside is None else ctx.emit("logical_or", [outside, mask])
        onehot = ((w == 0) | (w == 1)).all() and (w.sum(axis=1) <= 1).all()
        if onehot:
            idx = np.where(lost, 0, w.argmax(axis=1)).astype(np.int64)
            y = ctx.emit("gather", [y, ctx.const(idx)], axis=d)
        else:
            o = "Z" if "Z" not in letters else "Y"
            sub = letters + "," + o + letters[d] + "->" + letters[:d] + o + letters[d + 1:]
            y = ctx.emit("einsum", [y, ctx.const(w.astype(np.dtype(x.dtype)))], subscripts=sub)
    if outside is not None:
        y = ctx.emit("where", [outside, ctx.scalar(extrap, y), y])
    return y


# ------------------------------------------------------------------------------ data movement

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
            if k >= _rank(x):
                raise ValueError(f"{n}: shape {shape} copies dimension {k}, which input "
                                 f"%{x.name} of shape {x.shape} does not have")
            new.append(x.shape[k])
        else:
            new.append(s)
    if 0 in new:
        _unsupported(n, f"reshape to {new} gives an empty tensor")
    return ctx.emit("reshape", [x], newshape=new)


@converter("Flatten")
def _flatten(ctx, n):
    x = n.input(0)
    axis = int(n.attr("axis", 1))
    if _rank(x) == 0:
        return ctx.emit("reshape", [x], newshape=[1, 1])
    return ctx.emit("flatten", [x], axis=axis)


@converter("Squeeze")
def _squeeze(ctx, n):
    x = n.input(0)
    axes = ctx.static_ints(n.input(1), "axes") if n.input(1) is not None else n.attr("axes")
    if axes is not None:
        axes = tuple(_axis(n, int(a), _rank(x), "axes") for a in axes)
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
        _unsupported(n, f"repeats {reps} give an empty tensor")
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
    axis = _axis(n, int(n.attr("axis", 0)), _rank(x))
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
    axes = [_axis(n, a, _rank(x), "axes") for a in axes]
    big = 2 ** 62  # clamp INT64 extremes so index arithmetic stays small
    starts = [max(min(s, big), -big) for s in starts]
    ends = [max(min(e, big), -big) for e in ends]
    return ctx.emit("slice", [x], starts=starts, ends=ends, axes=axes, steps=steps)


@converter("Gather")
def _gather(ctx, n):
    x, idx = n.input(0), n.input(1)
    return ctx.emit("gather", [x, idx], axis=_axis(n, int(n.attr("axis", 0)), _rank(x)))


@converter("GatherElements")
def _gather_elements(ctx, n):
    x, idx = n.input(0), n.input(1)
    return ctx.emit("gather_elements", [x, idx], axis=_axis(n, int(n.attr("axis", 0)), _rank(x)))


@converter("Pad")
def _pad(ctx, n):
    x = n.input(0)
    r = _rank(x)
    pads = ctx.static_ints(n.input(1), "pads")
    mode = n.attr("mode", "constant")
    value = 0
    cv = n.input(2)
    if cv is not None and not (cv.is_const and cv.data.size == 0):
        value = ctx.static(cv, "constant_value").reshape(-1)[0].item()
    axes = ctx.static_ints(n.input(3), "axes") if n.input(3) is not None else list(range(r))
    axes = [_axis(n, a, r, "axes") for a in axes]
    width = [(0, 0)] * r
    k = len(axes)
    for j, a in enumerate(axes):
        width[a] = (pads[j], pads[k + j])
    if mode == "wrap":
        return _wrap_pad(ctx, x, width)
    if mode not in ("constant", "reflect", "edge"):
        _unsupported(n, f"mode={mode!r}")
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


@converter("TopK")
def _topk(ctx, n):
    x = n.input(0)
    k = ctx.static_ints(n.input(1), "K")[0]
    axis = _axis(n, int(n.attr("axis", -1)), _rank(x))
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
    r = _rank(idx)
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
        c = ctx.emit("slice", [idx], starts=[j], ends=[j + 1], axes=[_rank(idx) - 1])
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


@converter("LRN")
def _lrn(ctx, n):
    """x / (bias + alpha / size * sum of x^2 over a window of channels) ^ beta."""
    x = n.input(0)
    size = int(n.attr("size"))
    alpha, beta = float(n.attr("alpha", 1e-4)), float(n.attr("beta", 0.75))
    bias = float(n.attr("bias", 1.0))
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    c = x.shape[1]
    sq = ctx.emit("square", [x])
    width = [(0, 0)] * _rank(x)
    width[1] = (lo, hi)
    padded = ctx.emit("pad", [sq], pad_width=[list(w) for w in width]) if lo or hi else sq
    total = None
    for t in range(size):
        part = ctx.emit("slice", [padded], starts=[t], ends=[t + c], axes=[1])
        total = part if total is None else ctx.emit("add", [total, part])
    scale = ctx.emit("add", [ctx.emit("multiply", [total, ctx.scalar(alpha / size, x)]),
                             ctx.scalar(bias, x)])
    return ctx.emit("divide", [x, ctx.emit("power", [scale, ctx.scalar(beta, x)])])


@converter("CenterCropPad")
def _center_crop_pad(ctx, n):
    x = n.input(0)
    shape = ctx.static_ints(n.input(1), "shape")
    r = _rank(x)
    axes = [_axis(n, int(a), r, "axes") for a in n.attr("axes", list(range(r)))]
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


@converter("Compress")
def _compress(ctx, n):
    """The slices of x selected by a constant condition: a gather with constant indices."""
    x = n.input(0)
    cond = ctx.static(n.input(1), "condition").reshape(-1).astype(bool)
    axis = n.attr("axis")
    if axis is None:
        x = ctx.emit("reshape", [x], newshape=[-1])
        axis = 0
    axis = _axis(n, int(axis), _rank(x))
    picked = np.nonzero(cond[:x.shape[axis]])[0].astype(np.int64)
    if picked.size == 0:
        _unsupported(n, "the condition selects nothing (an empty result)")
    return ctx.emit("gather", [x, ctx.const(picked)], axis=axis)


@converter("HannWindow", "HammingWindow", "BlackmanWindow")
def _window(ctx, n):
    """Window functions depend only on their (constant) size: evaluated at import with ONNX's
    reference implementation, like any constant node."""
    from .onnx_importer import _reference_fold
    ctx.static(n.input(0), "size")
    return _reference_fold(ctx, n, max(n.opset, 17))


__all__ = ["CONVERTERS", "converter", "trunc_divide", "expand_ellipsis", "resolve_pads",
           "pool_nd"]
