"""Pooling on NCHW (NCW) tensors: max and average pooling, 1-D and 2-D, and global pooling.

Semantics follow ONNX MaxPool / AveragePool (as ONNX Runtime and PyTorch implement them):

- ``padding`` is explicit per side: an int, one int per spatial dim, or ONNX's
  (begin..., end...). Padded positions never win a max and, with ``count_include_pad=False``,
  are not counted by an average.
- ``ceil_mode`` rounds the output size up; a window that would start beyond the input and its
  begin padding is dropped (PyTorch's rule, which ONNX Runtime follows), and window taps past
  the end padding are ignored by both max and average.
- ``count_include_pad=True`` divides by the taps that fall inside the padded input (the
  kernel size, except for ceil-mode windows that overhang the end padding).
- ``dilation`` applies to both max and average pooling (ONNX opset 19).

The padded input is a separate injective compute (tag "injective", -inf or 0 outside the
input); the pooling reduction is tagged "pool". Average pools sum in
``util.accumulation_dtype`` (float32 for float16) and round once, after the division.
"""
from .. import te
from ..ir import dtype as dt
from ..te.tensor import Tensor
from .util import accumulation_dtype, static_ints


def _check(op, x, nd):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: data must be a te.Tensor, got {type(x).__name__} {x!r}")
    if x.ndim != nd + 2:
        raise ValueError(f"{op}: data {x.name!r} must have {nd + 2} dimensions "
                         f"({'NCHW' if nd == 2 else 'NCW'}), got shape {x.shape}")


def _pads(op, padding, nd):
    if isinstance(padding, bool):
        raise TypeError(f"{op}: padding must be ints, got {padding!r}")
    p = (padding,) * (2 * nd) if isinstance(padding, int) else tuple(padding)
    if len(p) == nd:
        p = p + p
    if len(p) != 2 * nd or any(isinstance(x, bool) or not isinstance(x, int) or x < 0
                               for x in p):
        raise ValueError(f"{op}: padding must be a non-negative int, {nd} ints or {2 * nd} ints "
                         f"(begins then ends), got {padding!r}")
    return p


def pool_output_size(n, k, s, pb, pe, d=1, ceil_mode=False):
    """Output extent of one spatial dim (ONNX / PyTorch rule)."""
    ext = (k - 1) * d + 1
    num = n + pb + pe - ext
    o = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (o - 1) * s >= n + pb:
        o -= 1
    return o


