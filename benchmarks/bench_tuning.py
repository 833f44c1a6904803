"""Search efficiency of the tuners: best-so-far throughput against trials, XGBTuner vs
RandomTuner, over several seeds, on template-free spaces (the auto-template) of a matmul, a
ResNet conv2d layer, a softmax and DigitCaps capsule routing.

Every candidate is really built and measured (isolated, checked against the numpy oracle);
nothing is simulated. The figure of merit, from the issue: trials each tuner needs to reach
95% of the best throughput any run found for that task (XGBTuner should need at most half of
what random search needs). The machine is shared: /proc/pressure/cpu is printed with the
figures, and every run of a task is measured in the same process by one measurer: costs are
timed against the same baseline (the task's register-tiled point) in the same unit, so the best of
one run compares with the best of another. The configs near the top are measured again at the
end (five interleaved rounds, median), and the curves and the criterion use those figures: the
best of hundreds of single samples overstates the fastest config's speed.

    python benchmarks/bench_tuning.py                          # all tasks, 3 seeds, 96 trials
    python benchmarks/bench_tuning.py --tasks matmul --trials 64 --seeds 2
    python benchmarks/bench_tuning.py --plot tuning.png        # also draw the curves
"""
import argparse
import json
import time

import numpy as np
from common import cpu_pressure

from tensorc import autotune, te
from tensorc.autotune.measure import MeasureOption, Measurer


