"""How ``tune_tasks`` spreads trials over a model's tasks (synthetic measurements)."""
import time

import pytest

from tensorc import autotune, te
from tensorc.autotune import task_scheduler
from tensorc.autotune.measure import MeasureErrorNo, MeasureResult


@autotune.template("test_task_scheduler.knobs")
def knobs(n):
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * 2.0, name="B")
    cfg = autotune.get_config()
    cfg.define_knob("a", list(range(8)))
    cfg.define_knob("b", list(range(8)))
    cfg.define_knob("c", list(range(4)))
    return te.create_schedule(B.op), [A, B]


def _task(n, weight):
    task = autotune.create_task("test_task_scheduler.knobs", (n,))
    task.weight = weight
    return task


def _bowl(v):
    """Fastest at a = 7, b = 7, c = 3: the first batches land far from it."""
    return 1e-3 * (1 + 0.1 * ((7 - v["a"]) ** 2 + (7 - v["b"]) ** 2 + (3 - v["c"]) ** 2))


@pytest.mark.parametrize("tuner", ["random", "xgb"])
def test_a_heavy_task_that_stalls_does_not_starve_the_others(tuner, tmp_path):
    """The heavy task (weight 2, 2 ms whatever the config) has nothing to gain; the two light
    ones (weight 1) gain 2x and more from their first batches. Once all stall, a fixed floor
    would leave every batch to the heavy one; a floor that shrinks with the trials since the
    last improvement rotates them, so each light task gets several batches."""
    heavy, light1, light2 = _task(16, 2), _task(17, 1), _task(18, 1)
    calls = {t.key: 0 for t in (heavy, light1, light2)}

    def measure(task, configs):
        calls[task.key] += len(configs)
        out = []
        for cfg in configs:
            c = 2e-3 if task is heavy else _bowl(cfg.to_dict())
            out.append(MeasureResult((c, c, c), MeasureErrorNo.NO_ERROR, "", 0.0, time.time()))
        return out
    rows = task_scheduler.tune_tasks([heavy, light1, light2], 160, str(tmp_path / "t.db"),
                                     tuner=tuner,
                                     batch_size=8, measure=measure, progress=False, verify=0)
    trials = {r["task"]: r["trials"] for r in rows}
    assert sum(trials.values()) == 160
    assert trials[light1.key] >= 24 and trials[light2.key] >= 24, trials   # a fixed floor: 16
    assert trials[heavy.key] >= 16, trials   # stalled, yet still an occasional batch
