"""Tuning for CUDA targets: template variants per target, the GPU templates (point 0 is the
default GPU schedule, other points compute the same thing), device limits that reject a
candidate before it runs, and a whole tuning run on cuda-emu recorded in a database. The
runner's GPU path (device buffers, CUDA events) runs here through a stand-in for pycuda that
launches each kernel on cuda-emu."""
import ctypes
import sys
import time
import types

import numpy as np
import pytest

from tensorc import autotune, te
from tensorc.autotune import create_task
from tensorc.autotune.database import TuningDatabase
from tensorc.autotune.device_limits import (
    ARCH_LIMITS,
    cuda_target_key,
    launch_violations,
    limits_for_arch,
    limits_for_target,
    registers_per_block,
    usage_violations,
)
from tensorc.autotune.measure import MeasureErrorNo, MeasureOption, Measurer
from tensorc.autotune.measure_cuda import GpuBuild, evaluate
from tensorc.autotune.measure_worker import RunRequest
from tensorc.autotune.space import SpaceError
from tensorc.autotune.tuner import GridSearchTuner
from tensorc.cli_tune import short_target
from tensorc.codegen import nvrtc
from tensorc.codegen.cuda_source import CudaSource, KernelLaunch
from tensorc.driver import lower
from tensorc.ops import conv, matmul, norm, reduction, templates_gpu
from tensorc.ops.softmax import softmax
from tensorc.ops.schedule_gpu import schedule_for_gpu
from tensorc.runtime import cuda_module
from tensorc.runtime.cuda_emu import build_emu

E = MeasureErrorNo
FAST = {"number": 1, "repeat": 2, "min_repeat_ms": 0.0, "n_parallel_builds": 2}
needs_nvrtc = pytest.mark.skipif(not nvrtc.available(), reason="NVRTC is not installed (an "
                                 "optional extra: pip install nvidia-cuda-nvrtc)")


# ------------------------------------------------------------------------------ variants

@autotune.template("test_tune_cuda.scale")
def scale_cpu(n):
    x = te.placeholder((n,), name="x")
    y = te.compute((n,), lambda i: x[i] * 2.0, name="y")
    return te.create_schedule(y.op), [x, y]


@autotune.template("test_tune_cuda.scale", target="cuda")
def scale_gpu(n):
    x = te.placeholder((n,), name="x")
    y = te.compute((n,), lambda i: x[i] * 2.0, name="y")
    s = te.create_schedule(y.op)
    cfg = autotune.get_config()
    cfg.define_knob("threads", [64, 32])
    bx, tx = s[y].split(y.op.axis[0], factor=cfg["threads"].val)
    s[y].bind(bx, te.thread_axis("blockIdx.x"))
    s[y].bind(tx, te.thread_axis("threadIdx.x"))
    return s, [x, y]


def test_a_task_takes_the_variant_of_its_targets_family():
    assert create_task("test_tune_cuda.scale", (50,)).func is scale_cpu.func
    for target in ("cuda", "cuda -arch=sm_90", "cuda-emu"):
        task = create_task("test_tune_cuda.scale", (50,), target=target)
        assert task.func is scale_gpu.func and task.target == target
    assert create_task("matmul", (5, 6, 7), target="cuda-emu").func is templates_gpu.matmul.func
    assert create_task("matmul", (5, 6, 7)).func is not templates_gpu.matmul.func
    assert "threads" in create_task("test_tune_cuda.scale", (50,), "cuda").config_space.knobs


def test_a_template_without_a_variant_for_the_target_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'depthwise_conv2d' has no variant for target "
                                         r"'cuda-emu'.*llvm"):
        create_task("depthwise_conv2d", (1, 4, 9, 9, 3, 3), target="cuda-emu")
    with pytest.raises(ValueError, match=r"'layer_norm' has no variant for target 'llvm'"):
        create_task("layer_norm", ((4, 40),))
    with pytest.raises(SpaceError, match="no template named 'no_such'"):
        create_task("no_such", (), target="cuda")
    with pytest.raises(ValueError, match="unknown target 'rocm'"):
        create_task("matmul", (5, 6, 7), target="rocm")
    with pytest.raises(ValueError, match="unknown architecture 'sm80'"):
        create_task("matmul", (5, 6, 7), target="cuda -arch=sm80")
    with pytest.raises(ValueError, match="cuda-emu takes none"):
        create_task("matmul", (5, 6, 7), target="cuda-emu -arch=sm_80")


