"""Isolated worker processes: a candidate that crashes or hangs takes down its worker, never the
tuner nor the executor that runs it.

Generated code trusts its arguments and its schedule, so a bad candidate can segfault, abort or
loop forever. Everything that touches a candidate therefore happens in a child process that
answers requests one at a time over a pipe. The parent waits for each answer with a deadline,
kills the child when the deadline passes, and starts a fresh child for the next request; a
child that died is reported with its signal. Children are kept between requests (a start-up
costs an interpreter and tensorc's imports) and replaced after ``max_requests``, which bounds
whatever a long life accumulates (a build process keeps every module it built loaded).

Two kinds of child exist. Builds fork (``forked``): the child inherits the parent's task and
templates, including templates defined in a test module or an interactive session. Runs start
a fresh interpreter on this module (``python -m tensorc.autotune.measure_worker``): it is clean
(no state forked from a multi-threaded parent disturbs the timings) and can be started from any
process, including a daemonic executor worker that may not fork multiprocessing children.
This module is also that run child's program: ``Evaluator`` loads a candidate from its bytes,
checks its outputs against the expected ones, then times it.
"""
import _ctypes
import atexit
import ctypes
import enum
import faulthandler
import functools
import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from typing import NamedTuple

import numpy as np

from ..runtime.module import Module

#: How long a fresh run child may take to import tensorc and report ready.
STARTUP_TIMEOUT = 120.0


class MeasureErrorNo(enum.IntEnum):
    """Why a candidate has no time (AutoTVM's codes, renumbered for this tuner)."""
    NO_ERROR = 0
    INSTANTIATION_ERROR = 1  # the template raised for this config
    COMPILE_ERROR = 2        # lowering, LLVM or the link failed, or the build process died
    RUNTIME_ERROR = 3        # the candidate crashed its process or raised when called
    WRONG_ANSWER = 4         # outputs differ from the reference: its time never counts
    TIMEOUT = 5              # the run passed MeasureOption.timeout
    RESOURCE_ERROR = 6       # a CUDA kernel exceeds the device's limits (or spills): not run
    BUILD_TIMEOUT = 7        # the build passed MeasureOption.build_timeout


class RunRequest(NamedTuple):
    """Everything a run child needs, as plain data (no task, no template): it can travel to
    another machine. ``inputs``/``expected`` may be None when the child already holds the data
    of ``data_key``; ``tolerances`` has one (rtol, atol) per output. ``baseline``: another
    build of the same task, timed alternately with the candidate (see ``paired_times``).
    ``kind``: the target kind the library was built for; "cuda" and "cuda-emu" libraries
    are pickled ``measure_cuda.GpuBuild`` objects."""
    library: bytes
    data_key: str
    inputs: tuple | None
    expected: tuple | None
    tolerances: tuple
    check: bool
    number: int
    repeat: int
    min_repeat_ms: float
    warmup: int
    threads: int
    timeout: float
    baseline: bytes | None = None
    kind: str = "llvm"


class RunReply(NamedTuple):
    costs: tuple[float, ...]
    error_no: int
    error_msg: str
    wall: float = 0.0  # seconds the run took end to end, transfers and restarts included
    baseline_costs: tuple[float, ...] = ()  # the baseline's time in each round, when paired


# ------------------------------------------------------------------------------ parent side


class _Forked:
    """A forked multiprocessing child with the slice of the Popen interface ``Worker`` uses."""

    def __init__(self, process):
        self.process = process

    def poll(self):
        return self.process.exitcode

    def wait(self, timeout=None):
        self.process.join(timeout)
        return self.process.exitcode

    def kill(self):
        self.process.kill()


def forked(handler, name="tensorc-build"):
    """A start function for ``Worker``: fork a child serving ``handler`` (not pickled)."""
    def start():
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
        process = ctx.Process(target=_serve_forked, args=(child, handler, log), name=name,
                              daemon=True)
        process.start()
        child.close()
        return _Forked(process), parent, log
    return start


def _serve_forked(conn, handler, log):
    # Ctrl-C reaches the whole process group: the parent stops its workers, they stay quiet
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable(log, all_threads=False)  # a crash's traceback: where the parent reads
    _watch_parent()
    serve(conn, handler)


