"""The figures of one benchmark run as data (``--json PATH``), one schema for every script.

Each script prints tables for a reader; benchmarks/run_all.py needs the same figures as rows it
can put side by side, so every script that takes ``--json`` fills a ``Records`` next to its
printing and writes it at the end. ``baseline`` names the tensorc implementation the others are
compared with (run_all's ratio = implementation time / baseline time of the same case and
thread count); notes say what was skipped and why, so a missing row is never silent.
"""
import json


class Records:
    def __init__(self, benchmark, baseline):
        self.benchmark = benchmark
        self.baseline = baseline
        self.rows = []
        self.notes = []

    def add(self, case, implementation, threads, median_ms, min_ms=None):
        self.rows.append({"case": case, "implementation": implementation, "threads": threads,
                          "median_ms": float(median_ms),
                          "min_ms": None if min_ms is None else float(min_ms)})

    def note(self, text):
        self.notes.append(text)

    def write(self, path):
        """Write the records to ``path``; nothing when ``path`` is None (no --json given)."""
        if path is None:
            return
        with open(path, "w") as f:
            json.dump({"benchmark": self.benchmark, "baseline": self.baseline,
                       "rows": self.rows, "notes": self.notes}, f, indent=1)
