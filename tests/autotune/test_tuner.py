"""Tuners: on small spaces with a synthetic cost landscape (an injected measure function, so
nothing is compiled), every tuner finds the known optimum, never measures a point twice,
stops early and resumes from the database; XGBTuner needs fewer trials than the space has
points; one run measures real builds end to end."""
import logging
import math
import sys
import time

import numpy as np
import pytest

from tensorc import autotune, te
from tensorc.autotune import xgb_tuner
from tensorc.autotune.database import TuningDatabase
from tensorc.autotune.feature_pool import FeaturePool, extract_one
from tensorc.autotune.measure import MeasureErrorNo, MeasureOption, MeasureResult
from tensorc.autotune.sa import SimulatedAnnealing
from tensorc.autotune.tuner import GridSearchTuner, RandomTuner, cost_of
from tensorc.autotune.xgb_tuner import XGBTuner


@autotune.template("test_tuner.knobs")
def knobs(n):
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * 2.0, name="B")
    cfg = autotune.get_config()
    cfg.define_knob("a", list(range(8)))
    cfg.define_knob("b", list(range(6)))
    cfg.define_knob("c", list(range(4)))
    return te.create_schedule(B.op), [A, B]


@autotune.template("test_tuner.huge")
def huge(n):
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] + 1.0, name="B")
    cfg = autotune.get_config()
    for k in range(6):
        cfg.define_knob(f"k{k}", list(range(20)))
    return te.create_schedule(B.op), [A, B]


@autotune.template("test_tuner.matmul")
def matmul(M, N, K):
    k = te.reduce_axis((0, K), name="k")
    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = te.create_schedule(C.op)
    cfg = autotune.get_config()
    i, j = C.op.axis
    cfg.define_split("tile_i", i, num_outputs=2, policy="power2")
    cfg.define_split("tile_j", j, num_outputs=2, policy="power2")
    cfg.define_knob("vec", [False, True])
    io, ii = cfg["tile_i"].apply(s, C, i)
    jo, ji = cfg["tile_j"].apply(s, C, j)
    s[C].reorder(io, jo, k, ii, ji)
    if cfg["vec"].val:
        s[C].vectorize(ji)
    return s, [A, B, C]


@autotune.template("test_tuner.stubborn")
def stubborn(n):
    """A space where some points cannot be lowered: their template raises or hangs."""
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * 3.0, name="B")
    s = te.create_schedule(B.op)
    cfg = autotune.get_config()
    cfg.define_knob("mode", ["ok", "raises", "hangs"])
    cfg.define_split("tile", B.op.axis[0], num_outputs=2, policy="power2")
    cfg["tile"].apply(s, B, B.op.axis[0])
    if cfg["mode"].val == "raises":
        raise ValueError("this point has no schedule")
    if cfg["mode"].val == "hangs":
        time.sleep(60)
    return s, [A, B]


def knob_cost(v):
    """A bowl over the knob values, lowest (1 ms) at a=5, b=2, c=1."""
    return 1e-3 * (1 + 0.3 * (v["a"] - 5) ** 2 + 0.5 * (v["b"] - 2) ** 2
                   + 0.2 * (v["c"] - 1) ** 2)


KNOB_BEST = {"a": 5, "b": 2, "c": 1}


def tile_cost(v):
    """Fastest with 8 x 16 tiles, vectorized; smooth in log2 of the tile sizes."""
    ti, tj = math.log2(v["tile_i"][1]), math.log2(v["tile_j"][1])
    return 1e-3 * (1 + (ti - 3) ** 2 + 0.5 * (tj - 4) ** 2 + (0 if v["vec"] else 2))


def synthetic(cost, fails=lambda v: False):
    """A measure function with a known landscape; it records every config it is asked for."""
    def measure(task, configs):
        out = []
        for cfg in configs:
            measure.calls.append(cfg.index)
            v = cfg.to_dict()
            if fails(v):
                out.append(MeasureResult((), MeasureErrorNo.RUNTIME_ERROR, "crashed", 0.0,
                                         time.time()))
            else:
                c = cost(v)
                out.append(MeasureResult((c, c * 1.01, c * 0.99), MeasureErrorNo.NO_ERROR, "",
                                         0.0, time.time()))
        return out
    measure.calls = []
    return measure


