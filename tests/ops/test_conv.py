"""Convolutions against numpy: conv2d (NCHWc, 1x1 and depthwise algorithms), conv1d,
conv_transpose2d, with the default CPU schedule, alone and with a bias + ReLU epilogue fused
into the same group.

Shapes are odd on purpose (1, 3, 7, 13; channels that are not multiples of the 8/16 blocks;
asymmetric padding, stride 2, dilation 2, groups, batch 2), so the tile tails, the padded
channel blocks and the partitioned loops all run. Outputs start NaN-filled.
"""
import re

import numpy as np
import pytest
from helpers import assert_close, rand

import tensorc as tc
from tensorc import te
from tensorc.ops import conv as C
from tensorc.ops import schedule_nn as SN
from tensorc.ops import schedule_nn_conv as SNC
from tensorc.ops import schedule_nn_fusion as SNF


@pytest.fixture(autouse=True)
def _always_parallel(monkeypatch):
    """Small test shapes would run on one thread; make every schedule take its parallel path."""
    monkeypatch.setattr(SNF, "PARALLEL_WORK", 0)


# ------------------------------------------------------------------------ numpy references

def ref_conv2d(x, w, strides=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """Direct convolution: a sum over kernel taps of strided input slices (einsum per group)."""
    n, _, h, wd = x.shape
    oc, icg, kh, kw = w.shape
    sh, sw = strides
    dh, dw = dilation
    pt, pl, pb, pr = pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    ocg = oc // groups
    out = np.zeros((n, oc, oh, ow))
    for g in range(groups):
        xs = xp[:, g * icg:(g + 1) * icg]
        ws = w[g * ocg:(g + 1) * ocg].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                sl = xs[:, :, i * dh:i * dh + (oh - 1) * sh + 1:sh,
                        j * dw:j * dw + (ow - 1) * sw + 1:sw]
                out[:, g * ocg:(g + 1) * ocg] += np.einsum("nchw,oc->nohw", sl, ws[:, :, i, j])
    return out


def ref_conv_transpose2d(x, w, strides=(1, 1), pads=(0, 0, 0, 0), output_padding=(0, 0),
                         dilation=(1, 1), groups=1):
    """Scatter every input element times the kernel into the (uncropped) output, then crop."""
    n, ic, h, wd = x.shape
    _, ocg, kh, kw = w.shape
    sh, sw = strides
    dh, dw = dilation
    pt, pl, pb, pr = pads
    icg = ic // groups
    fh = (h - 1) * sh + (kh - 1) * dh + 1 + output_padding[0]
    fw = (wd - 1) * sw + (kw - 1) * dw + 1 + output_padding[1]
    full = np.zeros((n, ocg * groups, fh, fw))
    for g in range(groups):
        xs = x[:, g * icg:(g + 1) * icg].astype(np.float64)
        ws = w[g * icg:(g + 1) * icg].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum("nchw,co->nohw", xs, ws[:, :, i, j])
                full[:, g * ocg:(g + 1) * ocg, i * dh:i * dh + (h - 1) * sh + 1:sh,
                     j * dw:j * dw + (wd - 1) * sw + 1:sw] += contrib
    oh = fh - output_padding[0] - pt - pb + output_padding[0]
    ow = fw - output_padding[1] - pl - pr + output_padding[1]
    return full[:, :, pt:pt + oh, pl:pl + ow]


# -------------------------------------------------------------------------------- driver

def run(out, inputs, feed, expected, rtol=1e-4, atol=1e-4, schedule=None):
    """Schedule out's group with the default schedule, build, run into NaNs, compare."""
    s = schedule if schedule is not None else SN.create_schedule(out)
    f = tc.build(s, list(inputs) + [out], name="conv_test")
    got = np.full(out.shape, np.nan, out.dtype)
    f(*[feed[t] for t in inputs], got)
    assert_close(got, expected.astype(got.dtype), rtol=rtol, atol=atol)
    return got


def bias_relu(y, b):
    shape = y.shape
    if len(shape) == 4:
        return te.compute(shape, lambda n, c, i, j: te.max(y[n, c, i, j] + b[c], 0.0),
                          name="bias_relu", tag="broadcast")
    return te.compute(shape, lambda n, c, i: te.max(y[n, c, i] + b[c], 0.0), name="bias_relu",
                      tag="broadcast")


# (N, IC, H, W, OC, (KH, KW), strides, pads (t, l, b, r), dilation, groups)
CONV2D = [
    # NCHWc: odd channels (padded oc block), asymmetric pads, stride 2, batch 2
    (2, 13, 13, 11, 7, (3, 3), (2, 2), (0, 1, 2, 1), (1, 1), 1),
    # NCHWc: 7x7/2 stem-like, 3 input channels
    (1, 3, 13, 13, 16, (7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1),
    # NCHWc: dilation 2, 16/32 channel blocks, width not a multiple of the 6-column tile
    (1, 16, 9, 13, 32, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1),
    # NCHWc: groups 2 (6 channels per group), non-square kernel, mixed strides
    (1, 8, 7, 7, 12, (1, 3), (1, 2), (0, 1, 0, 1), (1, 1), 2),
    # NCHWc: 1x1 with padding, 24 output channels (8-blocks)
    (1, 5, 3, 3, 24, (1, 1), (1, 1), (1, 0, 0, 1), (1, 1), 1),
    # 1x1: flattened-pixel matmul; 17 output channels (tail of the 6-row tile), tail pixels
    (1, 24, 7, 13, 17, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    # 1x1 stride 2, batch 2
    (2, 13, 7, 13, 19, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),
    # 1x1 on a 1-row image
    (1, 7, 1, 13, 5, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    # depthwise stride 2, asymmetric pads, batch 2
    (2, 6, 8, 9, 6, (3, 3), (2, 2), (1, 0, 1, 0), (1, 1), 6),
    # depthwise with channel multiplier 2
    (1, 4, 13, 7, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4),
    # depthwise 5x5 dilation 2, wide enough for whole 16-lane vectors and a tail
    (1, 3, 7, 37, 3, (5, 5), (1, 1), (4, 4, 4, 4), (2, 2), 3),
    # depthwise, 16-lane rows, multiplier 2
    (1, 2, 6, 32, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2),
    # NCHWc small plane (whole-plane accumulation, input channels blocked): 8-channel blocks
    (1, 64, 5, 5, 40, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    # NCHWc small plane, 16-channel blocks, 4 + 3 column tiles
    (1, 64, 3, 7, 16, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    # 1x1 with large weights: the channel loop outside
    (1, 256, 3, 3, 300, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    # NCHWc row blocks (kernel of a channel block > KERNEL_L1): 2 rows of 29 columns (6-column
    # tiles with a tail), 48 input channels (3 blocks: 2 per input block and a ragged one)
    (1, 48, 18, 29, 20, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    # NCHWc row blocks of one row (13 rows: prime), stride 2
    (1, 40, 26, 34, 16, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
]


@pytest.mark.parametrize("case", CONV2D, ids=lambda c: "x".join(map(str, c[:5])) +
                         f"_k{c[5][0]}{c[5][1]}_s{c[6][0]}{c[6][1]}_g{c[9]}")
def test_conv2d_bias_relu(case):
    n, ic, h, w, oc, (kh, kw), st, pads, dil, g = case
    x = te.placeholder((n, ic, h, w), name="x")
    wt = te.placeholder((oc, ic // g, kh, kw), name="w")
    b = te.placeholder((oc,), name="b")
    y = C.conv2d(x, wt, st, pads, dil, g)
    out = bias_relu(y, b)
    feed = {x: rand(x.shape, seed=1), wt: rand(wt.shape, seed=2), b: rand(b.shape, seed=3)}
    ref = ref_conv2d(feed[x], feed[wt], st, pads, dil, g) + feed[b][None, :, None, None]
    run(out, [x, wt, b], feed, np.maximum(ref, 0))


@pytest.mark.parametrize("case", [CONV2D[0], CONV2D[5], CONV2D[8]], ids=["nchwc", "1x1", "dw"])
def test_conv2d_alone(case):
    """The op's result is the group output itself (no epilogue): every algorithm tiles it."""
    n, ic, h, w, oc, (kh, kw), st, pads, dil, g = case
    x = te.placeholder((n, ic, h, w), name="x")
    wt = te.placeholder((oc, ic // g, kh, kw), name="w")
    y = C.conv2d(x, wt, st, pads, dil, g)
    assert y.op.tag == ("depthwise_conv2d_nchw" if g == ic and g > 1 else "conv2d_nchw")
    feed = {x: rand(x.shape, seed=4), wt: rand(wt.shape, seed=5)}
    run(y, [x, wt], feed, ref_conv2d(feed[x], feed[wt], st, pads, dil, g))


@pytest.mark.parametrize("knobs", [{"plane": True, "rows": 4}, {"plane": True, "rows": 5, "regn": 5},
                                   {"plane": False, "regn": 4}, {"plane": True, "regn": 28},
                                   {"plane": False, "regn": 13}])
def test_conv2d_nchwc_row_blocks_that_do_not_divide_the_rows(knobs):
    """rows / regn that leave ragged row blocks and column tiles still write every output."""
    x = te.placeholder((1, 40, 11, 17), name="x")
    wt = te.placeholder((24, 40, 3, 3), name="w")
    b = te.placeholder((24,), name="b")
    y = C.conv2d(x, wt, 1, 1)
    out = bias_relu(y, b)
    s = te.create_schedule(out.op)
    SN.schedule_conv2d(s, y, out, **knobs)
    feed = {x: rand(x.shape, seed=6), wt: rand(wt.shape, seed=7), b: rand(b.shape, seed=8)}
    ref = np.maximum(ref_conv2d(feed[x], feed[wt], (1, 1), (1, 1, 1, 1), (1, 1), 1) +
                     feed[b][None, :, None, None], 0)
    run(out, [x, wt, b], feed, ref, schedule=s)


@pytest.mark.parametrize("lanes, registers, caps", [(8, 16, (6, 12)), (16, 32, (28, 28))])
def test_nchwc_register_tile_fills_the_vector_registers(monkeypatch, lanes, registers, caps):
    """AVX2 (8 lanes, 16 registers) holds 6 columns of 16 channels; AVX-512 (16 lanes, 32
    registers) 28, and a 7x7 plane is tiled as 25 + 24 pixels rather than 8 x 6 + 1."""
    monkeypatch.setattr(SNC, "vector_lanes", lambda dtype: lanes)
    monkeypatch.setattr(SNC, "vector_registers", lambda: registers)
    assert (SNC.nchwc_regn_cap(16), SNC.nchwc_regn_cap(8)) == caps
    assert SNC._nchwc_regn(49, 16) == (6 if lanes == 8 else 25)
    assert SNC._nchwc_regn(caps[0] - 1, 16) == caps[0] - 1
    # the 1x1 kernel's output channels per tile: 6 or 12, a divisor where the tail would waste
    assert SNC.conv1x1_mr_cap() == registers * 3 // 8
    assert [SNC.register_tile(oc, SNC.conv1x1_mr_cap()) for oc in (24, 16, 64, 96, 160)] == \
        ([6, 4, 6, 6, 6] if lanes == 8 else [12, 8, 8, 12, 12])


@pytest.mark.parametrize("dilation", [1, 2])
def test_nchwc_plane_kernel_prefetches_the_next_kernel_block(dilation):
    """One line per innermost reduction step, one input-channel block (2 x 16 channels x 3 x
    3 taps x 16 output channels = 4608 floats) ahead; without the knob, no prefetch."""
    x = te.placeholder((1, 64, 9, 9), name="x")
    wt = te.placeholder((48, 64, 3, 3), name="w")
    y = C.conv2d(x, wt, 1, dilation, dilation)
    texts, schedules = [], []
    for prefetch in (True, False):
        s = te.create_schedule(y.op)
        SN.schedule_conv2d(s, y, y, plane=True, prefetch=prefetch)
        texts.append(str(tc.lower(s, [x, wt, y])))
        schedules.append(s)
    assert re.search(r"prefetch conv2d_kernel_vec\[.* \+ 4608\]", texts[0]), texts[0]
    assert "prefetch" not in texts[1]
    feed = {x: rand(x.shape, seed=4), wt: rand(wt.shape, seed=5)}
    run(y, [x, wt], feed, ref_conv2d(feed[x], feed[wt], (1, 1), (dilation,) * 4,
                                     (dilation, dilation)), schedule=schedules[0])


def test_conv2d_residual_epilogue():
    """conv + folded batch-norm scale/shift + residual add + ReLU, one group."""
    x = te.placeholder((1, 16, 7, 7), name="x")
    wt = te.placeholder((16, 16, 3, 3), name="w")
    sc = te.placeholder((16,), name="scale")
    sh = te.placeholder((16,), name="shift")
    y = C.conv2d(x, wt, 1, 1)
    out = te.compute(y.shape, lambda n, c, i, j: te.max(
        y[n, c, i, j] * sc[c] + sh[c] + x[n, c, i, j], 0.0), name="bn_add_relu", tag="broadcast")
    feed = {x: rand(x.shape, seed=6), wt: rand(wt.shape, seed=7), sc: rand((16,), seed=8),
            sh: rand((16,), seed=9)}
    ref = ref_conv2d(feed[x], feed[wt], pads=(1, 1, 1, 1))
    ref = ref * feed[sc][None, :, None, None] + feed[sh][None, :, None, None] + feed[x]
    run(out, [x, wt, sc, sh], feed, np.maximum(ref, 0))


def test_conv2d_packed_weight():
    x = te.placeholder((1, 8, 6, 6), name="x")
    wshape = C.pack_conv2d_weight(np.zeros((16, 8, 3, 3), "float32")).shape
    wp = te.placeholder(wshape, name="wp")
    y = C.conv2d(x, wp, 1, 1, weight_layout="packed")
    wn = rand((16, 8, 3, 3), seed=10)
    feed = {x: rand(x.shape, seed=11), wp: C.pack_conv2d_weight(wn)}
    run(y, [x, wp], feed, ref_conv2d(feed[x], wn, pads=(1, 1, 1, 1)))


def test_conv2d_packed_weight_padded_channels():
    """13 output channels packed into one 16-channel block: out_channels crops the padding."""
    x = te.placeholder((1, 5, 6, 7), name="x")
    wn = rand((13, 5, 3, 3), seed=21)
    wpn = C.pack_conv2d_weight(wn)
    assert wpn.shape == (1, 1, 3, 3, 5, 16)
    wp = te.placeholder(wpn.shape, name="wp")
    y = C.conv2d(x, wp, 1, (1, 0, 1, 2), weight_layout="packed", out_channels=13)
    assert y.shape == (1, 13, 6, 7)
    feed = {x: rand(x.shape, seed=22), wp: wpn}
    run(y, [x, wp], feed, ref_conv2d(feed[x], wn, pads=(1, 0, 1, 2)))
    with pytest.raises(ValueError, match=r"conv2d: packed weight 'wp' of shape"):
        C.conv2d(x, wp, 1, 1, weight_layout="packed", out_channels=24)


def test_conv2d_epilogue_not_fusable():
    """An epilogue of another shape (a flatten) is left to the caller; the conv still runs."""
    x = te.placeholder((1, 4, 5, 5), name="x")
    wt = te.placeholder((8, 4, 3, 3), name="w")
    y = C.conv2d(x, wt, 1, 1)
    flat = te.compute((1, 200), lambda n, i: y[n, i // 25, i // 5 % 5, i % 5], name="flat",
                      tag="injective")
    s = te.create_schedule(flat.op)
    SN.schedule_conv2d(s, y, flat)
    feed = {x: rand(x.shape, seed=12), wt: rand(wt.shape, seed=13)}
    run(flat, [x, wt], feed, ref_conv2d(feed[x], feed[wt], pads=(1, 1, 1, 1)).reshape(1, 200),
        schedule=s)


CONV1D = [  # (N, IC, W, OC, K, stride, pads (l, r), dilation, groups)
    (2, 5, 13, 7, 3, 2, (1, 2), 1, 1),
    (1, 6, 11, 4, 3, 1, (2, 2), 2, 2),
    (1, 4, 9, 4, 3, 1, (1, 1), 1, 4),
    (1, 3, 7, 9, 1, 1, (0, 0), 1, 1),
]


@pytest.mark.parametrize("case", CONV1D, ids=lambda c: f"ic{c[1]}_oc{c[3]}_k{c[4]}_g{c[8]}")
def test_conv1d(case):
    n, ic, w, oc, k, st, pads, dil, g = case
    x = te.placeholder((n, ic, w), name="x")
    wt = te.placeholder((oc, ic // g, k), name="w")
    b = te.placeholder((oc,), name="b")
    y = C.conv1d(x, wt, st, pads, dil, g)
    out = bias_relu(y, b)
    feed = {x: rand(x.shape, seed=14), wt: rand(wt.shape, seed=15), b: rand((oc,), seed=16)}
    ref = ref_conv2d(feed[x][:, :, None], feed[wt][:, :, None], (1, st), (0, pads[0], 0, pads[1]),
                     (1, dil), g)[:, :, 0] + feed[b][None, :, None]
    run(out, [x, wt, b], feed, np.maximum(ref, 0))


CONVT = [  # (N, IC, H, W, OC/groups, K, strides, pads, output_padding, dilation, groups)
    (1, 4, 5, 5, 6, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), (1, 1), 1),
    (2, 4, 3, 4, 3, (3, 2), (1, 2), (0, 1, 2, 0), (0, 1), (1, 1), 2),
    (1, 3, 4, 3, 5, (3, 3), (2, 1), (0, 0, 0, 0), (0, 0), (2, 2), 1),
    (1, 2, 3, 3, 2, (4, 4), (3, 3), (4, 3, 2, 1), (2, 0), (1, 1), 1),
]


@pytest.mark.parametrize("case", CONVT, ids=lambda c: f"ic{c[1]}_k{c[5][0]}{c[5][1]}_s{c[6][0]}"
                         f"{c[6][1]}_g{c[10]}")
def test_conv_transpose2d(case):
    n, ic, h, w, ocg, (kh, kw), st, pads, opad, dil, g = case
    x = te.placeholder((n, ic, h, w), name="x")
    wt = te.placeholder((ic, ocg, kh, kw), name="w")
    y = C.conv_transpose2d(x, wt, st, pads, opad, dil, g)
    assert y.op.tag == "conv2d_transpose"
    feed = {x: rand(x.shape, seed=17), wt: rand(wt.shape, seed=18)}
    ref = ref_conv_transpose2d(feed[x], feed[wt], st, pads, opad, dil, g)
    assert ref.shape == y.shape
    run(y, [x, wt], feed, ref)


def test_conv_oracle_agrees():
    """te.evaluate (the numpy oracle of the TE definition) matches the numpy reference."""
    x = te.placeholder((1, 5, 6, 7), name="x")
    wt = te.placeholder((6, 5, 3, 3), name="w")
    y = C.conv2d(x, wt, (2, 1), (1, 0, 0, 2), (1, 2))
    feed = {x: rand(x.shape, seed=19), wt: rand(wt.shape, seed=20)}
    got = te.evaluate(y, feed)
    assert_close(got, ref_conv2d(feed[x], feed[wt], (2, 1), (1, 0, 0, 2), (1, 2))
                 .astype("float32"), rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("make, match", [
    (lambda: C.conv2d(te.placeholder((1, 6, 5, 5), name="x"),
                      te.placeholder((4, 4, 3, 3), name="w"), groups=2),
     r"conv2d: weight 'w' dimension 1 .*is 4.*'x' has 6 channels in 2 groups"),
    (lambda: C.conv2d(te.placeholder((1, 6, 5, 5), name="x"),
                      te.placeholder((4, 3, 3, 3), name="w"), groups=4),
     r"conv2d: data 'x' dimension 1 \(channels\) is 6, not divisible by groups=4"),
    (lambda: C.conv2d(te.placeholder((1, 6, 5, 5), name="x"),
                      te.placeholder((5, 3, 3, 3), name="w"), groups=2),
     r"conv2d: weight 'w' dimension 0 \(output channels\) is 5"),
    (lambda: C.conv2d(te.placeholder((1, 6, 5, 5), name="x"),
                      te.placeholder((4, 6, 3), name="w")),
     r"conv2d: weight 'w' must have 4 dimensions"),
    (lambda: C.conv2d(te.placeholder((1, 6, 5), name="x"),
                      te.placeholder((4, 6, 3, 3), name="w")),
     r"conv2d: data 'x' must have 4 dimensions"),
    (lambda: C.conv2d(te.placeholder((1, 6, 5, 5), name="x"),
                      te.placeholder((4, 6, 7, 3), name="w")),
     (r"conv2d: the height of tensor 'x' \(5, padded by 0\+0\) is smaller than the dilated "
      r"kernel extent 7")),
    (lambda: C.conv1d(te.placeholder((1, 6, 5), name="x"),
                      te.placeholder((4, 5, 3), name="w")),
     r"conv1d: weight 'w' dimension 1"),
    (lambda: C.conv_transpose2d(te.placeholder((1, 6, 5, 5), name="x"),
                                te.placeholder((4, 2, 3, 3), name="w")),
     r"conv_transpose2d: weight 'w' dimension 0 \(input channels\) is 4"),
    (lambda: C.conv2d(te.placeholder((1, 6, 5, 5), name="x"),
                      te.placeholder((4, 6, 3, 3), name="w"), padding=(1, 2, 3)),
     r"conv2d: padding must be"),
    (lambda: C.conv2d(te.placeholder((1, 6, 5, 5), name="x"),
                      te.placeholder((4, 6, 3, 3), name="w"), strides=0),
     r"conv2d: strides must be positive"),
])
def test_conv_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("oc", [1, 3])
def test_single_input_channel_conv_with_unit_channel_loop(oc):
    """One output-channel block of extent < 8: the channel loop inside the attach point has
    extent 1 and bound inference must substitute its start, not keep the loop variable."""
    x = te.placeholder((1, 1, 5, 5), name="x")
    w = te.placeholder((oc, 1, 3, 3), name="w")
    y = C.conv2d(x, w, padding=(1, 1, 1, 1))
    xv, wv = rand((1, 1, 5, 5)), rand((oc, 1, 3, 3))
    run(y, [x, w], {x: xv, w: wv}, ref_conv2d(xv, wv, pads=(1, 1, 1, 1)))
