"""Winograd F(4x4, 3x3) convolution against a float64 numpy reference, with the default CPU
schedule: odd planes (edge tiles cut by the output), output channels that fill no vector
(guarded lanes), asymmetric padding, batch 2, a fused bias + ReLU epilogue. Outputs start
NaN-filled."""
import numpy as np
import pytest
from helpers import rand
from numpy.lib.stride_tricks import sliding_window_view

import tensorc as tc
from tensorc import te
from tensorc.ops import conv as C
from tensorc.ops import conv_winograd as CW
from tensorc.ops import schedule_nn as SN
from tensorc.ops import schedule_nn_fusion as SNF

#: F(4x4, 3x3) in float32 rounds differently from the direct sum (see ops.conv_winograd)
RTOL = 2e-5


@pytest.fixture(autouse=True)
def _always_parallel(monkeypatch):
    monkeypatch.setattr(SNF, "PARALLEL_WORK", 0)


def ref_conv3x3(x, w, pads):
    pt, pl, pb, pr = pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    win = sliding_window_view(xp, (3, 3), axis=(2, 3))
    return np.einsum("ncyxij,ocij->noyx", win, w.astype(np.float64))


def rel_l2(got, want):
    return np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want)


def run(out, args, arrays):
    f = tc.build(SN.create_schedule(out), [*args, out])
    y = np.full(out.shape, np.nan, "float32")
    f(*arrays, y)
    assert not np.isnan(y).any(), "unwritten output elements"
    return y


CASES = [  # (N, IC, H, W, OC, padding)
    (1, 16, 9, 13, 5, 1),            # 3 x 4 tiles, the last ones cut; 5 of 16 lanes
    (2, 8, 7, 6, 17, (0, 1, 2, 0)),  # batch 2, asymmetric padding, 17 output channels
    (1, 32, 14, 14, 32, 1),          # a ResNet-like 14x14 plane: 4 x 4 tiles, 2 cut
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layout", ["OIHW", "winograd"])
def test_conv2d_winograd_matches_numpy(case, layout):
    n, ic, h, w, oc, padding = case
    x, wt = rand((n, ic, h, w), seed=1), rand((oc, ic, 3, 3), seed=2, lo=0.05, hi=0.2)
    pads = C._pads("test", padding, 2)
    warr = wt if layout == "OIHW" else CW.winograd_weight(wt)
    X, W = te.placeholder(x.shape, name="x"), te.placeholder(warr.shape, name="w")
    y = CW.conv2d_winograd(X, W, padding=padding, weight_layout=layout)
    got = run(y, [X, W], [x, warr])
    assert rel_l2(got, ref_conv3x3(x, wt, pads)) < RTOL


def test_conv2d_dispatches_and_fuses_a_bias_relu_epilogue():
    x, wt = rand((1, 16, 11, 10), seed=3), rand((24, 16, 3, 3), seed=4, lo=0.05, hi=0.2)
    b = rand((24,), seed=5)
    X = te.placeholder(x.shape, name="x")
    W = te.placeholder((6, 6, 16, 24), name="w")
    B = te.placeholder((24,), name="b")
    y = C.conv2d(X, W, padding=1, weight_layout="winograd")
    assert y.op.attrs["algo"] == "winograd"
    z = te.compute(y.shape, lambda n, c, i, j: te.max(y[n, c, i, j] + B[c],
                                                      te.const(0, "float32")),
                   name="z", tag="elemwise")
    got = run(z, [X, W, B], [x, CW.winograd_weight(wt), b])
    want = np.maximum(ref_conv3x3(x, wt, (1, 1, 1, 1)) + b[:, None, None], 0)
    assert rel_l2(got, want) < RTOL


def test_the_transforms_unroll_to_plain_sums():
    """Every coefficient select of the transforms folds once their coordinates are unrolled
    (left unfolded they cost several times the products), and the padding's folds on the
    interior and border parts that loop partitioning cuts: none is left."""
    X = te.placeholder((1, 16, 12, 12), name="x")
    W = te.placeholder((6, 6, 16, 16), name="w")
    y = CW.conv2d_winograd(X, W, padding=1, weight_layout="winograd")
    text = str(tc.lower(SN.create_schedule(y), [X, W, y]))
    selects = [line for line in text.splitlines() if "select(" in line]
    assert not selects, selects


def test_winograd_weight_is_g_w_gt():
    w = rand((3, 2, 3, 3), seed=6)
    g = np.array([[float(v) for v in row] for row in CW.G])
    u = CW.winograd_weight(w)
    assert u.shape == (6, 6, 2, 3) and u.dtype == np.float32
    np.testing.assert_allclose(u[:, :, 1, 2], g @ w[2, 1].astype(np.float64) @ g.T, rtol=1e-6)
    with pytest.raises(ValueError, match="3x3"):
        CW.winograd_weight(np.ones((2, 2, 5, 5), "float32"))


def test_bad_input_names_the_tensor():
    X = te.placeholder((1, 12, 8, 8), name="acts")
    with pytest.raises(ValueError, match="'acts' has 12 channels"):
        CW.conv2d_winograd(X, te.placeholder((4, 12, 3, 3), name="w"))
    X = te.placeholder((1, 16, 8, 8), name="acts")
    with pytest.raises(ValueError, match="'wt' must have shape"):
        CW.conv2d_winograd(X, te.placeholder((4, 16, 5, 5), name="wt"))
    with pytest.raises(ValueError, match="transformed weight 'u'"):
        CW.conv2d_winograd(X, te.placeholder((4, 4, 16, 8), name="u"), weight_layout="winograd")
    with pytest.raises(ValueError, match="stride 1"):
        C.conv2d(X, te.placeholder((6, 6, 16, 8), name="u"), strides=2,
                 weight_layout="winograd")


def test_applicable_only_to_stride_1_3x3_single_group():
    assert CW.winograd_applicable(64, (64, 64, 3, 3), 1, 1, 1, 1)
    assert not CW.winograd_applicable(64, (64, 64, 3, 3), 2, 1, 1, 1)
    assert not CW.winograd_applicable(64, (64, 64, 3, 3), 1, 1, 2, 1)
    assert not CW.winograd_applicable(64, (64, 32, 3, 3), 1, 1, 1, 2)
    assert not CW.winograd_applicable(64, (64, 64, 5, 5), 1, 2, 1, 1)
    assert not CW.winograd_applicable(12, (64, 12, 3, 3), 1, 1, 1, 1)