def _start_run_child(threads):
    """Start ``python -m tensorc.autotune.measure_worker`` with ``threads`` threads per parallel
    loop, and wait until it is ready."""
    parent, child = multiprocessing.Pipe()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, TENSORC_NUM_THREADS=str(threads), PYTHONPATH=os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p))
    process = subprocess.Popen(
        [sys.executable, "-m", "tensorc.autotune.measure_worker", str(child.fileno())],
        pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    child.close()
    try:
        ready = parent.poll(STARTUP_TIMEOUT) and parent.recv() == "ready"
    except (EOFError, OSError):
        ready = False
    if not ready:
        process.kill()
        process.wait()
        parent.close()
        raise RuntimeError(f"the measurement process ({sys.executable} -m "
                           f"tensorc.autotune.measure_worker) did not start: "
                           f"{_crash_report(log) or 'no output'}")
    return process, parent, log


class Worker:
    """One child process at a time, answering requests; restarted when it dies, hangs or has
    served ``max_requests``. ``start()`` returns (process, connection, the file the child writes
    its crash reports to)."""

    def __init__(self, start, max_requests=100):
        self._start = start
        self.max_requests = max_requests
        self._process = self.connection = self._log = None
        self._served = 0

    def ensure_started(self):
        """Start a child unless a usable one runs; True when a fresh child was started."""
        if self._process is not None and (self._process.poll() is not None
                                          or self._served >= self.max_requests):
            self.stop()
        if self._process is not None:
            return False
        self._process, self.connection, self._log = self._start()
        self._served = 0
        return True

    def send(self, request):
        self.ensure_started()
        self._served += 1
        try:
            self.connection.send(request)
        except OSError:
            pass  # the child just died: receive reports how

    def receive(self, timeout):
        """("ok", reply), ("timeout", None) after killing the child, or ("died", why)."""
        try:
            if self.connection.poll(timeout):
                return "ok", self.connection.recv()
        except (EOFError, OSError):
            return "died", self._death()
        self.kill()
        return "timeout", None

    def call(self, request, timeout):
        self.send(request)
        return self.receive(timeout)

    def _death(self):
        try:
            code = self._process.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        why = describe_exit(code)
        report = _crash_report(self._log)
        self.kill()
        return f"{why}:\n{report}" if report else why

    def kill(self):
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._release()

    def stop(self):
        """Ask the child to exit (kill it if it does not within a second)."""
        if self._process is None:
            return
        try:
            self.connection.send(None)
            self._process.wait(1)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def _release(self):
        self.connection.close()
        self._log.close()
        self._process = self.connection = self._log = None


def describe_exit(code):
    if code is None:
        return "the process did not exit"
    if code < 0:
        try:
            return f"the process was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the process was killed by signal {-code}"
    return f"the process exited with status {code}"


def _crash_report(log, lines=12):
    """What a dead child wrote last: from faulthandler's "Fatal Python error" on (innermost
    frames first), else its last lines."""
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - 65536))
    text = log.read().decode(errors="replace")
    start = text.rfind("Fatal Python error")
    if start >= 0:
        return "\n".join(text[start:].splitlines()[:lines]).strip()
    return "\n".join(text.strip().splitlines()[-lines:])


class Runner:
    """Runs candidates one at a time in an isolated run child of this process.

    The child keeps the inputs and expected outputs of the last ``data_key`` it saw, so a batch
    of one task ships its data once per child, not once per candidate. A request for another
    thread count than the child's starts a child with that count.
    """

    def __init__(self, max_requests=500):
        self.max_requests = max_requests
        self._worker, self._threads, self._holds = None, None, None

    def run(self, request):
        start = time.perf_counter()
        if request.threads != self._threads:
            self.close()
            self._worker = Worker(functools.partial(_start_run_child, request.threads),
                                  self.max_requests)
            self._threads = request.threads
        if self._worker.ensure_started():
            self._holds = None
        if self._holds == request.data_key:
            request = request._replace(inputs=None, expected=None)
        status, value = self._worker.call(request, request.timeout)
        wall = time.perf_counter() - start
        if status == "ok":
            self._holds = request.data_key
            return value._replace(wall=wall)
        self._holds = None
        if status == "timeout":
            return RunReply((), MeasureErrorNo.TIMEOUT,
                            f"the run took longer than the {request.timeout:g} s timeout; its "
                            "process was killed", wall)
        return RunReply((), MeasureErrorNo.RUNTIME_ERROR, f"the candidate crashed: {value}",
                        wall)

    def close(self):
        if self._worker is not None:
            self._worker.stop()


_process_runner = None
_process_lock = threading.Lock()


def run_request(request):
    """Measure one candidate (a ``RunRequest``) -> ``RunReply``: what an executor runs.

    Each process that runs this (a dask worker, a process-pool worker) keeps one run child and
    measures one candidate at a time, so candidates never share its cores with each other.
    """
    global _process_runner
    with _process_lock:
        if _process_runner is None:
            _process_runner = Runner()
            atexit.register(_process_runner.close)
        return _process_runner.run(request)


