"""Timing several implementations of the same work against each other on a shared machine.

Other processes come and go, so absolute times drift within seconds; what stays meaningful is
the comparison of runs taken side by side. ``interleaved`` therefore times every callable once
per round, round after round (a, b, c, a, b, c, ...), after warm-up calls that load code, start
thread pools and fault in memory, and ``summarize`` reports medians (robust to a burst of load
in one round) beside minima (what the code can do when nothing interferes). ``cpu_pressure``
is printed beside the figures so a reader can tell a quiet run from a loaded one.
"""
import statistics
import time


def cpu_pressure():
    """The "some" line of /proc/pressure/cpu (how loaded the machine is), or "n/a"."""
    try:
        with open("/proc/pressure/cpu") as f:
            return f.readline().strip()
    except OSError:
        return "n/a"


#: Seconds of pause before each timed call: long enough for the idle threads of the call
#: before (tensorc's pool spins 100 us after a parallel loop before it sleeps) to stop
#: spinning, so no implementation is timed while another's threads still hold a core.
SETTLE = 0.0005


def interleaved(fns, rounds=10, warmup=1, settle=SETTLE):
    """Seconds per call of each callable in ``fns`` ({name: fn}), one per round, as
    {name: [seconds, ...]}; each callable is first called ``warmup`` times untimed, and each
    timed call follows a pause of ``settle`` seconds."""
    if rounds < 1 or warmup < 0:
        raise ValueError(f"interleaved needs rounds >= 1 and warmup >= 0, got rounds={rounds}, "
                         f"warmup={warmup}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            if settle:
                time.sleep(settle)
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def summarize(times):
    """{name: {"median_ms": ..., "min_ms": ...}} from the result of ``interleaved``."""
    return {name: {"median_ms": statistics.median(ts) * 1e3, "min_ms": min(ts) * 1e3}
            for name, ts in times.items()}
