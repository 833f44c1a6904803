"""Helpers shared by the benchmarks: the interleaved timing loop and the machine's CPU pressure,
both from tensorc.runtime.timing (which ``tensorc bench`` uses too).

Importing this from a benchmark script also stops OpenBLAS's idle threads from spinning.
After each call OpenBLAS keeps its worker threads busy-waiting for about 2^28 cycles (tenths of
a second) unless ``OPENBLAS_THREAD_TIMEOUT`` says otherwise, and a kernel timed right after a
numpy matmul shares the cores with them: here a tensorc 1024^3 matmul on 2 threads took
24-29 ms right after ``np.matmul`` and 12-16 ms alone (OpenBLAS itself: 14 ms). The variable
is read once, when OpenBLAS loads, so the script re-executes itself with it set (4, the
smallest value) before anything has run. ONNX Runtime is given ``allow_spinning = 0`` by the
benchmarks for the same reason, and PyTorch's OpenMP threads ``OMP_WAIT_POLICY=PASSIVE`` (read
when libgomp loads): with them spinning after each torch call, tensorc's capsule routing at
batch 32 on 2 threads, timed right after torch, took 6.28 ms, and 3.87 ms without (torch's own
times did not change: eager 175 / 165 ms, torch.compile 24 / 26 ms).
"""
import os
import sys

from tensorc.runtime.timing import cpu_pressure, interleaved, summarize

_NO_SPIN = {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "PASSIVE"}


def _reexec_without_spinning():
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not (script.startswith("bench_") and script.endswith(".py")):
        return   # imported by something else (a test, run_all): leave its process alone
    if all(os.environ.get(k) == v for k, v in _NO_SPIN.items()):
        return
    os.environ.update(_NO_SPIN)
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, *sys.argv])


_reexec_without_spinning()

__all__ = ["cpu_pressure", "interleaved", "summarize"]