def matmul(n=512):
    k = te.reduce_axis((0, n), name="k")
    A = te.placeholder((n, n), name="A")
    B = te.placeholder((n, n), name="B")
    return te.compute((n, n), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")


def conv2d(c=64, f=64, hw=56):
    """ResNet-18's 3x3 conv of stage 1 (NCHW, padding 1), batch 1."""
    X = te.placeholder((1, c, hw + 2, hw + 2), name="X")        # already padded
    W = te.placeholder((f, c, 3, 3), name="W")
    rc = te.reduce_axis((0, c), name="rc")
    ry, rx = te.reduce_axis((0, 3), name="ry"), te.reduce_axis((0, 3), name="rx")
    return te.compute((1, f, hw, hw), lambda n, o, y, x: te.sum(
        X[n, rc, y + ry, x + rx] * W[o, rc, ry, rx], axis=[rc, ry, rx]), name="Y")


def softmax(rows=1024, cols=1000):
    x = te.placeholder((rows, cols), name="x")
    k1, k2 = te.reduce_axis((0, cols), name="k1"), te.reduce_axis((0, cols), name="k2")
    mx = te.compute((rows,), lambda i: te.max(x[i, k1], axis=k1), name="mx")
    e = te.compute((rows, cols), lambda i, j: te.exp(x[i, j] - mx[i]), name="e")
    sm = te.compute((rows,), lambda i: te.sum(e[i, k2], axis=k2), name="sm")
    return te.compute((rows, cols), lambda i, j: e[i, j] / sm[i], name="y")


def capsule(batch=8):
    """DigitCaps of the MNIST CapsNet: prediction + 3 routing iterations."""
    from tensorc.ops import capsule as caps
    u = te.placeholder((batch, 1152, 8), name="u")
    W = te.placeholder((1152, 10, 16, 8), name="W")
    return caps.dynamic_routing(caps.predict(u, W), iterations=3)


TASKS = {"matmul": matmul, "conv2d": conv2d, "softmax": softmax, "capsule": capsule}
TUNERS = {"xgb": autotune.XGBTuner, "random": autotune.RandomTuner}
REMEASURE_ROUNDS = 5


def gflops(task, result):
    """GFLOP/s of one measurement (the median of its runs), 0 if it failed."""
    if result.error_no != 0 or not result.costs:
        return 0.0
    return task.flop / float(np.median(result.costs)) / 1e9


def trace(task, tuner_cls, trials, seed, measurer, plan_size):
    """(config index, GFLOP/s of its tuning measurement, 0 if it failed) per trial."""
    out = []

    def record(tuner, inputs, results):
        out.extend((inp.config.index, gflops(task, res)) for inp, res in zip(inputs, results))
    kwargs = {"plan_size": plan_size} if tuner_cls is autotune.XGBTuner else {}
    tuner = tuner_cls(task, seed=seed, **kwargs)
    tuner.tune(trials, measure=measurer.measure, callbacks=[record], progress=False, verify=0)
    return out


def remeasure(task, traces, measurer, share=0.85, rounds=REMEASURE_ROUNDS):
    """Re-measured GFLOP/s of the configs near the top: the median of ``rounds`` interleaved
    measurements of every config whose tuning sample came within ``share`` of the best
    sample, then of every further config whose sample reaches ``share`` of the best
    re-measured figure, until none is left.

    A tuning measurement is one paired sample, and the best of hundreds of noisy samples is
    biased upward (one run's best sample was 11% over the same config measured again), so
    "95% of the best found" is judged on these figures, not on the single samples. The
    second pass matters: with the threshold set by an inflated best sample alone, a config
    sampled between 95% of the true best and that threshold would count on its sample."""
    samples = {}
    for t in traces:
        for i, g in t:
            samples[i] = max(samples.get(i, 0.0), g)
    verified, threshold = {}, share * max(samples.values())
    while True:
        todo = sorted(i for i, g in samples.items() if g >= threshold and i not in verified)
        if not todo:
            return verified
        runs = {i: [] for i in todo}
        for _ in range(rounds):
            for i, res in zip(todo, measurer.measure(task, todo)):
                if (g := gflops(task, res)) > 0:
                    runs[i].append(g)
        verified.update({i: float(np.median(v)) if v else 0.0 for i, v in runs.items()})
        threshold = min(threshold, share * max(verified.values()))


def curve(trace_, verified):
    """Best-so-far GFLOP/s after each trial, re-measured figures replacing the samples of the
    configs that have them."""
    best, out = 0.0, []
    for index, g in trace_:
        best = max(best, verified.get(index, g))
        out.append(best)
    return out


def trials_to(curve_, level):
    for k, v in enumerate(curve_, 1):
        if v >= level:
            return k
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--trials", type=int, default=96)
    ap.add_argument("--random-trials", type=int, default=None,
                    help="trials of RandomTuner (default --trials): random search needs many "
                         "more to reach the top, and its own count is the criterion's yardstick")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds first-seed .. first-seed + seeds - 1 (to add runs to earlier ones)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--plan-size", type=int, default=16,
                    help="XGBTuner: points per model-guided batch (the first is random)")
    ap.add_argument("--plot", help="write the curves to this PNG (needs matplotlib)")
    ap.add_argument("--json", help="write the curves to this JSON file")
    ap.add_argument("--traces", help="write every trial (config index, sample GFLOP/s) and the "
                                     "re-measured figures to this JSON file")
    args = ap.parse_args()
    option = MeasureOption(number=3, repeat=3, timeout=10, threads=args.threads)
    print(f"cpu pressure before: {cpu_pressure()}")
    curves, traces_out = {}, {}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for name in args.tasks.split(","):
        task = autotune.auto_task(TASKS[name]())
        print(f"\n{name}: {task.key}, {len(task.config_space)} points, "
              f"{task.flop / 1e9:.2f} GFLOP per run")
        traces = {}
        with Measurer(option) as measurer:
            for seed in seeds:
                for tname, cls in TUNERS.items():
                    t0 = time.perf_counter()
                    n = args.random_trials if tname == "random" and args.random_trials \
                        else args.trials
                    traces[tname, seed] = trace(task, cls, n, seed, measurer, args.plan_size)
                    print(f"  seed {seed} {tname:6s}: best sample "
                          f"{max(g for _, g in traces[tname, seed]):7.1f} GFLOP/s after "
                          f"{len(traces[tname, seed])} trials "
                          f"({time.perf_counter() - t0:.0f} s)", flush=True)
            verified = remeasure(task, list(traces.values()), measurer)
        print(f"  re-measured {len(verified)} configs near the top, {REMEASURE_ROUNDS} rounds "
              "each")
        traces_out[name] = {"traces": {f"{t}|{s}": v for (t, s), v in traces.items()},
                            "remeasured": verified}
        for (tname, seed), t in traces.items():
            curves[(name, tname, seed)] = curve(t, verified)
        top = max(max(curves[(name, t, s)]) for t in TUNERS for s in seeds)
        need = {t: [trials_to(curves[(name, t, s)], 0.95 * top) for s in seeds] for t in TUNERS}
        print(f"  trials to 95% of the best found ({top:.1f} GFLOP/s re-measured): "
              + ", ".join(f"{t} {need[t]}" for t in TUNERS))
    print(f"\ncpu pressure after: {cpu_pressure()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"|".join(map(str, k)): v for k, v in curves.items()}, f)
    if args.traces:
        with open(args.traces, "w") as f:
            json.dump(traces_out, f)
    if args.plot:
        plot(curves, args.plot)


def plot(curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = sorted({k[0] for k in curves})
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    colors = {"xgb": "tab:blue", "random": "tab:orange"}
    for ax, name in zip(axes[0], names):
        labelled = set()
        for (n, tname, _seed), c in curves.items():
            if n == name:
                ax.plot(range(1, len(c) + 1), c, color=colors[tname], alpha=0.8,
                        label=None if tname in labelled else tname)
                labelled.add(tname)
        ax.set_title(name)
        ax.set_xlabel("trials")
        ax.set_ylabel("best GFLOP/s so far")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
