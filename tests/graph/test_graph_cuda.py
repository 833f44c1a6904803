"""Whole models for the GPU (tc.compile(graph, target="cuda" | "cuda-emu")): run on the CPU
emulator in both thread orders with NaN-poisoned storage, compared with the CPU build; the
whole translation unit compiled by nvcc without spills; a real GPU run where one is usable."""
import ctypes
import re
import shutil
import sys
import types

import numpy as np
import pytest

import tensorc as tc
from graph_helpers import mlp, mlp_ref, residual_block, residual_ref, rnd
from tensorc.codegen.cuda_source import CudaSource, KernelLaunch
from tensorc.graph.builder import GraphBuilder
from tensorc.graph.infer import GraphError
from tensorc.graph.plan import BufferRef, ExecutionPlan, KernelCall
from tensorc.runtime import cuda_graph_module
from tensorc.runtime.cuda_emu import build_emu
from tensorc.runtime.cuda_graph_module import CudaGraphModule
from tensorc.runtime.cuda_module import cuda_status

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")


def _layer_norm_gelu(rng):
    """layer_norm -> gelu -> reshape (an alias) -> dense -> layer_norm -> gelu, three outputs."""
    gb = GraphBuilder("lngelu")
    x = gb.input("x", (3, 6, 37))
    n = gb.op("layer_norm", x, gb.const("g", rnd(rng, 37)), gb.const("b", rnd(rng, 37)))
    h = gb.op("reshape", gb.op("gelu", n), newshape=[18, 37])
    h = gb.op("dense", h, gb.const("w", rnd(rng, 21, 37, lo=0.05, hi=0.2)),
              gb.const("bias", rnd(rng, 21)))
    m = gb.op("layer_norm", h, gb.const("g2", rnd(rng, 21)), gb.const("b2", rnd(rng, 21)))
    gb.output(n, m, gb.op("gelu", m))
    return gb.graph()


def _shared_kernels(rng):
    """Three identical conv+bias+relu groups, an alias, and outputs of every kind."""
    gb = GraphBuilder("share")
    x = gb.input("x", (1, 8, 6, 6))
    h = x
    for k in range(3):
        h = gb.op("conv2d", h, gb.const(f"w{k}", rnd(rng, 8, 8, 3, 3, lo=0.05, hi=0.15)),
                  padding=1)
        h = gb.op("relu", gb.op("add", h, gb.const(f"b{k}", rnd(rng, 8, 1, 1))))
    flat = gb.op("reshape", h, newshape=[1, 288])
    c = gb.op("transpose", gb.const("c", rnd(rng, 2, 3)))
    parts = gb.op("split", gb.op("sigmoid", flat), sizes=[101, 187], axis=1)
    gb.output(flat, x, c, parts[1], flat)
    return gb.graph()


MODELS = {
    "mlp": lambda rng: mlp(rng, batch=17, dims=(32, 48, 19))[0],
    "resblock": lambda rng: residual_block(rng, c=8, hw=6)[0],
    "lngelu": _layer_norm_gelu,
    "share": _shared_kernels,
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def built(request):
    g = MODELS[request.param](np.random.default_rng(3))
    return g, tc.compile(g, target="cuda-emu"), tc.compile(g)


def _run_poisoned(mod, inputs, order):
    mod.poison_storage, mod.order = True, order
    try:
        return mod(*inputs)
    finally:
        mod.poison_storage, mod.order = False, "forward"


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_emulated_model_matches_cpu_build(built, order):
    g, mod, cpu = built
    rng = np.random.default_rng(4)
    inputs = [rnd(rng, *t.shape) for t in mod.inputs]
    got, want = _run_poisoned(mod, inputs, order), cpu(*inputs)
    assert [o.name for o in mod.outputs] == [o.name for o in cpu.outputs]
    for out, a, b in zip(mod.outputs, got, want):
        assert a.shape == out.shape and a.dtype == np.dtype(out.dtype)
        assert not np.isnan(a).any(), f"{out.name}: elements no kernel wrote"
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=out.name)


