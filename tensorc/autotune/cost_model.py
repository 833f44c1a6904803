"""The autotuner's cost model: gradient-boosted trees over loop features (``features.py``) that
score candidate configurations so the tuner measures the promising ones first.

The tuner only needs the *order* of candidates, so throughputs are normalised per group (a task,
whose candidates are comparable) to y / max(y), failed measurements being 0, and the model is
either a pairwise ranker (``objective="rank"``) or a regression on the normalised throughput
(``objective="reg"``). Records of other tasks (transfer) join as groups of their own with a
smaller weight: they teach what good code looks like without outvoting the task's own data.

The model is refitted from scratch after each measured batch, so fitting is kept cheap: columns
constant over the training rows are dropped (most features are zero for a given task), the
histograms are coarse, each tree sees half of the columns and the number of trees is fixed.
The defaults were chosen on 300 measured random schedules of a 256^3 matmul: trained on 64 or
200 of them, both objectives ranked the rest about equally well (Spearman ~0.75 at 200 rows,
the pairwise ranker ahead at 64), and a fit on 2000 rows took under a second of one core.
"""
import numpy as np

OBJECTIVES = {"rank": "rank:pairwise", "reg": "reg:squarederror"}


class XGBoostCostModel:
    """Scores feature rows; higher means predicted faster.

    ``fit(xs, ys)`` trains on the task's records (``ys``: throughputs, 0 for failures);
    ``update`` appends a batch and refits; ``warm_start`` adds another task's records;
    ``predict(xs)`` scores candidates.
    """

    def __init__(self, objective="rank", seed=0, num_threads=None, num_rounds=60, max_depth=5,
                 learning_rate=0.15, transfer_weight=0.3):
        if objective not in OBJECTIVES:
            raise ValueError(f"XGBoostCostModel: objective must be one of {sorted(OBJECTIVES)}, "
                             f"got {objective!r}")
        self.objective = objective
        self.seed = seed
        self.num_threads = num_threads
        self.num_rounds = num_rounds
        self.transfer_weight = transfer_weight
        self.params = {"objective": OBJECTIVES[objective], "max_depth": max_depth,
                       "eta": learning_rate, "min_child_weight": 1e-3, "gamma": 1e-4,
                       "colsample_bytree": 0.5, "max_bin": 64, "tree_method": "hist",
                       "seed": seed, "verbosity": 0}
        if objective == "rank":
            # Pairs drawn at random for every row: pairs among the top rows only ("topk", the
            # default) ranked the rest much worse, and few pairs per row leave most unseen.
            self.params.update(lambdarank_pair_method="mean", lambdarank_num_pair_per_sample=32)
        if num_threads is not None:
            self.params["nthread"] = int(num_threads)
        self._xs = None
        self._ys = np.zeros(0)
        self._extra = []        # (xs, ys) of other tasks, one group each
        self._booster = None
        self._columns = None

    # ------------------------------------------------------------------ data

    def fit(self, xs=None, ys=None):
        """Train on the task's records, replacing those given before; returns self.

        With no records of its own (``xs`` None or zero rows), a model that has warm-start data
        trains on that alone -- a transfer-only model for the first plan of a new task; the
        task's records join through later ``fit`` or ``update`` calls."""
        if xs is None or len(xs) == 0:
            if ys is not None and len(ys) != 0:
                raise ValueError(f"XGBoostCostModel.fit: {len(ys)} throughputs for no feature "
                                 "rows")
            if not self._extra:
                raise ValueError("XGBoostCostModel.fit: no records (and no warm-start data "
                                 "to train on instead)")
            self._xs, self._ys = None, np.zeros(0)
            return self._train()
        xs, ys = _check(xs, ys, "fit", self._width())
        self._xs, self._ys = xs, ys
        return self._train()

    def update(self, xs, ys):
        """Append a measured batch to the task's records and refit; returns self."""
        xs, ys = _check(xs, ys, "update", self._width())
        if self._xs is None:
            self._xs, self._ys = xs, ys
        else:
            self._xs = np.concatenate([self._xs, xs])
            self._ys = np.concatenate([self._ys, ys])
        return self._train()

    def warm_start(self, xs, ys):
        """Add records of another task (one group, down-weighted); used from the next fit."""
        xs, ys = _check(xs, ys, "warm_start", self._width())
        self._extra.append((xs, ys))
        return self

    def _width(self):
        """Columns every feature row must have: those of the records given so far."""
        if self._xs is not None:
            return self._xs.shape[1]
        return self._extra[0][0].shape[1] if self._extra else None

    # ----------------------------------------------------------------- model

    def _train(self):
        import xgboost as xgb
        parts = [(x, y, self.transfer_weight) for x, y in self._extra]
        if self._xs is not None:
            parts.insert(0, (self._xs, self._ys, 1.0))
        else:   # transfer only: no group of the task's own to outvote, so none is down-weighted
            parts = [(x, y, 1.0) for x, y, _ in parts]
        xs = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([_normalise(y) for _, y, _ in parts])
        qid = np.concatenate([np.full(len(y), g) for g, (_, y, _) in enumerate(parts)])
        varying = np.flatnonzero(xs.min(axis=0) != xs.max(axis=0))
        self._columns = varying if varying.size else np.arange(min(1, xs.shape[1]))
        if self.objective == "rank":
            # Ranking weights are per group.
            weight = np.array([w for _, _, w in parts])
            dm = xgb.DMatrix(xs[:, self._columns], label=labels, qid=qid, weight=weight)
        else:
            weight = np.concatenate([np.full(len(y), w) for _, y, w in parts])
            dm = xgb.DMatrix(xs[:, self._columns], label=labels, weight=weight)
        self._booster = xgb.train(self.params, dm, num_boost_round=self.num_rounds)
        return self

    def predict(self, xs):
        """Scores of the rows of xs (higher = predicted faster).

        ``inplace_predict`` reads the array directly: building a DMatrix per call cost 10-40x
        more than the prediction itself for the few dozen rows one annealing step scores, and
        the scores are the same."""
        if self._booster is None:
            raise RuntimeError("XGBoostCostModel.predict: the model is not fitted yet; call "
                               "fit(xs, ys) with measured records first")
        xs = _matrix(xs, "predict", self._width())
        if xs.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        return self._booster.inplace_predict(np.ascontiguousarray(xs[:, self._columns]))

    def __repr__(self):
        n = 0 if self._xs is None else len(self._xs)
        return (f"XGBoostCostModel(objective={self.objective!r}, records={n}, "
                f"transfer_groups={len(self._extra)}, fitted={self._booster is not None})")


