"""3x3 convolutions by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, 2016).

A stride-1 3x3 convolution computes each 4x4 output tile from a 6x6 input tile. In the
Winograd domain that is an elementwise product of the 6x6 transformed input tile and the 6x6
transformed kernel, summed over input channels: 36 independent matrix products
(tiles x input channels times input channels x output channels), 36 multiply-adds per tile
and channel pair instead of 16 x 9 = 144 -- 4x fewer. The transforms
are sums with small integer coefficients (B^T d B of the input, A^T m A of the products), and
the kernel's (G g G^T) is computed once for a constant weight (``winograd_weight``).

Stages, each a compute the schedule (``schedule_nn_conv``) places on its own:

- ``data_vec[n, C/cb, Hp, Wp, cb]``: the padded input with channels in blocks (NCHWc), so the
  input transform runs with channels in vector lanes;
- ``V[e1, e2, p, c]`` (with ``tV[e1, s, p, c]``, the transform along rows): the transformed
  tiles, p = (n * tiles_h + ty) * tiles_w + tx;
- ``M[e1, e2, p, k] = sum_c V[e1, e2, p, c] * U[e1, e2, c, k]``: the anchor, tag
  ``conv.ANCHOR_TAG``, ``attrs["algo"] == "winograd"``;
- ``tY[i, e2, p, k]`` and the result ``Y[n, k, h, w]``: the inverse transform, tag
  "conv2d_nchw", cropped to the output size (edge tiles compute past it).

Each transform is written per output coordinate as a ``select`` over the coefficient row; the
schedule unrolls those coordinates, so every select folds to its row's sum of a few terms (zero
coefficients never multiply). Numerically this rounds differently from the direct sum: on
ResNet layers the relative L2 error against a float64 reference is 2-4e-6 instead of about
3e-7 (float32 throughout).
"""
from fractions import Fraction

from .. import te
from ..ir import dtype as dt
from ..te.tensor import Tensor
from .conv import ANCHOR_TAG, _pack_input, _pads

#: output tile (m) and input tile (alpha = m + r - 1) of F(m x m, 3 x 3)
TILE = 4
ALPHA = 6

_F = Fraction
#: input transform B^T (alpha x alpha), kernel transform G (alpha x 3), output transform A^T
#: (m x alpha), from the interpolation points 0, 1, -1, 2, -2 and infinity
BT = ((4, 0, -5, 0, 1, 0),
      (0, -4, -4, 1, 1, 0),
      (0, 4, -4, -1, 1, 0),
      (0, -2, -1, 2, 1, 0),
      (0, 2, -1, -2, 1, 0),
      (0, 4, 0, -5, 0, 1))
G = ((_F(1, 4), 0, 0),
     (_F(-1, 6), _F(-1, 6), _F(-1, 6)),
     (_F(-1, 6), _F(1, 6), _F(-1, 6)),
     (_F(1, 24), _F(1, 12), _F(1, 6)),
     (_F(1, 24), _F(-1, 12), _F(1, 6)),
     (0, 0, 1))
AT = ((1, 1, 1, 1, 1, 0),
      (0, 1, -1, 2, -2, 0),
      (0, 1, 1, 4, 4, 0),
      (0, 1, -1, 8, -8, 1))

#: input channels per block of the packed input (the vector lanes of the input transform)
CHANNEL_BLOCKS = (16, 8)


def winograd_applicable(in_channels, kernel_shape, strides=1, padding=0, dilation=1, groups=1):
    """Whether ``conv2d_winograd`` computes this convolution: 3x3, stride and dilation 1, one
    group, input channels in whole ``CHANNEL_BLOCKS`` (the vector lanes of the input
    transform); any padding."""
    one = (1, 1)
    as_pair = (lambda v: (v, v) if isinstance(v, int) else tuple(v))
    return (groups == 1 and tuple(kernel_shape[2:]) == (3, 3) and as_pair(strides) == one and
            as_pair(dilation) == one and in_channels % CHANNEL_BLOCKS[-1] == 0 and
            kernel_shape[1] == in_channels)


def winograd_weight(weight):
    """numpy: the transformed kernel U[e1, e2, c, k] = (G g[k, c] G^T)[e1, e2] of an OIHW 3x3
    weight, computed in float64 and rounded once to the weight's type; what
    ``conv2d_winograd(..., weight_layout="winograd")`` reads."""
    import numpy as np
    w = np.asarray(weight)
    if w.ndim != 4 or w.shape[2:] != (3, 3):
        raise ValueError(f"winograd_weight: expected an OIHW weight with a 3x3 kernel, got shape "
                         f"{w.shape}")
    g = np.array([[float(x) for x in row] for row in G])
    u = np.einsum("ar,kcrs,bs->abck", g, w.astype(np.float64), g)
    return np.ascontiguousarray(u.astype(w.dtype))


def _combo(coeffs, row, term, dtype):
    """sum_j coeffs[row][j] * term(j) for the (unrolled) index ``row``: a select over the rows,
    each row's sum skipping zero coefficients and multiplying only by coefficients other than
    +-1."""
    def row_sum(r):
        acc = None
        # a positive term first: a leading negative one would be 0 - x (not -x for x = +0)
        order = sorted((j for j, c in enumerate(coeffs[r]) if c != 0),
                       key=lambda j: coeffs[r][j] < 0)
        for j in order:
            c = coeffs[r][j]
            t = term(j)
            if abs(c) != 1:
                t = t * te.const(float(abs(c)), dtype)
            if acc is None:
                acc = -t if c < 0 else t
            else:
                acc = acc - t if c < 0 else acc + t
        return acc
    out = row_sum(len(coeffs) - 1)
    for r in range(len(coeffs) - 2, -1, -1):
        out = te.if_then_else(row == r, row_sum(r), out)
    return out


