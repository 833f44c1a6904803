"""Reductions over any set of axes: sum, mean, prod, max, min, the ONNX norms, argmax/argmin.

``axis`` is an int, a sequence of ints (negative ones count from the end) or None for all
axes; ``keepdims`` keeps the reduced axes with extent 1. Every stage is tagged "reduce".

A reduction whose result needs a second step (mean divides, l2 takes a square root, argmax
looks for the position of the maximum) is a composite: its inner stages carry
``attrs["part"]`` and are scheduled together with the stage that returns the result
(``schedule_cpu.schedule_reduce``), which places them inside its loops. float16 sums and
products are such composites too: they accumulate in float32 and the result stage rounds
them to float16 once (``util.accumulation_dtype``).
"""
import math

from .. import te
from ..ir import dtype as dt
from .util import accumulation_dtype, check_tensor, normalize_axes, ravel


class ReducePlan:
    """Where the output index and the reduce axes of a reduction sit in the input index."""

    def __init__(self, op, x, axis, keepdims):
        check_tensor(op, x)
        self.op, self.x, self.keepdims = op, x, bool(keepdims)
        self.axes = normalize_axes(op, x, axis)
        if not self.axes:
            raise ValueError(f"{op}: no axis of tensor {x.name!r} (shape {x.shape}) to reduce; "
                             "axis=None reduces all of them")
        self.shape = tuple(1 if d in self.axes else n for d, n in enumerate(x.shape)
                           if keepdims or d not in self.axes)
        self.extents = tuple(x.shape[d] for d in self.axes)

    def x_index(self, out_index, rvs):
        """The input index read at output ``out_index`` and reduction point ``rvs``."""
        out_it, r_it = iter(out_index), iter(rvs)
        idx = []
        for d in range(self.x.ndim):
            if d in self.axes:
                if self.keepdims:
                    next(out_it)
                idx.append(next(r_it))
            else:
                idx.append(next(out_it))
        return tuple(idx)

    def compute(self, fn, name=None, part=None):
        """out[i] = fn(i, rvs, x_index): a stage over the output shape with fresh reduce axes."""
        def body(*i):
            rvs = [te.reduce_axis((0, n), name=f"k{d}") for d, n in zip(self.axes, self.extents)]
            return fn(i, rvs, self.x_index(i, rvs))
        name = name or self.op
        attrs = {"part": part} if part else self.result_attrs()
        return te.compute(self.shape, body, name=f"{name}.{part}" if part else name, tag="reduce",
                          attrs=attrs)

    def result_attrs(self):
        return {"axis": self.axes, "keepdims": self.keepdims}

    def result(self, fn):
        """The stage returning the op's result, out[i] = fn(i), from the parts before it."""
        return te.compute(self.shape, lambda *i: fn(i), name=self.op, tag="reduce",
                          attrs=self.result_attrs())


def _simple(op, reducer, doc, accumulate=True):
    """A one-stage reduction; with ``accumulate``, float16 runs in float32 and is rounded by a
    second stage (max and min are exact in any type, so they never widen)."""
    def f(x, axis=None, keepdims=False, dtype=None):
        plan = ReducePlan(op, x, axis, keepdims)
        t = dt.check(dtype) if dtype is not None else x.dtype
        acc = accumulation_dtype(t) if accumulate else t
        if acc == t:
            return plan.compute(lambda i, r, xi: reducer(x[xi].astype(t), axis=r))
        total = plan.compute(lambda i, r, xi: reducer(x[xi].astype(acc), axis=r), part="acc")
        return plan.result(lambda i: total[i].astype(t))
    f.__name__ = op
    f.__doc__ = doc
    return f


sum = _simple("sum", te.sum,  # noqa: A001
              "Sum over ``axis``, returned in ``dtype`` (default: x's dtype, so integers wrap "
              "around as in the IR, unlike numpy's widening to int64; float16 accumulates in "
              "float32).")
prod = _simple("prod", te.prod, "Product over ``axis`` in ``dtype`` (default: x's dtype; "
               "float16 accumulates in float32).")
max = _simple("max", te.max,  # noqa: A001
              "Largest element over ``axis``; NaN propagates (np.max).", accumulate=False)
min = _simple("min", te.min,  # noqa: A001
              "Smallest element over ``axis``; NaN propagates (np.min).", accumulate=False)
