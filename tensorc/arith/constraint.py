"""Variable ranges implied by a condition, for the code that only runs when it holds.

Inside ``if io*8 + ii < 100`` the loop variables are known to satisfy the comparison, so a
second guard on the same condition, or a ``min`` it decides, folds away. Each comparison of
integers is turned into facts ``d <= 0`` over the canonical form, and every variable ``v`` with
coefficient ``k`` in ``d`` gets the bound ``k*v <= -lower_bound(d - k*v)``.
"""
from ..ir import expr as E
from .int_bounds import INF, fits, natural
from .linear import Sum, is_index_type

NEGATE = {E.LT: E.GE, E.GE: E.LT, E.LE: E.GT, E.GT: E.LE, E.EQ: E.NE, E.NE: E.EQ}


def _le_zero_facts(cond, truth, bounds):
    """Sums d such that d <= 0 whenever cond evaluates to ``truth``."""
    t = type(cond)
    if t is E.Not:
        return _le_zero_facts(cond.a, not truth, bounds)
    if t is (E.And if truth else E.Or):
        return _le_zero_facts(cond.a, truth, bounds) + _le_zero_facts(cond.b, truth, bounds)
    if t not in NEGATE or not is_index_type(cond.a.dtype) or cond.a.dtype != cond.b.dtype:
        return []
    cls = t if truth else NEGATE[t]
    a, b = bounds.collect(cond.a), bounds.collect(cond.b)
    if not (fits(a.dtype, bounds.math(a)) and fits(b.dtype, bounds.math(b))):
        return []
    diff = a.copy().add(b, -1)
    one = Sum(diff.dtype, const=1)
    if cls is E.LT:
        return [diff.add(one)]
    if cls is E.LE:
        return [diff]
    if cls is E.GT:
        return [diff.scaled(-1).add(one)]
    if cls is E.GE:
        return [diff.scaled(-1)]
    if cls is E.EQ:
        return [diff, diff.scaled(-1)]
    return []


def implied_ranges(cond, truth, bounds):
    """[(var, (lo, hi))]: tighter ranges for variables when cond evaluates to ``truth``.

    Later entries were derived with the earlier ones not yet applied, so callers apply them in
    order, intersecting with what is current.
    """
    out = []
    for d in _le_zero_facts(cond, truth, bounds):
        for mkey, atom, k in d.linear_atoms():
            if type(atom) is not E.Var:
                continue
            rest = d.copy()
            rest.add_term(mkey, (atom,), -k)
            rl = bounds.math(rest)[0]
            if rl in (INF, -INF):
                continue
            lo, hi = natural(atom.dtype)
            out.append((atom, (lo, (-rl) // k) if k > 0 else (-((-rl) // -k), hi)))
    return out
