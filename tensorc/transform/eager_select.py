"""Eager selects: a lazy select whose branches are safe to evaluate everywhere becomes a plain
one.

A select is lazy (the branch not taken is never evaluated) because a branch may read outside
its buffer where the condition excludes it -- padding is written that way. Once vectorized, a
lazy select with loads costs masked loads, slower than plain ones. When every load in both
branches reads inside its buffer for every value of the enclosing loops (and nothing in them
can trap: no integer division by a non-constant), evaluating both sides is harmless, so the
select is marked ``lazy=False`` and the LLVM emitter computes both and picks per lane. A
``where`` of two in-bounds tensors -- the common case in fused elementwise chains -- is such a
select.
"""
from ..arith.analyzer import const_int_bound
from ..ir import dtype as dt
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.functor import IRMutator, post_order_visit
from .vectorize import _may_trap


def eager_selects(func):
    sizes = {p.data: _elements(p.shape) for p in func.params}
    return func.with_body(_Eager(sizes).visit(func.body))


def _elements(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


class _Eager(IRMutator):
    def __init__(self, sizes):
        super().__init__()
        self.sizes = dict(sizes)
        self.ranges = {}

    def visit_For(self, s):
        lo, ext = s.min, s.extent
        if isinstance(lo, E.IntImm) and isinstance(ext, E.IntImm) and ext.value > 0:
            self.ranges[s.loop_var] = (lo.value, lo.value + ext.value - 1)
        try:
            return self.generic(s)
        finally:
            self.ranges.pop(s.loop_var, None)

    def visit_Allocate(self, s):
        self.sizes[s.buffer] = int(s.extent)
        return self.generic(s)

    def visit_LetStmt(self, s):
        lo, hi = const_int_bound(s.value, self.ranges)
        bounded = isinstance(lo, int) and isinstance(hi, int)
        if bounded:
            self.ranges[s.var] = (lo, hi)
        try:
            return self.generic(s)
        finally:
            if bounded:
                self.ranges.pop(s.var, None)

    def visit_IfThenElse(self, s):
        """``if v < c`` (the tail guard loop partitioning leaves) narrows v's range inside."""
        narrowed = _narrow(s.cond, self.ranges)
        if not narrowed:
            return self.generic(s)
        saved = dict(self.ranges)
        self.ranges.update(narrowed)
        try:
            then = self.visit(s.then_case)
        finally:
            self.ranges = saved
        other = self.visit(s.else_case) if s.else_case is not None else None
        if then is s.then_case and other is s.else_case:
            return s
        return S.IfThenElse(s.cond, then, other)

    def visit_Select(self, e):
        e = self.generic(e)
        if e.lazy and all(self._safe(b) for b in (e.true_value, e.false_value)):
            return E.Select(e.dtype, e.cond, e.true_value, e.false_value, lazy=False)
        return e

    def _safe(self, branch):
        if _may_trap(branch):
            return False
        loads = []
        post_order_visit(branch, lambda n: loads.append(n) if isinstance(n, E.Load) else None)
        return all(self._in_bounds(ld) for ld in loads)

    def _in_bounds(self, ld):
        size = self.sizes.get(ld.buffer)
        span = _index_span(ld.index, self.ranges)
        return size is not None and span is not None and 0 <= span[0] and span[1] < size


def _narrow(cond, ranges):
    """New inclusive ranges implied by ``cond`` (conjunctions of var < / <= / > / >= const)."""
    if isinstance(cond, E.And):
        out = _narrow(cond.a, ranges)
        out.update(_narrow(cond.b, {**ranges, **out}))
        return out
    if not (isinstance(cond, (E.LT, E.LE, E.GT, E.GE)) and isinstance(cond.a, E.Var) and
            isinstance(cond.b, E.IntImm) and cond.a in ranges):
        return {}
    lo, hi = ranges[cond.a]
    c = cond.b.value
    if isinstance(cond, E.LT):
        hi = min(hi, c - 1)
    elif isinstance(cond, E.LE):
        hi = min(hi, c)
    elif isinstance(cond, E.GT):
        lo = max(lo, c + 1)
    else:
        lo = max(lo, c)
    return {cond.a: (lo, hi)} if lo <= hi else {}


def _index_span(index, ranges):
    """Inclusive (lo, hi) over every lane of a scalar, Ramp or Broadcast index, else None."""
    if isinstance(index, E.Broadcast):
        return _index_span(index.value, ranges)
    if isinstance(index, E.Ramp):
        base = _index_span(index.base, ranges)
        stride = index.stride
        if base is None or not isinstance(stride, E.IntImm):
            return None
        reach = stride.value * (index.lanes - 1)
        return base[0] + min(0, reach), base[1] + max(0, reach)
    if dt.lanes(index.dtype) != 1 or not dt.is_integral(index.dtype):
        return None
    lo, hi = const_int_bound(index, ranges)
    if isinstance(lo, int) and isinstance(hi, int):
        return lo, hi
    return None


__all__ = ["eager_selects"]
