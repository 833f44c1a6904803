"""Tuners: which points of a task's space to measure, in what order, and the tuning loop.

    tuner = XGBTuner(task)
    tuner.tune(n_trial=256, db="tune.db", early_stopping=96)
    tuner.best_config, tuner.best_flops

A tuner proposes batches (``next_batch``), never the same point twice, and learns from their
measurements (``update``); ``tune`` runs that loop, files every result in the tuning database
and stops at ``n_trial`` trials, when the space is exhausted, or after ``early_stopping`` trials
without a better result. Failed candidates (a crash, a timeout, a wrong answer) are results
too: they count as trials, score zero speed and are never proposed again.

Tuning resumes: ``tune`` first loads the task's records for its target from the database, as
if it had measured them itself, so a run that was interrupted continues where it stopped
(``n_trial`` counts those records) and the model starts from everything measured so far.

``RandomTuner`` and ``GridSearchTuner`` are the baselines; ``XGBTuner`` (xgb_tuner.py)
steers the search with a cost model and simulated annealing (sa.py).
"""
import logging
import math
import os
import statistics
import time

import numpy as np

from .measure import MeasureInput, Measurer, MeasureResult
from .space import SpaceError
from .verify import baseline_scale, verify_best

log = logging.getLogger("tensorc.autotune")

#: A candidate measured below this fraction of the best cost so far is measured once more
#: before the search believes it (``Tuner._confirmed``).
SURPRISE = 0.8

# Spaces up to this many points are sampled without replacement from one permutation;
# larger ones by rejection against the visited set (rarely hit while the space is large).
_PERMUTE_LIMIT = 1 << 20


def cost_of(result):
    """Median seconds per run of a measurement or record; inf for a failed one.

    Tuners compare costs, not flop rates, so that a task without arithmetic (a copy) tunes
    too; the model learns from speeds (1 / cost), which rank the same as flop rates."""
    if result.error_no != 0 or not result.costs:
        return math.inf
    median = statistics.median(result.costs)
    return median if median > 0 else math.inf


def _speed(result):
    return 1.0 / cost_of(result)


