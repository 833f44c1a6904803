"""Simulated annealing over a config space: where the cost model expects the fastest points.

The model is cheap next to a measurement but not free -- scoring a point with loop features
means lowering it -- and spaces are far too large to score exhaustively, so a population of
walkers explores by one-knob moves (``ConfigSpace.neighbour``), scoring all walkers' proposals
in one batch (one model call per step). A move to a worse point is accepted with the Metropolis
probability ``exp(delta / T)``; ``T`` falls linearly over the steps, so the walk starts broad
and ends greedy. Model scores have no fixed scale (a ranking objective's are arbitrary), so the
temperature is relative to the spread of the starting population's scores.

Every point the walkers visit competes for the answer, not only where they end: the result is
the best ``num`` points seen that the caller has not measured yet.
"""
import heapq
import math

import numpy as np


class _Top:
    """The ``num`` best-scored points seen, excluding ``exclude`` and invalid (-inf) ones."""

    def __init__(self, num, exclude):
        self.num, self.exclude = num, exclude
        self.heap, self.members = [], set()

    def push(self, index, score):
        """Offer a point; True when the kept set changed."""
        if index in self.members or index in self.exclude or not score > -math.inf:
            return False
        if len(self.heap) < self.num:
            heapq.heappush(self.heap, (score, index))
        elif (score, index) > self.heap[0]:
            _, dropped = heapq.heapreplace(self.heap, (score, index))
            self.members.discard(dropped)
        else:
            return False
        self.members.add(index)
        return True

    def best_first(self):
        return [i for _, i in sorted(self.heap, reverse=True)]


class SimulatedAnnealing:
    """Maximizes a batch score function over a space.

    ``n_walkers`` walkers take up to ``n_steps`` steps each; the walk ends early once the best
    ``num`` points have not changed for ``early_stop`` steps. The temperature goes linearly
    from ``temperature[0]`` to ``temperature[1]`` (in units of the starting scores' standard
    deviation). With loop features each new point costs a lowering, so n_walkers * n_steps
    bounds the lowerings of one search; points already scored are cached by the caller.
    """

    def __init__(self, n_walkers=32, n_steps=40, temperature=(1.0, 0.0), early_stop=10):
        if n_walkers < 1 or n_steps < 0:
            raise ValueError(f"SimulatedAnnealing: n_walkers ({n_walkers}) must be >= 1 and "
                             f"n_steps ({n_steps}) >= 0")
        self.n_walkers, self.n_steps = int(n_walkers), int(n_steps)
        self.temperature = (float(temperature[0]), float(temperature[1]))
        self.early_stop = early_stop

    def find_maximums(self, space, score, num, exclude=frozenset(), starts=(), rng=None):
        """The (up to) ``num`` best points not in ``exclude``, best first.

        ``score(indices) -> np.ndarray`` scores a list of point indices (higher is better,
        -inf for a point that cannot be built); ``starts`` seed some walkers (e.g. the best
        measured points), random points the rest.
        """
        rng = rng if rng is not None else np.random.default_rng()
        top = _Top(num, exclude)
        walkers = [int(i) for i in starts][:self.n_walkers]
        walkers += [space.random_index(rng) for _ in range(self.n_walkers - len(walkers))]
        scores = np.asarray(score(walkers), dtype=np.float64)
        for i, s in zip(walkers, scores):
            top.push(i, s)
        finite = scores[np.isfinite(scores)]
        scale = float(finite.std()) if finite.size > 1 else 0.0
        scale = scale if scale > 0 else 1.0
        t_start, t_end = self.temperature
        unchanged = 0
        for step in range(self.n_steps):
            t = t_start + (t_end - t_start) * step / max(self.n_steps - 1, 1)
            proposals = [space.neighbour(i, rng) for i in walkers]
            new = np.asarray(score(proposals), dtype=np.float64)
            accept = new >= scores
            if t > 0:
                with np.errstate(invalid="ignore", over="ignore"):
                    accept |= rng.random(len(new)) < np.exp((new - scores) / (t * scale))
            changed = False
            for k in np.flatnonzero(accept):
                walkers[k], scores[k] = proposals[k], new[k]
            for i, s in zip(proposals, new):
                changed |= top.push(i, s)
            unchanged = 0 if changed else unchanged + 1
            if self.early_stop is not None and unchanged >= self.early_stop:
                break
        return top.best_first()

    def __repr__(self):
        return (f"SimulatedAnnealing(n_walkers={self.n_walkers}, n_steps={self.n_steps}, "
                f"temperature={self.temperature}, early_stop={self.early_stop})")
