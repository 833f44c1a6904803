"""Resize of NCHW (or NCW) tensors: nearest and (bi)linear, ONNX Resize semantics.

For every output coordinate x of a resized axis the source coordinate is (ONNX
``coordinate_transformation_mode``, with scale = output / input, or the given scale):

- half_pixel:          (x + 0.5) / scale - 0.5
- pytorch_half_pixel:  like half_pixel, but -0.5 when the output length is 1
- half_pixel_symmetric: (in - 1) / 2 + (x - (out - 1) / 2) / scale: half_pixel shifted so
  that the input and output centres coincide
- align_corners:       x * (in - 1) / (out - 1)  (0 when out == 1)
- asymmetric:          x / scale
- tf_half_pixel_for_nn: (x + 0.5) / scale

``nearest`` then picks round_prefer_floor (ceil(x - 0.5)), round_prefer_ceil (floor(x + 0.5)),
floor or ceil; ``linear`` interpolates between floor(x) and floor(x) + 1 with weight
frac(x). Indices are clamped to the input (ONNX's edge padding). An axis whose length and
scale stay the same is read in place in every mode (as ONNX's reference and ONNX Runtime do,
although tf_half_pixel_for_nn's formula would move it by half a pixel). The compute is tagged
"resize".

Output lengths (floor(in * scale)) and coordinates are computed in float64 from the given
scale: the specification's formulas on an ONNX model's float32 scale, as ONNX's reference
computes them (half_pixel_symmetric rearranged so that its centre is exact). align_corners
divides by the integer output length, as the specification and ONNX Runtime do (the
reference divides by the fractional in * scale when scales are given). ONNX Runtime computes
lengths and coordinates in float32 instead, so where in * scale lies within float32 rounding
below an integer (10 x 0.7f = 6.99999988) its output is one longer, and a coordinate that
float32 rounds onto a nearest-mode tie can round to the other neighbour.
"""
import math

from .. import te
from ..ir import dtype as dt
from ..te.tensor import Tensor

COORD_MODES = ("half_pixel", "pytorch_half_pixel", "half_pixel_symmetric", "align_corners",
               "asymmetric", "tf_half_pixel_for_nn")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _keeps(n_in, n_out, scale):
    """Whether an axis is left as it is (read at the output index)."""
    return n_out == n_in and math.isclose(scale, 1.0)


def _source_coord(x, n_in, n_out, scale, mode):
    """Source coordinate (float64 expression) of output index x."""
    xf = te.cast("float64", x)
    f64 = lambda v: te.const(float(v), "float64")
    if mode == "align_corners":
        if n_out == 1:
            return f64(0.0)
        return xf * f64(n_in - 1) / f64(n_out - 1)
    if mode == "asymmetric":
        return xf / f64(scale)
    if mode == "tf_half_pixel_for_nn":
        return (xf + f64(0.5)) / f64(scale)
    if mode == "pytorch_half_pixel":
        if n_out == 1:
            return f64(-0.5)
        return (xf + f64(0.5)) / f64(scale) - f64(0.5)
    if mode == "half_pixel_symmetric":
        # offset + (x + 0.5) / scale - 0.5 with offset = in / 2 * (1 - out / (scale * in)),
        # rearranged around the centres so that the middle output of an odd length maps exactly
        # onto the input's centre, a nearest-mode tie when in is even
        return f64((n_in - 1) / 2) + (xf - f64((n_out - 1) / 2)) / f64(scale)
    return (xf + f64(0.5)) / f64(scale) - f64(0.5)   # half_pixel


def _clamp(i, n):
    return te.min(te.max(i, 0), n - 1)


def _nearest_index(xo, n, mode):
    if mode == "round_prefer_floor":
        v = te.ceil(xo - te.const(0.5, "float64"))
    elif mode == "round_prefer_ceil":
        v = te.floor(xo + te.const(0.5, "float64"))
    elif mode == "floor":
        v = te.floor(xo)
    else:
        v = te.ceil(xo)
    return _clamp(v.astype("int32"), n)


