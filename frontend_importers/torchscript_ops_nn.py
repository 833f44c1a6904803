"""Converters of the nn layers: the linear/matmul family, convolution, normalisation,
pooling, resizing and attention.

torch runs several of these as one kernel where tensorc has separate nodes (a conv bias is a
broadcast add, adaptive pooling a global or fixed-kernel pool, scaled_dot_product_attention
matmul-softmax-matmul with its mask and scale), so the converters spell them out.
"""
import math

import numpy as np

from tensorc.ir import dtype as dt

from .errors import ImporterError, UnsupportedDtypeError, UnsupportedFeatureError
from .torchscript_dtypes import _torch
from .torchscript_ops_common import (_binary_operands, _emit_reshape, _pairs, _scaled,
                                     _static_tensor, result_dtype, static_ints)
from .torchscript_registry import converter
from .torchscript_values import Refused

# ------------------------------------------------------------------------------ matmul family

@converter("aten::linear")
def _linear(ctx, c):
    x, w, b = c[0], c[1], c.arg("bias")
    rt = result_dtype(x, w)
    x, w = ctx.tensor(x, rt), ctx.tensor(w, rt)
    if len(w.shape) == 1:
        y = ctx.emit("matmul", [x, w])
        return y if b is None else ctx.emit("add", [y, ctx.tensor(b, rt)])
    if len(x.shape) == 1:
        y = ctx.emit("matmul", [x, ctx.emit("transpose", [w])])
        return y if b is None else ctx.emit("add", [y, ctx.tensor(b, rt)])
    if b is None:
        return ctx.emit("dense", [x, w])
    return ctx.emit("dense", [x, w, ctx.tensor(b, rt)])


@converter("aten::matmul", "aten::mm", "aten::bmm", "aten::mv", "aten::dot", "aten::inner")
def _matmul(ctx, c):
    a, b, rt = _binary_operands(ctx, c[0], c[1])
    if c.kind == "aten::inner" and len(b.shape) > 1:
        raise UnsupportedFeatureError(f"{c}: inner of tensors of rank > 1")
    return ctx.emit("matmul", [a, b])


@converter("aten::addmm", "aten::baddbmm", "aten::addmv")
def _addmm(ctx, c):
    inp, m1, m2 = c[0], c[1], c[2]
    beta, alpha = c.arg("beta", 1), c.arg("alpha", 1)
    rt = result_dtype(inp, m1, m2)
    m1, m2 = ctx.tensor(m1, rt), ctx.tensor(m2, rt)
    prod = None
    if c.kind == "aten::addmm" and _static_tensor(c[2]) and len(m2.shape) == 2:
        # addmm(b, x, W^T) from old traces: dense reads the weight as stored
        wt = c[2].t().contiguous()
        prod = ctx.emit("dense", [m1, ctx.const_tensor(wt, rt)])
    if prod is None:
        prod = ctx.emit("matmul", [m1, m2])
    prod = _scaled(ctx, prod, alpha, rt)
    if beta == 0:
        return prod
    bias = ctx.tensor(_scaled(ctx, inp, beta, rt), rt)
    return ctx.emit("add", [prod, bias])


@converter("aten::einsum")
def _einsum(ctx, c):
    eq = c[0]
    ops = list(c[1])
    if "..." in eq:
        raise UnsupportedFeatureError(f"{c}: einsum with an ellipsis ({eq!r})")
    rt = result_dtype(*ops)
    vals = [ctx.tensor(o, rt) for o in ops]
    return ctx.emit("einsum", vals, subscripts=eq.replace(" ", ""))


@converter("aten::t", "aten::numpy_T")
def _t(ctx, c):
    x = ctx.tensor(c[0])
    if len(x.shape) < 2:
        return x
    return ctx.emit("transpose", [x])


# ------------------------------------------------------------------------------ convolution

def _bias_add(ctx, y, bias, nd):
    if bias is None:
        return y
    torch = _torch()
    if isinstance(bias, torch.Tensor):
        b = ctx.const_tensor(bias.reshape((-1,) + (1,) * nd), y.dtype)
    else:
        b = _emit_reshape(ctx, ctx.tensor(bias, y.dtype), [bias.shape[0]] + [1] * nd)
    return ctx.emit("add", [y, b])


