"""The model-based tuner: an XGBoost cost model over the measured points picks what to
measure next, searched by simulated annealing (AutoTVM's XGBTuner)."""
import collections
import logging
import time

import numpy as np

from .feature_pool import FeaturePool
from .sa import SimulatedAnnealing
from .space import SpaceError
from .tuner import Tuner, _speed

log = logging.getLogger("tensorc.autotune")

#: A plan after ``STALL_PLANS`` plans that did not improve the best is at least this share
#: random points (``XGBTuner._stalled``).
STALL_PLANS = 2
STALLED_RANDOM_SHARE = 0.5


class XGBTuner(Tuner):
    """A cost model picks what to measure: AutoTVM's model-based tuner.

    The first plan (``plan_size`` points) is random unless transferred records already train
    the model. Each later plan refits an XGBoost model on every measured point (speed
    normalized to the best, failures at zero), then simulated annealing (``optimizer``, a
    ``SimulatedAnnealing``) searches the space for the unvisited points the model scores
    highest, starting some walkers from the best measured points; ``random_share`` of the plan
    is random points instead (exploration the model cannot argue with), and at least
    ``STALLED_RANDOM_SHARE`` of it after ``STALL_PLANS`` plans that did not improve the best
    (``_stalled``). With ``diversity_filter_ratio`` r, annealing returns r times as many
    candidates and a greedy pick keeps those that cover the most distinct knob values for
    their score.

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
    same measurements over knob numbers (free to compute); the k/2 x plan best points it finds,
    and as many more (one-knob neighbours of the best measured points and random points), are
    lowered and ranked by the loop-feature model. Annealing with loop features
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
            share = max(self.random_share, STALLED_RANDOM_SHARE) if self._stalled() \
                else self.random_share
            randoms = self._random_unvisited(round(self.plan_size * share),
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
                pool = int(n_model * ratio * self.screen_ratio)
                screened = self.optimizer.find_maximums(
                    self.space, self._screen_score, pool - pool // 2, exclude=exclude,
                    starts=starts, rng=self.rng)
                screened += self._explore(pool // 2, exclude | set(screened), best[:4])
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

    def _stalled(self):
        """Whether the last ``STALL_PLANS`` plans' measurements left the best speed where it
        was (within 1%). Every guided pick starts from the best points, so a tuner in one
        basin of a large space keeps refining it (a conv2d run spent trials 16-192 on one
        register tile shape, at 60% of the best its sibling seeds found); the model cannot learn
        of another basin from points it never measures, but random ones can show it one."""
        speeds = list(self._measured.values())
        recent = STALL_PLANS * self.plan_size
        if len(speeds) <= recent:
            return False
        before = max(speeds[:-recent])
        return before > 0 and max(speeds[-recent:]) <= before * 1.01

    def _explore(self, n, exclude, best):
        """``n`` unvisited points for the loop-feature model to rank beside the knob walk's:
        half one-knob neighbours of the ``best`` measured points, half random. The knob model
        ranks held-out points poorly (Spearman 0.2-0.4 against 0.55-0.75 for loop features on
        a conv2d space, 16-64 training points), so its walk alone leaves out regions the
        better model would pick; the neighbours refine the fastest configs found so far."""
        out, taken = [], set(exclude)
        for k in range(4 * n):
            if len(out) == n:
                break
            if best and k % 2 == 0:
                i = self.space.neighbour(best[(k // 2) % len(best)], self.rng)
            else:
                i = self.space.random_index(self.rng)
            if i not in taken:
                out.append(i)
                taken.add(i)
        return out

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
        from .database import target_key
        # Same op, same kind of target: a CPU's timings rank nothing on a GPU, nor the
        # emulator's on either.
        kind = target_key(self.task.target).split()[0]
        same = [r for r in records if r.task_name == self.task.name and
                r.target_key.split()[0] == kind]
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


__all__ = ["XGBTuner"]