def _weight_transform(weight, name):
    """U[e1, e2, c, k] from an OIHW weight tensor, as a compute (for weights that are not
    constants; a constant weight is transformed ahead of time by ``winograd_weight``)."""
    OC, IC = weight.shape[:2]
    dtype = weight.dtype
    gw = te.compute((ALPHA, 3, IC, OC), lambda a, s, c, k: _combo(
        G, a, lambda r: weight[k, c, r, s], dtype), name=f"{name}_gw", tag="injective")
    return te.compute((ALPHA, ALPHA, IC, OC), lambda a, b, c, k: _combo(
        G, b, lambda s: gw[a, s, c, k], dtype), name=f"{name}_U", tag="conv2d_kernel_pack",
        attrs={"layout": "winograd"})


def conv2d_winograd(data, weight, padding=1, out_dtype=None, name="conv2d",
                    weight_layout="OIHW"):
    """A stride-1 3x3 conv2d of NCHW data by F(4x4, 3x3) Winograd; same result as
    ``conv.conv2d`` up to rounding (see the module docstring).

    weight: OIHW [OC, IC, 3, 3], or with ``weight_layout="winograd"`` the [6, 6, IC, OC] array
    of ``winograd_weight``. padding: int, (pad_h, pad_w) or (top, left, bottom, right).
    """
    op = "conv2d_winograd"
    for t, what in ((data, "data"), (weight, "weight")):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {what} must be a te.Tensor, got {type(t).__name__} {t!r}")
    if data.ndim != 4:
        raise ValueError(f"{op}: data {data.name!r} must have 4 dimensions (NCHW), got shape "
                         f"{data.shape}")
    N, IC, H, W = data.shape
    if weight_layout == "winograd":
        if weight.ndim != 4 or weight.shape[:2] != (ALPHA, ALPHA) or weight.shape[2] != IC:
            raise ValueError(f"{op}: a transformed weight {weight.name!r} must have shape "
                             f"({ALPHA}, {ALPHA}, {IC}, OC) (from winograd_weight), got "
                             f"{weight.shape}")
        OC = weight.shape[3]
        U = weight
    elif weight_layout == "OIHW":
        if weight.ndim != 4 or weight.shape[1:] != (IC, 3, 3):
            raise ValueError(f"{op}: weight {weight.name!r} must have shape (OC, {IC}, 3, 3) "
                             f"for data {data.name!r} with {IC} channels, got {weight.shape}")
        OC = weight.shape[0]
        U = _weight_transform(weight, name)
    else:
        raise ValueError(f"{op}: weight_layout must be 'OIHW' or 'winograd', got "
                         f"{weight_layout!r}")
    cb = next((b for b in CHANNEL_BLOCKS if IC % b == 0), None)
    if cb is None:
        raise ValueError(f"{op}: data {data.name!r} has {IC} channels; the input transform "
                         f"needs a multiple of {CHANNEL_BLOCKS[-1]}")
    pt, pl, pb, pr = _pads(op, padding, 2)
    OH, OW = H + pt + pb - 2, W + pl + pr - 2
    if OH <= 0 or OW <= 0:
        raise ValueError(f"{op}: data {data.name!r} ({H}x{W}, padded by {padding!r}) is smaller "
                         "than the 3x3 kernel")
    out_dtype = dt.check(out_dtype) if out_dtype is not None else data.dtype
    dtype = data.dtype
    th, tw = -(-OH // TILE), -(-OW // TILE)
    P = N * th * tw
    dv = _pack_input(lambda n, c, y, x: data[n, c, y, x], N, IC, H, W, dtype, cb,
                     th * TILE + 2, tw * TILE + 2, pt, pl, name)

    def tile_at(p):
        return p // (th * tw), p // tw % th * TILE, p % tw * TILE

    def row_transform(e1, s, p, c):
        n, y, x = tile_at(p)
        return _combo(BT, e1, lambda r: dv[n, c // cb, y + r, x + s, c % cb], dtype)
    tV = te.compute((ALPHA, ALPHA, P, IC), row_transform, name=f"{name}_tV", tag="injective")
    V = te.compute((ALPHA, ALPHA, P, IC), lambda e1, e2, p, c: _combo(
        BT, e2, lambda s: tV[e1, s, p, c], dtype), name=f"{name}_V", tag="injective")
    ic = te.reduce_axis((0, IC), name="ic")
    info = {"algo": "winograd", "op": op, "tiles": (th, tw), "ic_bn": cb}
    M = te.compute((ALPHA, ALPHA, P, OC), lambda e1, e2, p, k: te.sum(
        V[e1, e2, p, ic] * U[e1, e2, ic, k], axis=ic), name=f"{name}_M", tag=ANCHOR_TAG,
        attrs=info)
    tY = te.compute((TILE, ALPHA, P, OC), lambda i, e2, p, k: _combo(
        AT, i, lambda e1: M[e1, e2, p, k], dtype), name=f"{name}_tY", tag="injective")

    def result(n, k, h, w):
        p = (n * th + h // TILE) * tw + w // TILE
        v = _combo(AT, w % TILE, lambda e2: tY[h % TILE, e2, p, k], dtype)
        return v.astype(out_dtype) if out_dtype != dtype else v
    attrs = {"op": op, "strides": (1, 1), "padding": (pt, pl, pb, pr), "dilation": (1, 1),
             "groups": 1, "algo": "winograd"}
    return te.compute((N, OC, OH, OW), result, name=name, tag="conv2d_nchw", attrs=attrs)


__all__ = ["conv2d_winograd", "winograd_applicable", "winograd_weight"]