class Tuner:
    """The tuning loop and its bookkeeping; subclasses choose the points (``next_batch``)."""

    #: Points measured per round of ``tune`` (one measurement call, one database write).
    batch_size = 32

    def __init__(self, task, seed=None):
        self.task = task
        self.space = task.config_space
        self.rng = np.random.default_rng(seed)
        self.visited = set()
        self.history = []
        self.best_config = None
        self.best_cost = math.inf
        self.best_flops = 0.0
        self._best_at = 0      # len(history) when the best result arrived
        self._order = None     # random permutation of a small space, consumed from _order_at
        self._order_at = 0

    # --- the proposal interface
    def has_next(self):
        return len(self.visited) < len(self.space)

    def next_batch(self, batch_size):
        """Up to ``batch_size`` unvisited points (fewer when the space runs out); they count as
        visited from now on."""
        raise NotImplementedError

    def update(self, inputs, results):
        """Learn from measurements: ``inputs`` are ``MeasureInput(task, config)`` objects of
        this task, ``results`` their ``MeasureResult`` objects in the same order."""
        for inp, res in zip(inputs, results):
            cfg = inp.config
            self.visited.add(cfg.index)
            self.history.append((cfg.index, res))
            cost = cost_of(res)
            if cost < self.best_cost:
                self.best_cost = cost
                self.best_flops = self.task.flop / cost
                self.best_config = cfg
                self._best_at = len(self.history)

    def _random_unvisited(self, n, exclude=()):
        """``n`` distinct random points outside ``visited`` and ``exclude`` (fewer if the
        space has fewer left). ``exclude`` holds points about to be proposed: a small space's
        permutation passes over them for good."""
        out, taken = [], set(exclude)
        if len(self.space) <= _PERMUTE_LIMIT:
            if self._order is None:
                self._order = self.rng.permutation(len(self.space))
            while len(out) < n and self._order_at < len(self._order):
                i = int(self._order[self._order_at])
                self._order_at += 1
                if i not in self.visited and i not in taken:
                    out.append(i)
                    taken.add(i)
            return out
        left = len(self.space) - len(self.visited | taken)
        while len(out) < min(n, left):
            i = self.space.random_index(self.rng)
            if i not in self.visited and i not in taken:
                out.append(i)
                taken.add(i)
        return out

    # --- resuming
    def load_history(self, records):
        """Continue from earlier measurements: ``records`` (database ``Record`` objects, a
        ``TuningDatabase`` or its path) of this task on this target are marked visited and fed
        to ``update`` in the order they were measured; records of other tasks are left to
        subclasses that can learn from them (``XGBTuner``). Returns how many points were new."""
        from .database import target_key
        mine, others = {}, []
        key, target = self.task.key, target_key(self.task.target)
        for rec in _records_of(records):
            if rec.task_key != key or rec.target_key != target:
                others.append(rec)
                continue
            try:
                index = self.space.index_of(rec.config)
            except SpaceError as e:
                log.debug("%s: ignoring a record that no longer fits the space (%s)", key, e)
                continue
            if index not in self.visited:
                mine.setdefault(index, []).append(rec)
        if others:
            self._load_other_tasks(others)
        if mine:
            self.update([MeasureInput(self.task, self.space.get(i)) for i in mine],
                        [_pooled_result(recs) for recs in mine.values()])
            log.info("%s: resumed from %d earlier trials (best %.2f GFLOPS)", key, len(mine),
                     self.best_flops / 1e9)
        return len(mine)

    def _load_other_tasks(self, records):
        """Records of other tasks or targets: of no use to a tuner without a model."""

    # --- the loop
    def tune(self, n_trial, db=None, early_stopping=None, measure_option=None, callbacks=(),
             progress=True, measure=None, batch_size=None, verify=3):
        """Measure until the history holds ``n_trial`` trials (records resumed from ``db``
        included), the space is exhausted, or ``early_stopping`` trials in a row brought no
        improvement.

        ``db``: a ``TuningDatabase`` or path where every result is recorded and from which an
        earlier run resumes. ``measure``: a callable ``(task, configs) -> [MeasureResult]``
        replacing real measurement (``measure_option`` configures the real one, a
        ``Measurer`` kept for the whole run). ``callbacks``: called as ``cb(tuner, inputs,
        results)`` after each batch, with ``MeasureInput`` objects as inputs. ``verify``: with
        ``db``, how many of the best configurations are re-measured at the end, with the
        baseline, until each has 3 measurements (``verify.py``); 0 skips it.
        Returns the tuner.
        """
        if n_trial < 0:
            raise ValueError(f"tune: n_trial must be >= 0, got {n_trial}")
        if early_stopping is not None and early_stopping < 1:
            raise ValueError(f"tune: early_stopping must be >= 1 or None, got {early_stopping}")
        if measure is not None and measure_option is not None:
            raise ValueError("tune: pass measure= or measure_option=, not both")
        database, own_db = _open_database(db)
        measurer = bar = None
        try:
            if database is not None:
                self.load_history(database.records(self.task.key))
            bar = _Progress(self, n_trial, progress)
            while len(self.history) < n_trial and self.has_next():
                n = min(batch_size or self.batch_size, n_trial - len(self.history))
                if early_stopping is not None:
                    n = min(n, early_stopping - (len(self.history) - self._best_at))
                    if n <= 0:
                        log.info("%s: early stopping after %d trials without improvement",
                                 self.task.key, early_stopping)
                        break
                configs = self.next_batch(n)
                if not configs:
                    break
                if measurer is None:   # started only once there is something to measure
                    measurer = self._measurer(measure, measure_option, database)
                results = list(measurer.measure(self.task, configs))
                if len(results) != len(configs):
                    raise RuntimeError(f"tune: the measurer returned {len(results)} results "
                                       f"for {len(configs)} configs of task {self.task.key}")
                for cfg, res in zip(configs, results):
                    if res.error_no != 0:
                        log.debug("%s: config #%d failed (error %d): %s", self.task.key,
                                  cfg.index, res.error_no, res.error_msg)
                    if database is not None:
                        database.add_result(self.task, cfg.to_dict(), res, index=cfg.index)
                results = self._confirmed(measurer, database, configs, results)
                inputs = [MeasureInput(self.task, cfg) for cfg in configs]
                self.update(inputs, results)
                for callback in callbacks:
                    callback(self, inputs, results)
                bar.advance(len(configs))
            if database is not None and verify and self.history:
                if measurer is None:
                    measurer = self._measurer(measure, measure_option, database)
                verify_best(self.task, database, measurer, top=verify)
        finally:
            if bar is not None:
                bar.close()
            if measurer is not None:
                measurer.close()
            if own_db:
                database.close()
            self.close()
        return self

    def _confirmed(self, measurer, database, configs, results):
        """``results`` with each surprising one (a cost below SURPRISE x the best so far)
        measured again, every measurement recorded in ``database``: two that agree (within
        1 / SURPRISE) are pooled, else a third decides (the measurement with the middle cost).

        Why: on a shared machine one measurement can be far off, and pairing with the
        baseline does not cancel interference that hurts the two differently. In a ResNet-18
        run (benchmarks/RESULTS.md, twelfth session) a single-threaded candidate measured
        336 us per call -- 0.67x the two-threaded default -- in four of five repeats, while
        it takes 1250 us: the baseline had lost a core for those repeats, the candidate had
        nothing to lose. The final verification demoted it, but until then it was the task's
        best -- a build from the first 10 minutes' records ran the model 1.2x slower than the
        default schedules -- and the search's model trained on it."""
        out = list(results)
        best = self.best_cost
        for k, (cfg, res) in enumerate(zip(configs, results)):
            cost = cost_of(res)
            if not (math.isfinite(best) and cost < SURPRISE * best):
                continue   # nothing to compare with yet, or no surprise
            out[k] = self._measured_again(measurer, database, cfg, res)
            log.info("%s: config #%d measured %.3g s, %.3g s after measuring it again",
                     self.task.key, cfg.index, cost, cost_of(out[k]))
            best = min(best, cost_of(out[k]))
        return out

    def _measured_again(self, measurer, database, cfg, first):
        measured = [first]
        while len(measured) < 3:
            (again,) = measurer.measure(self.task, [cfg])
            if database is not None:
                database.add_result(self.task, cfg.to_dict(), again, index=cfg.index)
            if again.error_no != 0:
                return again
            measured.append(again)
            lo, hi = sorted(cost_of(m) for m in measured[:2])
            if len(measured) == 2 and hi * SURPRISE <= lo:
                return first._replace(costs=tuple(first.costs) + tuple(again.costs))
        return sorted(measured, key=cost_of)[1]

    def _measurer(self, measure, option, database):
        if measure is not None:
            return _Injected(measure)
        measurer = Measurer(option)
        scale = baseline_scale(self.task, database) if database is not None else None
        if scale is not None:   # a resumed run measures in the first run's unit
            measurer.set_baseline_scale(self.task, scale)
        return measurer

    def close(self):
        """Release what planning holds between batches (``tune`` calls it when it returns);
        proposing again later starts afresh."""


