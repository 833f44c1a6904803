"""Expression simplification: canonical integer sums plus rules decided by bounds.

Integer ``+ - *`` trees are collected into the canonical form of ``linear.py`` (atoms simplified
first, bottom-up) and rebuilt; every other rule asks ``int_bounds`` about the value range:
``e // c`` and ``e % c`` fold when ``e`` stays within one period of ``c``, ``min``/``max`` and
comparisons fold when the bound of ``a - b`` has a sign. Floats are only constant-folded
exactly (``fold.py``) and lose ``x*1``, ``x+0``, ``x-0``: reassociating them would change
results.

Rules that take an integer expression apart (splitting ``(x*c + y) // c``, comparing through
``a - b``) need the true value of the expression, so they first check with ``fits`` that it
cannot have wrapped around. The mutator returns the very node it was given when the result is
structurally the same.
"""
import dataclasses
from contextlib import contextmanager
from math import gcd

from ..ir import dtype as dt
from ..ir import expr as E
from ..ir import op
from ..ir.functor import IRMutator, substitute
from . import fold
from .constraint import NEGATE, implied_ranges
from .int_bounds import INF, Bounds, fits, full_range, intersect
from .linear import Collector, Sum, atom_sum, is_index_type, signed_rep
from .structural import KeyCache

_CMP_FOLD = {E.EQ: op.eq, E.NE: op.ne, E.LT: op.lt, E.LE: op.le, E.GT: op.gt, E.GE: op.ge}


def _const(e):
    return e.value if type(e) is E.IntImm else None


def _is_imm(e):
    return type(e) in (E.IntImm, E.FloatImm)


def _fdiv_same(lo, hi, c):
    """lo // c when [lo, hi] lies within one period of c, else None."""
    if lo == -INF or hi == INF or lo // c != hi // c:
        return None
    return lo // c


def _decide(t, s, bound):
    """The truth of t(a, b) on integers from s = a - b and its bound, or None if undecided."""
    lo, hi = bound
    if t in (E.EQ, E.NE):
        g = gcd(*(k for _, k in s.terms.values())) if s.terms else 0
        if lo > 0 or hi < 0 or g > 1 and s.const % g:
            return t is E.NE
        return (t is E.EQ) if lo == hi == 0 else None
    if t in (E.GT, E.GE):
        lo, hi = -hi, -lo
    strict = t in (E.LT, E.GT)
    if hi < 0 or hi == 0 and not strict:
        return True
    if lo > 0 or lo == 0 and strict:
        return False
    return None


def _rebuild(e, *kids):
    """e with new operands, or e itself when none changed."""
    names = [f.name for f in dataclasses.fields(e)][1:1 + len(kids)]
    if all(getattr(e, n) is k for n, k in zip(names, kids)):
        return e
    return dataclasses.replace(e, **dict(zip(names, kids)))


