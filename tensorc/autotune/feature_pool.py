"""Loop features of many candidates at once, in forked processes, each under a time cap.

Planning with loop features costs one lowering per candidate scored (15-45 ms, far more for
a heavily unrolled one), hundreds per plan, and lowering is pure Python: the only way to use
more than one core is more processes. The children are forked (``measure_worker.forked``),
so they inherit the task and its template as they are -- a template defined in a test or an
interactive session included -- and stay up for every batch of the pool's life: a plan asks
for a batch per annealing step.

A candidate whose lowering raises, crashes its child or takes longer than ``timeout`` gets
no features (None): the tuner never proposes it, as measuring it would fail the same way. A
child that overran is killed and replaced by a fresh fork on its next candidate.
"""
import logging
import multiprocessing.connection
import os
import time
import weakref
from collections import deque

import numpy as np

from .measure_worker import Worker, forked

log = logging.getLogger("tensorc.autotune")

#: Candidates a child lowers before it is replaced (lowering leaves caches behind).
_REQUESTS_PER_CHILD = 1000


def extract_one(task, index):
    """Loop features of one point, None when it does not lower (measuring it would fail)."""
    from .features import extract
    try:
        return np.asarray(extract(task.lower(index)), dtype=np.float32)
    except Exception as e:   # noqa: BLE001 -- any failure just makes the point a non-candidate
        log.debug("%s: config #%d does not lower (%s: %s)", task.key, index,
                  type(e).__name__, e)
        return None


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not on Linux
        return os.cpu_count() or 1


class FeaturePool:
    """``extract(indices)``: the loop features of the task's points, one per index, None for a
    point that cannot be lowered within ``timeout`` seconds.

    ``workers`` children (default: the usable cores) start on the first batch; ``close()``
    (or leaving a ``with`` block, or the pool being collected) stops them. Where this process
    may not fork children (a daemonic multiprocessing worker), points are lowered here, one
    after another and without the time cap.
    """

    def __init__(self, task, workers=None, timeout=10.0):
        if timeout is not None and timeout <= 0:
            raise ValueError(f"FeaturePool: timeout must be > 0 seconds or None, got {timeout}")
        self.task, self.timeout = task, timeout
        n = usable_cores() if workers is None else int(workers)
        if n < 1:
            raise ValueError(f"FeaturePool: workers must be >= 1, got {workers}")
        start = forked(lambda index: _features_or_error(task, index), name="tensorc-features")
        self._workers = [Worker(start, _REQUESTS_PER_CHILD) for _ in range(n)]
        self._in_process = False
        self._finalizer = weakref.finalize(self, _stop, self._workers)

    def extract(self, indices):
        indices = [int(i) for i in indices]
        if not indices:
            return []
        if not self._in_process and not self._start():
            self._in_process = True
        if self._in_process:
            return [extract_one(self.task, i) for i in indices]
        return self._dispatch(indices)

    def _start(self):
        """Start the children; False where this process may not have any."""
        try:
            for w in self._workers:
                w.ensure_started()
        except (AssertionError, OSError) as e:   # a daemonic process may not fork children
            log.info("%s: lowering candidates in this process (cannot fork: %s)",
                     self.task.key, e)
            _stop(self._workers)
            return False
        return True

    def _dispatch(self, indices):
        out = [None] * len(indices)
        queue = deque(enumerate(indices))
        idle, busy = list(self._workers), {}   # busy: worker -> (position, index, deadline)
        while queue or busy:
            while idle and queue:
                w = idle.pop()
                pos, index = queue.popleft()
                w.send(index)
                deadline = time.monotonic() + self.timeout if self.timeout else None
                busy[w] = (pos, index, deadline)
            deadlines = [d for _, _, d in busy.values() if d is not None]
            wait = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = set(multiprocessing.connection.wait([w.connection for w in busy], wait))
            now = time.monotonic()
            for w, (pos, index, deadline) in list(busy.items()):
                if w.connection not in ready and (deadline is None or now < deadline):
                    continue
                status, reply = w.receive(0)   # not ready: kills the child ("timeout")
                del busy[w]
                idle.append(w)
                out[pos] = self._result(index, status, reply)
        return out

    def _result(self, index, status, reply):
        if status == "ok" and isinstance(reply, np.ndarray):
            return reply
        why = {"ok": reply, "timeout": f"lowering took over {self.timeout} s"}.get(status, reply)
        log.debug("%s: config #%d has no features (%s)", self.task.key, index, why)
        return None

    def close(self):
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _features_or_error(task, index):
    """The child's handler: the features, or why there are none (a string)."""
    from .features import extract
    try:
        return np.asarray(extract(task.lower(index)), dtype=np.float32)
    except Exception as e:   # noqa: BLE001 -- reported to the parent as the reason
        return f"{type(e).__name__}: {e}"


def _stop(workers):
    for w in workers:
        w.stop()


__all__ = ["FeaturePool", "extract_one", "usable_cores"]
