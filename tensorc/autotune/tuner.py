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

``RandomTuner`` and ``GridSearchTuner`` are the baselines; ``XGBTuner`` steers the search
with a cost model and simulated annealing (sa.py).
"""
import collections
import logging
import math
import os
import statistics
import time

import numpy as np

from .feature_pool import FeaturePool
from .measure import MeasureInput, Measurer, MeasureResult
from .sa import SimulatedAnnealing
from .space import SpaceError
from .verify import baseline_scale, verify_best

log = logging.getLogger("tensorc.autotune")

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


class XGBTuner(Tuner):
    """A cost model picks what to measure: AutoTVM's model-based tuner.

    The first plan (``plan_size`` points) is random unless transferred records already train
    the model. Each later plan refits an XGBoost model on every measured point (speed
    normalized to the best, failures at zero), then simulated annealing (``optimizer``, a
    ``SimulatedAnnealing``) searches the space for the unvisited points the model scores
    highest, starting some walkers from the best measured points; ``random_share`` of the plan
    is random points instead (exploration the model cannot argue with). With
    ``diversity_filter_ratio`` r, annealing returns r times as many candidates and a greedy
    pick keeps those that cover the most distinct knob values for their score.

    ``feature_type``: "itervar" describes each candidate by the loops of its lowered program
    (``features.extract``; one lowering per point scored, cached) -- the model then learns
    what makes code fast and can use records of other workloads; "knob" by its knob choice
    numbers (free, but the model only interpolates within this space).

    ``transfer_from`` (records, a ``TuningDatabase`` or a path; or later ``load_history``):
    records of other tasks of the same template (other shapes) become extra training data, each
    task's speeds normalized to its best. Only itervar features make another space's
    points comparable to this one's, so transfer needs ``feature_type="itervar"``.
    ``plan_seconds`` lists how long each plan took to make (fit + search).
    ``num_threads``: XGBoost's threads (default 1: the model is small, and on a loaded
    2-core machine two threads fitted 5-10x slower in wall time while builds ran).

    Loop features are computed by a ``FeaturePool``: ``feature_workers`` forked processes
    (default: the usable cores) lower each annealing step's new candidates together, and a
    candidate whose lowering fails or takes over ``feature_timeout`` seconds is never
    proposed. Features are cached by point for the tuner's life, so a plan lowers only the
    points no earlier plan scored.

    ``screen_ratio`` k: with loop features, annealing walks on a second model, fitted to the
    same measurements over knob numbers (free to compute), and only the k x plan best points
    it finds are lowered and ranked by the loop-feature model. Annealing with loop features
    lowers up to n_walkers x n_steps points per plan (1280 by default): on a 512^3 matmul's
    auto-template that took minutes per plan on 2 cores, longer than measuring the plan.
    None anneals on the loop-feature model directly (as AutoTVM does).
    """

    def __init__(self, task, plan_size=64, feature_type="itervar", loss_type="rank",
                 num_threads=1, optimizer="sa", diversity_filter_ratio=None,
                 random_share=0.1, transfer_from=None, seed=None, feature_workers=None,
                 feature_timeout=10.0, screen_ratio=8):
        super().__init__(task, seed)
        if feature_type not in ("itervar", "knob"):
            raise ValueError(f"XGBTuner: unknown feature_type {feature_type!r} "
                             "(itervar, knob)")
        if loss_type not in ("rank", "reg"):
            raise ValueError(f"XGBTuner: unknown loss_type {loss_type!r} (rank, reg)")
        if plan_size < 1 or not 0 <= random_share <= 1:
            raise ValueError(f"XGBTuner: plan_size ({plan_size}) must be >= 1 and "
                             f"random_share ({random_share}) in [0, 1]")
        if screen_ratio is not None and screen_ratio < 1:
            raise ValueError(f"XGBTuner: screen_ratio must be >= 1 or None, got {screen_ratio}")
        if diversity_filter_ratio is not None and diversity_filter_ratio < 1:
            raise ValueError("XGBTuner: diversity_filter_ratio must be >= 1 or None, got "
                             f"{diversity_filter_ratio}")
        if optimizer == "sa":
            optimizer = SimulatedAnnealing()
        elif not hasattr(optimizer, "find_maximums"):
            raise ValueError(f"XGBTuner: optimizer must be 'sa' or an object with "
                             f"find_maximums (a SimulatedAnnealing), got {optimizer!r}")
        self.plan_size = self.batch_size = int(plan_size)
        self.feature_type, self.loss_type, self.num_threads = feature_type, loss_type, num_threads
        self.optimizer = optimizer
        self.diversity_filter_ratio = diversity_filter_ratio
        self.random_share = float(random_share)
        self.model = None
        self.screen_ratio = screen_ratio
        self._screen = None   # the knob-number model annealing walks on (see screen_ratio)
        self.plan_seconds = []
        self._measured = {}   # index -> speed (1 / cost, 0 if failed), in measurement order
        self._features = {}   # index -> feature vector, None when the point does not lower
        self._unbuildable = set()   # points whose features failed: never proposed
        self._pool = None
        self._pool_args = (feature_workers, feature_timeout)
        self._transfer = {}   # (task key, target key) -> {index: (vector, speed)}
        self._plan = collections.deque()
        if transfer_from is not None:
            if feature_type != "itervar":
                raise ValueError("XGBTuner: transfer_from needs feature_type='itervar' (knob "
                                 "numbers of another task's space mean nothing in this one)")
            self.load_history(transfer_from)

    def update(self, inputs, results):
        super().update(inputs, results)
        for inp, res in zip(inputs, results):
            self._measured[inp.config.index] = _speed(res)

    def next_batch(self, batch_size):
        out = []
        while len(out) < batch_size and self.has_next():
            if not self._plan:
                self._plan.extend(self._make_plan())
                if not self._plan:
                    break
            i = self._plan.popleft()
            if i not in self.visited:
                self.visited.add(i)
                out.append(self.space.get(i))
        return out

    # --- planning
    def _make_plan(self):
        started = time.perf_counter()
        if not self._fit():
            plan = self._random_unvisited(self.plan_size, exclude=self._unbuildable)
        else:
            randoms = self._random_unvisited(round(self.plan_size * self.random_share),
                                             exclude=self._unbuildable)
            n_model = self.plan_size - len(randoms)
            ratio = self.diversity_filter_ratio or 1
            best = sorted((i for i, y in self._measured.items() if y > 0),
                          key=self._measured.get, reverse=True)
            starts = best[:getattr(self.optimizer, "n_walkers", 32) // 2]
            exclude = self.visited | set(randoms) | self._unbuildable
            if self._screen is None:
                picks = self.optimizer.find_maximums(
                    self.space, self._score, int(n_model * ratio), exclude=exclude,
                    starts=starts, rng=self.rng)
            else:
                screened = self.optimizer.find_maximums(
                    self.space, self._screen_score, int(n_model * ratio * self.screen_ratio),
                    exclude=exclude, starts=starts, rng=self.rng)
                scores = self._score(screened) if screened else np.zeros(0)
                order = np.argsort(-scores, kind="stable")
                picks = [screened[k] for k in order if scores[k] > -np.inf]
                picks = picks[:int(n_model * ratio)]
            if self.diversity_filter_ratio:
                picks = self._diverse(picks, n_model)
            picks = picks[:n_model]
            picks += self._random_unvisited(n_model - len(picks),
                                            exclude=set(picks) | set(randoms) |
                                            self._unbuildable)
            plan = list(picks)
            for i in randoms:   # interleaved, so that a batch smaller than the plan explores too
                plan.insert(int(self.rng.integers(len(plan) + 1)), i)
        self.plan_seconds.append(time.perf_counter() - started)
        log.debug("%s: planned %d points in %.2f s", self.task.key, len(plan),
                  self.plan_seconds[-1])
        return plan

    def _fit(self):
        """Refit the model on every measured point (one group) and each transferred task (a
        group of its own); False when there is nothing to learn from yet: no successful
        measurement, nothing transferred. With no successful measurement of its own yet the
        model learns from the transferred tasks alone."""
        own = None
        if self._measured:
            indices = list(self._measured)
            x = self._feature_rows(indices)
            y = np.array([self._measured[i] for i in indices], dtype=np.float64)
            ok = np.isfinite(x).all(axis=1)
            if y[ok].max(initial=0.0) > 0:
                own = (x[ok], y[ok])
        if own is None and not self._transfer:
            return False
        from .cost_model import XGBoostCostModel
        model = XGBoostCostModel(objective=self.loss_type, num_threads=self.num_threads)
        for points in self._transfer.values():
            model.warm_start(np.stack([v for v, _ in points.values()]),
                             np.array([y for _, y in points.values()]))
        self.model = model.fit(*(own or ()))
        self._screen = None
        if own is not None and self.feature_type == "itervar" and self.screen_ratio:
            knobs = np.array([self.space.choices(i) for i in indices], dtype=np.float32)
            self._screen = XGBoostCostModel(objective=self.loss_type,
                                            num_threads=self.num_threads).fit(knobs[ok], y[ok])
        return True

    def _screen_score(self, indices):
        rows = np.array([self.space.choices(i) for i in indices], dtype=np.float32)
        out = np.array(self._screen.predict(rows), dtype=np.float64)
        bad = [k for k, i in enumerate(indices) if i in self._unbuildable]
        out[bad] = -np.inf
        return out

    def _score(self, indices):
        x = self._feature_rows(indices)
        ok = np.isfinite(x).all(axis=1)
        out = np.full(len(indices), -np.inf)
        if ok.any():
            out[ok] = self.model.predict(x[ok])
        return out

    def _diverse(self, candidates, n):
        """Greedily keep ``n`` of the best-first ``candidates``: each pick maximizes its rank
        score plus the share of its knob values no earlier pick has (AutoTVM's submodular
        pick), so a plan does not spend itself on near-copies of one point."""
        choices = [self.space.choices(i) for i in candidates]
        covered = [set() for _ in self.space.dims]
        left = list(range(len(candidates)))
        picked = []
        for _ in range(min(n, len(candidates))):
            def gain(k):
                new = sum(c not in covered[d] for d, c in enumerate(choices[k]))
                return 1 - k / len(candidates) + new / len(covered)
            k = max(left, key=gain)
            left.remove(k)
            picked.append(candidates[k])
            for d, c in enumerate(choices[k]):
                covered[d].add(c)
        return picked

    # --- features
    def _feature_rows(self, indices):
        """One row per point; a point that cannot be lowered gets a row of NaN. The points not
        seen before are lowered together, in the feature pool."""
        if self.feature_type == "knob":
            return np.array([self.space.choices(i) for i in indices], dtype=np.float32)
        new = [i for i in dict.fromkeys(indices) if i not in self._features]
        if new:
            if self._pool is None:
                workers, timeout = self._pool_args
                self._pool = FeaturePool(self.task, workers, timeout)
            for i, vec in zip(new, self._pool.extract(new)):
                self._features[i] = vec
                if vec is None:
                    self._unbuildable.add(i)
        nan = _nan_row()
        return np.stack([nan if self._features[i] is None else self._features[i]
                         for i in indices])

    def close(self):
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _load_other_tasks(self, records):
        same = [r for r in records if r.task_name == self.task.name]
        if not same:
            return
        if self.feature_type != "itervar":
            log.warning("%s: ignoring %d records of other %s tasks: transfer needs "
                        "feature_type='itervar'", self.task.key, len(same), self.task.name)
            return
        groups = {}
        for r in same:
            groups.setdefault((r.task_key, r.target_key), []).append(r)
        added = 0
        for group, recs in groups.items():
            other = self.task if group[0] == self.task.key else _task_of(recs[0], self.task.target)
            if other is None:
                continue
            best = {}
            for r in recs:
                try:
                    index = other.config_space.index_of(r.config)
                except SpaceError:
                    continue
                best[index] = max(best.get(index, 0.0), _speed(r))
            points = self._transfer.setdefault(group, {})
            todo = [i for i in best if i not in points]
            if other is self.task:
                vecs = list(self._feature_rows(todo)) if todo else []
            else:
                with FeaturePool(other, *self._pool_args) as pool:
                    vecs = pool.extract(todo)
            for index, vec in zip(todo, vecs):
                if vec is not None and np.isfinite(vec).all():
                    points[index] = (vec, best[index])
                    added += 1
            if not any(y > 0 for _, y in points.values()):
                del self._transfer[group]   # nothing to rank: every measurement failed
        log.info("%s: %d transferred records from %d other tasks", self.task.key, added,
                 len(self._transfer))


def _nan_row():
    from .features import NUM_FEATURES
    return np.full(NUM_FEATURES, np.nan, dtype=np.float32)


def _task_of(record, target):
    from .task import create_task
    try:
        return create_task(record.task_name, record.task_args, target)
    except (SpaceError, ValueError) as e:
        log.debug("cannot rebuild task %s for transfer: %s", record.task_key, e)
        return None


__all__ = ["GridSearchTuner", "RandomTuner", "Tuner", "XGBTuner", "cost_of"]