def _count(start, k, d, lo, hi):
    """Number of taps start + t*d, t in [0, k), with lo <= tap < hi (integer expression)."""
    def ceil_div(a, b):
        return -((-a) // b)
    first = te.max(ceil_div(lo - start, d), 0)
    last = te.min(ceil_div(hi - start, d), k)
    return te.max(last - first, 0)


def _pool(op, data, kernel, strides, padding, dilation, pool_type, ceil_mode,
          count_include_pad, name, nd):
    _check(op, data, nd)
    if pool_type not in ("max", "avg"):
        raise ValueError(f"{op}: pool_type must be 'max' or 'avg', got {pool_type!r}")
    kernel = static_ints(op, "kernel", kernel, nd)
    strides = static_ints(op, "strides", strides, nd)
    dilation = static_ints(op, "dilation", dilation, nd)
    pads = _pads(op, padding, nd)
    if pool_type == "avg" and not dt.is_float(data.dtype):
        raise TypeError(f"{op}: average pooling needs a floating-point tensor, "
                        f"{data.name!r} is {data.dtype}")
    spatial = data.shape[2:]
    outs = []
    for d in range(nd):
        ext = (kernel[d] - 1) * dilation[d] + 1
        if pads[d] >= ext or pads[nd + d] >= ext:
            raise ValueError(f"{op}: padding {pads[d]}/{pads[nd + d]} of spatial dimension "
                             f"{d} must be smaller than the (dilated) kernel extent {ext}")
        o = pool_output_size(spatial[d], kernel[d], strides[d], pads[d], pads[nd + d],
                             dilation[d], ceil_mode)
        if o <= 0:
            raise ValueError(f"{op}: spatial dimension {d} of {data.name!r} ({spatial[d]}, "
                             f"padded by {pads[d]}+{pads[nd + d]}) is smaller than the kernel "
                             f"extent {ext}")
        outs.append(o)
    # The padded input covers every tap of every window: begin padding, the input, and the
    # end (which may exceed the end padding in ceil mode; those taps are ignored).
    need = [(outs[d] - 1) * strides[d] + (kernel[d] - 1) * dilation[d] + 1 for d in range(nd)]
    padded_ext = [max(need[d], spatial[d] + pads[d]) for d in range(nd)]
    N, Cc = data.shape[:2]
    fill = te.min_value(data.dtype) if pool_type == "max" else te.const(0, data.dtype)
    trivial = not any(pads) and all(need[d] <= spatial[d] for d in range(nd))
    if trivial:
        src = data
    else:
        def fpad(*idx):
            n, c, *pos = idx
            conds = []
            idx = []
            for d, p in enumerate(pos):
                r = p - pads[d]
                conds += [r >= 0, r < spatial[d]]
                idx.append(r)
            return te.if_then_else(te.all(*conds), data[(n, c) + tuple(idx)], fill)
        src = te.compute((N, Cc) + tuple(padded_ext), fpad, name=f"{name}_pad", tag="injective")
    rs = [te.reduce_axis((0, kernel[d]), name=f"r{d}") for d in range(nd)]

    def taps(pos):
        return tuple(p * strides[d] + rs[d] * dilation[d] for d, p in enumerate(pos))

    # taps past the end padding (ceil mode) are excluded with a where-condition
    overhang = [need[d] > spatial[d] + pads[d] + pads[nd + d] for d in range(nd)]

    def where(pos):
        conds = [taps(pos)[d] < spatial[d] + pads[d] + pads[nd + d]
                 for d in range(nd) if overhang[d]]
        return te.all(*conds) if conds else None

    attrs = {"pool_type": pool_type, "kernel": kernel, "strides": strides, "padding": pads,
             "dilation": dilation, "ceil_mode": bool(ceil_mode),
             "count_include_pad": bool(count_include_pad), "op": op}
    shape = (N, Cc) + tuple(outs)
    if pool_type == "max":
        def fmax(*idx):
            n, c, *pos = idx
            w = where(pos)
            return te.max(src[(n, c) + taps(pos)], axis=rs, **({"where": w} if w is not None
                                                                else {}))
        return te.compute(shape, fmax, name=name, tag="pool", attrs=attrs)

    acc = accumulation_dtype(data.dtype)

    def fsum(*idx):
        n, c, *pos = idx
        w = where(pos)
        return te.sum(src[(n, c) + taps(pos)].astype(acc), axis=rs,
                      **({"where": w} if w is not None else {}))
    total = te.compute(shape, fsum, name=f"{name}_sum", tag="pool", attrs=dict(attrs, part="sum"))

    def fdiv(*idx):
        n, c, *pos = idx
        cnt = None
        for d, p in enumerate(pos):
            start = p * strides[d] - pads[d]
            if count_include_pad:
                c_d = _count(start, kernel[d], dilation[d], -pads[d],
                             spatial[d] + pads[nd + d])
            else:
                c_d = _count(start, kernel[d], dilation[d], 0, spatial[d])
            cnt = c_d if cnt is None else cnt * c_d
        return (total[(n, c) + tuple(pos)] / cnt.astype(acc)).astype(data.dtype)
    return te.compute(shape, fdiv, name=name, tag="pool", attrs=attrs)


def pool2d(data, kernel, strides=1, padding=0, dilation=1, pool_type="max", ceil_mode=False,
           count_include_pad=False, name="pool2d"):
    """Max or average pooling of NCHW data (ONNX MaxPool / AveragePool)."""
    return _pool("pool2d", data, kernel, strides, padding, dilation, pool_type, ceil_mode,
                 count_include_pad, name, 2)


def pool1d(data, kernel, strides=1, padding=0, dilation=1, pool_type="max", ceil_mode=False,
           count_include_pad=False, name="pool1d"):
    """Max or average pooling of NCW data."""
    return _pool("pool1d", data, kernel, strides, padding, dilation, pool_type, ceil_mode,
                 count_include_pad, name, 1)


def max_pool2d(data, kernel, strides=1, padding=0, dilation=1, ceil_mode=False,
               name="max_pool2d"):
    return pool2d(data, kernel, strides, padding, dilation, "max", ceil_mode, False, name)


def avg_pool2d(data, kernel, strides=1, padding=0, ceil_mode=False, count_include_pad=False,
               dilation=1, name="avg_pool2d"):
    return pool2d(data, kernel, strides, padding, dilation, "avg", ceil_mode,
                  count_include_pad, name)


def global_pool(data, pool_type="avg", name="global_pool"):
    """ONNX GlobalAveragePool / GlobalMaxPool: [N, C, *spatial] -> [N, C, 1, ...]."""
    op = "global_pool"
    if not isinstance(data, Tensor):
        raise TypeError(f"{op}: data must be a te.Tensor, got {type(data).__name__}")
    if data.ndim < 3:
        raise ValueError(f"{op}: data {data.name!r} must have at least 3 dimensions "
                         f"(N, C, spatial...), got shape {data.shape}")
    if pool_type not in ("max", "avg"):
        raise ValueError(f"{op}: pool_type must be 'max' or 'avg', got {pool_type!r}")
    if pool_type == "avg" and not dt.is_float(data.dtype):
        raise TypeError(f"{op}: average pooling needs a floating-point tensor, "
                        f"{data.name!r} is {data.dtype}")
    N, Cc, *spatial = data.shape
    rs = [te.reduce_axis((0, n), name=f"r{d}") for d, n in enumerate(spatial)]
    shape = (N, Cc) + (1,) * len(spatial)
    count = 1
    for n in spatial:
        count *= n
    attrs = {"pool_type": pool_type, "global": True, "op": op}
    red = te.max if pool_type == "max" else te.sum
    acc = data.dtype if pool_type == "max" else accumulation_dtype(data.dtype)

    def f(*idx):
        n, c, *_ = idx
        return red(data[(n, c) + tuple(r for r in rs)].astype(acc), axis=rs)
    if pool_type == "max":
        return te.compute(shape, f, name=name, tag="pool", attrs=attrs)
    r = te.compute(shape, f, name=f"{name}_sum", tag="pool", attrs=dict(attrs, part="sum"))
    return te.compute(shape, lambda *i: (r[i] / te.const(count, acc)).astype(data.dtype),
                      name=name, tag="pool", attrs=attrs)


def global_avg_pool2d(data, name="global_avg_pool2d"):
    return global_pool(data, "avg", name)


def global_max_pool2d(data, name="global_max_pool2d"):
    return global_pool(data, "max", name)


__all__ = [
    "avg_pool2d",
    "global_avg_pool2d",
    "global_max_pool2d",
    "global_pool",
    "max_pool2d",
    "pool1d",
    "pool2d",
    "pool_output_size",
]
