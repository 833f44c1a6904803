"""Default GPU schedules (ops.schedule_gpu): every op's kernel compiles with nvcc for sm_80 and
sm_90 without spills and, run on cuda-emu in both thread orders, matches numpy on odd sizes."""
import shutil

import numpy as np
import pytest
import torch

import tensorc as tc
from tensorc import ops, te
from tensorc.ops import conv, matmul
from tensorc.ops.schedule_gpu import schedule_for_gpu

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
rng = np.random.default_rng(11)


def _softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _layer_norm(a, g, b):
    mu = a.mean(-1, keepdims=True)
    return (a - mu) / np.sqrt(((a - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * g + b


def _conv(x, w, **kw):
    return torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), **kw).numpy()


def _case(name):
    """(inputs, output, numpy reference) of a small odd-sized instance of each op."""
    if name == "elementwise":
        a, b = te.placeholder((7, 36), name="a"), te.placeholder((36,), name="b")
        return [a, b], ops.relu(ops.add(a, b)), lambda x, y: np.maximum(x + y, 0)
    if name == "elementwise_odd":
        a = te.placeholder((5, 19), name="a")
        return [a], ops.tanh(ops.multiply(a, 2.0)), lambda x: np.tanh(2 * x)
    if name.startswith("sum") or name in ("max_cols", "mean_keepdims", "argmax"):
        a = te.placeholder((9, 100), name="a")
        out, ref = {"sum_rows": (ops.sum(a, axis=1), lambda x: x.sum(1)),
                    "sum_short_rows": (ops.sum(a, axis=0), lambda x: x.sum(0)),
                    "sum_all": (ops.sum(a), lambda x: np.array(x.sum(), "float32")),
                    "max_cols": (ops.max(a, axis=0), lambda x: x.max(0)),
                    "mean_keepdims": (ops.mean(a, axis=1, keepdims=True),
                                      lambda x: x.mean(1, keepdims=True)),
                    "argmax": (ops.argmax(a, axis=1), lambda x: x.argmax(1))}[name]
        return [a], out, ref
    if name == "softmax":
        a = te.placeholder((5, 77), name="a")
        return [a], ops.softmax(a), _softmax
    if name == "softmax_middle_axis":
        a = te.placeholder((3, 41, 5), name="a")
        return [a], ops.softmax(a, axis=1), lambda x: np.moveaxis(
            _softmax(np.moveaxis(x, 1, -1)), -1, 1)
    if name == "layer_norm":
        a = te.placeholder((3, 5, 70), name="a")
        g, b = te.placeholder((70,), name="g"), te.placeholder((70,), name="b")
        return [a, g, b], ops.layer_norm(a, g, b), _layer_norm
    if name == "matmul":
        a, b = te.placeholder((70, 45), name="a"), te.placeholder((45, 83), name="b")
        return [a, b], matmul.matmul(a, b), lambda x, y: x @ y
    if name == "batch_matmul":
        a, b = te.placeholder((2, 21, 13), name="a"), te.placeholder((2, 13, 30), name="b")
        return [a, b], matmul.batch_matmul(a, b), lambda x, y: x @ y
    if name == "dense_bias_relu":
        x, w = te.placeholder((33, 45), name="x"), te.placeholder((50, 45), name="w")
        b = te.placeholder((50,), name="b")
        return [x, w, b], ops.relu(matmul.dense(x, w, b)), \
            lambda xv, wv, bv: np.maximum(xv @ wv.T + bv, 0)
    if name == "conv3x3":
        x, w = te.placeholder((1, 5, 11, 9), name="x"), te.placeholder((7, 5, 3, 3), name="w")
        return [x, w], conv.conv2d(x, w, padding=1), lambda xv, wv: _conv(xv, wv, padding=1)
    if name == "conv3x3_stride2_relu":
        x, w = te.placeholder((2, 3, 13, 10), name="x"), te.placeholder((9, 3, 3, 3), name="w")
        return [x, w], ops.relu(conv.conv2d(x, w, strides=2, padding=1)), \
            lambda xv, wv: np.maximum(_conv(xv, wv, stride=2, padding=1), 0)
    if name == "conv1x1":
        x, w = te.placeholder((1, 5, 7, 9), name="x"), te.placeholder((6, 5, 1, 1), name="w")
        return [x, w], conv.conv2d(x, w), _conv
    if name == "depthwise":
        x, w = te.placeholder((1, 5, 11, 9), name="x"), te.placeholder((5, 1, 3, 3), name="w")
        return [x, w], conv.conv2d(x, w, groups=5, strides=2, padding=1), \
            lambda xv, wv: _conv(xv, wv, groups=5, stride=2, padding=1)
    raise KeyError(name)


CASES = ["elementwise", "elementwise_odd", "sum_rows", "sum_short_rows", "sum_all", "max_cols",
         "mean_keepdims", "argmax", "softmax", "softmax_middle_axis", "layer_norm", "matmul",
         "batch_matmul", "dense_bias_relu", "conv3x3", "conv3x3_stride2_relu", "conv1x1",
         "depthwise"]


def _build(name, target):
    ins, out, ref = _case(name)
    return tc.build(schedule_for_gpu(out), ins + [out], target=target), ins, out, ref


@pytest.mark.parametrize("name", CASES)
def test_matches_numpy_on_cuda_emu(name):
    f, ins, out, ref = _build(name, "cuda-emu")
    vals = [rng.standard_normal(t.shape).astype(t.dtype) for t in ins]
    want = ref(*vals)
    for order in ("forward", "reverse"):
        got = np.full(out.shape, np.nan if out.dtype == "float32" else -7, out.dtype)
        f(*vals, got, order=order)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=order)