def _normalise(ys):
    top = ys.max() if ys.size else 0.0
    return ys / top if top > 0 else np.zeros_like(ys)


def _matrix(xs, what, width):
    xs = np.asarray(xs, dtype=np.float32)
    if xs.ndim != 2:
        raise ValueError(f"XGBoostCostModel.{what}: features must be a 2-D array "
                         f"(rows x features), got shape {xs.shape}")
    if width is not None and xs.shape[1] != width:
        raise ValueError(f"XGBoostCostModel.{what}: features have {xs.shape[1]} columns, the "
                         f"model's records have {width}")
    return xs


def _check(xs, ys, what, width):
    xs = _matrix(xs, what, width)
    ys = np.asarray(ys, dtype=np.float64)
    if ys.shape != (xs.shape[0],):
        raise ValueError(f"XGBoostCostModel.{what}: throughputs must be a 1-D array with one "
                         f"value per feature row ({xs.shape[0]}), got shape {ys.shape}")
    if xs.shape[0] == 0:
        raise ValueError(f"XGBoostCostModel.{what}: no records")
    if not np.isfinite(ys).all() or (ys < 0).any():
        raise ValueError(f"XGBoostCostModel.{what}: throughputs must be finite and >= 0 "
                         "(pass 0 for a failed measurement)")
    return xs, ys


# ------------------------------------------------------------- ranking metrics

def _ranks(a):
    """Ranks 0..n-1 with ties given their mean rank."""
    a = np.asarray(a, dtype=np.float64)
    order = np.argsort(a, kind="stable")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(len(a))
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def spearman(pred, truth):
    """Spearman rank correlation of two score vectors (0 when either is constant)."""
    rp, rt = _ranks(pred), _ranks(truth)
    rp -= rp.mean()
    rt -= rt.mean()
    den = np.sqrt((rp * rp).sum() * (rt * rt).sum())
    return float((rp * rt).sum() / den) if den > 0 else 0.0


def kendall_tau(pred, truth):
    """Kendall's tau-b over all pairs (quadratic: for evaluation sets, not training sets)."""
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    dp = np.sign(p[:, None] - p[None, :])
    dt = np.sign(t[:, None] - t[None, :])
    den = np.sqrt((dp != 0).sum() * (dt != 0).sum())
    return float((dp * dt).sum() / den) if den > 0 else 0.0


def top_k_recall(pred, truth, k=10):
    """Fraction of the k truly best rows among the k rows predicted best."""
    k = min(k, len(truth))
    best = set(np.argsort(-np.asarray(truth), kind="stable")[:k].tolist())
    chosen = np.argsort(-np.asarray(pred), kind="stable")[:k]
    return len(best.intersection(chosen.tolist())) / k if k else 0.0


def ranking_quality(model, xs, ys, k=10):
    """How well ``model`` orders held-out records: {"spearman", "kendall", "top_k_recall"}."""
    pred = model.predict(xs)
    ys = np.asarray(ys)
    return {"spearman": spearman(pred, ys), "kendall": kendall_tau(pred, ys),
            "top_k_recall": top_k_recall(pred, ys, k)}