l1 = _simple("l1", lambda v, axis: te.sum(te.abs(v), axis=axis), "Sum of |x| (ONNX ReduceL1).")
sum_square = _simple("sum_square", lambda v, axis: te.sum(v * v, axis=axis),
                     "Sum of x*x (ONNX ReduceSumSquare).")


def _float_only(op, x):
    """The accumulation type of a reduction defined for floats only."""
    if not dt.is_float(x.dtype):
        raise TypeError(f"{op}: tensor {x.name!r} has dtype {x.dtype}; {op} needs a "
                        "floating-point tensor")
    return accumulation_dtype(x.dtype)


def mean(x, axis=None, keepdims=False):
    """Average over ``axis``: the sum, then one division by the count. The result is x's float
    type (float32 for integer inputs, which are averaged as float32)."""
    plan = ReducePlan("mean", x, axis, keepdims)
    acc = accumulation_dtype(x.dtype) if dt.is_float(x.dtype) else "float32"
    out_t = x.dtype if dt.is_float(x.dtype) else acc
    total = plan.compute(lambda i, r, xi: te.sum(x[xi].astype(acc), axis=r), part="sum")
    n = math.prod(plan.extents)
    return plan.result(lambda i: (total[i] / float(n)).astype(out_t))


def l2(x, axis=None, keepdims=False):
    """sqrt(sum(x * x)) (ONNX ReduceL2): the sum of squares, then one square root."""
    plan = ReducePlan("l2", x, axis, keepdims)
    acc = _float_only("l2", x)

    def square(xi):
        v = x[xi].astype(acc)
        return v * v
    sq = plan.compute(lambda i, r, xi: te.sum(square(xi), axis=r), part="sumsq")
    return plan.result(lambda i: te.sqrt(sq[i]).astype(x.dtype))


def log_sum_exp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) computed as m + log(sum(exp(x - m))) with m the maximum, so it neither
    overflows nor underflows; an infinite m is not subtracted (all -inf gives -inf, as numpy)."""
    plan = ReducePlan("log_sum_exp", x, axis, keepdims)
    acc = _float_only("log_sum_exp", x)
    m = plan.compute(lambda i, r, xi: te.max(x[xi], axis=r), part="max")

    def shift(i):
        return te.if_then_else(te.abs(m[i]) < math.inf, m[i], 0.0).astype(acc)
    s = plan.compute(lambda i, r, xi: te.sum(te.exp(x[xi].astype(acc) - shift(i)), axis=r),
                     part="sum")
    return plan.result(lambda i: (shift(i) + te.log(s[i])).astype(x.dtype))


def _arg(op, extreme, x, axis, keepdims, select_last_index):
    """The position of the extreme value, as two reductions (reducers here combine one value,
    so there is no (value, index) pair to reduce): first the extreme value m, then the smallest
    (or with ``select_last_index`` the largest) flat position over the reduced axes where x
    equals m. A NaN is the extreme when present (m is then NaN, since max/min propagate NaN),
    which ``x != x`` finds, so the result is numpy's: the first NaN."""
    plan = ReducePlan(op, x, axis, keepdims)
    m = plan.compute(lambda i, r, xi: extreme(x[xi], axis=r), part="extreme")
    n = math.prod(plan.extents)

    def position(i, rvs, xi):
        pos = ravel([rv.var.astype("int64") for rv in rvs], plan.extents)
        hit = (x[xi] == m[i]) | (x[xi] != x[xi]) if dt.is_float(x.dtype) else x[xi] == m[i]
        if select_last_index:
            return te.max(te.if_then_else(hit, pos, te.const(-1, "int64")), axis=rvs)
        return te.min(te.if_then_else(hit, pos, te.const(n, "int64")), axis=rvs)
    return plan.compute(position)


def argmax(x, axis=None, keepdims=False, select_last_index=False):
    """int64 position of the largest element along ``axis`` (None: of the flattened tensor);
    ties give the first position (the last with ``select_last_index``, as ONNX allows)."""
    return _arg("argmax", te.max, x, axis, keepdims, select_last_index)


def argmin(x, axis=None, keepdims=False, select_last_index=False):
    """int64 position of the smallest element; ties as in argmax."""
    return _arg("argmin", te.min, x, axis, keepdims, select_last_index)