@needs_nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name", CASES)
def test_compiles_without_spills(name, arch):
    f, *_ = _build(name, f"cuda -arch={arch}")
    assert len(f.cuda_source.kernels) == 1
    for kernel, res in f.resource_usage.items():
        assert res["spill_stores"] == 0 and res["spill_loads"] == 0, (kernel, res)


@needs_nvcc
def test_large_matmul_register_blocks_do_not_spill():
    a, b = te.placeholder((4096, 4096), name="a"), te.placeholder((4096, 4096), name="b")
    c = matmul.matmul(a, b)
    f = tc.build(schedule_for_gpu(c), [a, b, c], target="cuda -arch=sm_90")
    (k,) = f.cuda_source.kernels
    assert (k.grid, k.block, k.shared_bytes) == ((32, 32, 1), (16, 16, 1), 8192)
    (res,) = f.resource_usage.values()
    assert res["spill_stores"] == 0 and res["registers"] <= 255


def test_softmax_is_one_block_per_row_with_all_reduces():
    f, *_ = _build("softmax", "cuda-emu")
    (k,) = f.kernels
    assert (k.grid, k.block) == ((5, 1, 1), (64, 1, 1))
    src = f.get_source("cuda")
    assert src.count("__shfl_down_sync") == 10  # max and sum: a warp's last five steps each
    assert "__shared__" in src


def test_matmul_stages_tiles_in_shared_memory():
    f, *_ = _build("matmul", "cuda-emu")
    (k,) = f.kernels
    assert (k.grid, k.block, k.shared_bytes) == ((2, 2, 1), (16, 16, 1), 8192)
    src = f.get_source("cuda")
    assert "__shared__ float a_shared[1024];" in src and "float matmul_local[16];" in src
    assert "__syncthreads();" in src


def test_elementwise_moves_float4():
    f, *_ = _build("elementwise", "cuda-emu")
    assert "make_float4(" in f.get_source("cuda")


def test_statistics_of_a_whole_tensor_need_an_axis():
    a = te.placeholder((9, 100), name="a")
    with pytest.raises(ValueError, match=r"'mean' is computed from whole-tensor statistics"):
        schedule_for_gpu(ops.mean(a))
