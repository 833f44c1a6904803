"""The public face of the analyzer: variable ranges plus simplify / bound / prove queries.

Every query runs a fresh simplifier over a copy of the ranges, so nothing learnt while walking
one node (loop ranges, branch conditions, memoised bounds) leaks into the next query.
"""
from ..ir import dtype as dt
from ..ir import expr as E
from ..ir import op
from .int_bounds import intersect
from .stmt_simplify import StmtSimplifier


class Analyzer:
    """Holds variable ranges; ``bind`` accepts a Range or an inclusive ``(lo, hi)`` pair."""

    def __init__(self, ranges=None):
        self._ranges = {}
        for var, rng in (ranges or {}).items():
            self.bind(var, rng)

    def bind(self, var, rng):
        """Give var the values of rng; a symbolic Range is bounded with the ranges so far."""
        var = var.var if isinstance(var, E.IterVar) else var
        if isinstance(rng, E.Range):
            b = self._simplifier().range_bound(rng)
        else:
            lo, hi = (x.value if isinstance(x, E.IntImm) else x for x in rng)
            b = (lo, hi)
        self._ranges[var] = b

    def _simplifier(self):
        return StmtSimplifier(dict(self._ranges))

    def simplify(self, node):
        """node (an Expr or a Stmt) simplified; the same object when nothing changed."""
        return self._simplifier().visit(node)

    def const_int_bound(self, expr):
        """Inclusive (lo, hi) of an integer expression, ``math.inf`` where unbounded."""
        expr = op.convert(expr)
        s = self._simplifier()
        return intersect(s.bounds.of(expr), s.bounds.of(s.visit(expr)))

    def can_prove(self, cond):
        """True only if cond certainly holds for every value of the bound variables."""
        cond = op.convert(cond)
        if not dt.is_bool(cond.dtype):
            cond = op.ne(cond, op.const(0, cond.dtype))
        r = self.simplify(cond)
        return type(r) is E.IntImm and bool(r.value)


def simplify(node, ranges=None):
    """Simplify an Expr or Stmt under ranges (Var -> Range or inclusive (lo, hi))."""
    return Analyzer(ranges).simplify(node)


def const_int_bound(expr, ranges=None):
    """Inclusive constant bounds (lo, hi) of expr; ``math.inf`` where unbounded."""
    return Analyzer(ranges).const_int_bound(expr)


def can_prove(cond, ranges=None):
    """Whether cond is certainly true under ranges (sound: False means "not proven")."""
    return Analyzer(ranges).can_prove(cond)
