"""Pooling and resize against numpy references written from the ONNX / PyTorch formulas
(and against ONNX Runtime itself where it is installed), built with the default schedule.
Odd sizes, asymmetric pads, stride 2, dilation 2, ceil_mode, count_include_pad, batch 2;
outputs start NaN-filled.
"""
import itertools
import math

import numpy as np
import pytest
from helpers import assert_close, rand

import tensorc as tc
from tensorc import te
from tensorc.ops import pool as P
from tensorc.ops import resize as R
from tensorc.ops import schedule_nn as SN
from tensorc.ops import schedule_nn_fusion as SNF


@pytest.fixture(autouse=True)
def _always_parallel(monkeypatch):
    """Small test shapes would run on one thread; make every schedule take its parallel path."""
    monkeypatch.setattr(SNF, "PARALLEL_WORK", 0)


def run(out, inputs, feed, expected, rtol=1e-5, atol=1e-5):
    s = SN.create_schedule(out)
    f = tc.build(s, list(inputs) + [out], name="pool_test")
    got = np.full(out.shape, np.nan, out.dtype)
    f(*[feed[t] for t in inputs], got)
    assert_close(got, np.asarray(expected).astype(got.dtype), rtol=rtol, atol=atol)
    return got


# ------------------------------------------------------------------------------- pooling

def ref_out_size(n, k, s, pb, pe, d, ceil_mode):
    ext = (k - 1) * d + 1
    o = (math.ceil if ceil_mode else math.floor)((n + pb + pe - ext) / s) + 1
    if ceil_mode and (o - 1) * s >= n + pb:   # the last window must start inside
        o -= 1
    return o


def ref_pool(x, kernel, strides, pads, dilation, ptype, ceil_mode, cip):
    nd = len(kernel)
    sp = x.shape[2:]
    outs = [ref_out_size(sp[d], kernel[d], strides[d], pads[d], pads[nd + d], dilation[d],
                         ceil_mode) for d in range(nd)]
    y = np.zeros(x.shape[:2] + tuple(outs))
    for pos in itertools.product(*[range(o) for o in outs]):
        taps = [[p * strides[d] - pads[d] + t * dilation[d] for t in range(kernel[d])]
                for d, p in enumerate(pos)]
        inside = [[t for t in tl if 0 <= t < sp[d]] for d, tl in enumerate(taps)]
        padded = [[t for t in tl if -pads[d] <= t < sp[d] + pads[nd + d]]
                  for d, tl in enumerate(taps)]
        vals = x[(slice(None), slice(None)) + np.ix_(*inside)].reshape(x.shape[:2] + (-1,))
        if ptype == "max":
            y[(slice(None), slice(None)) + pos] = vals.max(-1)
        else:
            cnt = math.prod(len(p) for p in (padded if cip else inside))
            y[(slice(None), slice(None)) + pos] = vals.sum(-1) / cnt
    return y


POOL2D = [  # (shape, kernel, strides, pads (t, l, b, r), dilation, type, ceil, count_include_pad)
    ((2, 3, 13, 11), (3, 3), (2, 2), (1, 0, 1, 2), (1, 1), "max", False, False),
    ((1, 5, 7, 13), (3, 2), (2, 2), (1, 1, 0, 1), (1, 1), "max", True, False),
    ((1, 4, 13, 13), (3, 3), (1, 2), (2, 2, 2, 2), (2, 2), "max", True, False),
    ((2, 3, 13, 11), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), "avg", False, False),
    ((1, 5, 7, 13), (3, 3), (2, 2), (1, 0, 1, 1), (1, 1), "avg", True, True),
    ((1, 2, 12, 9), (2, 3), (2, 3), (0, 1, 1, 2), (1, 1), "avg", True, False),
    ((1, 3, 9, 17), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), "max", False, False),
]


@pytest.mark.parametrize("case", POOL2D, ids=lambda c: f"{c[5]}_k{c[1][0]}{c[1][1]}_s{c[2][0]}"
                         f"_ceil{int(c[6])}_cip{int(c[7])}")
