"""Measuring candidates of CUDA tasks ("cuda", "cuda -arch=sm_XX", "cuda-emu").

The builder emits the CUDA C, checks the launch configuration against the device's limits,
compiles it (NVRTC or nvcc) and checks ptxas's report -- registers, shared memory, spills --
against them too (``device_limits``). A candidate that does not fit fails its build with
``DeviceLimitError``, recorded as RESOURCE_ERROR: it never reaches a run.

A build that passes becomes a ``GpuBuild`` (the source, its launch configuration and the
cubin), pickled into the bytes a run request carries. The run child loads it as a
``candidate``: on "cuda" the cubin through pycuda, arguments copied to the device once, each
call one launch of every kernel, timed with CUDA events (what the kernels take on the device,
no copies, no Python); on "cuda-emu" the same source compiled for the CPU (``cuda_emu``) and
timed by the wall clock -- those times say nothing about a GPU, but the whole path (limits,
outputs checked against the reference, pairing with the baseline) runs in CI.

Spilling kernels are rejected by default (``MeasureOption.reject_spills``): a spill sends a
register through local memory, which on the register-blocked templates means the register
block is past what the thread can hold, a region the smaller blocks of the same space beat,
so timing it only costs a run. It is an option because a space may spill everywhere (wide
types, large tiles on an older architecture) and a time is then better than none.
"""
import pickle
import time
from dataclasses import dataclass

from .device_limits import DeviceLimits, cuda_arch, launch_violations, usage_violations


class DeviceLimitError(RuntimeError):
    """A candidate that exceeds the device's limits (or spills, when that is rejected)."""


@dataclass(frozen=True)
class GpuChecks:
    """What the builder checks candidates of a CUDA task against, and the architecture it
    compiles for."""
    limits: DeviceLimits
    arch: str
    reject_spills: bool = True


def gpu_checks(target, limits, reject_spills=True):
    """The ``GpuChecks`` of ``target``; the cubin is compiled for the target's ``-arch``,
    else for the architecture of ``limits``."""
    return GpuChecks(limits, cuda_arch(target) or limits.arch, reject_spills)


@dataclass(frozen=True)
class GpuBuild:
    """A built CUDA candidate as plain data: ``kind`` "cuda" or "cuda-emu", the ``CudaSource``,
    the positions of its output parameters, and the cubin (None when no CUDA compiler was
    there to make one: then no ptxas limits were checked)."""
    kind: str
    source: object
    outputs: tuple
    arch: str
    cubin: bytes | None


def build_gpu(task, s, tensors, checks, name):
    """(library bytes, metadata) of one instantiated candidate of a CUDA task; raises
    DeviceLimitError when it exceeds ``checks.limits``, another exception when it does not
    build."""
    from ..codegen.cuda import SharedMemoryError, emit_cuda
    from ..codegen.cuda_compile import compile_cubin, compiler_available
    from ..driver import lower
    kind = task.target.split()[0]
    func = lower(s, tensors, name=name, target=kind)
    try:
        source = emit_cuda(func)
    except SharedMemoryError as e:
        raise DeviceLimitError(str(e)) from None
    _reject(launch_violations(source, checks.limits))
    outputs = tuple(dict(func.attrs).get("output_params", ()))
    cubin = usage = None
    if kind == "cuda" or compiler_available():
        cubin, usage = compile_cubin(source.text, checks.arch)
        _reject(usage_violations(source, usage, checks.limits, checks.reject_spills))
    if kind == "cuda-emu":
        from ..runtime.cuda_emu import build_emu
        build_emu(source, outputs)  # g++ errors are build errors; the run finds it cached
    build = GpuBuild(kind, source, outputs, checks.arch, cubin)
    metadata = {"entry": source.name, "target": task.target, "arch": checks.arch,
                "resource_usage": usage, "limits": checks.limits.source}
    return pickle.dumps(build), metadata


def _reject(violations):
    if violations:
        raise DeviceLimitError("; ".join(violations))


# ------------------------------------------------------------------------------ run child

