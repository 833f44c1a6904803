"""Run every benchmark of benchmarks/ and write their figures into RESULTS.md (and PNG charts).

Each benchmark runs in its own process (a crash or a leaked thread pool stays there) with
``--json`` so its figures come back as rows (benchmarks/records.py); the ratios are taken
between rows of the same run, never against figures of another day, because on a shared
machine only side-by-side measurements compare. The machine (CPU model, cores, ISA flags), the
library versions and /proc/pressure/cpu before and after are recorded with them.

The generated section of RESULTS.md sits between ``<!-- run_all:begin -->`` and
``<!-- run_all:end -->``: a run replaces it (or appends it when the markers are absent) and
leaves every hand-written line around it alone. Charts (one per benchmark: time of each
implementation over tensorc's, per case) go to ``charts/`` beside RESULTS.md when matplotlib
is installed (the ``[bench]`` extra); without it the section says so.

    python benchmarks/run_all.py                   # everything, full length (tens of minutes)
    python benchmarks/run_all.py --quick           # few rounds, small sizes: a smoke run
    python benchmarks/run_all.py --only matmul,models --threads 1 2
    python benchmarks/run_all.py --args tuning="--tasks matmul,conv2d --trials 48"
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import cpu_pressure

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BEGIN, END = "<!-- run_all:begin -->", "<!-- run_all:end -->"
PACKAGES = ("tensorc", "numpy", "torch", "onnxruntime", "onnx", "apache-tvm", "llvmlite",
            "threadpoolctl", "matplotlib")
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
             "avx512_vnni", "avx512_bf16", "amx_tile")


@dataclass
class Bench:
    """How to run one script: its arguments for a full and a quick run, and how it takes
    thread counts (``list``: one flag with several counts, ``single``: one count per run,
    None: it picks its own)."""
    script: str
    full: list = field(default_factory=list)
    quick: list = field(default_factory=list)
    threads: str = None
    json: bool = True


BENCHES = {
    "matmul": Bench("bench_matmul.py", [], ["--size", "256", "--rounds", "3"], "list"),
    "ops": Bench("bench_ops.py", [], ["--rounds", "3", "--only", "@7"], "single"),
    "models": Bench("bench_models.py", ["--extra", "tvm,torch.compile"],
                    ["--models", "small_cnn", "--batch", "1", "--rounds", "3",
                     "--extra", "tvm,torch.compile"], "single"),
    "layers": Bench("bench_layers.py", [], ["--model", "small_cnn", "--rounds", "3"],
                    "single"),
    "fused": Bench("bench_fused.py", [], ["--shape", "4,64,32,32", "--chains", "cheap",
                                          "--rounds", "3"], "list"),
    "capsule": Bench("bench_capsule.py", [], ["--batches", "1", "--threads", "1", "--rounds",
                                              "3", "--no-compile"], "list"),
    "vecmath": Bench("bench_vecmath.py", [], ["--size", "65536", "--rounds", "3"]),
    "threads": Bench("bench_threads.py", [], ["--size", "128", "--rounds", "2", "--calls", "4"]),
    "tuning": Bench("bench_tuning.py", [], ["--tasks", "softmax", "--trials", "8", "--seeds",
                                            "1"], "single"),
    "peak": Bench("bench_peak.py", [], ["--iterations", "2000000", "--rounds", "2"], "list",
                  json=False),
    "cuda": Bench("bench_cuda.py", [], ["--size", "1024", "--rounds", "2", "--reps", "2"],
                  json=False),
}


@dataclass
class Outcome:
    """What one benchmark produced: timing rows, search curves (tuning), notes, and the
    commands, wall time and CPU pressure around it."""
    name: str
    commands: list = field(default_factory=list)
    baseline: str = None
    rows: list = field(default_factory=list)
    curves: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    seconds: float = 0.0
    pressure: tuple = ("", "")


def machine():
    """CPU model, cores and ISA flags, OS and Python, as {field: text}."""
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    present = [f for f in ISA_FLAGS if f in flags]
    return {"cpu": model,
            "cores": f"{os.cpu_count()} logical, {len(os.sched_getaffinity(0))} usable",
            "isa": " ".join(present) + ("" if "avx512f" in flags else " (no avx512f)")
            if flags else "unknown (no /proc/cpuinfo flags)",
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


def versions():
    """{package: version or "not installed"} of the libraries the benchmarks compare."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_revision():
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" with uncommitted changes" if dirty else "")


def commands(bench, quick, threads, args=None):
    """The argument lists to run ``bench`` with: one, or one per thread count. ``args`` (a
    list) replaces the benchmark's own full or quick arguments."""
    base = list(args if args is not None else bench.quick if quick else bench.full)
    if not threads or bench.threads is None:
        return [base]
    if bench.threads == "list":
        if "--threads" in base:    # the quick arguments pick counts; --threads overrides them
            cut = base.index("--threads")
            base = base[:cut] + base[cut + 2:]
        return [base + ["--threads", *map(str, threads)]]
    return [base + ["--threads", str(t)] for t in threads]