class ExprSimplifier(IRMutator):
    """Simplifies expressions under ``ranges`` (Var -> inclusive (lo, hi)), which it updates.

    Results are memoised per node and range scope, so an expression DAG that shares
    subexpressions costs its number of distinct nodes, not the size of its unfolded tree.
    Branches of ``select``/``&&``/``||`` learn from their condition only ``MAX_ASSUME_DEPTH``
    levels deep: each level re-simplifies the shared operands under new ranges.
    """

    MAX_ASSUME_DEPTH = 3

    def __init__(self, ranges):
        self.keys = KeyCache()
        self.bounds = Bounds(ranges, self.keys)
        self._memo = {}
        self._collectors = {}
        self._assume_depth = 0

    def visit(self, node):
        if not isinstance(node, E.Expr):
            return super().visit(node)
        k = (id(node), self.bounds.scope_of(node))
        hit = self._memo.get(k)
        if hit is None:
            hit = self._memo[k] = (node, super().visit(node))
        return hit[1]

    def _same(self, old, new):
        return old if self.keys.equal(old, new) else new

    def _sum(self, e):
        return self.bounds.collect(e)

    def _fits(self, s):
        return fits(s.dtype, self.bounds.math(s))

    @contextmanager
    def assume(self, cond, truth=True, within=None):
        """Narrow variable ranges to what cond == truth implies, for the duration of a block.

        With ``within`` (an expression), only its variables are narrowed: a fact about other
        variables would open a new scope, and so a new round of simplification, for nothing.
        """
        narrowed = {}
        used = None if within is None else self.bounds.vars_in(within)
        for var, b in implied_ranges(cond, truth, self.bounds):
            if used is not None and var not in used:
                continue
            cur = narrowed.get(var, self.bounds.ranges.get(var))
            b = b if cur is None else intersect(cur, b)
            if b[0] <= b[1] and b != cur:
                narrowed[var] = b
        with self.bounds.scoped(list(narrowed.items())):
            yield

    def _visit_assuming(self, cond, truth, e):
        """e simplified knowing that cond == truth (up to MAX_ASSUME_DEPTH levels deep)."""
        if self._assume_depth >= self.MAX_ASSUME_DEPTH:
            return self.visit(e)
        self._assume_depth += 1
        try:
            with self.assume(cond, truth, within=e):
                return self.visit(e)
        finally:
            self._assume_depth -= 1

    # ---- leaves and generic nodes -------------------------------------------------------------

    def visit_Var(self, e):
        b = self.bounds.ranges.get(e)
        if b is not None and b[0] == b[1] and is_index_type(e.dtype) and fits(e.dtype, b):
            return op.const(b[0], e.dtype)  # a loop of one iteration, or `if i == 5`
        return e

    def visit_IntImm(self, e):
        return e

    def visit_FloatImm(self, e):
        return e

    def visit_Reduce(self, e):
        axes = [(iv.var, self.range_bound(iv.dom)) for iv in e.axis
                if iv.dom is not None and is_index_type(iv.var.dtype)]
        with self.bounds.scoped(axes):
            return self.generic(e)

    def range_bound(self, rng):
        """Inclusive bound of a variable iterating over Range rng."""
        lo, hi = self.bounds.of(rng.min), self.bounds.of(rng.extent)
        return (lo[0], max(lo[0], lo[1] + hi[1] - 1))

    # ---- + - * ------------------------------------------------------------------------------

    def visit_Add(self, e):
        if not is_index_type(e.dtype):
            return self._other_arith(e)
        scope = self.bounds.scope
        collect = self._collectors.get(scope)
        if collect is None:
            collect = self._collectors[scope] = Collector(self.keys, self.visit,
                                                          self.bounds.collect)
        s = self._fold_divmod(collect(e))
        return self._same(e, s.to_expr())

    visit_Sub = visit_Mul = visit_Add

    def visit_Div(self, e):
        return self._other_arith(e)

    def _other_arith(self, e):
        """Floats (exact folding, x*1, x+0, x-0 only) and vectors (operands simplified)."""
        a, b = self.visit(e.a), self.visit(e.b)
        if dt.is_float(e.dtype) and dt.lanes(e.dtype) == 1:
            if _is_imm(a) and _is_imm(b):
                return fold.float_binary(type(e), a, b, e.dtype)
            t = type(e)
            if t in (E.Add, E.Sub) and op.is_const(b, 0) or t is E.Mul and op.is_const(b, 1):
                return a
            if t is E.Add and op.is_const(a, 0) or t is E.Mul and op.is_const(a, 1):
                return b
        return _rebuild(e, a, b)

    def _merge_nested_divmod(self, s):
        """``k*C*(z//C) + k*c*((z//c) % (C/c))`` -> ``k*c*(z//c)``.

        Fusing three or more axes and splitting the fused loop back leaves one such pair per
        extra axis; merging them (outermost first) lets the two-term identity below finish
        the job, so the flat index is recovered and the access stays contiguous.
        """
        merged = True
        while merged:
            merged = False
            for mkey in sorted(s.terms):
                atoms, coeff = s.terms[mkey]
                a = atoms[0]
                big = _const(getattr(a, "b", None))
                if len(atoms) != 1 or type(a) is not E.FloorDiv or not big or big < 0 or \
                        coeff % big:
                    continue
                k = coeff // big
                for m2 in sorted(s.terms):
                    atoms2, coeff2 = s.terms[m2]
                    b = atoms2[0]
                    if len(atoms2) != 1 or type(b) is not E.FloorMod or \
                            type(b.a) is not E.FloorDiv:
                        continue
                    c, m = _const(b.a.b), _const(b.b)
                    if not c or not m or c < 0 or m < 0 or c * m != big or \
                            coeff2 != signed_rep(k * c, s.dtype) or \
                            not self.keys.equal(b.a.a, a.a):
                        continue
                    s.add_term(mkey, atoms, -coeff)
                    s.add_term(m2, atoms2, -coeff2)
                    s.add(atom_sum(b.a, self.keys), k * c)
                    merged = True
                    break
                if merged:
                    break
        return s

    def _fold_divmod(self, s):
        """Split/fuse identities in a sum: ``k*c*(z//c) + k*(z%c)`` -> ``k*z`` and
        ``k*c*(z//c) - k*z`` -> ``-k*(z%c)``."""
        s = self._merge_nested_divmod(s)
        for mkey in sorted(s.terms):
            if mkey not in s.terms:
                continue
            atoms, coeff = s.terms[mkey]
            a = atoms[0]
            c = _const(getattr(a, "b", None))
            if len(atoms) != 1 or type(a) is not E.FloorDiv or not c or c < 0 or coeff % c:
                continue
            k = coeff // c
            mod = atom_sum(E.FloorMod(a.dtype, a.a, a.b), self.keys)
            mod_key, = mod.terms
            z = self._sum(a.a)
            if s.terms.get(mod_key, (0, 0))[1] == signed_rep(k, s.dtype):
                s.add_term(mkey, atoms, -coeff)
                s.add(mod, -k)
                s.add(z, k)
            elif z.terms and all(s.terms.get(m, (0, 0))[1] == signed_rep(-k * zc, s.dtype)
                                 for m, (_, zc) in z.terms.items()):
                s.add_term(mkey, atoms, -coeff)
                s.add(z, k)
                s.add(mod, -k)
        return s

    # ---- // % -------------------------------------------------------------------------------

    def visit_FloorDiv(self, e):
        a, b = self.visit(e.a), self.visit(e.b)
        c = _const(b)
        if not is_index_type(e.dtype) or not c:
            return _rebuild(e, a, b)
        if _is_imm(a):
            return op.floordiv(a, b)
        if c < 0:
            return _rebuild(e, a, b)
        return self._same(e, self._floordiv(a, c))

    def _floordiv(self, a, c):
        t = a.dtype
        inner = _const(getattr(a, "b", None))
        if type(a) is E.FloorDiv and inner and inner > 0 and inner * c <= full_range(t)[1]:
            return self._floordiv(a.a, inner * c)
        s = self._sum(a)
        if not self._fits(s):
            return E.FloorDiv(t, a, op.const(c, t))
        q, r = Sum(t), Sum(t)
        for mkey, (atoms, k) in s.terms.items():
            if k % c == 0:
                q.add_term(mkey, atoms, k // c)
            else:
                r.add_term(mkey, atoms, k)
        q.const, r.const = s.const // c, s.const % c
        lo, hi = self.bounds.math(r)
        n = _fdiv_same(lo, hi, c)
        if n is not None:
            q.const += n
            return q.to_expr()
        if not fits(t, (lo, hi)):
            return E.FloorDiv(t, a, op.const(c, t))
        g = gcd(c, r.const, *(k for _, k in r.terms.values()))
        if g > 1:
            r = Sum(t, {m: (at, k // g) for m, (at, k) in r.terms.items()}, r.const // g)
            c //= g
        q.add(atom_sum(E.FloorDiv(t, r.to_expr(), op.const(c, t)), self.keys))
        return q.to_expr()

    def visit_FloorMod(self, e):
        a, b = self.visit(e.a), self.visit(e.b)
        c = _const(b)
        if not is_index_type(e.dtype) or not c:
            return _rebuild(e, a, b)
        if _is_imm(a):
            return op.floormod(a, b)
        if c < 0:
            return _rebuild(e, a, b)
        return self._same(e, self._floormod(a, c))

    def _floormod(self, a, c):
        t = a.dtype
        while type(a) is E.FloorMod and (_const(a.b) or 0) > 0 and a.b.value % c == 0:
            a = a.a
        s = self._sum(a)
        if not self._fits(s):
            return E.FloorMod(t, a, op.const(c, t))
        r = Sum(t, const=s.const % c)
        for mkey, (atoms, k) in s.terms.items():
            x = atoms[0]
            m = _const(getattr(x, "b", None))
            if k % c == 0:
                continue
            if len(atoms) == 1 and type(x) is E.FloorMod and m and m > 0 and m % c == 0 \
                    and self._fits(self._sum(x.a)):
                r.add(self._sum(x.a), k)  # (z % (c*m')) == z modulo c
            else:
                r.add_term(mkey, atoms, k)
        lo, hi = self.bounds.math(r)
        n = _fdiv_same(lo, hi, c)
        if n is not None and fits(t, (lo, hi)):
            r.const -= n * c
            return r.to_expr()
        if not fits(t, (lo, hi)):
            return E.FloorMod(t, a, op.const(c, t))
        return E.FloorMod(t, r.to_expr(), op.const(c, t))

    # ---- min / max / select -----------------------------------------------------------------

    def _diff(self, a, b):
        """(Sum of a - b, bound of its true value), or None if a or b may have wrapped."""
        sa, sb = self._sum(a), self._sum(b)
        if not (self._fits(sa) and self._fits(sb)):
            return None
        d = sa.add(sb, -1)
        return d, self.bounds.math(d)

    def visit_Min(self, e):
        a, b = self.visit(e.a), self.visit(e.b)
        t = type(e)
        if not is_index_type(e.dtype):
            if dt.is_float(e.dtype) and dt.lanes(e.dtype) == 1 and _is_imm(a) and _is_imm(b):
                return fold.float_binary(t, a, b, e.dtype)
            return _rebuild(e, a, b)
        if _is_imm(a) and _is_imm(b):
            return (op.minimum if t is E.Min else op.maximum)(a, b)
        d = self._diff(a, b)
        if d is not None:
            lo, hi = d[1]
            if hi <= 0:
                return a if t is E.Min else b
            if lo >= 0:
                return b if t is E.Min else a
        if type(a) is t and _is_imm(a.b) and _is_imm(b):
            inner = (op.minimum if t is E.Min else op.maximum)(a.b, b)
            return self._same(e, t(e.dtype, a.a, inner))
        return _rebuild(e, a, b)

    visit_Max = visit_Min

    def visit_Select(self, e):
        cond = self.visit(e.cond)
        if type(cond) is E.Broadcast and type(cond.value) is E.IntImm:
            cond = cond.value   # every lane takes the same branch
        if type(cond) is E.IntImm:
            return self.visit(e.true_value if cond.value else e.false_value)
        tv = self._visit_assuming(cond, True, e.true_value)
        fv = self._visit_assuming(cond, False, e.false_value)
        if self.keys.equal(tv, fv):
            return tv
        return _rebuild(e, cond, tv, fv)

    # ---- comparisons and logic --------------------------------------------------------------

    def visit_EQ(self, e):
        a, b = self.visit(e.a), self.visit(e.b)
        t = type(e)
        if _is_imm(a) and _is_imm(b) and dt.lanes(a.dtype) == 1:
            if dt.is_float(a.dtype):
                return fold.float_binary(t, a, b, e.dtype)
            return _CMP_FOLD[t](a, b)
        d = self._diff(a, b) if is_index_type(a.dtype) and a.dtype == b.dtype else None
        if d is None:
            return _rebuild(e, a, b)
        v = _decide(t, *d)
        if v is not None:
            return op.const(v, e.dtype)
        # Undecided: terms with a positive coefficient on the left, the rest on the right,
        # so `j + 96 < 100` reads `j < 4` (and `x + 1 <= y + 1` reads `x <= y`).
        lhs, rhs = Sum(a.dtype), Sum(a.dtype, const=-d[0].const)
        for mkey, (atoms, k) in d[0].terms.items():
            (lhs if k > 0 else rhs).add_term(mkey, atoms, abs(k))
        if not (self._fits(lhs) and self._fits(rhs)):
            return _rebuild(e, a, b)
        return self._same(e, t(e.dtype, lhs.to_expr(), rhs.to_expr()))

    visit_NE = visit_LT = visit_LE = visit_GT = visit_GE = visit_EQ

    def visit_Not(self, e):
        a = self.visit(e.a)
        t = type(a)
        if t is E.IntImm:
            return op.const(not a.value, e.dtype)
        if t is E.Not:
            return a.a
        if t in (E.EQ, E.NE) or t in _CMP_FOLD and is_index_type(a.a.dtype):
            return NEGATE[t](a.dtype, a.a, a.b)
        return _rebuild(e, a)

    def visit_And(self, e):
        t = type(e)
        a = self.visit(e.a)
        if type(a) is E.IntImm and dt.lanes(a.dtype) == 1:
            short = (not a.value) if t is E.And else bool(a.value)
            return a if short else self.visit(e.b)
        b = self._visit_assuming(a, t is E.And, e.b)
        if type(b) is E.IntImm and dt.lanes(b.dtype) == 1:
            return b if bool(b.value) != (t is E.And) else a
        if self.keys.equal(a, b):
            return a
        return _rebuild(e, a, b)

    visit_Or = visit_And

    # ---- cast / let -------------------------------------------------------------------------

    def visit_Cast(self, e):
        v = self.visit(e.value)
        if _is_imm(v) and dt.lanes(e.dtype) == 1:
            folded = fold.cast(e.dtype, v)
            if folded is not None:
                return folded
        if v.dtype == e.dtype:
            return v
        return _rebuild(e, v)

    def visit_Let(self, e):
        value = self.visit(e.value)
        if type(value) in (E.IntImm, E.FloatImm, E.Var):
            return self.visit(substitute(e.body, {e.var: value}))
        b = self.bounds.of(value) if is_index_type(value.dtype) else None
        with self.bounds.scoped([(e.var, b)]):
            body = self.visit(e.body)
        if e.var not in self.bounds.vars_in(body):
            return body
        return _rebuild(e, e.var, value, body)