def test_a_variant_is_registered_once_per_family():
    def other(n):
        return scale_gpu.func(n)
    other.__qualname__ = "elsewhere"
    with pytest.raises(SpaceError, match="already registered for cuda"):
        autotune.template("test_tune_cuda.scale", target="cuda-emu")(other)


def test_cuda_tasks_pickle_with_their_target(monkeypatch):
    import pickle
    task = create_task("softmax", ((3, 40),), target="cuda -arch=sm_86")
    back = pickle.loads(pickle.dumps(task))
    assert (back.key, back.target, back.func) == (task.key, task.target, task.func)
    assert cuda_target_key("cuda -arch=sm_86") == "cuda -arch=sm_86"
    monkeypatch.setattr(cuda_module, "cuda_status", lambda: "no device")
    assert cuda_target_key("cuda") == "cuda -arch=sm_80"  # tc.build's default without a GPU
    assert cuda_target_key("cuda-emu") == "cuda-emu"
    assert short_target("cuda -arch=sm_86") == "cuda -arch=sm_86"


# ------------------------------------------------------------------------------ GPU templates

def _default_program(y, inputs):
    return str(lower(schedule_for_gpu(y), [*inputs, y], name="p", target="cuda"))


def _ph(shape, name):
    return te.placeholder(shape, "float32", name=name)


DEFAULTS = [
    ("matmul", (33, 20, 36), lambda: (lambda a, b: (matmul.matmul(a, b), [a, b]))(
        _ph((33, 36), "a"), _ph((36, 20), "b"))),
    ("dense", (9, 12, 20), lambda: (lambda x, w: (matmul.dense(x, w), [x, w]))(
        _ph((9, 20), "x"), _ph((12, 20), "w"))),
    ("batch_matmul", (2, 9, 12, 20), lambda: (lambda a, b: (matmul.batch_matmul(a, b), [a, b]))(
        _ph((2, 9, 20), "a"), _ph((2, 20, 12), "b"))),
    ("conv2d_nchw", (1, 3, 9, 11, 8, 3, 3, 1, 1), lambda: (lambda x, w: (
        conv.conv2d(x, w, strides=1, padding=1), [x, w]))(_ph((1, 3, 9, 11), "x"),
                                                          _ph((8, 3, 3, 3), "w"))),
    ("softmax", ((5, 77),), lambda: (lambda x: (softmax(x, -1), [x]))(_ph((5, 77), "x"))),
    ("layer_norm", ((6, 45),), lambda: (lambda x: (norm.layer_norm(x), [x]))(_ph((6, 45), "x"))),
    ("reduce", ((7, 300), 1), lambda: (lambda x: (reduction.sum(x, axis=1), [x]))(
        _ph((7, 300), "x"))),
    ("reduce", ((300, 7), 0, "max"), lambda: (lambda x: (reduction.max(x, axis=0), [x]))(
        _ph((300, 7), "x"))),
    ("reduce", ((5, 6, 40), [0, 2], "log_sum_exp", True), lambda: (lambda x: (
        reduction.log_sum_exp(x, [0, 2], True), [x]))(_ph((5, 6, 40), "x"))),
]


@pytest.mark.parametrize("name,args,make", DEFAULTS, ids=[f"{d[0]}{d[1]}" for d in DEFAULTS])
def test_point_0_of_every_gpu_template_is_the_default_gpu_schedule(name, args, make):
    task = create_task(name, args, target="cuda-emu")
    y, inputs = make()
    assert str(task.lower(0, name="p")) == _default_program(y, inputs)
    assert len(task.config_space) > 1


@pytest.mark.parametrize("name,args", [
    ("conv2d_nchw", (1, 3, 9, 11, 8, 3, 3, 1, 1)),
    ("softmax", ((5, 77),)),
    ("layer_norm", ((6, 45),)),
    ("reduce", ((7, 300), 1)),
    ("reduce", ((300, 7), 0, "max")),
    ("reduce", ((5, 6, 40), [0, 2], "log_sum_exp", True)),
])
def test_gpu_template_points_compute_the_reference(name, args):
    task = create_task(name, args, target="cuda-emu")
    inputs, expected = task.reference()
    rng = np.random.default_rng(len(name))
    picks = rng.choice(np.arange(1, len(task.config_space)), size=min(2, len(task.config_space) - 1),
                       replace=False)
    for i in picks:
        out = np.full(expected[0].shape, np.nan, expected[0].dtype)
        task.build(int(i))(*inputs, out)
        np.testing.assert_allclose(out, expected[0], rtol=1e-4, atol=1e-5,
                                   err_msg=str(task.config(int(i))))