def _records_of(source):
    from .database import TuningDatabase
    if isinstance(source, (str, os.PathLike)):
        with TuningDatabase(source) as db:
            return db.records()
    if isinstance(source, TuningDatabase):
        return source.records()
    return list(source)


def _pooled_result(records):
    """One point's records as one result: every successful cost pooled (re-measurements
    count, as in ``TuningDatabase.ranked``), else the last failure."""
    ok = [r for r in records if r.error_no == 0 and r.costs]
    last = (ok or records)[-1]
    costs = tuple(c for r in ok for c in r.costs) if ok else tuple(last.costs)
    return MeasureResult(costs=costs, error_no=last.error_no, error_msg=last.error_msg,
                         all_cost=0.0, timestamp=last.timestamp)


def _open_database(db):
    """(database or None, whether this call opened it and must close it)."""
    if db is None:
        return None, False
    from .database import TuningDatabase
    if isinstance(db, TuningDatabase):
        return db, False
    return TuningDatabase(db), True


class _Injected:
    """A user's measure callable in the shape of a measurer."""

    def __init__(self, fn):
        self.fn = fn

    def measure(self, task, configs):
        return self.fn(task, configs)

    def close(self):
        pass


class _Progress:
    """A tqdm bar over the trials when asked for and installed, else one log line per batch."""

    def __init__(self, tuner, n_trial, enabled):
        self.tuner, self.n_trial = tuner, n_trial
        self.started = time.perf_counter()
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=n_trial, initial=min(len(tuner.history), n_trial),
                                desc=tuner.task.key, unit="trial", leave=True)

    def advance(self, n):
        best = self.tuner.best_flops / 1e9
        if self.bar is not None:
            self.bar.set_postfix_str(f"best {best:.2f} GFLOPS", refresh=False)
            self.bar.update(n)
        else:
            cfg = self.tuner.best_config
            log.info("%s: %d/%d trials, best %.2f GFLOPS%s (%.0f s)", self.tuner.task.key,
                     len(self.tuner.history), self.n_trial, best,
                     f" (config #{cfg.index})" if cfg is not None else "",
                     time.perf_counter() - self.started)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class RandomTuner(Tuner):
    """Uniformly random points, without replacement."""

    def next_batch(self, batch_size):
        out = self._random_unvisited(batch_size)
        self.visited.update(out)
        return [self.space.get(i) for i in out]


class GridSearchTuner(Tuner):
    """Every point in index order (the last knob varies fastest)."""

    def __init__(self, task):
        super().__init__(task)
        self._next = 0

    def next_batch(self, batch_size):
        out = []
        while len(out) < batch_size and self._next < len(self.space):
            if self._next not in self.visited:
                out.append(self._next)
            self._next += 1
        self.visited.update(out)
        return [self.space.get(i) for i in out]


__all__ = ["GridSearchTuner", "RandomTuner", "Tuner", "cost_of"]
