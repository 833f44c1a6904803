"""How well the tuner's cost model ranks schedules it has not seen: measure random points of a
bench_tuning task's auto-template once, then train on n of them and rank the rest, for each
feature kind (loop features, knob numbers) and objective (pairwise rank, regression).

This is the question under XGBTuner's search: a model that orders held-out points well lets
a plan measure the fast ones first. The figures are Spearman's rank correlation over the
held-out points and "best of top 16": the fastest of the 16 points the model ranks highest,
as a share of the fastest held-out point (the same for 16 random points beside it).

    python benchmarks/bench_cost_model.py --task conv2d --points 256 --save conv.npz
    python benchmarks/bench_cost_model.py --load conv.npz --splits 50
"""
import argparse
import time

import numpy as np
from bench_tuning import TASKS, gflops
from common import cpu_pressure

from tensorc import autotune
from tensorc.autotune.cost_model import XGBoostCostModel, spearman
from tensorc.autotune.feature_pool import FeaturePool
from tensorc.autotune.measure import MeasureOption, Measurer

TOP = 16


def measure_points(name, points, seed, threads):
    """Loop features, knob numbers and GFLOP/s (0: failed) of ``points`` random points."""
    task = autotune.auto_task(TASKS[name]())
    space = task.config_space
    rng = np.random.default_rng(seed)
    index = list(dict.fromkeys(int(space.random_index(rng)) for _ in range(points)))
    t0 = time.perf_counter()
    with FeaturePool(task, None, 10.0) as pool:
        feats = pool.extract(index)
    print(f"{name}: {len(space)} points, {len(index)} drawn; features in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    keep = [k for k, f in enumerate(feats) if f is not None]
    index = [index[k] for k in keep]
    speed = []
    option = MeasureOption(number=3, repeat=3, timeout=10, threads=threads)
    with Measurer(option) as measurer:
        for at in range(0, len(index), 16):
            speed += [gflops(task, res) for res in measurer.measure(task, index[at:at + 16])]
    print(f"measured {len(index)} in {time.perf_counter() - t0:.0f} s", flush=True)
    return {"loop": np.stack([feats[k] for k in keep]).astype(np.float32),
            "knob": np.array([space.choices(i) for i in index], dtype=np.float32),
            "gflops": np.array(speed), "index": np.array(index)}


def rank_study(data, sizes, splits, seed):
    """Rows of (n, features, objective, mean Spearman, mean best-of-top-16, random 16)."""
    y = data["gflops"]
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        perms = [rng.permutation(len(y)) for _ in range(splits)]
        perms = [p for p in perms if y[p[:n]].max() > 0]
        for feature in ("loop", "knob"):
            for objective in ("rank", "reg"):
                sp, top, rnd = [], [], []
                for p in perms:
                    train, test = p[:n], p[n:]
                    model = XGBoostCostModel(objective=objective).fit(
                        data[feature][train], y[train])
                    pred = model.predict(data[feature][test])
                    sp.append(spearman(pred, y[test]))
                    top.append(y[test][np.argsort(-pred)[:TOP]].max() / y[test].max())
                    rnd.append(y[test][rng.permutation(len(test))[:TOP]].max() / y[test].max())
                rows.append((n, feature, objective, np.mean(sp), np.mean(top), np.mean(rnd)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="conv2d", choices=sorted(TASKS))
    ap.add_argument("--points", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--save", help="write the measured points to this .npz")
    ap.add_argument("--load", help="rank the points of this .npz instead of measuring")
    args = ap.parse_args()
    print(f"cpu pressure before: {cpu_pressure()}")
    if args.load:
        data = dict(np.load(args.load))
    else:
        data = measure_points(args.task, args.points, args.seed, args.threads)
        if args.save:
            np.savez(args.save, **data)
    y = data["gflops"]
    print(f"{len(y)} points: best {y.max():.1f} GFLOP/s, {int((y >= 0.95 * y.max()).sum())} "
          f"within 95% of it, {int((y == 0).sum())} failed")
    print(f"| train n | features | objective | Spearman | best of top {TOP} | "
          f"random {TOP} |\n|---|---|---|---|---|---|")
    for n, feature, objective, sp, top, rnd in rank_study(data, args.sizes, args.splits,
                                                         args.seed):
        print(f"| {n} | {feature} | {objective} | {sp:.2f} | {top:.3f} | {rnd:.3f} |")
    print(f"cpu pressure after: {cpu_pressure()}")


if __name__ == "__main__":
    main()