def test_matmul_vector_loads_are_float4_and_correct():
    task = create_task("matmul", (17, 12, 20), target="cuda-emu")
    cfg = {"threads": 8, "reg": 2, "kt": 4, "unroll": False, "vector": 4}
    module = task.build(cfg)
    assert "float4 a_v" in module.get_source()
    inputs, expected = task.reference()
    out = np.full(expected[0].shape, np.nan, np.float32)
    module(*inputs, out)
    np.testing.assert_allclose(out, expected[0], rtol=1e-4, atol=1e-5)
    assert "vector" not in create_task("matmul", (17, 12, 21), target="cuda-emu").config_space.knobs


# ------------------------------------------------------------------------------ device limits

def test_the_per_arch_limits_table():
    assert {"sm_80", "sm_86", "sm_89", "sm_90"} <= set(ARCH_LIMITS)
    for arch in ("sm_80", "sm_86", "sm_89", "sm_90"):
        lim = limits_for_arch(arch)
        assert (lim.arch, lim.max_threads_per_block, lim.max_registers_per_thread,
                lim.max_registers_per_block, lim.max_shared_per_block, lim.source) == \
            (arch, 1024, 255, 65536, 48 * 1024, "table")
    assert limits_for_arch("sm_90a").arch == "sm_90a"
    with pytest.raises(ValueError, match="no device limits known for sm_61"):
        limits_for_arch("sm_61")
    # registers go per warp in 256-register units: 64 x 1024 fits, 65 does not
    assert registers_per_block(64, 1024) == 65536
    assert registers_per_block(65, 1024) == 32 * 2304
    assert registers_per_block(1, 1) == 256