def run_one(name, bench, quick, threads, timeout, override=None):
    """Run ``bench`` (its output streamed through) and gather its rows or why it has none."""
    out = Outcome(name)
    before, t0 = cpu_pressure(), time.perf_counter()
    for args in commands(bench, quick, threads, override):
        with tempfile.TemporaryDirectory(prefix="run_all-") as tmp:
            json_path = os.path.join(tmp, "out.json")
            argv = [sys.executable, str(HERE / bench.script), *args]
            out.commands.append("python " + " ".join([f"benchmarks/{bench.script}", *args]))
            text, code = _stream(argv + (["--json", json_path] if bench.json else []), timeout)
            if code != 0:
                last = text.strip().splitlines()[-1:] or ["no output"]
                out.notes.append(f"`{out.commands[-1]}` failed ({_exit(code, timeout)}): "
                                 f"{last[0][:200]}")
                continue
            if not bench.json:
                out.notes += [line for line in text.splitlines() if line.strip()][:6]
            elif name == "tuning":
                with open(json_path) as f:
                    out.curves.update(json.load(f))
            else:
                with open(json_path) as f:
                    data = json.load(f)
                out.baseline = data["baseline"]
                out.rows += data["rows"]
                out.notes += [n for n in data["notes"] if n not in out.notes]
    out.seconds, out.pressure = time.perf_counter() - t0, (before, cpu_pressure())
    return out


def _stream(argv, timeout):
    """Run ``argv`` from the repository root, echoing its output as it comes; (output, exit
    code), the code None when it ran past ``timeout`` seconds and was killed."""
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    killed = threading.Event()

    def kill():
        killed.set()
        proc.kill()
    timer = threading.Timer(timeout, kill) if timeout else None
    if timer:
        timer.start()
    lines = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    code = proc.wait()
    if timer:
        timer.cancel()
    return "".join(lines), None if killed.is_set() else code


def _exit(code, timeout):
    return f"timed out after {timeout} s" if code is None else f"exit status {code}"


def with_ratios(out):
    """The rows of ``out``, each with ``ratio`` = its median / the baseline's median of the same
    case and thread count (None where the run has no baseline row for it)."""
    base = {(r["case"], r["threads"]): r["median_ms"] for r in out.rows
            if r["implementation"] == out.baseline}
    return [dict(r, ratio=r["median_ms"] / base[(r["case"], r["threads"])]
                 if (r["case"], r["threads"]) in base else None) for r in out.rows]


def tuning_rows(curves):
    """(task, tuner, best GFLOP/s per seed, trials to 95% of the task's best per seed) from the
    curves bench_tuning.py writes ({"task|tuner|seed": best-so-far GFLOP/s per trial})."""
    by = {}
    for key, curve in curves.items():
        task, tuner, _seed = key.split("|")
        by.setdefault(task, {}).setdefault(tuner, []).append(curve)
    rows = []
    for task, tuners in by.items():
        top = max(max(c, default=0.0) for cs in tuners.values() for c in cs)
        for tuner, cs in tuners.items():
            need = [next((k for k, v in enumerate(c, 1) if top and v >= 0.95 * top), None)
                    for c in cs]
            rows.append((task, tuner, [c[-1] if c else 0.0 for c in cs], need))
    return rows