def knob_task():
    return autotune.create_task("test_tuner.knobs", (16,))


@pytest.mark.parametrize("make", [lambda t: RandomTuner(t, seed=0), GridSearchTuner],
                         ids=["random", "grid"])
def test_baselines_visit_every_point_once_and_find_the_optimum(make):
    task = knob_task()
    n = len(task.config_space)
    assert n == 192
    crash = synthetic(knob_cost, fails=lambda v: v["a"] == 0)
    tuner = make(task).tune(n_trial=n + 50, measure=crash, progress=False, batch_size=20)
    assert sorted(i for i, _ in tuner.history) == list(range(n))
    # every point once, and again right after it only when it beat the best by 1/SURPRISE
    firsts = list(dict.fromkeys(crash.calls))
    assert sorted(firsts) == list(range(n)) and len(crash.calls) - n < 10
    assert len(tuner.history) == n and not tuner.has_next()
    assert tuner.best_config.to_dict() == KNOB_BEST
    assert tuner.best_cost == pytest.approx(1e-3)
    assert tuner.best_flops == pytest.approx(task.flop / 1e-3)
    failed = [r for _, r in tuner.history if r.error_no == MeasureErrorNo.RUNTIME_ERROR]
    assert len(failed) == 6 * 4     # errors count as trials
    if isinstance(tuner, GridSearchTuner):
        assert firsts == list(range(n))
    else:
        assert firsts != list(range(n))


def test_a_surprising_measurement_is_measured_again_before_the_search_believes_it(tmp_path):
    """Config 7's first measurement is 10x too fast (a baseline that lost a core, say): it is
    measured again at once; the two disagree, a third decides, every measurement goes to the
    database, and the tuner ranks config 7 by its true cost. A surprise confirmed by the
    second measurement is pooled with it; unsurprising results are measured once."""
    task = knob_task()
    truth = synthetic(knob_cost)
    lucky = {7: 1}

    def measure(t, configs):
        out = truth(t, configs)
        for k, cfg in enumerate(configs):
            if lucky.get(cfg.index):
                lucky[cfg.index] -= 1
                c = knob_cost(cfg.to_dict()) / 10
                out[k] = out[k]._replace(costs=(c, c, c))
        return out
    db = tmp_path / "tune.db"
    tuner = GridSearchTuner(task).tune(n_trial=40, measure=measure, db=str(db), progress=False,
                                       batch_size=5, verify=0)
    seven = task.config_space.get(7).to_dict()
    assert truth.calls.count(7) == 3
    assert cost_of(dict(tuner.history)[7]) == pytest.approx(knob_cost(seven), rel=0.02)
    assert tuner.best_cost == min(knob_cost(task.config_space.get(i).to_dict())
                                  for i in range(40))
    with TuningDatabase(str(db)) as database:
        assert database.measurements(task.key, seven, task.target) == 3
    confirmed = [i for i in set(truth.calls) if truth.calls.count(i) == 2]
    for i in confirmed:   # true surprises: two measurements, pooled
        assert len(dict(tuner.history)[i].costs) == 6
    assert len(truth.calls) == 40 + 2 + len(confirmed)


def test_random_tuner_is_reproducible_from_its_seed():
    def order(seed):
        m = synthetic(knob_cost)
        RandomTuner(knob_task(), seed=seed).tune(n_trial=30, measure=m, progress=False)
        return m.calls
    assert order(7) == order(7)
    assert order(7) != order(8)


def test_next_batch_never_repeats_a_point_and_stops_when_the_space_is_exhausted():
    task = knob_task()
    tuner = RandomTuner(task, seed=1)
    seen = []
    while tuner.has_next():
        batch = tuner.next_batch(50)
        assert batch
        seen += [c.index for c in batch]
    assert sorted(seen) == list(range(len(task.config_space)))
    assert tuner.next_batch(10) == []


