"""The XGBoost cost model on synthetic records whose throughput is a known nonlinear function of
a few features, and the ranking metrics it is judged by."""
import numpy as np
import pytest

from tensorc.autotune.cost_model import (
    XGBoostCostModel,
    kendall_tau,
    ranking_quality,
    spearman,
    top_k_recall,
)


def records(n, seed, width=30, scale=1.0):
    """Rows of random features; throughput peaks at x0 = 0.6, falls with x1 * x2, grows with x3;
    rows with x4 > 0.9 fail (0), as configurations outside what the hardware allows do."""
    rng = np.random.default_rng(seed)
    xs = rng.uniform(0.0, 1.0, (n, width)).astype(np.float32)
    xs[:, 10:15] = np.round(xs[:, 10:15] * 4)  # a few discrete columns, like loop extents
    xs[:, 20:] = 0.0                           # and constant ones
    ys = scale * np.exp(-3 * ((xs[:, 0] - 0.6) ** 2 + xs[:, 1] * xs[:, 2])) * (1 + xs[:, 3])
    ys[xs[:, 4] > 0.9] = 0.0
    return xs, ys


@pytest.mark.parametrize("objective", ["rank", "reg"])
def test_ranks_held_out_records(objective):
    xs, ys = records(500, seed=1)
    xt, yt = records(300, seed=2)
    model = XGBoostCostModel(objective, num_threads=1).fit(xs, ys)
    q = ranking_quality(model, xt, yt, k=30)
    assert q["spearman"] > 0.85 and q["kendall"] > 0.65 and q["top_k_recall"] > 0.5


@pytest.mark.parametrize("objective", ["rank", "reg"])
def test_deterministic_with_a_seed(objective):
    xs, ys = records(300, seed=3)
    xt, _ = records(50, seed=4)
    a = XGBoostCostModel(objective, seed=5, num_threads=1).fit(xs, ys).predict(xt)
    b = XGBoostCostModel(objective, seed=5, num_threads=1).fit(xs, ys).predict(xt)
    np.testing.assert_array_equal(a, b)


def test_update_appends_and_refits():
    xs, ys = records(400, seed=6)
    xt, yt = records(300, seed=7)
    model = XGBoostCostModel("reg", num_threads=1).fit(xs[:40], ys[:40])
    early = spearman(model.predict(xt), yt)
    for start in range(40, 400, 120):
        model.update(xs[start:start + 120], ys[start:start + 120])
    assert "records=400" in repr(model)
    np.testing.assert_array_equal(
        model.predict(xt), XGBoostCostModel("reg", num_threads=1).fit(xs, ys).predict(xt))
    assert spearman(model.predict(xt), yt) > early + 0.2
    model.fit(xs[:50], ys[:50])  # fit replaces the records
    assert "records=50" in repr(model)


@pytest.mark.parametrize("objective", ["rank", "reg"])
def test_warm_start_with_another_task_helps_a_small_task(objective):
    xs, ys = records(20, seed=8)
    other_x, other_y = records(600, seed=9, scale=7.0)  # same landscape, other throughput scale
    xt, yt = records(300, seed=10)
    alone = XGBoostCostModel(objective, num_threads=1).fit(xs, ys)
    helped = XGBoostCostModel(objective, num_threads=1).warm_start(other_x, other_y).fit(xs, ys)
    assert "transfer_groups=1" in repr(helped)
    assert spearman(helped.predict(xt), yt) > spearman(alone.predict(xt), yt) + 0.3


@pytest.mark.parametrize("objective", ["rank", "reg"])
def test_transfer_only_model_then_own_records(objective):
    """With no records of its own, a model trains on warm-start data alone; the task's own
    records then join the same model."""
    other_x, other_y = records(600, seed=13, scale=5.0)
    own_x, own_y = records(200, seed=14)
    xt, yt = records(300, seed=15)
    model = XGBoostCostModel(objective, num_threads=1).warm_start(other_x, other_y)
    assert spearman(model.fit().predict(xt), yt) > 0.8
    assert "records=0" in repr(model)
    np.testing.assert_array_equal(model.predict(xt), model.fit(own_x[:0], own_y[:0])
                                  .predict(xt))
    model.update(own_x, own_y)
    assert "records=200" in repr(model) and "transfer_groups=1" in repr(model)
    assert spearman(model.predict(xt), yt) > 0.8
    with pytest.raises(ValueError, match="no records"):
        XGBoostCostModel(objective).fit()
    with pytest.raises(ValueError, match="3 throughputs for no feature rows"):
        model.fit(own_x[:0], own_y[:3])


def test_predict_scores_only_the_columns_trained_on():
    """Columns constant over the training rows are dropped; predictions read the same columns
    and equal the booster's own prediction on them, whatever the dropped columns hold."""
    import xgboost as xgb
    xs, ys = records(200, seed=16)
    xt, _ = records(40, seed=17)
    model = XGBoostCostModel("reg", num_threads=1).fit(xs, ys)
    kept = model._columns
    assert 20 not in kept and 0 in kept
    want = model._booster.predict(xgb.DMatrix(xt[:, kept]))
    np.testing.assert_array_equal(model.predict(xt), want)
    noisy = xt.copy()
    noisy[:, 20:] = np.random.default_rng(18).uniform(size=(40, 10))
    np.testing.assert_array_equal(model.predict(noisy), want)
    assert model.predict(xt[:0]).shape == (0,)


def test_all_failed_records_fit():
    xs, _ = records(30, seed=11)
    pred = XGBoostCostModel("rank", num_threads=1).fit(xs, np.zeros(30)).predict(xs)
    assert pred.shape == (30,) and np.isfinite(pred).all()


def test_errors_are_clear():
    model = XGBoostCostModel()
    xs, ys = records(20, seed=12)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(xs)
    with pytest.raises(ValueError, match="objective"):
        XGBoostCostModel("lambdamart")
    with pytest.raises(ValueError, match=">= 0"):
        model.fit(xs, -ys)
    with pytest.raises(ValueError, match="one value per feature row"):
        model.fit(xs, ys[:-1])
    with pytest.raises(ValueError, match="2-D"):
        model.fit(xs[0], ys[:1])
    model.fit(xs, ys)
    with pytest.raises(ValueError, match="29 columns"):
        model.predict(xs[:, 1:])


def test_rank_metrics():
    truth = np.array([0.5, 3.0, 1.0, 2.0, 4.0])
    assert spearman(truth * 2 + 1, truth) == pytest.approx(1.0)
    assert spearman(-truth, truth) == pytest.approx(-1.0)
    # One swapped neighbouring pair out of ten pairs: tau = (9 - 1) / 10.
    swapped = np.array([0.5, 2.0, 1.0, 3.0, 4.0])
    assert kendall_tau(swapped, truth) == pytest.approx(0.8)
    # rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)) with d = (0, 1, 0, 1, 0).
    assert spearman(swapped, truth) == pytest.approx(1 - 6 * 2 / (5 * 24))
    assert spearman(np.ones(5), truth) == 0.0
    assert top_k_recall(swapped, truth, k=1) == 1.0 and top_k_recall(swapped, truth, k=2) == 0.5
    assert top_k_recall(-truth, truth, k=2) == 0.0
    assert top_k_recall(np.array([0, 0, 0, 1.0, 2.0]), truth, k=2) == 0.5
