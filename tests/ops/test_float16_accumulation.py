"""float16 matrix products, convolutions, average pools and reductions accumulate in float32
and round once at the end, as numpy's float16 matmul and sum and ONNX Runtime do.

Over K = 1000 terms a float16 accumulator drifts by several ulps (each addition rounds to 11
bits at the size of the running total), so every result here must be within 1 ulp of numpy
computed in float32 and cast to float16. Inputs are positive so that no cancellation makes
the float32 summation order matter at float16 precision. Each case runs through the oracle
(``te.evaluate``), ``ops.schedule_for`` and, for the anchors of ``schedule_nn`` (products,
convolutions, pools), the schedule the graph compiler uses, with its parallel paths forced.
"""
import numpy as np
import pytest
from helpers import rand
from numpy.lib.stride_tricks import sliding_window_view

import tensorc as tc
from tensorc import ops, te
from tensorc.ops import conv as C
from tensorc.ops import matmul as MM
from tensorc.ops import pool as P
from tensorc.ops import schedule_nn as SN
from tensorc.ops import schedule_nn_matmul as SNM
from tensorc.ops import schedule_nn_fusion as SNF

K = 1000
F16, F32 = np.float16, np.float32


@pytest.fixture(autouse=True)
def _always_parallel(monkeypatch):
    monkeypatch.setattr(SNF, "PARALLEL_WORK", 0)


def ulps(got, want):
    """Elementwise distance in float16 ulps (adjacent float16 values are 1 apart)."""
    def ordered(a):
        bits = np.asarray(a, F16).view(np.int16).astype(np.int32)
        return np.where(bits < 0, -(bits & 0x7FFF), bits)
    return np.abs(ordered(got) - ordered(want))


def assert_within_ulp(got, want, what):
    assert got.dtype == F16 and got.shape == want.shape, (what, got.dtype, got.shape)
    d = ulps(got, want)
    worst = np.unravel_index(np.argmax(d), d.shape)
    assert d.max() <= 1, (f"{what}: {d.max()} ulps at {worst}: got {got[worst]}, want "
                          f"{want[worst]}; {np.count_nonzero(d > 1)} of {d.size} beyond 1 ulp")


def run_all_schedules(out, feed, want, nn=False):
    """Compare the oracle and the built module(s) with ``want``."""
    ins = list(feed)
    assert_within_ulp(te.evaluate(out, feed), want, f"{out.name} te.evaluate")
    schedules = {"schedule_for": ops.schedule_for(out)}
    if nn:
        schedules["schedule_nn"] = SN.create_schedule(out)
    for label, s in schedules.items():
        f = tc.build(s, ins + [out], name="fp16_acc")
        got = np.full(out.shape, np.nan, F16)
        f(*[feed[t] for t in ins], got)
        assert_within_ulp(got, want, f"{out.name} {label}")


def operands(*shapes):
    phs = [te.placeholder(s, "float16", name) for s, name in zip(shapes, "abcd")]
    return phs, {p: rand(p.shape, "float16", seed=k, signed=False) for k, p in enumerate(phs)}


def f32(a):
    return a.astype(F32)


@pytest.mark.parametrize("ashape, bshape", [
    ((13, K), (K, 37)),        # 6 x 16 register tiles over packed panels
    ((3, K), (K, 37)),         # few rows: column blocks
    ((K,), (K, 19)),           # vector @ matrix
    ((2, 5, K), (K,)),         # batched matrix @ vector
])
def test_matmul(ashape, bshape):
    (a, b), feed = operands(ashape, bshape)
    y = MM.matmul(a, b)
    assert y.dtype == "float16"
    run_all_schedules(y, feed, np.matmul(f32(feed[a]), f32(feed[b])).astype(F16), nn=True)