def _conv(ctx, c, x, w, bias, stride, padding, dilation, groups, transposed=False,
          output_padding=0):
    x = ctx.tensor(x)
    if not dt.is_float(x.dtype):
        raise UnsupportedDtypeError(f"{c}: convolution of a {x.dtype} tensor")
    w = ctx.tensor(w, x.dtype)
    nd = len(w.shape) - 2
    if nd not in (1, 2) or (transposed and nd != 2):
        raise UnsupportedFeatureError(f"{c}: {nd}-D {'transposed ' if transposed else ''}"
                                      "convolution (tensorc has 1-D and 2-D convolutions and "
                                      "2-D transposed ones)")
    unbatched = len(x.shape) == nd + 1
    if unbatched:
        x = _emit_reshape(ctx, x, (1,) + tuple(x.shape))
    stride, dilation = _pairs(stride, nd), _pairs(dilation, nd)
    if isinstance(padding, str):
        if padding == "valid":
            pads = [0] * nd
        elif padding == "same":
            total = [d * (k - 1) for d, k in zip(dilation, w.shape[2:])]
            begins = [t // 2 for t in total]
            pads = begins + [t - b for t, b in zip(total, begins)]
        else:
            raise UnsupportedFeatureError(f"{c}: padding={padding!r}")
    else:
        pads = _pairs(padding, nd)
    if transposed:
        y = ctx.emit("conv_transpose2d", [x, w], strides=stride, padding=pads,
                     output_padding=_pairs(output_padding, nd), dilation=dilation,
                     groups=int(groups))
    else:
        op = "conv2d" if nd == 2 else "conv1d"
        y = ctx.emit(op, [x, w], strides=stride, padding=pads, dilation=dilation,
                     groups=int(groups))
    y = _bias_add(ctx, y, bias, nd)
    if unbatched:
        y = _emit_reshape(ctx, y, y.shape[1:])
    return y


@converter("aten::conv2d", "aten::conv1d", "aten::conv3d", "aten::_convolution_mode")
def _convnd(ctx, c):
    return _conv(ctx, c, c[0], c[1], c.arg("bias"), c.arg("stride", 1), c.arg("padding", 0),
                 c.arg("dilation", 1), c.arg("groups", 1))


@converter("aten::_convolution", "aten::convolution")
def _convolution(ctx, c):
    return _conv(ctx, c, c[0], c[1], c.arg("bias"), c.arg("stride"), c.arg("padding"),
                 c.arg("dilation"), c.arg("groups"), bool(c.arg("transposed")),
                 c.arg("output_padding"))


@converter("aten::conv_transpose2d", "aten::conv_transpose1d")
def _conv_transpose(ctx, c):
    return _conv(ctx, c, c[0], c[1], c.arg("bias"), c.arg("stride", 1), c.arg("padding", 0),
                 c.arg("dilation", 1), c.arg("groups", 1), True, c.arg("output_padding", 0))


# ------------------------------------------------------------------------------ normalisation

@converter("aten::batch_norm")
def _batch_norm(ctx, c):
    x = ctx.tensor(c[0])
    if c.arg("training", False):
        raise UnsupportedFeatureError(f"{c}: batch norm in training mode (batch statistics); "
                                      "call .eval() on the module")
    ch = x.shape[1] if len(x.shape) > 1 else x.shape[0]
    torch = _torch()
    w, b = c.arg("weight"), c.arg("bias")
    mean, var = c.arg("running_mean"), c.arg("running_var")
    if mean is None or var is None:
        raise UnsupportedFeatureError(f"{c}: batch norm without running statistics")
    w = torch.ones(ch) if w is None else w
    b = torch.zeros(ch) if b is None else b
    vals = [ctx.tensor(p, x.dtype) for p in (w, b, mean, var)]
    return ctx.emit("batch_norm", [x] + vals, epsilon=float(c.arg("eps", 1e-5)),
                    axis=1 if len(x.shape) > 1 else 0)


@converter("aten::layer_norm")
def _layer_norm(ctx, c):
    x = ctx.tensor(c[0])
    shape = static_ints(c, c[1], "normalized_shape")
    if tuple(x.shape[len(x.shape) - len(shape):]) != tuple(shape):
        raise ImporterError(f"{c}: normalized_shape {shape} does not match the trailing dims "
                            f"of the input {x.shape}")
    ins = [x]
    w, b = c.arg("weight"), c.arg("bias")
    torch = _torch()
    if w is None and b is not None:
        w = torch.ones(shape)
    if w is not None:
        ins.append(ctx.tensor(w, x.dtype))
    if b is not None:
        ins.append(ctx.tensor(b, x.dtype))
    return ctx.emit("layer_norm", ins, axis=len(x.shape) - len(shape),
                    epsilon=float(c.arg("eps", 1e-5)))


@converter("aten::group_norm")
def _group_norm(ctx, c):
    x = ctx.tensor(c[0])
    torch = _torch()
    ch = x.shape[1]
    w, b = c.arg("weight"), c.arg("bias")
    w = torch.ones(ch) if w is None else w
    b = torch.zeros(ch) if b is None else b
    return ctx.emit("group_norm", [x, ctx.tensor(w, x.dtype), ctx.tensor(b, x.dtype)],
                    num_groups=int(c.arg("num_groups")), epsilon=float(c.arg("eps", 1e-5)))


@converter("aten::instance_norm")
def _instance_norm(ctx, c):
    x = ctx.tensor(c[0])
    torch = _torch()
    ch = x.shape[1]
    w, b = c.arg("weight"), c.arg("bias")
    w = torch.ones(ch) if w is None else w
    b = torch.zeros(ch) if b is None else b
    if c.arg("use_input_stats", True):
        return ctx.emit("instance_norm", [x, ctx.tensor(w, x.dtype), ctx.tensor(b, x.dtype)],
                        epsilon=float(c.arg("eps", 1e-5)))
    vals = [ctx.tensor(p, x.dtype) for p in (w, b, c.arg("running_mean"), c.arg("running_var"))]
    return ctx.emit("batch_norm", [x] + vals, epsilon=float(c.arg("eps", 1e-5)), axis=1)


# ------------------------------------------------------------------------------ pooling

def _pool(ctx, c, kind, nd):
    x = ctx.tensor(c[0])
    kernel = _pairs(c.arg("kernel_size"), nd)
    stride = c.arg("stride")
    stride = kernel if stride is None or stride == [] else _pairs(stride, nd)
    pads = _pairs(c.arg("padding", 0), nd)
    ceil = bool(c.arg("ceil_mode", False))
    unbatched = len(x.shape) == nd + 1
    if unbatched:
        x = _emit_reshape(ctx, x, (1,) + tuple(x.shape))
    if kind == "max":
        dil = _pairs(c.arg("dilation", 1), nd)
        if nd == 2:
            y = ctx.emit("max_pool2d", [x], kernel=kernel, strides=stride, padding=pads,
                         dilation=dil, ceil_mode=ceil)
        else:
            y = ctx.emit("pool1d", [x], kernel=kernel, strides=stride, padding=pads,
                         dilation=dil, pool_type="max", ceil_mode=ceil)
    else:
        if c.arg("divisor_override") is not None:
            raise UnsupportedFeatureError(f"{c}: avg_pool with divisor_override")
        cip = bool(c.arg("count_include_pad", True))
        if nd == 2:
            y = ctx.emit("avg_pool2d", [x], kernel=kernel, strides=stride, padding=pads,
                         ceil_mode=ceil, count_include_pad=cip)
        else:
            y = ctx.emit("pool1d", [x], kernel=kernel, strides=stride, padding=pads,
                         pool_type="avg", ceil_mode=ceil, count_include_pad=cip)
    if unbatched:
        y = _emit_reshape(ctx, y, y.shape[1:])
    return y


@converter("aten::max_pool2d", "aten::max_pool2d_with_indices")
def _max_pool2d(ctx, c):
    y = _pool(ctx, c, "max", 2)
    if c.n_outputs == 2:
        return [y, _no_indices(ctx, c)]
    return y


def _no_indices(ctx, c):
    return Refused(f"the indices output of {c} (tensorc pools return values only)")


@converter("aten::max_pool1d")
def _max_pool1d(ctx, c):
    return _pool(ctx, c, "max", 1)


@converter("aten::avg_pool2d")
def _avg_pool2d(ctx, c):
    return _pool(ctx, c, "avg", 2)


@converter("aten::avg_pool1d")
def _avg_pool1d(ctx, c):
    return _pool(ctx, c, "avg", 1)


def _adaptive(ctx, c, kind, nd):
    x = ctx.tensor(c[0])
    size = c[1]
    size = list(size) if isinstance(size, (list, tuple)) else [size] * nd
    if len(size) == 1 and nd > 1:
        size = size * nd
    spatial = x.shape[-nd:]
    size = [s if o is None else int(o) for s, o in zip(spatial, size)]
    unbatched = len(x.shape) == nd + 1
    if unbatched:
        x = _emit_reshape(ctx, x, (1,) + tuple(x.shape))
    if all(o == 1 for o in size):
        if nd == 2:
            y = ctx.emit("global_avg_pool2d" if kind == "avg" else "global_max_pool2d", [x])
        else:
            y = ctx.emit("global_pool", [x], pool_type=kind)
    elif all(o == s for o, s in zip(size, spatial)):
        y = x
    elif all(s % o == 0 for o, s in zip(size, spatial)):
        k = [s // o for o, s in zip(size, spatial)]
        if nd == 2:
            y = ctx.emit("avg_pool2d" if kind == "avg" else "max_pool2d", [x], kernel=k,
                         strides=k)
        else:
            y = ctx.emit("pool1d", [x], kernel=k, strides=k, pool_type=kind)
    else:
        raise UnsupportedFeatureError(f"{c}: adaptive {kind} pooling of {tuple(spatial)} to "
                                      f"{tuple(size)}: the input extents must be multiples of "
                                      "the output extents")
    if unbatched:
        y = _emit_reshape(ctx, y, y.shape[1:])
    return y


@converter("aten::adaptive_avg_pool2d", "aten::_adaptive_avg_pool2d")
def _adaptive_avg2d(ctx, c):
    return _adaptive(ctx, c, "avg", 2)


@converter("aten::adaptive_avg_pool1d")
def _adaptive_avg1d(ctx, c):
    return _adaptive(ctx, c, "avg", 1)


@converter("aten::adaptive_max_pool2d")
def _adaptive_max2d(ctx, c):
    y = _adaptive(ctx, c, "max", 2)
    return [y, _no_indices(ctx, c)] if c.n_outputs == 2 else y


@converter("aten::adaptive_max_pool1d")
def _adaptive_max1d(ctx, c):
    y = _adaptive(ctx, c, "max", 1)
    return [y, _no_indices(ctx, c)] if c.n_outputs == 2 else y


# ------------------------------------------------------------------------------ resizing

@converter("aten::upsample_nearest2d", "aten::upsample_bilinear2d", "aten::upsample_nearest1d",
           "aten::upsample_linear1d")
def _upsample(ctx, c):
    x = ctx.tensor(c[0])
    nd = len(x.shape) - 2
    size, scales = c.arg("output_size"), c.arg("scale_factors")
    if scales is None and c.has("scales_h"):
        sh, sw = c.arg("scales_h"), c.arg("scales_w")
        scales = [sh, sw] if sh is not None and sw is not None else None
    if scales is None and c.has("scales") and c.arg("scales") is not None:
        scales = [c.arg("scales")]
    nearest = "nearest" in c.kind
    if nearest:
        attrs = dict(method="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor")
    else:
        ac = bool(c.arg("align_corners", False))
        attrs = dict(method="linear", coordinate_transformation_mode="align_corners" if ac
                     else "pytorch_half_pixel")
    if scales is not None and size is None:
        op = "resize2d" if nd == 2 else "resize"
        return ctx.emit(op, [x], scales=[float(s) for s in scales], **attrs)
    size = static_ints(c, size, "output_size")
    return ctx.emit("resize2d" if nd == 2 else "resize", [x], size=size, **attrs)


@converter("aten::pixel_shuffle")
def _pixel_shuffle(ctx, c):
    x = ctx.tensor(c[0])
    r = int(c[1])
    n, ch, h, w = x.shape
    y = _emit_reshape(ctx, x, [n, ch // (r * r), r, r, h, w])
    y = ctx.emit("transpose", [y], perm=[0, 1, 4, 2, 5, 3])
    return _emit_reshape(ctx, y, [n, ch // (r * r), h * r, w * r])


# ------------------------------------------------------------------------------ attention

@converter("aten::scaled_dot_product_attention")
def _sdpa(ctx, c):
    q, k, v = ctx.tensor(c[0]), ctx.tensor(c[1]), ctx.tensor(c[2])
    mask = c.arg("attn_mask")
    if c.arg("dropout_p", 0.0):
        raise UnsupportedFeatureError(f"{c}: attention dropout (dropout_p > 0)")
    if c.arg("enable_gqa", False) and q.shape[-3] != k.shape[-3]:
        raise UnsupportedFeatureError(f"{c}: grouped-query attention (enable_gqa)")
    scale = c.arg("scale")
    E = q.shape[-1]
    scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
    r = len(k.shape)
    perm = list(range(r - 2)) + [r - 1, r - 2]
    kt = ctx.emit("transpose", [k], perm=perm)
    att = ctx.emit("matmul", [q, kt])
    att = ctx.emit("multiply", [att, ctx.scalar(scale, att.dtype)])
    L, S = q.shape[-2], k.shape[-2]
    neg_inf = ctx.scalar(-np.inf, att.dtype)
    if c.arg("is_causal", False):
        causal = np.tril(np.ones((L, S), bool))
        att = ctx.emit("where", [ctx.const(causal), att, neg_inf])
    if mask is not None:
        m = ctx.tensor(mask)
        if m.dtype == "bool":
            att = ctx.emit("where", [m, att, neg_inf])
        else:
            att = ctx.emit("add", [att, ctx.cast(m, att.dtype)])
    p = ctx.emit("softmax", [att], axis=-1)
    return ctx.emit("matmul", [p, v])
