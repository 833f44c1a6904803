"""Loop partitioning: split a loop where its bounds guards become always true.

A split whose factor does not divide the extent guards every point with ``index < extent``.
Checking that guard inside the innermost loops costs a branch per element and blocks
vectorization, although it fails only in the last iteration of some outer loop. This pass finds,
for a loop v, the range [lo, hi) of v on which every guard below it that depends on v holds for
all values of the loops inside, and emits the loop as [0, lo) + [lo, hi) + [hi, extent) with the
guards dropped from the middle copy (TVM's LoopPartition, Halide's loop splitting).

Padding is the other such guard: a padded copy reads ``select(0 <= r && r < H && ..., x[r],
0)``, whose bounds fail only on the border rows and columns. Each linear conjunct of a select's
condition is treated like a guard, and the middle copy has it replaced by true, so the select
folds away there and the copy becomes a plain (vectorizable, strided-span) load.
"""
import dataclasses
import functools
import math

from ..arith import const_int_bound
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.functor import IRMutator, IRVisitor, free_vars
from ..ir.op import const, logical_and

MIN_PARALLEL_MAIN = 8  # iterations a parallel loop's main part needs to be worth cutting


class _Guards(IRVisitor):
    """Collect IfThenElse conditions under a loop with the ranges of the loops around them."""

    def __init__(self, ranges):
        self.ranges = dict(ranges)
        self.found = []

    def visit_For(self, f):
        if isinstance(f.min, E.IntImm) and isinstance(f.extent, E.IntImm):
            self.ranges[f.loop_var] = (f.min.value, f.min.value + f.extent.value - 1)
        self.generic(f)

    def visit(self, node):
        # a select shared by two statements can sit under different inner loops: walk the
        # expressions of every statement afresh (IRVisitor visits a shared expression once)
        if isinstance(node, S.Stmt):
            self._seen = set()
        super().visit(node)

    def visit_IfThenElse(self, s):
        if s.else_case is None:
            self.found.append((s, s.cond, dict(self.ranges)))
        self.generic(s)

    def visit_Select(self, e):
        for c in _conjuncts(e.cond):
            self.found.append((c, c, dict(self.ranges)))
        self.generic(e)


def _conjuncts(cond):
    if isinstance(cond, E.And):
        return _conjuncts(cond.a) + _conjuncts(cond.b)
    return [cond]


def _linear_in(e, v):
    """(a, rest) with e == a*v + rest and v not in rest, for e built of +, -, * const."""
    t = type(e)
    if e is v:
        return 1, const(0, e.dtype)
    if v not in free_vars(e):
        return 0, e
    if t in (E.Add, E.Sub):
        la, lb = _linear_in(e.a, v), _linear_in(e.b, v)
        if la is None or lb is None:
            return None
        if t is E.Add:
            return la[0] + lb[0], la[1] + lb[1]
        return la[0] - lb[0], la[1] - lb[1]
    if t is E.Mul:
        for x, c in ((e.a, e.b), (e.b, e.a)):
            if isinstance(c, E.IntImm):
                lx = _linear_in(x, v)
                return None if lx is None else (lx[0] * c.value, lx[1] * c)
    return None


def _true_range(cond, v, ranges):
    """[lo, hi] of v on which cond certainly holds, or None if not of the form a*v + r < c."""
    t = type(cond)
    if t not in (E.LT, E.LE, E.GE, E.GT):
        return None
    lin = _linear_in(cond.a - cond.b, v)
    if lin is None or lin[0] == 0:
        return None
    a, rest = lin
    rlo, rhi = const_int_bound(rest, ranges)
    if math.isinf(rlo) or math.isinf(rhi):
        return None
    # cond is: a*v + rest  (<, <=, >=, >)  0 ; make it a*v + rest <= lim or >= lim.
    if t in (E.LT, E.LE):
        lim = -1 if t is E.LT else 0
        if a > 0:   # a*v <= lim - rest for every rest: v <= (lim - rhi) / a
            return -math.inf, (lim - rhi) // a
        return -((lim - rhi) // -a), math.inf
    lim = 1 if t is E.GT else 0
    if a > 0:       # a*v >= lim - rlo
        return -((rlo - lim) // a), math.inf
    return -math.inf, (rlo - lim) // -a


class _Drop(IRMutator):
    """The loop body with the guards (IfThenElse nodes) and select conjuncts known to hold
    replaced by what they guard and by true."""

    def __init__(self, guards):
        self.guards = {id(g) for g in guards}

    def visit_IfThenElse(self, s):
        if id(s) in self.guards:
            return self.visit(s.then_case)
        return self.generic(s)

    def visit_Select(self, e):
        e = self.generic(e)
        conds = _conjuncts(e.cond)
        kept = [c for c in conds if id(c) not in self.guards]
        return e if len(kept) == len(conds) else dataclasses.replace(
            e, cond=functools.reduce(logical_and, kept, const(True)))


class _Partition(IRMutator):
    def __init__(self):
        self.ranges = {}

    def visit_For(self, f):
        """Outer loops first: splitting the outer loop leaves inner loops whole in its main
        part, where splitting an inner loop first would cut every outer iteration in two."""
        known = isinstance(f.min, E.IntImm) and isinstance(f.extent, E.IntImm)
        if not known:
            return self.generic(f)
        parts = self._split(f) if f.kind in ("serial", "parallel") else None
        if parts is None:
            self.ranges[f.loop_var] = (f.min.value, f.min.value + f.extent.value - 1)
            return self.generic(f)
        out = []
        for part in parts:
            self.ranges[f.loop_var] = (part.min.value, part.min.value + part.extent.value - 1)
            out.append(self.generic(part))
        return S.seq(*out)

    def _split(self, f):
        """The loop cut into parts around the range where its guards hold, or None."""
        v, begin, end = f.loop_var, f.min.value, f.min.value + f.extent.value
        finder = _Guards({k: r for k, r in self.ranges.items() if k is not v})
        finder.visit(f.body)
        lo, hi, used = begin, end, set()
        for guard, cond, ranges in finder.found:
            ranges.pop(v, None)
            if v not in free_vars(cond):
                continue
            r = _true_range(cond, v, ranges)
            if r is None:
                continue
            lo, hi = max(lo, r[0]), min(hi, r[1] + 1)
            used.add(guard)
        if not used or lo >= hi or (lo == begin and hi == end):
            return None
        if f.kind == "parallel" and hi - lo < MIN_PARALLEL_MAIN:
            return None  # cutting a short parallel loop would leave parts too small to share
        main = _Drop(used).visit(f.body)
        return [S.For(v, const(a, v.dtype), const(b - a, v.dtype), f.kind, body, f.thread_tag)
                for a, b, body in ((begin, lo, f.body), (lo, hi, main), (hi, end, f.body))
                if b > a]


def partition_loops(func):
    return func.with_body(_Partition().visit(func.body))