@pytest.mark.parametrize("M", [1, 7])
def test_dense_with_bias(M):
    """M = 1 takes the rfactor kernel (16 partial sums per output along W's rows)."""
    (x, w, bias), feed = operands((M, K), (21, K), (21,))
    y = MM.dense(x, w, bias)
    want = (f32(feed[x]) @ f32(feed[w]).T).astype(F16) + feed[bias]
    run_all_schedules(y, feed, want, nn=True)


def test_batch_matmul_transposed():
    (a, b), feed = operands((2, K, 7), (1, 19, K))
    y = MM.batch_matmul(a, b, transpose_a=True, transpose_b=True)
    want = np.matmul(f32(feed[a]).transpose(0, 2, 1), f32(feed[b]).transpose(0, 2, 1))
    run_all_schedules(y, feed, want.astype(F16), nn=True)


def test_gemm():
    (a, b, c), feed = operands((7, K), (K, 19), (19,))
    y = MM.gemm(a, b, c, alpha=0.5, beta=2.0)
    prod = (f32(feed[a]) @ f32(feed[b])).astype(F16)
    want = prod * F16(0.5) + feed[c] * F16(2.0)
    run_all_schedules(y, feed, want, nn=True)


def test_float16_out_dtype_float32_is_not_rounded():
    (a, b), feed = operands((5, K), (K, 3))
    y = MM.matmul(a, b, out_dtype="float32")
    assert y.dtype == "float32" and y.op.tag == "matmul"
    np.testing.assert_allclose(te.evaluate(y, feed), f32(feed[a]) @ f32(feed[b]), rtol=1e-6)


REDUCERS = {
    "sum": (ops.sum, lambda a, ax: a.sum(ax)),
    "l1": (ops.l1, lambda a, ax: np.abs(a).sum(ax)),
    "sum_square": (ops.sum_square, lambda a, ax: (a * a).sum(ax)),
    "l2": (ops.l2, lambda a, ax: np.sqrt((a * a).sum(ax))),
    "mean": (ops.mean, lambda a, ax: a.mean(ax)),
    "log_sum_exp": (ops.log_sum_exp, lambda a, ax: np.log(np.exp(a).sum(ax))),
}


@pytest.mark.parametrize("name", REDUCERS)
@pytest.mark.parametrize("shape, axis", [((7, K), -1), ((K, 37), 0), ((3, K, 5), (0, 1))],
                         ids=["rows", "columns", "two-axes"])
def test_reductions(name, shape, axis):
    op, ref = REDUCERS[name]
    (x,), feed = operands(shape)
    y = op(x, axis=axis)
    assert y.dtype == "float16"
    run_all_schedules(y, feed, ref(f32(feed[x]), axis).astype(F16))


def test_prod():
    """Factors near 1 keep the product of 1000 of them in range."""
    x = te.placeholder((7, K), "float16", "x")
    a = rand(x.shape, "float16", seed=3, signed=False, lo=0.99, hi=1.01)
    run_all_schedules(ops.prod(x, axis=1), {x: a}, f32(a).prod(1).astype(F16))


def test_softmax_and_norm_statistics():
    """Already computed in float32; pinned here with the same 1-ulp bound."""
    (x,), feed = operands((7, K))
    a = f32(feed[x])
    e = np.exp(a - a.max(1, keepdims=True))
    mean = a.mean(1, keepdims=True)
    var = ((a - mean) ** 2).mean(1, keepdims=True)
    wants = {ops.softmax(x): e / e.sum(1, keepdims=True),
             ops.log_softmax(x): a - a.max(1, keepdims=True) - np.log(e.sum(1, keepdims=True)),
             ops.layer_norm(x): (a - mean) / np.sqrt(var + F32(1e-5))}
    for y, want in wants.items():
        run_all_schedules(y, feed, want.astype(F16))


