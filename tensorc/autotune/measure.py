"""Measuring candidates: build in parallel, run each one isolated with a deadline, and let a
time count only when the candidate's outputs match the reference.

The split is AutoTVM's builder/runner one. Builds (instantiate the template, lower, LLVM,
link) run in a pool of forked processes, several at once; a build that raises is recorded
(INSTANTIATION_ERROR or COMPILE_ERROR), one that kills its process or passes ``build_timeout``
too. Each build yields the shared object's bytes, which embed everything needed to call it,
so a run needs no task, template or compiler and can happen on another machine.

Runs go one at a time per machine, so timings never share cores with each other: each run
child (``measure_worker``) loads the bytes, calls the candidate once on the task's reference
inputs with poisoned outputs, compares with the expected outputs (a wrong but fast candidate
is WRONG_ANSWER and never wins), and only then times warm-up + ``repeat`` x ``number`` calls on
a fixed thread count. A crash is RUNTIME_ERROR naming the signal, a hang is TIMEOUT; either
way the child is replaced and tuning goes on.

Costs are paired with a baseline (``MeasureOption.paired``, on by default). A shared machine's
speed drifts by tens of percent from one second to the next, far more than the differences a
tuner searches for, so a candidate's absolute time says as much about the moment as about the
code. Each repeat therefore times the candidate and the task's baseline build (its default
schedule: ``task.baseline_config()``) back to back, and the candidate's cost per repeat is its
time / the baseline's time in that repeat x the baseline's reference time (``scale``: measured
once per task, or set from a database record with ``set_baseline_scale`` so that a resumed
run shares the first run's unit). Costs stay in seconds, and every cost of a task is relative
to one fixed piece of code.

CUDA tasks ("cuda", "cuda -arch=sm_XX", "cuda-emu") build and run through ``measure_cuda``:
the builder also checks each candidate against the device's limits (``device_limits``) and
files one that exceeds them as RESOURCE_ERROR without running it; runs on a GPU are timed
with CUDA events, and pairing works the same way.

``MeasureOption(executor=...)`` sends the runs to any ``concurrent.futures.Executor``: each of
its worker processes keeps its own isolated run child. To measure on a fleet with dask, start
one single-threaded worker per machine (``dask worker SCHEDULER --nworkers 1 --nthreads 1``)
and pass ``distributed.Client(SCHEDULER).get_executor()``; give ``threads`` explicitly then,
since the default is this machine's core count. Builds stay local.

    with Measurer(MeasureOption(repeat=5, timeout=5)) as m:
        results = m.measure(task, [0, 17, 42])     # MeasureResult per config, in order
"""
import functools
import hashlib
import logging
import os
import statistics
import time
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..runtime.threads import get_num_threads
from .measure_worker import (
    MeasureErrorNo,
    Runner,
    RunReply,
    RunRequest,
    Worker,
    forked,
    run_request,
)
from .task import _identifier, target_family

log = logging.getLogger("tensorc.autotune")

#: (rtol, atol) by output dtype; atol is relative to the largest |expected| (at least 1), so
#: long reductions summed in another order still pass. Integer and bool outputs must be exact.
TOLERANCES = {"float16": (1e-2, 1e-2), "float32": (1e-4, 1e-4), "float64": (1e-9, 1e-9)}


class MeasureInput(NamedTuple):
    task: Any
    config: Any


class MeasureResult(NamedTuple):
    """``costs``: seconds per call, one per repeat (empty on error); ``all_cost``: wall seconds
    spent on the candidate (build and run); ``timestamp``: when the result was made."""
    costs: tuple[float, ...]
    error_no: int
    error_msg: str
    all_cost: float
    timestamp: float

    @property
    def cost(self):
        """The median time per call, or inf when the candidate has no valid time."""
        if self.error_no != MeasureErrorNo.NO_ERROR or not self.costs:
            return float("inf")
        return statistics.median(self.costs)


class BuildResult(NamedTuple):
    """A compiled candidate as plain data: the shared object's bytes and its metadata (entry,
    parameters), or why there is none."""
    library: bytes | None
    metadata: dict | None
    build_time: float
    error_no: int = MeasureErrorNo.NO_ERROR
    error_msg: str = ""

    @property
    def entry(self):
        return self.metadata["entry"]

    @property
    def params(self):
        """The entry's parameters: name, shape, dtype, output."""
        return next(f for f in self.metadata["functions"] if f["name"] == self.entry)["params"]


