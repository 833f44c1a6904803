"""Converters of reductions (Reduce*, ArgMax/ArgMin, CumSum), softmaxes and normalisations
(Layer, RMS, Batch -- inference and training mode --, Instance, Group, MeanVariance, Lp,
LRN); reduction axes come as an attribute or, from opset 18, as a constant input."""
import numpy as np

from tensorc.ir import dtype as dt

from .onnx_common import to_tensorc_dtype
from .onnx_registry import converter, norm_axis, rank_of, same_dtype, unsupported

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
        axis = tuple(sorted({norm_axis(n, a, rank_of(x), "axes") for a in axes}))
    if rank_of(x) == 0:
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
                    axis=norm_axis(n, int(n.attr("axis", 0)), rank_of(x)),
                    keepdims=bool(n.attr("keepdims", 1)),
                    select_last_index=bool(n.attr("select_last_index", 0)))


@converter("Softmax", "LogSoftmax")
def _softmax(ctx, n):
    return ctx.emit("softmax" if n.op_type == "Softmax" else "log_softmax", [n.input(0)],
                    axis=int(n.attr("axis", -1)))


@converter("Hardmax")
def _hardmax(ctx, n):
    x = n.input(0)
    axis = norm_axis(n, int(n.attr("axis", -1)), rank_of(x))
    idx = ctx.emit("argmax", [x], axis=axis, keepdims=True)
    pos = np.arange(x.shape[axis], dtype=np.int64).reshape(
        [x.shape[axis] if d == axis else 1 for d in range(rank_of(x))])
    return ctx.emit("cast", [ctx.emit("equal", [idx, ctx.const(pos)])], dtype=x.dtype)


@converter("CumSum")
def _cumsum(ctx, n):
    x = n.input(0)
    axis = ctx.static_ints(n.input(1), "axis")[0]
    return ctx.emit("cumsum", [x], axis=norm_axis(n, axis, rank_of(x)),
                    exclusive=bool(n.attr("exclusive", 0)), reverse=bool(n.attr("reverse", 0)))


def _moments(ctx, x, axes):
    """(mean, centred x, biased variance) over ``axes``, keepdims."""
    m = ctx.emit("mean", [x], axis=axes, keepdims=True)
    d = ctx.emit("subtract", [x, m])
    var = ctx.emit("mean", [ctx.emit("square", [d])], axis=axes, keepdims=True)
    return m, d, var


@converter("LayerNormalization")
def _layer_norm(ctx, n):
    x, scale, bias = n.input(0), n.input(1), n.input(2)
    axis = norm_axis(n, int(n.attr("axis", -1)), rank_of(x))
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
        xs = same_dtype(ctx, x, stash)
        axes = tuple(range(axis, rank_of(x)))
        mean, _, var = _moments(ctx, xs, axes)
        inv = ctx.emit("rsqrt", [ctx.emit("add", [var, ctx.scalar(eps, var)])])
    return y, mean, inv


@converter("RMSNormalization")
def _rms_norm(ctx, n):
    x, scale = n.input(0), n.input(1)
    axis = norm_axis(n, int(n.attr("axis", -1)), rank_of(x))
    eps = float(n.attr("epsilon", 1e-5))
    stash = to_tensorc_dtype(n.attr("stash_type", 1), f"{n}: stash_type")
    xs = same_dtype(ctx, x, stash)
    ms = ctx.emit("mean", [ctx.emit("square", [xs])], axis=tuple(range(axis, rank_of(x))),
                  keepdims=True)
    inv = ctx.emit("rsqrt", [ctx.emit("add", [ms, ctx.scalar(eps, ms)])])
    y = same_dtype(ctx, ctx.emit("multiply", [xs, inv]), x.dtype)
    return ctx.emit("multiply", [y, same_dtype(ctx, scale, x.dtype)])


@converter("BatchNormalization")
def _batch_norm(ctx, n):
    x, scale, bias, mean, var = (n.input(k) for k in range(5))
    eps = float(n.attr("epsilon", 1e-5))
    if not int(n.attr("training_mode", 0)):
        return ctx.emit("batch_norm", [x, scale, bias, mean, var], epsilon=eps, axis=1)
    momentum = float(n.attr("momentum", 0.9))
    axes = tuple(d for d in range(rank_of(x)) if d != 1)
    bm = ctx.emit("mean", [x], axis=axes)
    bshape = [x.shape[1] if d == 1 else 1 for d in range(rank_of(x))]
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
    xs = same_dtype(ctx, x, stash) if x.dtype != "float16" else x
    y = ctx.emit("group_norm", [xs] + [same_dtype(ctx, p, xs.dtype) for p in params],
                 num_groups=g, epsilon=float(n.attr("epsilon", 1e-5)))
    return same_dtype(ctx, y, x.dtype)


@converter("MeanVarianceNormalization")
def _mvn(ctx, n):
    x = n.input(0)
    axes = tuple(sorted(norm_axis(n, a, rank_of(x)) for a in n.attr("axes", [0, 2, 3])))
    _, d, var = _moments(ctx, x, axes)
    std = ctx.emit("sqrt", [var])
    return ctx.emit("divide", [d, ctx.emit("add", [std, ctx.scalar(1e-9, std)])])


@converter("LpNormalization")
def _lp_norm(ctx, n):
    x = n.input(0)
    p = int(n.attr("p", 2))
    if p not in (1, 2):
        unsupported(n, f"p={p} (only 1 and 2 are defined)")
    axis = norm_axis(n, int(n.attr("axis", -1)), rank_of(x))
    norm = ctx.emit("l1" if p == 1 else "l2", [x], axis=axis, keepdims=True)
    zero = ctx.scalar(0, norm)
    # a zero norm gives 0, not 0/0 (as the ONNX reference does)
    return ctx.emit("where", [ctx.emit("equal", [norm, zero]), zero,
                              ctx.emit("divide", [x, norm])])


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
    width = [(0, 0)] * rank_of(x)
    width[1] = (lo, hi)
    padded = ctx.emit("pad", [sq], pad_width=[list(w) for w in width]) if lo or hi else sq
    total = None
    for t in range(size):
        part = ctx.emit("slice", [padded], starts=[t], ends=[t + c], axes=[1])
        total = part if total is None else ctx.emit("add", [total, part])
    scale = ctx.emit("add", [ctx.emit("multiply", [total, ctx.scalar(alpha / size, x)]),
                             ctx.scalar(bias, x)])
    return ctx.emit("divide", [x, ctx.emit("power", [scale, ctx.scalar(beta, x)])])
