"""Helpers shared by the benchmarks: the interleaved timing loop and the machine's CPU pressure,
both from tensorc.runtime.timing (which ``tensorc bench`` uses too)."""
from tensorc.runtime.timing import cpu_pressure, interleaved, summarize

__all__ = ["cpu_pressure", "interleaved", "summarize"]
