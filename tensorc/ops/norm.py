"""Normalisations: layer_norm, instance_norm, group_norm and batch_norm (inference).

The first three share one definition: statistics over groups of elements, then

    y = (x - mean) / sqrt(var + epsilon) * scale + bias

with the biased variance of the group. The variance is computed in two passes,
var = mean((x - mean)^2), not as mean(x^2) - mean^2, which cancels catastrophically when the
mean is large against the spread. The statistics are stages tagged "norm" with
``attrs["part"]``; the output's ``attrs["stat_axes"]`` says how many of its leading axes index
the statistics directly, so ``schedule_cpu.schedule_norm`` computes the statistics once per
iteration of those axes, next to the output they feed. float16 is computed in float32.

batch_norm in inference mode uses fixed statistics: it is a per-channel affine map, tagged
"broadcast" so that it fuses into its producer or consumer like any elementwise op.
"""
from .. import te
from ..ir import dtype as dt
from .util import (
    accumulation_dtype,
    broadcast_index,
    check_tensor,
    normalize_axis,
    prod,
    static_int,
)


def _float_input(op, x):
    check_tensor(op, x)
    if not dt.is_float(x.dtype):
        raise TypeError(f"{op}: tensor {x.name!r} has dtype {x.dtype}; {op} needs a "
                        "floating-point tensor")
    return accumulation_dtype(x.dtype)


def _normalize(op, x, stat_axes, stat_shape, red_extents, stat_of, read, affine, epsilon):
    """The shared definition.

    stat_of(i): the statistic index of x's index i; read(si, rv): the element of statistic si
    at reduction point rv; affine(i, v): v with the scale and bias of x's index i applied.
    """
    acc = _float_input(op, x)
    n = float(prod(red_extents))

    def summed(part, fn):
        def body(*si):
            rv = [te.reduce_axis((0, e), name=f"r{d}") for d, e in enumerate(red_extents)]
            return te.sum(fn(si, rv), axis=rv)
        return te.compute(stat_shape, body, name=f"{op}.{part}", tag="norm",
                          attrs={"part": part})

    def mean(si):
        return total[si] / n

    def centred_square(si, rv):
        d = read(si, rv).astype(acc) - mean(si)
        return d * d

    total = summed("sum", lambda si, rv: read(si, rv).astype(acc))
    sqsum = summed("sqsum", centred_square)

    def body(*i):
        si = stat_of(i)
        v = (x[i].astype(acc) - mean(si)) * te.rsqrt(sqsum[si] / n + epsilon)
        return affine(i, v).astype(x.dtype)
    return te.compute(x.shape, body, name=op, tag="norm", attrs={"stat_axes": stat_axes})


def _check_param(op, x, p, what, shape):
    """p must be None or a tensor that broadcasts to ``shape`` (numpy rules, one direction)."""
    if p is None:
        return
    check_tensor(op, p, what)
    lead = len(shape) - p.ndim
    if lead < 0 or any(n not in (1, m) for n, m in zip(p.shape, shape[lead:])):
        raise ValueError(f"{op}: {what} {p.name!r} has shape {p.shape}, which does not "
                         f"broadcast to {tuple(shape)}, the normalised axes of tensor "
                         f"{x.name!r} of shape {x.shape}")


def _affine(scale, bias, index_of):
    """v * scale + bias, each read at index_of(i) under broadcasting; None ones are skipped."""
    def f(i, v):
        j = index_of(i)
        if scale is not None:
            v = v * scale[broadcast_index(scale, j)]
        if bias is not None:
            v = v + bias[broadcast_index(bias, j)]
        return v
    return f


def layer_norm(x, scale=None, bias=None, axis=-1, epsilon=1e-5):
    """Normalise over axes ``axis`` .. last (ONNX LayerNormalization); scale and bias broadcast
    to those axes' shape."""
    _float_input("layer_norm", x)
    axis = normalize_axis("layer_norm", x, axis)
    norm_shape = x.shape[axis:]
    _check_param("layer_norm", x, scale, "scale", norm_shape)
    _check_param("layer_norm", x, bias, "bias", norm_shape)
    return _normalize("layer_norm", x, axis, x.shape[:axis], norm_shape,
                      stat_of=lambda i: tuple(i[:axis]),
                      read=lambda si, rv: x[tuple(si) + tuple(rv)],
                      affine=_affine(scale, bias, lambda i: tuple(i[axis:])), epsilon=epsilon)


def _channels(op, x, scale, bias):
    _float_input(op, x)
    if x.ndim < 3:
        raise ValueError(f"{op}: tensor {x.name!r} has shape {x.shape}; {op} needs (N, C, "
                         "spatial...) with at least one spatial axis")
    for p, what in ((scale, "scale"), (bias, "bias")):
        if p is not None and check_tensor(op, p, what).shape != (x.shape[1],):
            raise ValueError(f"{op}: {what} {p.name!r} has shape {p.shape}; tensor {x.name!r} "
                             f"of shape {x.shape} needs ({x.shape[1]},), one per channel")
    return _affine(scale, bias, lambda i: (i[1],))


def instance_norm(x, scale=None, bias=None, epsilon=1e-5):
    """Normalise each (sample, channel) over its spatial axes; per-channel scale and bias."""
    affine = _channels("instance_norm", x, scale, bias)
    return _normalize("instance_norm", x, 2, x.shape[:2], x.shape[2:],
                      stat_of=lambda i: tuple(i[:2]),
                      read=lambda si, rv: x[tuple(si) + tuple(rv)], affine=affine,
                      epsilon=epsilon)


def group_norm(x, scale=None, bias=None, *, num_groups, epsilon=1e-5):
    """Normalise each sample over groups of C / num_groups consecutive channels and the
    spatial axes; per-channel scale and bias (PyTorch's GroupNorm, ONNX opset 21)."""
    static_int("group_norm", "num_groups", num_groups)
    affine = _channels("group_norm", x, scale, bias)
    c = x.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise ValueError(f"group_norm: tensor {x.name!r} of shape {x.shape} has {c} channels "
                         f"on axis 1, which num_groups={num_groups} does not divide")
    per = c // num_groups
    return _normalize("group_norm", x, 1, (x.shape[0], num_groups), (per,) + x.shape[2:],
                      stat_of=lambda i: (i[0], i[1] // per),
                      read=lambda si, rv: x[(si[0], si[1] * per + rv[0]) + tuple(rv[1:])],
                      affine=affine, epsilon=epsilon)


def batch_norm(x, scale, bias, mean, var, epsilon=1e-5, axis=1):
    """Inference batch normalisation with the given per-channel statistics along ``axis``:
    (x - mean) / sqrt(var + epsilon) * scale + bias."""
    _float_input("batch_norm", x)
    axis = normalize_axis("batch_norm", x, axis)
    c = x.shape[axis]
    for p, what in ((scale, "scale"), (bias, "bias"), (mean, "mean"), (var, "var")):
        if check_tensor("batch_norm", p, what).shape != (c,):
            raise ValueError(f"batch_norm: {what} {p.name!r} has shape {p.shape}; tensor "
                             f"{x.name!r} of shape {x.shape} needs ({c},), one per entry of "
                             f"axis {axis}")

    def body(*i):
        ch = i[axis]
        return (x[i] - mean[ch]) * (te.rsqrt(var[ch] + epsilon) * scale[ch]) + bias[ch]
    return te.compute(x.shape, body, name="batch_norm", tag="broadcast")
