"""Latency of parallel kernels at 1 and 2 threads, on a quiet core pair and with a busy core.

Two kernels: a 1M-float elementwise loop (B = 2A + 1, parallel over 4096-element blocks, 8 lanes
at a time inside) and the 512^3 float32 matmul of bench_matmul.py (``matmul_best``). Each runs
back to back at 1 and at 2 threads, first as the machine is ("quiet": whatever else runs on it
still does), then with a competitor process (a Python busy loop) pinned to one of our cores, the
situation in which a fork-join pool waits a timeslice for a descheduled worker. Median and p90
per call are printed, with /proc/pressure/cpu before and after. Cells are separated by a 50 ms
pause, so one cell's idle workers (libgomp's spin for milliseconds after a parallel region) do
not slow the next.

``--baseline REV`` also runs another tensorc -- a git revision of this repository (extracted with
``git archive`` into a temporary directory; nothing in the repository changes) or a directory
holding a ``tensorc`` package -- in its own process, interleaved with this one round by round, so
both see the same load. For example, the libgomp version before the thread pool:

    python benchmarks/bench_threads.py --baseline 5551885

``--json PATH`` also writes the figures as JSON (for benchmarks/run_all.py).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from records import Records

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def pressure():
    try:
        with open("/proc/pressure/cpu") as f:
            return f.readline().strip()
    except OSError:
        return "n/a"


# --- the measuring process ------------------------------------------------------------------

def _kernels(size):
    import numpy as np

    import tensorc as tc
    from tensorc import te
    sys.path.insert(0, str(HERE))
    from bench_matmul import matmul_best

    n = 1 << 20
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * 2.0 + 1.0, name="B")
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=4096)
    s[B].parallel(xo)
    xi, lanes = s[B].split(xi, factor=8)  # one AVX2 register (a 4096-lane vector spills)
    s[B].vectorize(lanes)
    ew = tc.build(s, [A, B], name="ew")
    a = np.random.default_rng(0).random(n, dtype=np.float32)
    ew_args = (a, np.empty_like(a))

    s, args = matmul_best(size)
    mm = tc.build(s, args, name="mm")
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (size, size)).astype("float32")
    y = rng.uniform(-1, 1, (size, size)).astype("float32")
    mm_args = (x, y, np.empty((size, size), "float32"))
    return {"elementwise": (ew, ew_args), "matmul": (mm, mm_args)}


def serve(size):
    """Answer "kernel threads calls" lines with the seconds of each call, as JSON."""
    import tensorc as tc
    kernels = _kernels(size)
    print(json.dumps({"tensorc": os.path.dirname(tc.__file__)}), flush=True)
    for line in sys.stdin:
        name, threads, calls = line.split()
        fn, args = kernels[name]
        tc.runtime.set_num_threads(int(threads))
        fn(*args)  # warm: workers started, caches filled
        times = []
        for _ in range(int(calls)):
            t0 = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - t0)
        print(json.dumps(times), flush=True)


# --- the driver -----------------------------------------------------------------------------

class Impl:
    def __init__(self, label, root, size):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        self.label = label
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", "--size", str(size)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env)
        hello = self.proc.stdout.readline()
        if not hello:
            raise RuntimeError(f"{label}: the measuring process failed to start")
        self.package = json.loads(hello)["tensorc"]

    def measure(self, kernel, threads, calls):
        self.proc.stdin.write(f"{kernel} {threads} {calls}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def extract(rev, into):
    """The tensorc package of git revision ``rev`` of this repository, under ``into``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "tensorc"],
                             capture_output=True, check=True).stdout
    tar_path = Path(into) / "src.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    tar_path.unlink()
    return Path(into)


class Competitor:
    """A busy-looping process pinned to one core (the last this process may use)."""

    def __init__(self):
        self.core = max(os.sched_getaffinity(0))
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        os.sched_setaffinity(self.proc.pid, {self.core})

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", help="git revision or directory of a tensorc to compare with")
    ap.add_argument("--size", type=int, default=512, help="matmul size (default 512)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--calls", type=int, default=20, help="elementwise calls per round and cell "
                    "(matmul: a quarter)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write the figures to this JSON file (run_all.py)")
    args = ap.parse_args()
    if args.serve:
        return serve(args.size)

    with tempfile.TemporaryDirectory(prefix="tensorc-baseline-") as tmp:
        impls = [Impl("new", REPO, args.size)]
        if args.baseline:
            root = Path(args.baseline)
            if not (root / "tensorc").is_dir():
                root = extract(args.baseline, tmp)
            impls.insert(0, Impl(f"old ({args.baseline})", root, args.size))
        for impl in impls:
            print(f"{impl.label}: {impl.package}")
        cells = {}
        try:
            for condition in ("quiet", "competitor"):
                print(f"[{condition}] cpu pressure before: {pressure()}")
                rival = Competitor() if condition == "competitor" else None
                try:
                    for _ in range(args.rounds):
                        for kernel, calls in (("elementwise", args.calls),
                                              ("matmul", max(1, args.calls // 4))):
                            for impl in impls:
                                for threads in (1, 2):
                                    # let the last cell's idle workers stop spinning (libgomp's
                                    # spin for milliseconds) before timing the next
                                    time.sleep(0.05)
                                    cells.setdefault((kernel, condition, impl.label, threads),
                                                     []).extend(
                                        impl.measure(kernel, threads, calls))
                finally:
                    if rival:
                        rival.stop()
                print(f"[{condition}] cpu pressure after:  {pressure()}"
                      + (f" (competitor was pinned to core {rival.core})" if rival else ""))
        finally:
            for impl in impls:
                impl.close()

    records = Records("threads", "new")
    print(f"\n{'kernel':<12} {'load':<11} {'tensorc':<22} {'threads':>7} {'median ms':>10} "
          f"{'p90 ms':>9} {'2T/1T':>6}")
    for (kernel, condition, label, threads), times in cells.items():
        times = sorted(times)
        med = statistics.median(times)
        p90 = times[int(0.9 * (len(times) - 1))]
        ratio = ""
        if threads == 2:
            ratio = f"{med / statistics.median(cells[(kernel, condition, label, 1)]):.2f}"
        print(f"{kernel:<12} {condition:<11} {label:<22} {threads:>7} {med * 1e3:>10.3f} "
              f"{p90 * 1e3:>9.3f} {ratio:>6}")
        records.add(f"{kernel} {condition}", label, threads, med * 1e3, times[0] * 1e3)
    records.write(args.json)


if __name__ == "__main__":
    main()