def np_conv2d(x, w, padding=0, groups=1):
    """Stride-1 convolution in float32: an einsum over sliding windows, per group."""
    xp = np.pad(x, ((0, 0), (0, 0)) + ((padding, padding),) * 2)
    win = sliding_window_view(xp, w.shape[2:], axis=(2, 3))    # n, c, oh, ow, kh, kw
    icg, ocg = x.shape[1] // groups, w.shape[0] // groups
    return np.concatenate([np.einsum("nchwij,ocij->nohw", win[:, g * icg:(g + 1) * icg],
                                     w[g * ocg:(g + 1) * ocg]) for g in range(groups)], axis=1)


@pytest.mark.parametrize("xshape, wshape, kw", [
    ((1, 64, 9, 11), (21, 64, 3, 3), {}),                    # NCHWc, whole-plane blocking
    ((2, 64, 17, 19), (19, 64, 3, 3), {"padding": 1}),       # NCHWc, register tiles
    ((1, K, 5, 7), (13, K, 1, 1), {}),                       # 1x1: a matmul over channels
    ((1, 7, 13, 11), (7, 1, 5, 5), {"groups": 7}),           # depthwise
])
def test_conv2d(xshape, wshape, kw):
    (x, w), feed = operands(xshape, wshape)
    y = C.conv2d(x, w, **kw)
    run_all_schedules(y, feed, np_conv2d(f32(feed[x]), f32(feed[w]), **kw).astype(F16), nn=True)


def test_conv_transpose2d():
    """Stride 2: the convolution of the zero-interleaved input with the flipped kernel."""
    (x, w), feed = operands((1, 96, 5, 6), (96, 11, 3, 3))
    y = C.conv_transpose2d(x, w, strides=2)
    up = np.zeros((1, 96, 9, 11), F32)
    up[:, :, ::2, ::2] = feed[x]
    want = np_conv2d(up, f32(feed[w]).transpose(1, 0, 2, 3)[:, :, ::-1, ::-1], padding=2)
    run_all_schedules(y, feed, want.astype(F16), nn=True)


def test_average_pools():
    (x,), feed = operands((2, 3, 33, 31))
    a = f32(feed[x])
    glob = P.global_pool(x, "avg")
    run_all_schedules(glob, feed, a.mean((2, 3), keepdims=True).astype(F16), nn=True)
    win = P.avg_pool2d(x, 7, strides=2, padding=3)
    pad = ((0, 0), (0, 0), (3, 3), (3, 3))
    total = sliding_window_view(np.pad(a, pad), (7, 7), axis=(2, 3))[:, :, ::2, ::2]
    taps = sliding_window_view(np.pad(np.ones_like(a), pad), (7, 7), axis=(2, 3))[:, :, ::2, ::2]
    want = total.sum((4, 5)) / taps.sum((4, 5))
    run_all_schedules(win, feed, want.astype(F16), nn=True)


def test_einsum_and_cumsum():
    (a, b), feed = operands((7, K), (K, 5))
    run_all_schedules(ops.einsum("ij,jk->ki", a, b), feed,
                      (f32(feed[a]) @ f32(feed[b])).T.astype(F16))
    run_all_schedules(ops.cumsum(a, axis=1), feed, np.cumsum(f32(feed[a]), 1).astype(F16))
    run_all_schedules(ops.cumsum(b, axis=0, reverse=True), feed,
                      np.cumsum(f32(feed[b])[::-1], 0)[::-1].astype(F16))


def test_accumulator_stage_is_float32_and_vectorized():
    (a, b), _ = operands((13, K), (K, 37))
    y = MM.matmul(a, b)
    text = str(tc.lower(SN.create_schedule(y), [a, b, y]))
    rows = SNM.default_mr(13)                                       # 6 (AVX2) or 12 (AVX-512)
    assert f"matmul_acc = allocate(float32[{rows * 16}], local)" in text   # rows x 16 float32
    assert "matmul_acc[ramp(0, 1, 16)] = x16(0.0f)" in text
    assert "= float16x16(matmul_acc[ramp(" in text                 # rounded as it is stored
