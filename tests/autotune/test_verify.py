"""Re-measurement before trust: a configuration whose first measurement was lucky loses its
place once measured again, the default schedule is measured as often as its challengers, and
a resumed run measures in the database's unit."""
import time

from tensorc import autotune
from tensorc.autotune.database import TuningDatabase
from tensorc.autotune.measure import MeasureErrorNo, MeasureResult
from tensorc.autotune.tuner import GridSearchTuner
from tensorc.autotune.verify import baseline_scale, verify_best


@autotune.template("test_verify.knobs")
def knobs(n):
    from tensorc import te
    cfg = autotune.get_config()
    cfg.define_knob("a", [0, 1, 2, 3, 4, 5])
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] + 1.0, name="B")
    return te.create_schedule(B.op), [A, B]


def noisy(true_cost, lucky):
    """Measures each config at its true cost, except the first measurement of ``lucky``
    configs, which comes out at half."""
    seen = set()

    def measure(task, configs):
        out = []
        for cfg in configs:
            a = cfg.to_dict()["a"]
            measure.calls.append(a)
            c = true_cost[a] * (0.5 if a in lucky and a not in seen else 1.0)
            seen.add(a)
            out.append(MeasureResult((c, c, c), MeasureErrorNo.NO_ERROR, "", 0.0, time.time()))
        return out
    measure.calls = []
    return measure


TRUE = {0: 1.0, 1: 0.9, 2: 0.8, 3: 0.7, 4: 0.75, 5: 0.95}


def test_a_lucky_first_measurement_is_demoted(tmp_path):
    task = autotune.create_task("test_verify.knobs", (7,))
    measure = noisy(TRUE, lucky={5, 1})      # measured at 0.475 and 0.45: "the best two"
    with TuningDatabase(tmp_path / "t.db") as db:
        GridSearchTuner(task).tune(n_trial=6, db=db, measure=measure, progress=False,
                                   verify=0)
        assert db.best(task.key).config == {"a": 1}
        made = verify_best(task, db, measure, top=2, rounds=3)
        best = db.best(task.key)
        assert best.config == {"a": 3} and best.median_cost == 0.7
        # 5 and 1 fell back; 3 and 4 moved up and were verified in turn; the baseline too
        for a in (1, 5, 3, 4, 0):
            assert db.measurements(task.key, {"a": a}) >= 3, a
        assert db.measurements(task.key, {"a": 2}) == 1
        assert made == len(measure.calls) - 6
        assert verify_best(task, db, measure, top=2, rounds=3) == 0   # nothing left to do


def test_tune_verifies_by_default_and_resumes_in_the_database_unit(tmp_path):
    task = autotune.create_task("test_verify.knobs", (7,))
    measure = noisy(TRUE, lucky={5})
    with TuningDatabase(tmp_path / "t.db") as db:
        GridSearchTuner(task).tune(n_trial=6, db=db, measure=measure, progress=False)
        assert db.best(task.key).config == {"a": 3}
        assert baseline_scale(task, db) == TRUE[0]      # point 0 is the baseline


def test_no_database_record_no_scale(tmp_path):
    task = autotune.create_task("test_verify.knobs", (7,))
    with TuningDatabase(tmp_path / "t.db") as db:
        assert baseline_scale(task, db) is None