def chart(out, rows, charts_dir):
    """Bar chart of each implementation's time over tensorc's, per case; the PNG's path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in rows if r["ratio"] is not None]
    groups = list(dict.fromkeys((r["case"], r["threads"]) for r in rows))
    impls = list(dict.fromkeys(r["implementation"] for r in rows))
    if len(impls) < 2:      # only the baseline: every bar would be 1
        return None
    width = 0.8 / len(impls)
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.25 * len(impls) * len(groups)))
    for k, impl in enumerate(impls):
        ys, xs = [], []
        for g, (case, threads) in enumerate(groups):
            for r in rows:
                if (r["case"], r["threads"], r["implementation"]) == (case, threads, impl):
                    ys.append(g + k * width)
                    xs.append(r["ratio"])
        # bars grow from 1 (as fast as tensorc): right where tensorc is faster, left where not
        ax.barh(ys, [x - 1.0 for x in xs], left=1.0, height=width, label=impl)
    ax.set_yticks([g + 0.4 - width / 2 for g in range(len(groups))],
                  [f"{case}, {threads} thr" for case, threads in groups], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"median time / {out.baseline} median time (> 1: tensorc faster)")
    ax.set_title(f"benchmarks/{BENCHES[out.name].script}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    charts_dir.mkdir(parents=True, exist_ok=True)
    path = charts_dir / f"{out.name}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _ms(v):
    return "" if v is None else f"{v:.3f}" if v < 10 else f"{v:.1f}"


def section(outcomes, info, charts, results_path):
    """The generated Markdown between the markers."""
    md = [BEGIN, "## Generated by `benchmarks/run_all.py`", "",
          "This section is rewritten by every run of `benchmarks/run_all.py`; write analysis "
          "outside the `run_all` markers.", "",
          f"- run: {info['when']}, `{info['command']}`, git {info['git']}",
          f"- CPU: {info['machine']['cpu']}; {info['machine']['cores']}; ISA: "
          f"{info['machine']['isa']}",
          f"- OS: {info['machine']['os']}, Python {info['machine']['python']}",
          "- versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
          f"- CPU pressure (/proc/pressure/cpu) before: `{info['pressure'][0]}`; after: "
          f"`{info['pressure'][1]}`",
          "- ratio = the implementation's median time / the tensorc baseline's median time, "
          "same case, same thread count, same run (> 1: tensorc is faster)",
          f"- charts: {charts}", ""]
    for out in outcomes:
        md += [f"### {out.name}", "",
               f"`{'`, `'.join(out.commands)}`: {out.seconds:.0f} s; pressure before "
               f"`{out.pressure[0]}`, after `{out.pressure[1]}`", ""]
        if out.rows:
            md += [f"| case | threads | implementation | median ms | min ms | "
                   f"ratio vs {out.baseline} |", "|---|---|---|---|---|---|"]
            md += [f"| {r['case']} | {r['threads']} | {r['implementation']} | "
                   f"{_ms(r['median_ms'])} | {_ms(r['min_ms'])} | "
                   f"{'n/a' if r['ratio'] is None else format(r['ratio'], '.2f')} |"
                   for r in with_ratios(out)]
            md.append("")
        if out.curves:
            md += ["| task | tuner | best GFLOP/s per seed | trials to 95% of the best found |",
                   "|---|---|---|---|"]
            md += [f"| {task} | {tuner} | {', '.join(f'{b:.1f}' for b in best)} | "
                   f"{', '.join('not reached' if n is None else str(n) for n in need)} |"
                   for task, tuner, best, need in tuning_rows(out.curves)]
            md.append("")
        if out.name in info["chart_paths"]:
            rel = os.path.relpath(info["chart_paths"][out.name], results_path.parent)
            md += [f"![{out.name}]({rel})", ""]
        md += [f"- {n}" for n in out.notes] + ([""] if out.notes else [])
    md.append(END)
    return "\n".join(md)


def replace_section(text, generated):
    """``text`` with the part between the markers (both included) replaced by ``generated``,
    or ``generated`` appended when the markers are absent."""
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 and end < 0:
        return text.rstrip("\n") + "\n\n" + generated + "\n"
    if begin < 0 or end < begin:
        raise ValueError(f"RESULTS.md holds {END!r} without a {BEGIN!r} before it: fix the "
                         "markers by hand")
    return text[:begin] + generated + text[end + len(END):]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few rounds and small sizes")
    ap.add_argument("--only", help="comma list of benchmarks: " + ", ".join(BENCHES))
    ap.add_argument("--threads", type=int, nargs="+",
                    help="thread counts, passed to every benchmark that takes them")
    ap.add_argument("--results", type=Path, default=HERE / "RESULTS.md",
                    help="the Markdown file whose generated section is rewritten")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds one benchmark command may run before it is stopped")
    ap.add_argument("--args", action="append", default=[], metavar="NAME=ARGS",
                    help="run benchmark NAME with ARGS (one shell-quoted string) instead of "
                         "its own arguments; repeatable")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        raise SystemExit(f"--only: unknown benchmark(s) {', '.join(unknown)}; known: "
                         f"{', '.join(BENCHES)}")
    overrides = {}
    for item in args.args:
        name, sep, rest = item.partition("=")
        if not sep or name not in BENCHES:
            raise SystemExit(f"--args: expected NAME=ARGS with NAME one of {', '.join(BENCHES)}"
                             f", got {item!r}")
        overrides[name] = shlex.split(rest)
    info = {"when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python benchmarks/run_all.py " + shlex.join(
                sys.argv[1:] if argv is None else argv),
            "git": git_revision(), "machine": machine(), "versions": versions(),
            "chart_paths": {}}
    before = cpu_pressure()
    outcomes = []
    for name in names:
        print(f"== {name}: benchmarks/{BENCHES[name].script}", flush=True)
        outcomes.append(run_one(name, BENCHES[name], args.quick, args.threads, args.timeout,
                                overrides.get(name)))
    info["pressure"] = (before, cpu_pressure())
    charts_dir = args.results.parent / "charts"
    try:
        import matplotlib  # noqa: F401 -- only whether it is there
    except ImportError:
        charts = "none: matplotlib is not installed (pip install 'tensorc[bench]')"
        print(f"no charts: {charts}")
    else:
        for out in outcomes:
            path = chart(out, with_ratios(out), charts_dir) if out.rows else None
            if path:
                info["chart_paths"][out.name] = path
        charts = f"{len(info['chart_paths'])} PNG in " \
                 f"`{os.path.relpath(charts_dir, args.results.parent)}/`"
    text = args.results.read_text() if args.results.exists() else "# Benchmark results\n"
    args.results.write_text(replace_section(text, section(outcomes, info, charts,
                                                          args.results)))
    print(f"wrote the run_all section of {args.results} "
          f"({sum(len(o.rows) for o in outcomes)} rows; charts: {charts})")


if __name__ == "__main__":
    main()