def _usable_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@dataclass(frozen=True)
class MeasureOption:
    """How candidates are built, checked and timed.

    number, repeat, min_repeat_ms: each of ``repeat`` timed runs makes ``number`` calls, with
    ``number`` doubled until a run lasts ``min_repeat_ms``; ``warmup`` (>= 1) untimed calls come
    first, after the checked one. timeout / build_timeout: seconds one run / one build may take.
    n_parallel_builds: build processes (default: the usable cores). threads: the thread count
    of every run (default: this process's setting, ``tensorc.runtime.get_num_threads()``).
    check, rtol, atol, seed: compare outputs with ``task.reference(seed)`` (tolerances default
    by dtype, see TOLERANCES). executor: where runs go (default: a child of this process).
    paired: time each candidate alternately with the task's baseline (module docstring).
    device_limits: the ``DeviceLimits`` CUDA candidates are checked against (default: the
    GPU's, else the table's for the target's architecture); reject_spills: also reject CUDA
    kernels that spill registers (``measure_cuda`` says why).
    """
    number: int = 1
    repeat: int = 5
    min_repeat_ms: float = 20.0
    warmup: int = 1
    timeout: float = 10.0
    build_timeout: float = 60.0
    n_parallel_builds: int | None = None
    threads: int | None = None
    check: bool = True
    rtol: float | None = None
    atol: float | None = None
    seed: int = 0
    executor: Any = None
    paired: bool = True
    device_limits: Any = None
    reject_spills: bool = True

    def __post_init__(self):
        def need(name, ok, what):
            if not ok:
                raise ValueError(f"MeasureOption.{name} must be {what}, got "
                                 f"{getattr(self, name)!r}")
        for name in ("number", "repeat", "warmup"):
            value = getattr(self, name)
            need(name, isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                 "a positive integer")
        for name in ("n_parallel_builds", "threads"):
            value = getattr(self, name)
            need(name, value is None or (isinstance(value, int) and not isinstance(value, bool)
                                         and value >= 1), "None or a positive integer")
        for name in ("timeout", "build_timeout"):
            need(name, isinstance(getattr(self, name), (int, float)) and getattr(self, name) > 0,
                 "a positive number of seconds")
        need("min_repeat_ms", isinstance(self.min_repeat_ms, (int, float))
             and self.min_repeat_ms >= 0, "a number >= 0")
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            need(name, value is None or (isinstance(value, (int, float)) and value >= 0),
                 "None or a number >= 0")
        need("executor", self.executor is None or callable(getattr(self.executor, "submit", None)),
             "None or a concurrent.futures.Executor")
        from .device_limits import DeviceLimits
        need("device_limits", self.device_limits is None or
             isinstance(self.device_limits, DeviceLimits), "None or a DeviceLimits")

    def tolerance(self, dtype):
        """(rtol, atol) for an output of ``dtype``."""
        rtol, atol = TOLERANCES.get(np.dtype(dtype).name, (0.0, 0.0))
        return (rtol if self.rtol is None else self.rtol, atol if self.atol is None else self.atol)


def _build_job(task, checks, index):
    """In a build process: instantiate, lower and compile one point of ``task``'s space; a
    CUDA task's with ``checks`` (``measure_cuda.GpuChecks``)."""
    from ..driver import build
    from .measure_cuda import DeviceLimitError, build_gpu
    try:
        s, tensors = task.instantiate(index)
    except Exception as e:  # noqa: BLE001 - whatever the template raises fails only this point
        return BuildResult(None, None, 0.0, MeasureErrorNo.INSTANTIATION_ERROR,
                           _describe(e, task))
    try:
        if checks is not None:
            return BuildResult(*build_gpu(task, s, tensors, checks, _identifier(task.name)),
                               0.0)
        module = build(s, tensors, target=task.target, name=_identifier(task.name))
        return BuildResult(Path(module.path).read_bytes(), module.metadata, 0.0)
    except DeviceLimitError as e:
        return BuildResult(None, None, 0.0, MeasureErrorNo.RESOURCE_ERROR, str(e))
    except Exception as e:  # noqa: BLE001 - a compiler failure fails only this point
        return BuildResult(None, None, 0.0, MeasureErrorNo.COMPILE_ERROR, _describe(e, task))