def test_pool2d(case):
    shape, k, st, pads, dil, ptype, ceil_mode, cip = case
    x = te.placeholder(shape, name="x")
    y = P.pool2d(x, k, st, pads, dil, ptype, ceil_mode, cip)
    assert y.op.tag == "pool"
    feed = {x: rand(shape, seed=1)}
    ref = ref_pool(feed[x].astype(np.float64), k, st, pads, dil, ptype, ceil_mode, cip)
    assert ref.shape == y.shape
    got = run(y, [x], feed, ref)
    ort_pool_check(got, feed[x], case)


def ort_pool_check(got, x, case):
    """The same pooling through ONNX Runtime (skipped where onnx/onnxruntime are missing):
    ORT applies the same ceil_mode rule (the last window starts inside the input)."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return
    shape, k, st, pads, dil, ptype, ceil_mode, cip = case
    kw = {"kernel_shape": list(k), "strides": list(st), "pads": list(pads),
          "ceil_mode": int(ceil_mode), "dilations": list(dil)}
    if ptype == "avg":
        kw["count_include_pad"] = int(cip)
    node = helper.make_node("MaxPool" if ptype == "max" else "AveragePool", ["X"], ["Y"], **kw)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"X": x})
    assert_close(got, y, rtol=1e-5, atol=1e-5, what="vs onnxruntime")


def test_pool2d_epilogue_and_pool1d():
    x = te.placeholder((2, 3, 10, 9), name="x")
    y = P.max_pool2d(x, 3, 2, 1)
    out = te.compute(y.shape, lambda n, c, i, j: y[n, c, i, j] * 2.0 + 1.0, name="affine",
                     tag="elemwise")
    feed = {x: rand(x.shape, seed=2)}
    ref = ref_pool(feed[x].astype(np.float64), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), "max",
                   False, False)
    run(out, [x], feed, ref * 2 + 1)
    x1 = te.placeholder((2, 3, 13), name="x1")
    y1 = P.pool1d(x1, 3, 2, (1, 2), pool_type="avg", ceil_mode=True, count_include_pad=True)
    feed1 = {x1: rand(x1.shape, seed=3)}
    ref1 = ref_pool(feed1[x1].astype(np.float64), (3,), (2,), (1, 2), (1,), "avg", True, True)
    run(y1, [x1], feed1, ref1)


@pytest.mark.parametrize("ptype", ["avg", "max"])
def test_global_pool(ptype):
    x = te.placeholder((2, 5, 7, 3), name="x")
    y = P.global_pool(x, ptype)
    feed = {x: rand(x.shape, seed=4)}
    f = np.mean if ptype == "avg" else np.max
    run(y, [x], feed, f(feed[x].astype(np.float64), axis=(2, 3), keepdims=True))


@pytest.mark.parametrize("make, match", [
    (lambda: P.pool2d(te.placeholder((1, 2, 5), name="x"), 3), r"pool2d: data 'x' must have 4"),
    (lambda: P.pool2d(te.placeholder((1, 2, 5, 5), name="x"), 3, padding=3),
     r"pool2d: padding 3/3 of spatial dimension 0 must be smaller than"),
    (lambda: P.pool2d(te.placeholder((1, 2, 5, 5), name="x"), (7, 3)),
     r"pool2d: spatial dimension 0 of 'x' \(5, padded by 0\+0\) is smaller than"),
    (lambda: P.pool2d(te.placeholder((1, 2, 5, 5), name="x"), 3, pool_type="min"),
     r"pool2d: pool_type must be"),
])
def test_pool_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# -------------------------------------------------------------------------------- resize

def ref_coords(n_in, n_out, scale, mode):
    """Source coordinates by the ONNX formulas; align_corners divides by the integer output
    length (the specification and ONNX Runtime), and an axis keeping its length and scale is
    the identity in every mode (ONNX's reference and ONNX Runtime skip it)."""
    x = np.arange(n_out, dtype=np.float64)
    if n_out == n_in and scale == 1.0:
        return x
    if mode == "align_corners":
        return np.zeros(n_out) if n_out == 1 else x * (n_in - 1) / (n_out - 1)
    if mode == "asymmetric":
        return x / scale
    if mode == "pytorch_half_pixel":
        return np.full(n_out, -0.5) if n_out == 1 else (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":   # ONNX's offset form, exact at the centres
        return (n_in - 1) / 2 + (x - (n_out - 1) / 2) / scale
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    return (x + 0.5) / scale - 0.5


def ref_resize(x, out, scales, method, mode, nearest_mode):
    sp = x.shape[2:]
    if method == "nearest":
        idx = []
        for d in range(len(sp)):
            c = ref_coords(sp[d], out[d], scales[d], mode)
            frac = c - np.floor(c)
            fl = np.floor(c)
            if nearest_mode == "round_prefer_floor":
                i = np.where(frac <= 0.5, fl, fl + 1)
            elif nearest_mode == "round_prefer_ceil":
                i = np.where(frac < 0.5, fl, fl + 1)
            elif nearest_mode == "floor":
                i = fl
            else:
                i = np.ceil(c)
            idx.append(np.clip(i.astype(int), 0, sp[d] - 1))
        return x[(slice(None), slice(None)) + np.ix_(*idx)]
    y = x.astype(np.float64)
    for d in range(len(sp)):   # separable: interpolate one axis at a time
        c = ref_coords(sp[d], out[d], scales[d], mode)
        i0 = np.floor(c).astype(int)
        w = c - i0
        a = np.take(y, np.clip(i0, 0, sp[d] - 1), axis=2 + d)
        b = np.take(y, np.clip(i0 + 1, 0, sp[d] - 1), axis=2 + d)
        shape = [1] * y.ndim
        shape[2 + d] = -1
        y = a * (1 - w.reshape(shape)) + b * w.reshape(shape)
    return y


RESIZE = [  # (shape, size, scales, method, mode, nearest_mode)
    ((1, 3, 7, 5), (13, 11), None, "nearest", "half_pixel", "round_prefer_floor"),
    ((2, 2, 7, 13), None, (2.0, 0.5), "nearest", "asymmetric", "floor"),
    ((1, 2, 5, 7), (3, 13), None, "nearest", "align_corners", "round_prefer_ceil"),
    ((1, 2, 4, 6), None, (1.5, 3.0), "nearest", "half_pixel", "ceil"),
    ((1, 3, 7, 5), (13, 11), None, "linear", "half_pixel", "round_prefer_floor"),
    ((2, 2, 7, 13), None, (2.0, 0.5), "linear", "asymmetric", "round_prefer_floor"),
    ((1, 2, 5, 7), (3, 13), None, "linear", "align_corners", "round_prefer_floor"),
    ((1, 2, 5, 7), (1, 9), None, "linear", "pytorch_half_pixel", "round_prefer_floor"),
]


@pytest.mark.parametrize("case", RESIZE, ids=lambda c: f"{c[3]}_{c[4]}_{c[5]}")
def test_resize(case):
    shape, size, scales, method, mode, nmode = case
    x = te.placeholder(shape, name="x")
    y = R.resize(x, size, scales, method, mode, nmode)
    assert y.op.tag == "resize"
    out = y.shape[2:]
    scl = scales if scales is not None else tuple(o / i for o, i in zip(out, shape[2:]))
    feed = {x: rand(shape, seed=5)}
    ref = ref_resize(feed[x], out, scl, method, mode, nmode)
    got = run(y, [x], feed, ref)
    ort_check(got, feed[x], size, scales, method, mode, nmode)


def resize_cases():
    """Every method, coordinate mode and nearest mode."""
    for method in ("nearest", "linear"):
        for mode in R.COORD_MODES:
            if method == "linear" and mode == "tf_half_pixel_for_nn":
                continue
            for nmode in R.NEAREST_MODES if method == "nearest" else ("round_prefer_floor",):
                yield method, mode, nmode


@pytest.mark.parametrize("method, mode, nmode", list(resize_cases()))
@pytest.mark.parametrize("size, scales", [((10, 7), None), (None, (1.5, 0.75))],
                         ids=["sizes", "scales"])
def test_resize_fractional_ratios(size, scales, method, mode, nmode):
    """7 -> 10 rows and 10 -> 7 columns: out / in is not an integer (nor is in * scale, 10.5
    and 7.5, when scales are given), so no source coordinate pattern repeats."""
    x = te.placeholder((1, 2, 7, 10), name="x")
    y = R.resize(x, size, scales, method, mode, nmode)
    assert y.shape == (1, 2, 10, 7)
    scl = scales if scales is not None else (10 / 7, 7 / 10)
    feed = {x: rand(x.shape, seed=6)}
    got = run(y, [x], feed, ref_resize(feed[x], (10, 7), scl, method, mode, nmode))
    ort_check(got, feed[x], size, scales, method, mode, nmode)


@pytest.mark.parametrize("nmode", ["round_prefer_ceil", "ceil"])
def test_resize_kept_axis_is_not_shifted(nmode):
    """tf_half_pixel_for_nn maps x to x + 0.5, which these modes round up; an axis that keeps
    its length is nonetheless read in place, as ONNX's reference and ONNX Runtime do."""
    x = te.placeholder((1, 2, 7, 5), name="x")
    y = R.resize(x, (7, 12), None, "nearest", "tf_half_pixel_for_nn", nmode)
    feed = {x: rand(x.shape, seed=7)}
    got = run(y, [x], feed, ref_resize(feed[x], (7, 12), (1.0, 12 / 5), "nearest",
                                       "tf_half_pixel_for_nn", nmode))
    ort_check(got, feed[x], (7, 12), None, "nearest", "tf_half_pixel_for_nn", nmode)


def test_resize_length_is_the_exact_floor_of_in_times_scale():
    """10 x float32(0.7) = 6.99999988: 6 rows, as the specification's floor and ONNX's reference
    give (ONNX Runtime multiplies in float32, which rounds to 7)."""
    scale = float(np.float32(0.7))
    x = te.placeholder((1, 1, 10, 3), name="x")
    y = R.resize(x, None, (scale, 1.0), "nearest", "asymmetric", "floor")
    assert y.shape == (1, 1, 6, 3)
    feed = {x: rand(x.shape, seed=8)}
    run(y, [x], feed, ref_resize(feed[x], (6, 3), (scale, 1.0), "nearest", "asymmetric",
                                 "floor"))


def ort_check(got, x, size, scales, method, mode, nmode):
    """The same resize through ONNX Runtime (skipped where onnx/onnxruntime are missing)."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return
    ins = [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x.shape))]
    inits = [helper.make_tensor("roi", TensorProto.FLOAT, [0], [])]
    if size is not None:
        inits += [helper.make_tensor("scales", TensorProto.FLOAT, [0], []),
                  helper.make_tensor("sizes", TensorProto.INT64, [4], list(x.shape[:2]) +
                                     list(size))]
        node_in = ["X", "roi", "scales", "sizes"]
    else:
        inits += [helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0] +
                                     list(scales))]
        node_in = ["X", "roi", "scales"]
    node = helper.make_node("Resize", node_in, ["Y"], mode=method,
                            coordinate_transformation_mode=mode, nearest_mode=nmode)
    graph = helper.make_graph([node], "g", ins,
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"X": x})
    assert_close(got, y, rtol=1e-5, atol=1e-5, what="vs onnxruntime")


@pytest.mark.parametrize("make, match", [
    (lambda: R.resize(te.placeholder((1, 2, 5, 5), name="x")), r"resize: give exactly one"),
    (lambda: R.resize(te.placeholder((1, 2, 5, 5), name="x"), (3,)),
     r"resize: size must be 2 positive ints"),
    (lambda: R.resize(te.placeholder((1, 2, 5, 5), name="x"), (3, 3), method="cubic"),
     r"resize: method must be"),
    (lambda: R.resize(te.placeholder((5, 5), name="x"), (3, 3)), r"resize: data 'x' must be"),
])
def test_resize_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()