# ------------------------------------------------------------------------------ child side


def _watch_parent():
    """Exit when the parent dies, even while generated code spins (ctypes calls drop the
    GIL): an orphan must not keep a machine's cores busy."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)
    threading.Thread(target=watch, name="tensorc-watch-parent", daemon=True).start()


def serve(conn, handler):
    """Answer requests with ``handler(request)`` until None or the parent hangs up."""
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        conn.send(handler(request))


class Evaluator:
    """The run child's state: the current task's inputs and expected outputs, and the baseline
    library candidates are timed against.

    Each candidate is unloaded (dlclose) once measured: its library's destructor joins its
    thread pool, so a long-lived child holds one pool at a time besides the baseline's. That
    is safe because the thread count is fixed for the child's life (``TENSORC_NUM_THREADS``,
    set by ``Runner``): nothing ever writes to an unloaded library's globals. Candidates of
    CUDA targets (``RunRequest.kind``) are measured by ``measure_cuda.evaluate``.
    """

    def __init__(self, directory):
        self._directory = directory
        self._data_key, self._data = None, None
        self._baseline = None  # (digest, library handle, Module)

    def __call__(self, request):
        if request.kind != "llvm":
            from .measure_cuda import evaluate
            try:
                inputs, expected = self._inputs(request)
            except RuntimeError as e:
                return RunReply((), MeasureErrorNo.RUNTIME_ERROR, str(e))
            return evaluate(request, inputs, expected)
        library = None
        try:
            library, module = self._load(request.library)
            baseline = None if request.baseline is None else self._load_baseline(request.baseline)
            return self._evaluate(module, baseline, request)
        except Exception as e:  # noqa: BLE001 - reported as this candidate's runtime error
            return RunReply((), MeasureErrorNo.RUNTIME_ERROR, f"{type(e).__name__}: {e}")
        finally:
            if library is not None:
                _ctypes.dlclose(library._handle)

    def _load(self, data, prefix=""):
        # Named by content: the loader matches libraries by path, so reusing one name could
        # hand back a previous candidate that failed to unload (or the baseline, held loaded).
        path = os.path.join(self._directory,
                            f"{prefix}{hashlib.sha256(data).hexdigest()[:32]}.so")
        with open(path, "wb") as f:
            f.write(data)
        library = ctypes.CDLL(path)
        os.unlink(path)  # the loaded mapping stays valid
        return library, Module.from_library(path, library=library)

    def _load_baseline(self, data):
        digest = hashlib.sha256(data).hexdigest()
        if self._baseline is None or self._baseline[0] != digest:
            if self._baseline is not None:
                _ctypes.dlclose(self._baseline[1]._handle)
                self._baseline = None
            library, module = self._load(data, prefix="baseline-")
            self._baseline = (digest, library, module)
        return self._baseline[2]

    def _inputs(self, request):
        if request.inputs is not None:
            self._data_key, self._data = request.data_key, (request.inputs, request.expected)
        if self._data_key != request.data_key:
            raise RuntimeError(f"no inputs for {request.data_key!r} were sent")
        return self._data

    def _evaluate(self, module, baseline, request):
        inputs, expected = self._inputs(request)
        fn = module.get_function(module.entry_name)
        args = _arguments(fn.params, inputs, expected)
        fn(*args)
        if request.check:
            wrong = _mismatch(fn.params, args, expected, request.tolerances)
            if wrong:
                return RunReply((), MeasureErrorNo.WRONG_ANSWER, wrong)
        for _ in range(request.warmup - 1):  # the timers make one warm-up call themselves
            fn(*args)
        if baseline is None:
            timer = module.time_evaluator(request.number, request.repeat, request.min_repeat_ms)
            return RunReply(timer(*args).results, MeasureErrorNo.NO_ERROR, "")
        base = baseline.get_function(baseline.entry_name)
        if [(p.dtype, tuple(p.shape)) for p in base.params] != \
                [(p.dtype, tuple(p.shape)) for p in fn.params]:
            raise ValueError("the baseline takes other arguments than the candidate")
        costs, base_costs = paired_times(fn, base, args, request.number, request.repeat,
                                         request.min_repeat_ms)
        return RunReply(costs, MeasureErrorNo.NO_ERROR, "", baseline_costs=base_costs)


class _Clock:
    """A compiled CPU function on fixed arguments, in the shape ``alternated`` times."""

    def __init__(self, fn, addresses):
        self.fn, self.addresses = fn, addresses

    def call(self):
        self.fn.call_checked(self.addresses)

    def seconds(self, n):
        return _timed(self.fn, self.addresses, n)


def paired_times(fn, base, args, number, repeat, min_repeat_ms):
    """Seconds per call of ``fn`` and of ``base`` in each of ``repeat`` rounds, the two timed
    back to back (which goes first alternates).

    A shared machine's speed drifts by tens of percent over seconds (other tenants, clocks)
    while staying steady for a few milliseconds: the same kernel measured in two runs a second
    apart differed by 40% here, while the ratio of two kernels timed back to back varied by a
    few percent. The ratio cost/base is what a tuner can trust.
    """
    addresses = fn.check(args)
    fn.call_checked(addresses)
    base.call_checked(addresses)
    return alternated(_Clock(fn, addresses), _Clock(base, addresses), number, repeat,
                      min_repeat_ms)


def _calls_per_run(clock, n, min_repeat_ms):
    """``n`` doubled until ``n`` calls last ``min_repeat_ms``."""
    while clock.seconds(n) * 1e3 < min_repeat_ms:
        n *= 2
    return n


def alternated(a, b, number, repeat, min_repeat_ms):
    """``paired_times`` for any two clocks (objects with ``call()``, untimed, and
    ``seconds(n)``, the time of ``n`` calls): a CPU function or a CUDA candidate."""
    counts = {a: _calls_per_run(a, number, min_repeat_ms), b: _calls_per_run(b, 1, min_repeat_ms)}
    times = {a: [], b: []}
    for r in range(repeat):
        for c in ((a, b) if r % 2 == 0 else (b, a)):
            c.call()  # untimed: wakes its thread pool, reloads its caches
            times[c].append(c.seconds(counts[c]) / counts[c])
    return tuple(times[a]), tuple(times[b])


def repeated_times(clock, number, repeat, min_repeat_ms):
    """Seconds per call of ``clock`` in each of ``repeat`` runs (unpaired)."""
    n = _calls_per_run(clock, number, min_repeat_ms)
    return tuple(clock.seconds(n) / n for _ in range(repeat))


def _timed(fn, addresses, n):
    start = time.perf_counter()
    for _ in range(n):
        fn.call_checked(addresses)
    return time.perf_counter() - start


def _arguments(params, inputs, expected):
    """Call arguments in parameter order: the inputs, and outputs that no correct run leaves
    as they are (NaN, or the complement of the expected value for integers and bools)."""
    n_out = sum(p.output for p in params)
    if (len(params) - n_out, n_out) != (len(inputs), len(expected)):
        raise ValueError(f"the candidate takes {len(params) - n_out} inputs and {n_out} outputs;"
                         f" the task has {len(inputs)} and {len(expected)}")
    inputs, outs = iter(inputs), iter(expected)
    args = []
    for p in params:
        if not p.output:
            args.append(next(inputs))
        else:
            want = next(outs)
            args.append(np.full(want.shape, np.nan, want.dtype) if want.dtype.kind == "f"
                        else np.ascontiguousarray(~want))
    return args


def _mismatch(params, args, expected, tolerances):
    """A description of the first output that differs from the expected one, or ""."""
    outputs = [(p, a) for p, a in zip(params, args) if p.output]
    for k, ((p, got), want, (rtol, atol)) in enumerate(zip(outputs, expected, tolerances)):
        if want.dtype.kind == "f":
            g, w = got.astype(np.float64), want.astype(np.float64)
            finite = np.abs(w[np.isfinite(w)])
            scale = max(1.0, float(finite.max())) if finite.size else 1.0
            bad = ~np.isclose(g, w, rtol=rtol, atol=atol * scale, equal_nan=True)
        else:
            bad = got != want
        if bad.any():
            at = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
            return (f"output #{k} {p.name!r}: {int(bad.sum())} of {bad.size} elements differ "
                    f"from the reference (first at {at}: expected {want[at].item()!r}, got "
                    f"{got[at].item()!r})")
    return ""


def main(argv):
    conn = Connection(int(argv[0]))
    faulthandler.enable(all_threads=False)  # into the log the parent reads after a crash
    _watch_parent()
    with tempfile.TemporaryDirectory(prefix="tensorc-measure-") as directory:
        conn.send("ready")
        serve(conn, Evaluator(directory))


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: replies must pickle as
    # tensorc.autotune.measure_worker classes, which the parent knows.
    from tensorc.autotune.measure_worker import main as _main
    _main(sys.argv[1:])