def _fake_pycuda(monkeypatch, driver):
    pycuda = types.ModuleType("pycuda")
    pycuda.driver, pycuda.autoinit = driver, types.ModuleType("pycuda.autoinit")
    for name, module in (("pycuda", pycuda), ("pycuda.driver", driver),
                         ("pycuda.autoinit", pycuda.autoinit)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(cuda_module, "cuda_status", lambda: "ready")


def test_a_ready_gpu_gives_its_own_limits(monkeypatch):
    attrs = {"MAX_THREADS_PER_BLOCK": 1024, "MAX_BLOCK_DIM_X": 1024, "MAX_BLOCK_DIM_Y": 1024,
             "MAX_BLOCK_DIM_Z": 64, "MAX_GRID_DIM_X": 2 ** 31 - 1, "MAX_GRID_DIM_Y": 65535,
             "MAX_GRID_DIM_Z": 65535, "MAX_REGISTERS_PER_BLOCK": 32768,
             "MAX_SHARED_MEMORY_PER_BLOCK": 49152}
    device = types.SimpleNamespace(compute_capability=lambda: (8, 7), name=lambda: "Orin",
                                   get_attribute=attrs.__getitem__)
    driver = types.ModuleType("pycuda.driver")
    driver.init, driver.Device = lambda: None, lambda i: device
    driver.device_attribute = types.SimpleNamespace(**{k: k for k in attrs})
    _fake_pycuda(monkeypatch, driver)
    lim = limits_for_target("cuda")
    assert (lim.arch, lim.source, lim.max_registers_per_block, lim.max_block_dims) == \
        ("sm_87", "device 0 (Orin)", 32768, (1024, 1024, 64))
    assert limits_for_target("cuda-emu") == limits_for_arch("sm_80")
    assert cuda_target_key("cuda") == "cuda -arch=sm_87"


def _source(block, shared=0):
    k = KernelLaunch("f_kernel0", (4, 1, 1), block, ("x",), shared)
    return CudaSource("f", "", (k,), (("x", (4,), "float32"),))


def test_violations_name_the_kernel_the_resource_and_the_limit():
    lim = limits_for_arch("sm_86")
    assert launch_violations(_source((32, 32, 1), 48 * 1024), lim) == []
    (msg,) = launch_violations(_source((32, 64, 1)), lim)
    assert msg == ("kernel f_kernel0: 2048 threads per block (32x64x1), over the limit of "
                   "1024 on sm_86")
    (msg,) = launch_violations(_source((8, 8, 1), 50000), lim)
    assert "50000 bytes of shared memory per block, over the limit of 49152" in msg
    (msg,) = launch_violations(_source((1, 1, 65)), lim)
    assert "block dimension z of 65, over the limit of 64" in msg
    use = {"f_kernel0": {"registers": 96, "shared_bytes": 0, "spill_stores": 8,
                         "spill_loads": 4}}
    spill, regs = usage_violations(_source((32, 32, 1)), use, lim)[::-1]
    assert "1024 threads x 96 registers take 98304 registers per block, over the limit " \
           "of 65536 on sm_86" in regs
    assert "spills registers to local memory (8 bytes stored, 4 bytes loaded)" in spill
    assert len(usage_violations(_source((32, 32, 1)), use, lim, reject_spills=False)) == 1
    assert usage_violations(_source((16, 16, 1)), use, lim, reject_spills=False) == []


class _NoRuns(Measurer):
    """A measurer whose runner must not be asked for anything."""

    def _replies(self, requests):
        requests = list(requests)
        assert requests == [], "a candidate over the device's limits was sent to the runner"
        return iter(())


def test_a_candidate_over_the_limits_is_recorded_and_never_run():
    task = create_task("matmul", (33, 20, 36), target="cuda-emu")
    small = limits_for_arch("sm_80").replace(max_threads_per_block=128)
    with _NoRuns(MeasureOption(paired=False, device_limits=small, **FAST)) as m:
        (res,) = m.measure(task, [0])
    assert res.error_no == E.RESOURCE_ERROR and res.costs == ()
    assert res.error_msg == ("kernel matmul_kernel0: 256 threads per block (16x16x1), over "
                             "the limit of 128 on sm_80")
    big = create_task("matmul", (256, 256, 64), target="cuda-emu")
    with _NoRuns(MeasureOption(paired=False, **FAST)) as m:  # 2 x 256 x 32 floats shared
        (res,) = m.measure(big, [{"threads": 32, "reg": 8, "kt": 32, "unroll": True,
                                  "vector": 1}])
    assert res.error_no == E.RESOURCE_ERROR and res.costs == ()
    assert "65536 bytes of shared memory, over the 49152 bytes" in res.error_msg


@needs_nvrtc
def test_ptxas_registers_over_the_block_limit_reject_the_candidate():
    task = create_task("matmul", (256, 256, 64), target="cuda-emu")
    big = {"threads": 32, "reg": 8, "kt": 8, "unroll": True, "vector": 1}
    with Measurer(MeasureOption(**FAST)) as m:
        over, fine = m.build(task, [big, 0])
    assert over.error_no == E.RESOURCE_ERROR and over.library is None
    assert over.error_msg.startswith("kernel matmul_kernel0: 1024 threads x ")
    assert "registers per block, over the limit of 65536 on sm_80" in over.error_msg
    assert fine.error_no == E.NO_ERROR
    usage = fine.metadata["resource_usage"]["matmul_kernel0"]
    assert 0 < usage["registers"] <= 255 and usage["shared_bytes"] > 0


# ------------------------------------------------------------------------------ tuning

def test_a_tiny_tuning_run_on_cuda_emu_finds_a_correct_best_and_records_it(tmp_path):
    task = create_task("matmul", (33, 20, 36), target="cuda-emu")
    db = tmp_path / "tune.db"
    tuner = GridSearchTuner(task)
    tuner.tune(n_trial=4, db=str(db), measure_option=MeasureOption(**FAST), progress=False,
               batch_size=4, verify=0)
    assert len(tuner.history) == 4 and np.isfinite(tuner.best_cost)
    assert all(res.error_no == E.NO_ERROR for _, res in tuner.history)
    with TuningDatabase(str(db)) as database:
        records = database.records(task.key)
        best = database.best(task.key, task.target)
    assert len(records) == 4 and {r.target_key for r in records} == {"cuda-emu"}
    assert best.config == tuner.best_config.to_dict()
    with autotune.apply_history_best(str(db)):
        s, tensors = task.instantiate_best()
    module = build_emu_of(s, tensors)
    inputs, expected = task.reference(seed=5)
    out = np.full(expected[0].shape, np.nan, np.float32)
    module(*inputs, out)
    np.testing.assert_allclose(out, expected[0], rtol=1e-4, atol=1e-5)


def build_emu_of(s, tensors):
    import tensorc as tc
    return tc.build(s, tensors, target="cuda-emu")


# ------------------------------------------------------------------------------ the GPU runner

class _Driver(types.ModuleType):
    """Stands in for pycuda.driver on host memory: a launch runs its kernel (found by the
    cubin it was loaded from) on cuda-emu with the pointers it is given; events read the wall
    clock."""

    def __init__(self, builds):
        super().__init__("pycuda.driver")
        self.sources = {b.cubin: b.source for b in builds}
        self.launches, self.blocks = 0, []
        self.Context = types.SimpleNamespace(synchronize=lambda: None)

    class _Allocation:
        def __init__(self, nbytes):
            self.block = np.zeros(nbytes + 256, np.uint8)
            self.address = self.block.ctypes.data - self.block.ctypes.data % 256 + 256

        def __int__(self):
            return self.address

        def free(self):
            self.block = None

    def mem_alloc(self, nbytes):
        self.blocks.append(self._Allocation(nbytes))
        return self.blocks[-1]

    def memcpy_htod(self, buf, a):
        ctypes.memmove(int(buf), a.ctypes.data, a.nbytes)

    def memcpy_dtoh(self, a, buf):
        ctypes.memmove(a.ctypes.data, int(buf), a.nbytes)

    def module_from_buffer(self, cubin):
        assert cubin[:4] == b"\x7fELF"
        return types.SimpleNamespace(get_function=lambda name: self._function(
            self.sources[cubin], name))

    def _function(self, source, name):
        kernel = next(k for k in source.kernels if k.name == name)
        params = {p[0]: p for p in source.params}
        one = build_emu(CudaSource(name, source.text, (kernel,),
                                   tuple(params[a] for a in kernel.args)))

        def launch(*buffers, grid, block):
            assert (grid, block) == (tuple(kernel.grid), tuple(kernel.block))
            arrays = []
            for a, buf in zip(kernel.args, buffers):
                _, shape, dtype = params[a]
                n = int(np.prod(shape)) * np.dtype(dtype).itemsize
                raw = (ctypes.c_uint8 * n).from_address(int(buf))
                arrays.append(np.ctypeslib.as_array(raw).view(dtype).reshape(shape))
            self.launches += 1
            one(*arrays)
        return launch

    class Event:
        def record(self):
            self.t = time.perf_counter()

        def synchronize(self):
            pass

        def time_since(self, start):
            return (self.t - start.t) * 1e3


@needs_nvrtc
def test_the_gpu_runner_checks_and_times_on_device_buffers(monkeypatch):
    task = create_task("matmul", (33, 20, 36), target="cuda")
    with Measurer(MeasureOption(**FAST)) as m:
        cand, base = m.build(task, [{"threads": 8, "reg": 2, "kt": 4, "unroll": False,
                                     "vector": 4}, 0])
    assert cand.error_no == base.error_no == E.NO_ERROR
    import pickle
    builds = [pickle.loads(b.library) for b in (cand, base)]
    assert all(isinstance(b, GpuBuild) and (b.kind, b.arch) == ("cuda", "sm_80") for b in builds)
    driver = _Driver(builds)
    _fake_pycuda(monkeypatch, driver)
    inputs, expected = task.reference()
    request = RunRequest(cand.library, "k", None, None, ((1e-4, 1e-4),), True, 1, 3, 0.0, 2,
                         1, 10.0, base.library, "cuda")
    reply = evaluate(request, inputs, expected)
    assert reply.error_no == E.NO_ERROR, reply.error_msg
    assert len(reply.costs) == len(reply.baseline_costs) == 3
    assert all(c > 0 for c in reply.costs + reply.baseline_costs)
    wrong = [e + 1.0 for e in expected]
    reply = evaluate(request._replace(baseline=None), inputs, wrong)
    assert reply.error_no == E.WRONG_ANSWER and "output #0 'matmul'" in reply.error_msg
    assert driver.launches > 0