def test_mlp_and_resblock_match_numpy():
    rng = np.random.default_rng(5)
    g, weights = mlp(rng, batch=17, dims=(32, 48, 19))
    mod = tc.compile(g, target="cuda-emu")
    x = rnd(rng, 17, 32)
    np.testing.assert_allclose(mod(x)[0], mlp_ref(x, *weights), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(mod.run({"x": x})[0], mlp_ref(x, *weights), rtol=1e-4, atol=1e-6)
    g, params = residual_block(rng, c=8, hw=6)
    mod = tc.compile(g, target="cuda-emu")
    x = rnd(rng, 1, 8, 6, 6)
    np.testing.assert_allclose(mod(x)[0], residual_ref(x, *params), rtol=1e-4, atol=1e-5)


def test_one_translation_unit_with_model_named_kernels():
    mod = tc.compile(mlp(np.random.default_rng(6), batch=17, dims=(32, 48, 19))[0],
                     target="cuda-emu")
    text = mod.get_source("cuda")
    kernels = re.findall(r'extern "C" __global__ void (\w+)\(', text)
    assert kernels == ["mlp_0_dense_relu_kernel0", "mlp_1_dense_kernel0",
                       "mlp_2_softmax_kernel0"]
    assert mod.kernel_names == ("mlp_0_dense_relu", "mlp_1_dense", "mlp_2_softmax")
    assert "#include" not in text  # float32 only: no fp16 header
    with pytest.raises(ValueError, match="only 'cuda' source"):
        mod.get_source("llvm")


def test_identical_groups_share_one_kernel():
    mod = tc.compile(_shared_kernels(np.random.default_rng(7)), target="cuda-emu")
    info = mod.compile_info
    assert [grp.ops for grp in info.groups][:4] == [["conv2d", "add", "relu"]] * 3 + [["reshape"]]
    assert len(info.kernels) == 3 and len(info.plan.calls) == 5
    assert mod.get_source().count("share_0_conv2d_add_relu_kernel0(") == 1
    assert [s.kind if s else None for s in info.plan.output_sources] == \
        [None, "input", "const", None, "output"]


def test_poisoned_storage_shows_elements_no_kernel_writes():
    """A kernel that writes only the first five of nine outputs: poisoned, the rest is NaN."""
    text = ('extern "C" __global__ void half_kernel0(float* __restrict__ x, '
            'float* __restrict__ y) {\n  int i = threadIdx.x;\n'
            '  if (i < 5) { y[i] = x[i] * 2.0f; }\n}\n')
    src = CudaSource("half", text, (KernelLaunch("half_kernel0", (1, 1, 1), (9, 1, 1),
                                                 ("x", "y")),),
                     (("x", (9,), "float32"), ("y", (9,), "float32")))
    plan = ExecutionPlan("half", inputs=[("x", (9,), "float32")],
                         outputs=[("y", (9,), "float32")],
                         calls=[KernelCall("half", (BufferRef("input", 0),
                                                    BufferRef("output", 0)))],
                         output_sources=[None])
    mod = CudaGraphModule(text, {"half": src}, plan, "cuda-emu")
    x = rnd(np.random.default_rng(8), 9)
    (y,) = _run_poisoned(mod, [x], "reverse")
    np.testing.assert_array_equal(y[:5], 2 * x[:5])
    assert np.isnan(y[5:]).all()


def test_a_group_without_gpu_kernel_names_its_ops():
    gb = GraphBuilder("scalar")
    gb.output(gb.op("relu", gb.input("x", ())))
    with pytest.raises(GraphError, match=r"target 'cuda-emu': the group injective\[relu\].*"
                                         r"0-d tensor"):
        tc.compile(gb.graph(), target="cuda-emu")


def test_bad_inputs_and_unsupported_requests(built):
    _, mod, _ = built
    t = mod.inputs[0]
    with pytest.raises(TypeError, match=rf"input {t.name!r} \(#0\): expected dtype float32"):
        mod(*[np.ones(i.shape, "float64") for i in mod.inputs])
    with pytest.raises(ValueError, match=rf"input {t.name!r} \(#0\): expected shape"):
        mod(*[np.ones(i.shape + (1,), "float32") for i in mod.inputs])
    with pytest.raises(TypeError, match=f"takes {len(mod.inputs)} inputs"):
        mod()
    with pytest.raises(KeyError, match="no input named 'nope'"):
        mod.run({"nope": 1})


def test_non_contiguous_inputs_are_copied():
    g = MODELS["resblock"](np.random.default_rng(3))
    mod, cpu = tc.compile(g, target="cuda-emu"), tc.compile(g)
    x = np.asfortranarray(rnd(np.random.default_rng(9), 1, 8, 6, 6))
    np.testing.assert_allclose(mod(x)[0], cpu(x)[0], rtol=1e-4, atol=1e-6)


@needs_nvcc
@pytest.mark.parametrize("name", ["mlp", "resblock", "lngelu"])
def test_whole_model_compiles_for_sm80_without_spills(name):
    mod = tc.compile(MODELS[name](np.random.default_rng(3)), target="cuda -arch=sm_80")
    kernels = re.findall(r'extern "C" __global__ void (\w+)\(', mod.get_source())
    usage = mod.resource_usage
    assert mod.arch == "sm_80" and sorted(usage) == sorted(kernels)
    for kernel, u in usage.items():
        assert u["spill_stores"] == 0 and u["spill_loads"] == 0, (kernel, u)


@needs_nvcc
@pytest.mark.skipif(cuda_status() == "ready", reason="a GPU is usable here")
def test_running_without_a_gpu_suggests_the_emulator():
    mod = tc.compile(MODELS["resblock"](np.random.default_rng(3)), target="cuda")
    with pytest.raises(RuntimeError, match="target='cuda-emu'"):
        mod(rnd(np.random.default_rng(0), 1, 8, 6, 6))


@pytest.mark.gpu
@pytest.mark.skipif(cuda_status() != "ready", reason="no usable CUDA device")
@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_on_the_gpu_matches_cpu_build(name):
    g = MODELS[name](np.random.default_rng(3))
    mod, cpu = tc.compile(g, target="cuda"), tc.compile(g)
    rng = np.random.default_rng(10)
    inputs = [rnd(rng, *t.shape) for t in mod.inputs]
    mod.poison_storage = True
    for _ in range(2):  # buffers are reused between calls
        for a, b in zip(mod(*inputs), cpu(*inputs)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def install_host_driver(monkeypatch, mod):
    """Make ``mod`` launch through a ``_HostDriver`` posing as pycuda (and as a ready GPU)."""
    driver = _HostDriver(mod)
    pycuda = types.ModuleType("pycuda")
    pycuda.driver, pycuda.autoinit = driver, types.ModuleType("pycuda.autoinit")
    for name, module in (("pycuda", pycuda), ("pycuda.driver", driver),
                         ("pycuda.autoinit", pycuda.autoinit)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(cuda_graph_module, "cuda_status", lambda: "ready")
    return driver


class _HostDriver:
    """Stands in for pycuda.driver on host memory: each kernel launch runs on cuda-emu with
    the raw pointers it is given, so the "cuda" runner's buffers, offsets, launch order and
    copies are checked without a GPU."""

    def __init__(self, mod):
        self.mod, self.blocks, self.launched = mod, [], []

    class Allocation:
        """Like pycuda's DeviceAllocation: ``int()`` is the (256-byte aligned) address."""

        def __init__(self, nbytes):
            self.block = np.zeros(nbytes + 256, np.uint8)
            self.address = self.block.ctypes.data - self.block.ctypes.data % 256 + 256

        def __int__(self):
            return self.address

    def mem_alloc(self, nbytes):
        self.blocks.append(self.Allocation(nbytes))
        return self.blocks[-1]

    def memcpy_htod(self, buf, a):
        ctypes.memmove(int(buf), a.ctypes.data, a.nbytes)

    def memcpy_dtoh(self, a, buf):
        ctypes.memmove(a.ctypes.data, int(buf), a.nbytes)

    def memcpy_dtod(self, dst, src, nbytes):
        ctypes.memmove(int(dst), int(src), nbytes)

    def memset_d8(self, buf, value, nbytes):
        ctypes.memset(int(buf), value, nbytes)

    def module_from_buffer(self, cubin):
        assert cubin[:4] == b"\x7fELF"
        return types.SimpleNamespace(get_function=self._function)

    def _function(self, name):
        src = next(s for s in self.mod.sources.values() if name in [k.name for k in s.kernels])
        params = {p[0]: p for p in src.params}

        def launch(*pointers, grid, block):
            args = next(k.args for k in src.kernels if k.name == name)
            one = CudaSource(name, self.mod.text, (KernelLaunch(name, grid, block, args),),
                             tuple(params[a] for a in args))
            arrays = []
            for a, ptr in zip(args, pointers):
                _, shape, dtype = params[a]
                n = int(np.prod(shape)) * np.dtype(dtype).itemsize
                raw = (ctypes.c_uint8 * n).from_address(int(ptr))
                arrays.append(np.ctypeslib.as_array(raw).view(dtype).reshape(shape))
            self.launched.append(name)
            build_emu(one)(*arrays, order="reverse")
        return launch


@needs_nvcc
def test_cuda_runner_through_a_host_driver(monkeypatch):
    g = _shared_kernels(np.random.default_rng(3))
    mod, cpu = tc.compile(g, target="cuda"), tc.compile(g)
    driver = install_host_driver(monkeypatch, mod)
    mod.poison_storage = True
    rng = np.random.default_rng(11)
    for _ in range(2):  # the device buffers and launch list are reused
        x = rnd(rng, 1, 8, 6, 6)
        for out, a, b in zip(mod.outputs, mod(x), cpu(x)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=out.name)
    per_run = [k.name for c in mod.plan.calls for k in mod.sources[c.func].kernels]
    assert per_run[-2:] == ["share_2_split_kernel0", "share_2_split_kernel1"]
    assert driver.launched == per_run * 2