def resize(data, size=None, scales=None, method="nearest",
           coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_floor",
           name="resize"):
    """Resize the spatial dims (all but N and C) of ``data``.

    size: output spatial extents; or scales: a float per spatial dim (output = floor(in *
    scale)). method: "nearest" or "linear" (bilinear for 2 spatial dims).
    """
    op = "resize"
    if not isinstance(data, Tensor):
        raise TypeError(f"{op}: data must be a te.Tensor, got {type(data).__name__}")
    if data.ndim not in (3, 4):
        raise ValueError(f"{op}: data {data.name!r} must be NCW or NCHW (3 or 4 dimensions), "
                         f"got shape {data.shape}")
    nd = data.ndim - 2
    spatial = data.shape[2:]
    if method not in ("nearest", "linear"):
        raise ValueError(f"{op}: method must be 'nearest' or 'linear', got {method!r}")
    if coordinate_transformation_mode not in COORD_MODES:
        raise ValueError(f"{op}: coordinate_transformation_mode must be one of {COORD_MODES}, "
                         f"got {coordinate_transformation_mode!r}")
    if nearest_mode not in NEAREST_MODES:
        raise ValueError(f"{op}: nearest_mode must be one of {NEAREST_MODES}, got "
                         f"{nearest_mode!r}")
    if (size is None) == (scales is None):
        raise ValueError(f"{op}: give exactly one of size= and scales=")
    if size is not None:
        size = (size,) * nd if isinstance(size, int) else tuple(size)
        if len(size) != nd or any(not isinstance(v, int) or v <= 0 for v in size):
            raise ValueError(f"{op}: size must be {nd} positive ints for data {data.name!r}, "
                             f"got {size!r}")
        out = size
        scl = tuple(o / i for o, i in zip(out, spatial))
    else:
        scales = (scales,) * nd if isinstance(scales, (int, float)) else tuple(scales)
        if len(scales) != nd or any(float(v) <= 0 for v in scales):
            raise ValueError(f"{op}: scales must be {nd} positive numbers for data "
                             f"{data.name!r}, got {scales!r}")
        scl = tuple(float(v) for v in scales)
        out = tuple(int(i * v) for i, v in zip(spatial, scl))
        if any(o <= 0 for o in out):
            raise ValueError(f"{op}: scales {scales!r} give an empty output for data "
                             f"{data.name!r} of shape {data.shape}")
    if method == "linear" and not dt.is_float(data.dtype):
        raise TypeError(f"{op}: linear resize needs a floating-point tensor, {data.name!r} is "
                        f"{data.dtype}")
    N, C = data.shape[:2]
    mode = coordinate_transformation_mode
    attrs = {"method": method, "coordinate_transformation_mode": mode,
             "nearest_mode": nearest_mode, "scales": scl, "size": out, "op": op}

    keep = [_keeps(spatial[d], out[d], scl[d]) for d in range(nd)]

    if method == "nearest":
        def f(*idx):
            n, c, *pos = idx
            idx = tuple(p if keep[d] else
                        _nearest_index(_source_coord(p, spatial[d], out[d], scl[d], mode),
                                       spatial[d], nearest_mode) for d, p in enumerate(pos))
            return data[(n, c) + idx]
        return te.compute((N, C) + out, f, name=name, tag="resize", attrs=attrs)

    wdt = data.dtype
    one = te.const(1, wdt)

    def taps(d, p):
        """[(index, weight)] of output position p along axis d: one tap on a kept axis."""
        if keep[d]:
            return [(p, None)]
        xo = _source_coord(p, spatial[d], out[d], scl[d], mode)
        x0 = te.floor(xo)
        frac = (xo - x0).astype(wdt)
        i0 = x0.astype("int32")
        return [(_clamp(i0, spatial[d]), one - frac), (_clamp(i0 + 1, spatial[d]), frac)]

    def f(*idx):
        n, c, *pos = idx
        axis_taps = [taps(d, p) for d, p in enumerate(pos)]

        def interpolate(d, index):
            """Axis d onwards, the earlier axes at ``index``: the last axis innermost."""
            if d == nd:
                return data[(n, c) + index]
            (i0, w0), *rest = axis_taps[d]
            v = interpolate(d + 1, index + (i0,))
            if not rest:
                return v
            ((i1, w1),) = rest
            return v * w0 + interpolate(d + 1, index + (i1,)) * w1
        return interpolate(0, ())
    return te.compute((N, C) + out, f, name=name, tag="resize", attrs=attrs)


def resize2d(data, size=None, scales=None, method="nearest",
             coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_floor",
             name="resize2d"):
    if isinstance(data, Tensor) and data.ndim != 4:
        raise ValueError(f"resize2d: data {data.name!r} must be NCHW, got shape {data.shape}")
    return resize(data, size, scales, method, coordinate_transformation_mode, nearest_mode,
                  name)


__all__ = ["COORD_MODES", "NEAREST_MODES", "resize", "resize2d"]