def test_random_tuner_samples_a_huge_space_without_repeats():
    """64 million points: sampled by rejection instead of a permutation of the space."""
    task = autotune.create_task("test_tuner.huge", (8,))
    assert len(task.config_space) == 20 ** 6

    def order(seed):
        tuner = RandomTuner(task, seed=seed)
        return [c.index for _ in range(4) for c in tuner.next_batch(50)]
    first = order(3)
    assert len(set(first)) == 200 and first == order(3)
    assert len({i // 20 ** 5 for i in first}) > 10      # spread over the first knob too


def trials_to_reach(tuner, best, n_trial, cost):
    m = synthetic(cost)
    tuner.tune(n_trial=n_trial, measure=m, progress=False)
    trials = list(dict.fromkeys(m.calls))   # a surprise's re-measurements are not trials
    assert len(trials) == len(tuner.history) and max(map(m.calls.count, trials)) <= 3
    return next((k + 1 for k, i in enumerate(trials)
                 if tuner.space.get(i).to_dict() == best), None)


def small_sa():
    return SimulatedAnnealing(n_walkers=16, n_steps=20)


@pytest.mark.parametrize("loss_type", ["rank", "reg"])
def test_xgb_tuner_with_knob_features_finds_the_optimum_in_a_third_of_the_space(loss_type):
    """The first plan (16 points) is random, later ones follow the model: on a smooth bowl it
    reaches the optimum within 64 of 192 trials, where a random search expects 96."""
    for seed in range(2):
        tuner = XGBTuner(knob_task(), plan_size=16, feature_type="knob", loss_type=loss_type,
                         optimizer=small_sa(), num_threads=1, seed=seed)
        assert trials_to_reach(tuner, KNOB_BEST, 64, knob_cost) is not None, seed
        assert tuner.best_config.to_dict() == KNOB_BEST
        assert tuner.model is not None and len(tuner.plan_seconds) >= 2


def test_xgb_tuner_with_loop_features_finds_the_best_tiles():
    """Loop features of the lowered programs (itervar) must carry the tile sizes and the
    vectorization, or the model could not steer to the best of 2 * 6 * 6 points within two
    plans of 8 (a random search finds it that soon one time in five)."""
    task = autotune.create_task("test_tuner.matmul", (32, 32, 8))
    assert len(task.config_space) == 72
    best = {"tile_i": [-1, 8], "tile_j": [-1, 16], "vec": True}
    for seed in range(3):
        tuner = XGBTuner(task, plan_size=8, feature_type="itervar", optimizer=small_sa(),
                         num_threads=1, seed=seed)
        assert trials_to_reach(tuner, best, 16, tile_cost) is not None, seed
        assert len(tuner._features) <= len(task.config_space)   # each point lowered once


def test_screening_bounds_the_lowerings_of_a_plan():
    """In a space of 20^6 points, annealing on the loop-feature model would lower up to
    n_walkers x n_steps points per plan; with the knob-model screen a plan lowers at most
    screen_ratio x plan_size new points, and the search still homes in on the best knobs."""
    task = autotune.create_task("test_tuner.huge", (8,))

    def cost(v):
        return 1e-3 * (1 + sum((v[f"k{k}"] - 7) ** 2 for k in range(6)))
    tuner = XGBTuner(task, plan_size=8, feature_type="itervar", num_threads=1, seed=0,
                     screen_ratio=4)
    tuner.tune(n_trial=32, measure=synthetic(cost), progress=False)
    plans = len(tuner.plan_seconds)
    assert plans == 4 and tuner.model is not None and tuner._screen is not None
    assert len(tuner._features) <= 32 + (plans - 1) * 4 * 8
    first = min(cost(task.config(i).to_dict()) for i, _ in tuner.history[:8])
    assert tuner.best_cost < first / 2   # the model-guided plans beat the random one


def test_exploration_points_are_new_and_half_are_neighbours_of_the_best():
    """Beside the knob walk, the loop-feature model ranks random points and one-knob
    neighbours of the best measured ones; none of them is excluded (visited or planned)."""
    task = autotune.create_task("test_tuner.huge", (8,))
    space = task.config_space
    tuner = XGBTuner(task, seed=3)
    best = [space.random_index(tuner.rng) for _ in range(2)]
    exclude = {space.neighbour(best[0], tuner.rng) for _ in range(20)} | set(best)
    picks = tuner._explore(40, exclude, best)
    assert len(picks) == len(set(picks)) == 40 and not set(picks) & exclude

    def distance(a, b):
        return sum(x != y for x, y in zip(space.choices(a), space.choices(b)))
    near = [i for i in picks if min(distance(i, b) for b in best) == 1]
    assert 15 <= len(near) <= 25   # about half; a random point of 20^6 is never one move away
    assert len(tuner._explore(5, set(), [])) == 5   # no measured point yet: all random


def test_feature_pool_matches_lowering_here_and_caps_each_candidate():
    """Forked children give exactly the features of lowering in this process; a point whose
    lowering raises or overruns the time cap has none, and the pool goes on serving (the
    child that hung is replaced)."""
    task = autotune.create_task("test_tuner.stubborn", (48,))
    space = task.config_space
    ok = [i for i in range(len(space)) if space.get(i).to_dict()["mode"] == "ok"]
    bad = [space.index_of({"mode": m, "tile": [-1, 4]}) for m in ("raises", "hangs")]
    with FeaturePool(task, workers=2, timeout=2.0) as pool:
        started = time.perf_counter()
        got = pool.extract(ok[:2] + bad + ok[2:] + ok[:1])
        assert time.perf_counter() - started < 30
        assert got[2] is None and got[3] is None
        for vec, i in zip(got[:2] + got[4:], ok + ok[:1]):
            np.testing.assert_array_equal(vec, extract_one(task, i))
        assert pool.extract([]) == []
        np.testing.assert_array_equal(pool.extract([ok[0]])[0], got[0])
    with pytest.raises(ValueError, match="timeout"):
        FeaturePool(task, timeout=0)


def test_xgb_tuner_never_proposes_points_that_do_not_lower():
    """Points whose features failed are left out of every later plan, random picks included;
    the tuner stops when only they are left."""
    task = autotune.create_task("test_tuner.stubborn", (48,))
    space = task.config_space
    bad = {i for i in range(len(space)) if space.get(i).to_dict()["mode"] != "ok"}
    tuner = XGBTuner(task, plan_size=4, optimizer=small_sa(), num_threads=1, seed=0,
                     feature_timeout=2.0)
    tuner._feature_rows(sorted(bad))
    assert tuner._unbuildable == bad
    m = synthetic(lambda v: 1e-3 * v["tile"][1])
    tuner.tune(n_trial=len(space), measure=m, progress=False)
    assert not bad & set(m.calls) and len(m.calls) == len(space) - len(bad)
    assert tuner._pool is None       # tune released the pool's processes


def test_transfer_from_another_shape_trains_the_first_plan(tmp_path):
    """Records of the same template on another shape (and the same best tiles) make the very
    first plan model-driven; with knob features transfer is refused."""
    db = TuningDatabase(tmp_path / "tune.db")
    source = autotune.create_task("test_tuner.matmul", (32, 32, 8))
    RandomTuner(source, seed=0).tune(n_trial=40, db=db, measure=synthetic(tile_cost),
                                     progress=False)
    target = autotune.create_task("test_tuner.matmul", (64, 32, 8))
    tuner = XGBTuner(target, plan_size=8, transfer_from=db, random_share=0.0,
                     optimizer=small_sa(), num_threads=1, seed=0)
    first = tuner.next_batch(8)
    assert tuner.model is not None
    assert {"tile_i": [-1, 8], "tile_j": [-1, 16], "vec": True} in [c.to_dict() for c in first]
    with pytest.raises(ValueError, match="itervar"):
        XGBTuner(target, feature_type="knob", transfer_from=db)


def test_diversity_filter_prefers_new_knob_values():
    """Of near-copies of the best candidate, the filter keeps one and takes a point with new
    values instead; a tuner with the filter still finds the optimum."""
    task = knob_task()
    space = task.config_space
    tuner = XGBTuner(task, feature_type="knob", diversity_filter_ratio=2)
    near = [space.index_of({"a": 5, "b": 2, "c": c}) for c in (1, 0, 2)]
    far = space.index_of({"a": 0, "b": 0, "c": 3})
    assert tuner._diverse(near + [far], 2) == [near[0], far]
    tuner = XGBTuner(task, plan_size=16, feature_type="knob", diversity_filter_ratio=2,
                     optimizer=small_sa(), num_threads=1, seed=0)
    assert trials_to_reach(tuner, KNOB_BEST, 64, knob_cost) is not None


def test_early_stopping_counts_trials_without_improvement():
    """In grid order the first point is the best, so the run stops 10 trials later."""
    m = synthetic(lambda v: 1e-3 * (1 + v["a"] + v["b"] + v["c"]))
    tuner = GridSearchTuner(knob_task()).tune(n_trial=100, early_stopping=10, measure=m,
                                             progress=False)
    assert len(m.calls) == 11 and tuner.best_config.index == 0


def test_resume_from_the_database_measures_only_new_points(tmp_path):
    path = tmp_path / "tune.db"
    task = knob_task()
    first = synthetic(knob_cost)
    RandomTuner(task, seed=0).tune(n_trial=40, db=path, measure=first, progress=False,
                                   verify=0)
    with TuningDatabase(path) as db:
        assert db.count(task.key) == 40

    second = synthetic(knob_cost)
    tuner = XGBTuner(task, plan_size=16, feature_type="knob", optimizer=small_sa(),
                     num_threads=1, seed=0)
    model_at_first_batch = []
    tuner.tune(n_trial=100, db=str(path), measure=second, progress=False, verify=0,
               callbacks=[lambda t, i, r: model_at_first_batch.append(t.model is not None)])
    assert len(second.calls) == 60 and not set(second.calls) & set(first.calls)
    assert len(tuner.history) == 100
    assert model_at_first_batch[0]      # the records trained the model of the first plan

    third = synthetic(knob_cost)
    again = RandomTuner(task).tune(n_trial=100, db=path, measure=third, progress=False,
                                   verify=0)
    assert third.calls == [] and len(again.history) == 100
    assert again.best_cost == tuner.best_cost
    with TuningDatabase(path) as db:
        assert db.count(task.key) == 100
        assert db.best(task.key).config == tuner.best_config.to_dict()


def test_records_that_no_longer_fit_the_space_are_ignored(tmp_path):
    task = knob_task()
    db = TuningDatabase(tmp_path / "tune.db")
    result = MeasureResult((1e-3,), 0, "", 0.0, time.time())
    db.add_result(task, {"a": 1, "b": 1, "c": 1}, result)
    db.add_result(task, {"a": 99, "b": 1, "c": 1}, result)
    db.add_result(task, {"a": 1, "b": 1}, result)
    tuner = GridSearchTuner(task)
    assert tuner.load_history(db) == 1
    assert tuner.best_config.to_dict() == {"a": 1, "b": 1, "c": 1}


def test_callbacks_see_every_batch():
    seen = []
    GridSearchTuner(knob_task()).tune(
        n_trial=25, measure=synthetic(knob_cost), progress=False, batch_size=10,
        callbacks=[lambda tuner, inputs, results: seen.append(
            ([i.config.index for i in inputs], len(results), len(tuner.history)))])
    assert seen == [(list(range(10)), 10, 10), (list(range(10, 20)), 10, 20),
                    ([20, 21, 22, 23, 24], 5, 25)]


def test_progress_bar_or_one_log_line_per_batch(capsys, caplog, monkeypatch):
    GridSearchTuner(knob_task()).tune(n_trial=12, measure=synthetic(knob_cost), batch_size=5)
    err = capsys.readouterr().err
    assert "12/12" in err and "GFLOPS" in err
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)     # as if tqdm were not installed
    with caplog.at_level(logging.INFO, logger="tensorc.autotune"):
        GridSearchTuner(knob_task()).tune(n_trial=12, measure=synthetic(knob_cost),
                                          batch_size=5)
    lines = [r.getMessage() for r in caplog.records if "trials, best" in r.getMessage()]
    assert len(lines) == 3 and "12/12 trials" in lines[-1] and "config #9" in lines[-1]


def test_simulated_annealing_finds_the_top_points_and_skips_excluded_ones():
    space = knob_task().config_space
    target = np.array([5, 2, 1])

    def score(indices):
        out = np.array([-np.abs(np.array(space.choices(i)) - target).sum() for i in indices],
                       dtype=float)
        out[[space.choices(i)[0] == 7 for i in indices]] = -np.inf   # unbuildable
        return out

    best = space.index_of(KNOB_BEST)
    sa = SimulatedAnnealing(n_walkers=8, n_steps=60, early_stop=None)
    top = sa.find_maximums(space, score, 4, exclude={best}, rng=np.random.default_rng(0))
    assert best not in top and len(top) == 4
    assert sorted(score(top)) == [-1.0] * 4      # the four runners-up one step from the best
    assert all(space.choices(i)[0] != 7 for i in top)


def test_bad_arguments_are_named():
    task = knob_task()
    with pytest.raises(ValueError, match="feature_type"):
        XGBTuner(task, feature_type="curve")
    with pytest.raises(ValueError, match="loss_type"):
        XGBTuner(task, loss_type="hinge")
    with pytest.raises(ValueError, match="n_trial"):
        RandomTuner(task).tune(n_trial=-1, measure=synthetic(knob_cost))
    with pytest.raises(ValueError, match="not both"):
        RandomTuner(task).tune(n_trial=1, measure=synthetic(knob_cost),
                               measure_option=MeasureOption())


def test_real_measurement_end_to_end(tmp_path):
    """A few real candidates: built, checked against the oracle, timed and recorded."""
    task = autotune.create_task("test_tuner.matmul", (24, 20, 9))
    option = MeasureOption(repeat=2, min_repeat_ms=0, timeout=30, n_parallel_builds=2)
    tuner = XGBTuner(task, plan_size=4, feature_type="itervar", num_threads=1, seed=0,
                     optimizer=SimulatedAnnealing(n_walkers=4, n_steps=3))
    tuner.tune(n_trial=6, db=tmp_path / "tune.db", measure_option=option, progress=False)
    assert len(tuner.history) == 6
    assert all(r.error_no == MeasureErrorNo.NO_ERROR for _, r in tuner.history)
    assert tuner.best_flops > 0 and tuner.best_config is not None
    with TuningDatabase(tmp_path / "tune.db") as db:
        rec = db.best(task.key)
        # the best few and the baseline were measured again: what the database ranks first
        # has three measurements (pooled), whichever of the candidates it is now
        assert db.measurements(task.key, rec.config) >= 3 and len(rec.costs) >= 6
        assert db.measurements(task.key, task.baseline_config().to_dict()) >= 3
    assert task.config(rec.config).index in {0, *(i for i, _ in tuner.history)}


def test_a_stalled_tuner_plans_more_random_points(monkeypatch):
    """After STALL_PLANS plans with no new best, half the next plan is random points; while
    the best still moves, the usual random share."""
    task = autotune.create_task("test_tuner.huge", (8,))
    tuner = XGBTuner(task, plan_size=8, seed=1, random_share=0.125)
    window = xgb_tuner.STALL_PLANS * 8
    tuner._measured = {i: 1.0 + 0.1 * i for i in range(8)}   # improving: not stalled
    assert not tuner._stalled()
    tuner._measured.update({100 + i: 1.0 for i in range(window)})
    assert tuner._stalled()
    tuner._measured[999] = 2.0                                # a new best in the window
    assert not tuner._stalled()
    shares = []
    real = tuner._random_unvisited
    monkeypatch.setattr(tuner, "_fit", lambda: True)
    monkeypatch.setattr(tuner, "_screen", None)
    monkeypatch.setattr(tuner.optimizer, "find_maximums", lambda space, score, n, **k: [])
    monkeypatch.setattr(tuner, "_random_unvisited",
                        lambda n, exclude: shares.append(n) or real(n, exclude=exclude))
    tuner._make_plan()
    tuner._measured.update({200 + i: 1.0 for i in range(window)})
    tuner._make_plan()
    assert shares[0] == 1 and shares[2] == 8 * xgb_tuner.STALLED_RANDOM_SHARE