def _describe(e, task):
    """The exception, and the template's line that led to it (else where it was raised)."""
    frames = traceback.extract_tb(e.__traceback__)
    source = getattr(getattr(task.func, "__code__", None), "co_filename", None)
    mine = [f for f in frames if f.filename == source]
    at = (mine or frames)[-1:]
    where = f" (at {at[0].filename}:{at[0].lineno})" if at else ""
    return f"{type(e).__name__}: {e}{where}"


def _data_key(inputs, expected):
    h = hashlib.blake2b(digest_size=16)
    for a in (*inputs, *expected):
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


class Baseline(NamedTuple):
    """A task's baseline build and its reference time in seconds per call."""
    library: bytes
    scale: float


#: Unpaired runs of a task's baseline whose median becomes its reference time.
CALIBRATION_RUNS = 3


class Measurer:
    """Build and run pools kept across batches (the tuner makes one per tuning run); a context
    manager, or call ``close``. ``threads`` is the fixed thread count every run uses."""

    def __init__(self, option=None):
        self.option = option or MeasureOption()
        self.threads = self.option.threads or get_num_threads()
        self.n_parallel_builds = self.option.n_parallel_builds or _usable_cores()
        self._builders, self._build_task = [], None
        self._runner = Runner() if self.option.executor is None else None
        self._baselines, self._scales = {}, {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for w in self._builders:
            w.stop()
        self._builders, self._build_task = [], None
        if self._runner is not None:
            self._runner.close()

    def measure(self, task, configs):
        """One ``MeasureResult`` per config (entity, index or knob dict), in order."""
        return self.run(task, self.build(task, configs))

    # --- builds
    def build(self, task, configs):
        """One ``BuildResult`` per config, in order, built ``n_parallel_builds`` at a time."""
        indices = [task.config(c).index for c in configs]
        if task is not self._build_task:
            for w in self._builders:
                w.stop()
            start = forked(functools.partial(_build_job, task, self._gpu_checks(task)))
            self._builders = [Worker(start) for _ in range(self.n_parallel_builds)]
            self._build_task = task
        limit = self.option.build_timeout
        results, queue, busy = [None] * len(indices), deque(enumerate(indices)), {}
        while queue or busy:
            for w in self._builders:
                if w not in busy and queue:
                    pos, index = queue.popleft()
                    w.send(index)
                    busy[w] = (pos, time.perf_counter())
            first = min(t0 for _, t0 in busy.values())
            ready = wait([w.connection for w in busy],
                         max(0.0, first + limit - time.perf_counter()))
            for w, (pos, t0) in list(busy.items()):
                if w.connection in ready or time.perf_counter() - t0 >= limit:
                    del busy[w]
                    status, value = w.receive(0)
                    results[pos] = self._build_result(status, value, time.perf_counter() - t0)
        return results

    def _gpu_checks(self, task):
        """The ``GpuChecks`` of a CUDA task (None for a CPU one), made in this process: a
        GPU's limits are asked for here, never in a build process."""
        if target_family(task.target) != "cuda":
            return None
        from .device_limits import limits_for_target
        from .measure_cuda import gpu_checks
        limits = self.option.device_limits or limits_for_target(task.target)
        return gpu_checks(task.target, limits, self.option.reject_spills)

    def _build_result(self, status, value, seconds):
        if status == "ok":
            return value._replace(build_time=seconds)
        if status == "timeout":
            return BuildResult(None, None, seconds, MeasureErrorNo.BUILD_TIMEOUT,
                               f"the build took longer than the {self.option.build_timeout:g} s "
                               "build_timeout; its process was killed")
        return BuildResult(None, None, seconds, MeasureErrorNo.COMPILE_ERROR,
                           f"the build process died: {value}")

    # --- runs
    def run(self, task, builds):
        """One ``MeasureResult`` per ``BuildResult``, in order; failed builds are not run."""
        opt = self.option
        if str(task.target).split()[0] == "cuda" and opt.executor is None:
            from ..runtime.cuda_module import cuda_status, require_cuda
            require_cuda(f"measure {task.key}", cuda_status())
        data = self._data(task)
        base = self.baseline(task) if opt.paired else None
        results, pending = [None] * len(builds), []
        for pos, b in enumerate(builds):
            if b.error_no != MeasureErrorNo.NO_ERROR:
                results[pos] = MeasureResult((), MeasureErrorNo(b.error_no), b.error_msg,
                                             b.build_time, time.time())
                continue
            pending.append((pos, b, self._request(task, data, b.library, base)))
        replies = self._replies([req for _, _, req in pending])
        for (pos, b, _), reply in zip(pending, replies):
            costs = tuple(reply.costs)
            if base is not None and reply.baseline_costs:
                costs = tuple(c / r * base.scale for c, r in zip(costs, reply.baseline_costs))
            results[pos] = MeasureResult(costs, MeasureErrorNo(reply.error_no), reply.error_msg,
                                         b.build_time + reply.wall, time.time())
        return results

    def _data(self, task):
        opt = self.option
        inputs, expected = task.reference(opt.seed)
        inputs, expected = tuple(inputs), tuple(expected)
        return (_data_key(inputs, expected), inputs, expected,
                tuple(opt.tolerance(e.dtype) for e in expected))

    def _request(self, task, data, library, base):
        key, inputs, expected, tolerances = data
        opt = self.option
        return RunRequest(library, key, inputs, expected, tolerances, opt.check, opt.number,
                          opt.repeat, opt.min_repeat_ms, opt.warmup, self.threads, opt.timeout,
                          None if base is None else base.library, str(task.target).split()[0])

    def _replies(self, requests):
        if self.option.executor is None:
            return (self._runner.run(req) for req in requests)
        futures = [self.option.executor.submit(run_request, req) for req in requests]
        return (_reply(f) for f in futures)

    # --- the baseline
    def set_baseline_scale(self, task, seconds):
        """Use ``seconds`` (e.g. the database's record of the baseline) as the reference time
        of ``task``'s baseline instead of measuring it."""
        if not seconds > 0:
            raise ValueError(f"set_baseline_scale: {task.key}: seconds must be > 0, got "
                             f"{seconds!r}")
        self._scales[task.key] = float(seconds)
        if self._baselines.get(task.key) is not None:
            self._baselines[task.key] = self._baselines[task.key]._replace(scale=seconds)

    def baseline(self, task):
        """The task's ``Baseline`` (built and calibrated on first use), or None when the task
        has none or it cannot be measured; costs are then absolute times."""
        if task.key not in self._baselines:
            self._baselines[task.key] = self._make_baseline(task)
        return self._baselines[task.key]

    def _make_baseline(self, task):
        config = task.baseline_config() if hasattr(task, "baseline_config") else None
        if config is None:
            return None
        (b,) = self.build(task, [config])
        if b.error_no != MeasureErrorNo.NO_ERROR:
            log.warning("%s: its baseline (default schedule) does not build, so times are not "
                        "paired: %s", task.key, b.error_msg)
            return None
        scale = self._scales.get(task.key)
        if scale is None:
            data = self._data(task)
            costs = []
            request = self._request(task, data, b.library, None)
            for reply in self._replies([request] * CALIBRATION_RUNS):
                if reply.error_no != MeasureErrorNo.NO_ERROR:
                    log.warning("%s: its baseline (default schedule) failed to run, so times "
                                "are not paired: %s", task.key, reply.error_msg)
                    return None
                costs.append(statistics.median(reply.costs))
            scale = statistics.median(costs)
        return Baseline(b.library, scale)


def _reply(future):
    try:
        return future.result()
    except Exception as e:  # noqa: BLE001 - a lost remote worker fails only this candidate
        return RunReply((), MeasureErrorNo.RUNTIME_ERROR,
                        f"the executor could not run the candidate: {type(e).__name__}: {e}")


def measure_batch(task, configs, option=None):
    """Measure ``configs`` of ``task`` once (``Measurer`` keeps its processes across batches)."""
    with Measurer(option) as m:
        return m.measure(task, configs)


__all__ = [
    "TOLERANCES",
    "Baseline",
    "BuildResult",
    "MeasureErrorNo",
    "MeasureInput",
    "MeasureOption",
    "MeasureResult",
    "Measurer",
    "measure_batch",
]
