"""GPU schedules of the capsule ops (tensorc.ops.capsule_schedule_gpu): on cuda-emu, in both
thread orders, every op matches the float64 numpy references of test_capsule at odd sizes
(and routing at MNIST DigitCaps size); the ``run_*`` callables and the graph compiler reach
them for CUDA targets; every kernel compiles for sm_80 and sm_90 with NVRTC without spills."""
import functools
import os
import sys

import numpy as np
import pytest
from test_capsule import np_predict, np_routing, np_squash, np_votes, rel_l2

import tensorc as tc
from tensorc import ops, te
from tensorc.codegen import nvrtc
from tensorc.codegen.cuda import emit_cuda
from tensorc.codegen.cuda_compile import compile_cubin
from tensorc.ops import capsule, capsule_schedule_gpu
from tensorc.ops.schedule_gpu import schedule_for_gpu

needs_nvrtc = pytest.mark.skipif(not nvrtc.available(), reason="NVRTC is not installed (an "
                                 "optional extra: pip install nvidia-cuda-nvrtc)")
rng = np.random.default_rng(17)

B, I, J, DIN, DOUT = 3, 37, 5, 7, 9


def _routing(batch, caps, out_caps, din, dout, iterations, fused, dtype="float32"):
    """(inputs, v, float64 reference of the inputs' values) of routing on u, W or on u_hat."""
    u = te.placeholder((batch, caps, din), dtype, "u")
    W = te.placeholder((caps, out_caps, dout, din), dtype, "W")
    if fused:
        return [u, W], capsule.capsule_routing(u, W, iterations), \
            lambda a, w: np_routing(np_predict(a, w), iterations)
    u_hat = te.placeholder((batch, caps, out_caps, dout), dtype, "u_hat")
    return [u_hat], capsule.dynamic_routing(u_hat, iterations), \
        lambda x: np_routing(x, iterations)


def _case(name):
    """(inputs, output, float64 reference) of each op at odd sizes."""
    if name == "route_mnist":
        return _routing(2, 1152, 10, 8, 16, 3, True)
    if name.startswith("route") or name.startswith("dynamic"):
        return _routing(B, I, J, DIN, DOUT, int(name[-1]), name.startswith("route"))
    if name == "predict":
        u, W = te.placeholder((B, I, DIN), name="u"), te.placeholder((I, J, DOUT, DIN), name="W")
        return [u, W], capsule.predict(u, W), np_predict
    if name == "squash_one_vector":
        s = te.placeholder((DOUT,), name="s")
        return [s], capsule.squash(s), np_squash
    if name.startswith("squash"):
        axis = int(name.split("_")[1])
        s = te.placeholder((B, 5, DOUT), name="s")
        return [s], capsule.squash(s, axis=axis), lambda x: np_squash(x, axis)
    if name.startswith("votes"):
        stride = int(name[-1])
        pose = te.placeholder((2, 7, 6, 3, 4, 4), name="pose")
        W = te.placeholder((3, 3, 3, 5, 4, 4), name="W")
        return [pose, W], capsule.em_votes(pose, W, stride), \
            lambda p, w: np_votes(p.astype(np.float64), w.astype(np.float64), stride)
    raise KeyError(name)


CASES = ["route_1", "route_3", "dynamic_1", "dynamic_3", "predict", "squash_-1", "squash_1",
         "squash_0", "squash_one_vector", "votes_1", "votes_2"]


def _values(ins):
    """Random inputs, never zero; W scaled so the routing's logits stay moderate."""
    out = []
    for t in ins:
        a = rng.uniform(0.1, 1.0, t.shape) * rng.choice([-1, 1], t.shape)
        out.append((a * (0.3 if t.name == "W" else 1)).astype(t.dtype))
    return out


def _check_on_emu(name):
    ins, out, ref = _case(name)
    f = tc.build(schedule_for_gpu(out), ins + [out], target="cuda-emu")
    vals = _values(ins)
    want = ref(*vals)
    for order in ("forward", "reverse"):
        got = np.full(out.shape, np.nan, out.dtype)
        f(*vals, got, order=order)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=order)
        assert rel_l2(got, want) < 1e-5, order
    return f


@pytest.mark.parametrize("name", CASES)
def test_matches_numpy_on_cuda_emu(name):
    _check_on_emu(name)


def test_mnist_digitcaps_routing_is_one_block_per_batch_element():
    """u_hat never reaches global memory: the kernel reads u and W and writes v only."""
    f = _check_on_emu("route_mnist")
    (k,) = f.kernels
    tx, rows, depth = capsule_schedule_gpu.routing_shape(1152, 10, 16, 3)
    assert (k.grid, k.block) == ((2, 1, 1), (160, rows, 1)) and tx == 160
    assert sorted(k.args) == ["W", "u", "v"]
    src = f.get_source("cuda")
    assert f"__shared__ float v_u_hat_shared[{rows * depth * 160}];" in src