def evaluate(request, inputs, expected):
    """``RunReply`` of a CUDA candidate's ``RunRequest`` (in the run child): its outputs
    checked against ``expected``, then timed like a CPU candidate (alone, or alternately with
    the request's baseline)."""
    from .measure_worker import (MeasureErrorNo, RunReply, _arguments, _mismatch, alternated,
                                 repeated_times)
    cand = base = None
    try:
        cand = candidate(request.library)
        args = _arguments(cand.params, inputs, expected)
        cand.bind(args)
        cand.call()
        cand.fetch()
        if request.check:
            wrong = _mismatch(cand.params, args, expected, request.tolerances)
            if wrong:
                return RunReply((), MeasureErrorNo.WRONG_ANSWER, wrong)
        for _ in range(request.warmup - 1):
            cand.call()
        if request.baseline is None:
            costs = repeated_times(cand, request.number, request.repeat, request.min_repeat_ms)
            return RunReply(costs, MeasureErrorNo.NO_ERROR, "")
        base = candidate(request.baseline)
        base.bind(_arguments(base.params, inputs, expected))
        base.call()
        costs, base_costs = alternated(cand, base, request.number, request.repeat,
                                       request.min_repeat_ms)
        return RunReply(costs, MeasureErrorNo.NO_ERROR, "", baseline_costs=base_costs)
    except Exception as e:  # noqa: BLE001 - reported as this candidate's runtime error
        return RunReply((), MeasureErrorNo.RUNTIME_ERROR, f"{type(e).__name__}: {e}")
    finally:
        for c in (cand, base):
            if c is not None:
                c.release()


def candidate(library):
    """The runnable candidate of a pickled ``GpuBuild`` (in the run child)."""
    build = pickle.loads(library)
    return _DeviceCandidate(build) if build.kind == "cuda" else _EmuCandidate(build)


def _params(build):
    from ..runtime.module import Param
    return tuple(Param(name, tuple(shape), dtype, k in build.outputs)
                 for k, (name, shape, dtype) in enumerate(build.source.params))


class _EmuCandidate:
    """cuda-emu: every call runs the kernels on the CPU on the bound arrays themselves."""

    def __init__(self, build):
        from ..runtime.cuda_emu import build_emu
        self.module = build_emu(build.source, build.outputs)
        self.params = _params(build)
        self.args = ()

    def bind(self, args):
        self.args = args

    def call(self):
        self.module(*self.args)

    def fetch(self):
        """The outputs are the bound arrays: nothing to copy."""

    def seconds(self, n):
        start = time.perf_counter()
        for _ in range(n):
            self.module(*self.args)
        return time.perf_counter() - start

    def release(self):
        self.args = ()


class _DeviceCandidate:
    """cuda: the cubin loaded into the run child's context, arguments held on the device."""

    def __init__(self, build):
        from ..runtime.cuda_module import cuda_status, require_cuda
        require_cuda(build.source.name, cuda_status())
        if build.cubin is None:
            raise RuntimeError(f"{build.source.name}: the candidate was built without a CUDA "
                               "compiler, so there is no cubin to run")
        import pycuda.autoinit  # noqa: F401 - the context the kernels run in
        import pycuda.driver as drv
        self.drv = drv
        self.module = drv.module_from_buffer(build.cubin)
        self.launches = [(self.module.get_function(k.name), k) for k in build.source.kernels]
        self.params = _params(build)
        self.args, self.buffers = (), {}

    def bind(self, args):
        """Copy ``args`` to the device (outputs too: their poison shows what a kernel left)."""
        self.release()
        self.args = args
        for p, a in zip(self.params, args):
            self.buffers[p.name] = self.drv.mem_alloc(max(a.nbytes, 1))
            self.drv.memcpy_htod(self.buffers[p.name], a)

    def _launch(self):
        for fn, k in self.launches:
            fn(*(self.buffers[a] for a in k.args), grid=tuple(k.grid), block=tuple(k.block))

    def call(self):
        self._launch()
        self.drv.Context.synchronize()

    def fetch(self):
        for p, a in zip(self.params, self.args):
            if p.output:
                self.drv.memcpy_dtoh(a, self.buffers[p.name])

    def seconds(self, n):
        """Device seconds of ``n`` back-to-back launches of the kernels (CUDA events)."""
        start, end = self.drv.Event(), self.drv.Event()
        start.record()
        for _ in range(n):
            self._launch()
        end.record()
        end.synchronize()
        return end.time_since(start) / 1e3

    def release(self):
        for buf in self.buffers.values():
            buf.free()
        self.buffers = {}


__all__ = ["DeviceLimitError", "GpuBuild", "GpuChecks", "build_gpu", "candidate", "evaluate",
           "gpu_checks"]
