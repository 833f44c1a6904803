"""How many threads parallel loops use, one setting for every loaded module.

Each compiled library has its own ``__tensorc_num_threads`` global (a standalone .so must work from
C too); this module writes the process-wide setting into every library it loads and again into all
of them whenever the setting changes. The default comes from ``TENSORC_NUM_THREADS``, else the
cores this process may run on (its affinity mask, not the machine's core count, so a container or
``taskset`` limit is respected).

Every parallel loop passes the global's current value to the library's thread pool
(tensorc/runtime/threadpool.c), so a change applies from the next loop on: the pool starts
missing workers when the count grows and leaves the surplus asleep when it shrinks. 1 runs loops
in the calling thread and never starts a worker. A C program that leaves the global at 0 gets the
pool's default, the same rule as here (``TENSORC_NUM_THREADS``, else the usable cores). Each
library has its own pool, so two libraries used at once have two sets of workers.
"""
import ctypes
import os
import threading
import weakref

NUM_THREADS_GLOBAL = "__tensorc_num_threads"

_lock = threading.Lock()
_libraries = weakref.WeakSet()
_num_threads = None


def _usable_cores():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _default():
    env = os.environ.get("TENSORC_NUM_THREADS", "").strip()
    if not env:
        return _usable_cores()
    try:
        n = int(env)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"TENSORC_NUM_THREADS must be a positive integer, got {env!r}")
    return n


def get_num_threads():
    """The number of threads a parallel loop runs on (at most; never more than its extent)."""
    global _num_threads
    with _lock:
        if _num_threads is None:
            _num_threads = _default()
        return _num_threads


def set_num_threads(n):
    """Use ``n`` threads in parallel loops of every module, loaded already or later."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads needs a positive integer, got {n!r}")
    with _lock:
        _num_threads = n
        for lib in list(_libraries):
            _write(lib, n)


def attach(lib):
    """Give a freshly loaded library the current thread count and keep it in step from now on."""
    n = get_num_threads()
    with _lock:
        _libraries.add(lib)
        _write(lib, n)


def _write(lib, n):
    ctypes.c_int32.in_dll(lib, NUM_THREADS_GLOBAL).value = n
