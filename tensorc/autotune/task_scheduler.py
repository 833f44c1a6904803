"""Tuning many tasks at once: trials go where they buy the most model latency.

A model's tasks differ in weight (how often the model runs the kernel), in how slow they are
and in how much tuning still improves them. After one batch each, every next batch goes to
the task with the largest expected gain: weight x current best latency x its recent relative
improvement -- the shape of Ansor's task scheduler, without its gradient terms across similar
tasks. A stalled task is credited a floor that shrinks with the trials it has spent since its
last real improvement, so every stalled task gets batches in turn. With a fixed floor the
heaviest task always won once all had stalled: two ResNet-18 runs gave its layer-4 conv 1216
of 1500 trials and one batch of 16 to each other conv, though single batches had found
1.2-1.4x on some of them (benchmarks/RESULTS.md, twelfth session).

Each task's default schedule (the ``DEFAULT`` record of a model task) is measured first, so
the best latency starts at what the model runs untuned and a tuned kernel counts only when
it beats it. After the trials, each task's best few configurations and its default are
measured again (``verify.verify_best``), and the reported latencies are those pooled
measurements, not the search's single ones.
"""
import logging
import statistics

from .graph_tasks import DEFAULT, DefaultConfig
from .measure import Measurer
from .tuner import GridSearchTuner, RandomTuner, _Injected, _open_database
from .verify import baseline_scale, verify_best
from .xgb_tuner import XGBTuner

log = logging.getLogger("tensorc.autotune")

TUNERS = {"xgb": XGBTuner, "random": RandomTuner, "grid": GridSearchTuner}

#: Relative improvement credited to a task whose last batch found nothing better, scaled by
#: STALL_TRIALS / (STALL_TRIALS + trials since the task last improved by MIN_GAIN or more).
MIN_GAIN = 0.02
STALL_TRIALS = 32


class TaskState:
    """Bookkeeping of one task: its tuner, default and best latency, trials spent."""

    def __init__(self, task, tuner):
        self.task, self.tuner = task, tuner
        self.default_cost = None
        self._settled_tuned = None
        self.gain = 1.0
        self.improved_at = 0     # trials when the task last improved by MIN_GAIN or more

    @property
    def weight(self):
        return getattr(self.task, "weight", 1)

    @property
    def trials(self):
        return len(self.tuner.history)

    @property
    def tuned_cost(self):
        if self._settled_tuned is not None:
            return self._settled_tuned
        best = self.tuner.best_flops
        return self.task.flop / best if best else None

    @property
    def best_cost(self):
        costs = [c for c in (self.default_cost, self.tuned_cost) if c]
        return min(costs) if costs else None

    def settle(self, database):
        """Take the default and tuned latencies from the database's pooled records."""
        default, tuned = None, None
        for rec in database.ranked(self.task.key, self.task.target):
            if rec.config == DEFAULT:
                default = default or rec.median_cost
            else:
                tuned = tuned or rec.median_cost
        self.default_cost = default or self.default_cost
        self._settled_tuned = tuned

    def row(self):
        return {"task": self.task.key, "weight": self.weight, "trials": self.trials,
                "default_s": self.default_cost, "best_s": self.best_cost,
                "tuned_s": self.tuned_cost}


def tune_tasks(tasks, trials, db, tuner="xgb", measure_option=None, batch_size=16,
               early_stopping=None, progress=True, measure=None, seed=0, verify=3):
    """Spread ``trials`` measurements over ``tasks`` (see the module docstring), recording
    every result in ``db``; resumes from the records already there. ``verify``: how many of
    each task's best configurations are re-measured (with the default) until each has 3
    measurements; 0 skips it. Returns one dict per task: key, weight, trials, default / tuned
    / best seconds (pooled medians from the database)."""
    if tuner not in TUNERS:
        raise ValueError(f"tune_tasks: unknown tuner {tuner!r}; choose from {sorted(TUNERS)}")
    database, own_db = _open_database(db)
    measurer = _Injected(measure) if measure is not None else Measurer(measure_option)
    kwargs = {} if tuner == "grid" else {"seed": seed}
    states = [TaskState(t, TUNERS[tuner](t, **kwargs)) for t in tasks]
    bar = None
    try:
        for st in states:
            st.tuner.load_history(database.records(st.task.key))
            st.default_cost = _default_cost(st.task, database, measurer)
        spent = sum(st.trials for st in states)
        bar = _bar(trials, spent, progress)
        fresh = [st for st in states if st.trials == 0]
        while spent < trials:
            live = [st for st in states if st.tuner.has_next() and not _stopped(st, early_stopping)]
            if not live:
                break
            st = fresh.pop(0) if fresh else max(live, key=_priority)
            before = st.best_cost
            n = min(batch_size, trials - spent)
            st.tuner.tune(st.trials + n, db=database, measure=measurer.measure, progress=False,
                          batch_size=n, verify=0)
            after = st.best_cost
            st.gain = (before - after) / before if before and after else 1.0
            if st.gain >= MIN_GAIN:
                st.improved_at = st.trials
            done = sum(s.trials for s in states) - spent
            spent += done
            if bar is not None:
                bar.update(done)
            if done == 0:
                st.gain = -1.0            # nothing left to propose for this task
        for st in states if database is not None else ():
            verify_best(st.task, database, measurer, top=verify)
            st.settle(database)
    finally:
        if bar is not None:
            bar.close()
        measurer.close()
        if own_db:
            database.close()
    return [st.row() for st in states]


def _priority(st):
    if st.gain < 0:
        return -1.0
    floor = MIN_GAIN * STALL_TRIALS / (STALL_TRIALS + st.trials - st.improved_at)
    return st.weight * (st.best_cost or 1.0) * max(st.gain, floor)


def _stopped(st, early_stopping):
    return early_stopping is not None and st.trials - st.tuner._best_at >= early_stopping


def _default_cost(task, database, measurer):
    """The measured median latency of the task's default schedule, measured now unless the
    database has it; None for a task without one (a plain template)."""
    scale = baseline_scale(task, database)
    if scale is not None and hasattr(measurer, "set_baseline_scale"):
        measurer.set_baseline_scale(task, scale)
    if not hasattr(task, "group"):
        return None
    if scale is not None:
        return scale
    (res,) = measurer.measure(task, [DefaultConfig()])
    database.add_result(task, dict(DEFAULT), res, index=-1)
    if res.error_no != 0:
        log.warning("%s: the default schedule failed to measure: %s", task.key, res.error_msg)
        return None
    return statistics.median(res.costs)


def _bar(total, done, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=min(done, total), desc="tuning", unit="trial")
