"""benchmarks/bench_peak.py: the FMA loop really runs its chains (their values are the
recurrence's), so its GFLOP/s counts work that was done."""
import ctypes
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
import bench_peak  # noqa: E402 -- benchmarks/ is not a package


def test_chains_compute_the_recurrence_and_count_flops():
    lanes, chains = 4, 3
    _engine, fn = bench_peak.compile_kernel(lanes, chains)
    out = (ctypes.c_float * lanes)()
    fn(2, ctypes.addressof(out))   # a -> a * 0.5 + 0.25 twice from 1.0: 0.75, then 0.625
    assert list(out) == [chains * 0.625] * lanes
    assert bench_peak.gflops(fn, lanes, chains, threads=2, iterations=1000, rounds=1) > 0


def test_fma_peak_is_in_flops_per_second():
    """A short loop: positive and in flop/s (the GFLOP/s figure times 1e9), as
    bench_capsule divides by it."""
    peak = bench_peak.fma_peak(1, iterations=100_000, rounds=2)
    assert 1e8 < peak < 1e14