def test_float64_routing_keeps_to_the_shared_memory_limit():
    ins, out, ref = _routing(2, 1152, 10, 8, 16, 3, True, "float64")
    f = tc.build(schedule_for_gpu(out), ins + [out], target="cuda-emu")
    (k,) = f.kernels
    assert k.shared_bytes <= capsule_schedule_gpu.SHARED_BYTES
    vals = _values(ins)
    got = np.empty(out.shape, out.dtype)
    f(*vals, got)
    assert rel_l2(got, ref(*vals)) < 1e-12


def test_routing_knobs_and_their_limits():
    assert capsule_schedule_gpu.routing_shape(37, 5, 9, 3, rows=2, depth=3) == (45, 2, 3)
    # a block of at most 1024 threads; chunks that tile the 1152 input capsules
    assert capsule_schedule_gpu.routing_shape(1152, 10, 16, 3, rows=16) == (160, 6, 3)
    ins, out, ref = _routing(B, I, J, DIN, DOUT, 2, True)
    s = te.create_schedule(out.op)
    capsule_schedule_gpu.schedule_routing(s, out, rows=2, depth=3)
    f = tc.build(s, ins + [out], target="cuda-emu")
    vals = _values(ins)
    got = np.empty(out.shape, out.dtype)
    f(*vals, got)
    assert rel_l2(got, ref(*vals)) < 1e-5
    with pytest.raises(ValueError, match="rows must be a positive int, got 0"):
        capsule_schedule_gpu.schedule_routing(te.create_schedule(out.op), out, rows=0)


def test_routing_written_through_an_elementwise_epilogue():
    ins, v, ref = _routing(B, I, J, DIN, DOUT, 2, True)
    out = ops.relu(ops.multiply(v, -3.0))
    s = te.create_schedule(out.op)
    s[out.op.input_tensors[0]].compute_inline()
    capsule_schedule_gpu.schedule_capsule_gpu(s, v, out)
    f = tc.build(s, ins + [out], target="cuda-emu")
    (k,) = f.kernels
    assert k.args == ("u", "W", out.name)
    vals = _values(ins)
    got = np.full(out.shape, np.nan, out.dtype)
    f(*vals, got, order="reverse")
    np.testing.assert_allclose(got, np.maximum(-3 * ref(*vals), 0), rtol=1e-4, atol=1e-6)
    through_default = tc.build(schedule_for_gpu(out), ins + [out], target="cuda-emu")
    got = np.full(out.shape, np.nan, out.dtype)
    through_default(*vals, got)
    np.testing.assert_allclose(got, np.maximum(-3 * ref(*vals), 0), rtol=1e-4, atol=1e-6)
    squash = capsule.squash(ins[0])
    with pytest.raises(ValueError, match="capsule squash 'squash' takes no epilogue"):
        capsule_schedule_gpu.schedule_capsule_gpu(te.create_schedule(squash.op), squash, out)


def test_run_functions_take_the_gpu_schedules():
    a, w = _values([te.placeholder((B, I, DIN), name="u"),
                    te.placeholder((I, J, DOUT, DIN), name="W")])
    got = capsule.run_predict_and_route(a, w, iterations=2, target="cuda-emu")
    assert rel_l2(got, np_routing(np_predict(a, w), 2)) < 1e-5
    got = capsule.run_predict_and_route(a, capsule.pack_weight(w), iterations=2,
                                        target="cuda-emu", weight_layout="packed")
    assert rel_l2(got, np_routing(np_predict(a, w), 2)) < 1e-5
    u_hat = capsule.run_predict(a, w, target="cuda-emu")
    assert rel_l2(u_hat, np_predict(a, w)) < 1e-5
    got = capsule.run_dynamic_routing(u_hat, iterations=2, target="cuda-emu")
    assert rel_l2(got, np_routing(np_predict(a, w), 2)) < 1e-5
    assert rel_l2(capsule.run_squash(a, axis=1, target="cuda-emu"), np_squash(a, 1)) < 1e-5


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_graph_with_a_routing_node_compiles_for_cuda_emu():
    torch = pytest.importorskip("torch")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "graph"))
    from test_capsule_pass import DigitCaps, _inputs, _routing_nodes
    from torchscript_helpers import check_outputs, import_module
    module = DigitCaps(iterations=3).eval()
    x = _inputs(5, 37, 7)
    g = import_module(module, "trace", (x,))
    assert len(_routing_nodes(g)) == 1
    with torch.no_grad():
        want = module(x)
    check_outputs(tc.compile(g, target="cuda-emu")(x.numpy()), want)


@functools.lru_cache(maxsize=None)
def _cuda_source(name):
    """The case's kernel as CUDA C, lowered once for both architectures."""
    ins, out, _ = _case(name)
    return emit_cuda(tc.lower(schedule_for_gpu(out), ins + [out], target="cuda"))


@needs_nvrtc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name", CASES + ["route_mnist"])
def test_nvrtc_compiles_without_spills(name, arch):
    src = _cuda_source(name)
    assert len(src.kernels) == 1
    _, usage = compile_cubin(src.text, arch, "nvrtc")
    for kernel, res in usage.items():
        assert res["spill_stores"] == 0 and res["spill_loads"] == 0, (kernel, res)
        assert 0 < res["registers"] <= 255
