"""Constant integer bounds ``(lo, hi)`` (inclusive; ``math.inf`` where unbounded).

Sums are collected into their canonical form first, so affine index expressions get exact
bounds (``x - x`` is ``(0, 0)``, ``io*32 + ii`` is exact from the ranges of ``io`` and ``ii``).

Overflow: 32- and 64-bit index arithmetic is treated as mathematical integers where nothing is
known (a variable without a range is ``(-inf, inf)``), the convention of Halide and TVM. Once a
finite bound escapes the dtype, or an unsigned value may go negative, the value may have wrapped
around, and the bound falls back to the whole range of the dtype. Narrower types are bounded by
their range.
"""
import dataclasses
import math
from contextlib import contextmanager

from ..ir import dtype as dt
from ..ir import expr as E
from .linear import Collector, atom_sum, is_index_type

INF = math.inf


def full_range(dtype):
    """Every value the dtype can hold."""
    if dt.is_bool(dtype):
        return (0, 1)
    if not dt.is_integral(dtype):
        return (-INF, INF)
    n = dt.bits(dtype)
    return (0, (1 << n) - 1) if dt.is_uint(dtype) else (-(1 << (n - 1)), (1 << (n - 1)) - 1)


def natural(dtype):
    """The bound of a value nothing is known about (see the module note on overflow)."""
    lo, hi = full_range(dtype)
    if dt.is_integral(dtype) and dt.bits(dtype) >= 32:
        return (lo if dt.is_uint(dtype) else -INF, INF)
    return (lo, hi)


def fits(dtype, b):
    """Whether a true-integer bound rules out wrap-around in dtype."""
    lo, hi = b
    flo, fhi = full_range(dtype)
    if dt.is_uint(dtype) and lo < 0:
        return False
    return not (lo != -INF and lo < flo or hi != INF and hi > fhi)


def clamp(dtype, b):
    if not fits(dtype, b):
        return full_range(dtype)
    nlo, nhi = natural(dtype)
    return (max(b[0], nlo), min(b[1], nhi))


def intersect(a, b):
    return (max(a[0], b[0]), min(a[1], b[1]))


def _mul(a, b):
    # 0 * inf counts as 0: an endpoint 0 stands for the value 0, never a limit.
    ps = [0 if x == 0 or y == 0 else x * y for x in a for y in b]
    return (min(ps), max(ps))


def _scale(b, c):
    return (b[0] * c, b[1] * c) if c > 0 else (b[1] * c, b[0] * c)


def _fdiv(x, y):
    """Floor division extended to infinite operands (y != 0)."""
    if x in (INF, -INF):
        return x if y > 0 else -x
    if y in (INF, -INF):
        return 0 if x == 0 or (x > 0) == (y > 0) else -1
    return x // y


def _const(e):
    return e.value if type(e) is E.IntImm else None


class Bounds:
    """Bounds under ``ranges`` (Var -> (lo, hi)), changed only by ``scoped`` blocks.

    Each block gets a fresh scope number and blocks nest, so a scope number always stands for
    the same ranges: results memoised under it (here and in the simplifier) stay valid after
    inner blocks end. ``scope_of`` lets a subexpression that uses none of the variables a block
    rebinds share the results of the enclosing scope, so re-simplifying a branch under a new
    fact only redoes the parts that mention the narrowed variables.
    """

    def __init__(self, ranges, keys):
        self.ranges = ranges
        self.keys = keys
        self.collect = Collector(keys)
        self._memo = {}
        self._scopes = [0]
        self._count = 0
        self._scope_info = {0: (None, frozenset())}  # scope -> (parent, variables it rebinds)
        self._vars = {}

    @property
    def scope(self):
        return self._scopes[-1]

    @contextmanager
    def scoped(self, bindings):
        """Bind each (var, bound) in order (a None bound: nothing known) for a block."""
        if not bindings:
            yield
            return
        saved = [(var, self.ranges.get(var)) for var, _ in bindings]
        for var, b in bindings:
            self._set(var, b)
        self._count += 1
        self._scope_info[self._count] = (self.scope, frozenset(var for var, _ in bindings))
        self._scopes.append(self._count)
        try:
            yield
        finally:
            self._scopes.pop()
            for var, old in reversed(saved):
                self._set(var, old)

    def _set(self, var, b):
        if b is None:
            self.ranges.pop(var, None)
        else:
            self.ranges[var] = b

    def vars_in(self, e):
        """The variables occurring in expression e (memoised, so DAGs cost their size)."""
        hit = self._vars.get(id(e))
        if hit is None:
            if type(e) is E.Var:
                found = frozenset((e,))
            else:
                kids = [getattr(e, f.name) for f in dataclasses.fields(e)]
                kids = [k for x in kids for k in (x if isinstance(x, tuple) else (x,))
                        if isinstance(k, E.Expr)]
                found = frozenset().union(*map(self.vars_in, kids))
            hit = self._vars[id(e)] = (e, found)
        return hit[1]

    def scope_of(self, e):
        """The outermost scope whose ranges agree with the current ones on e's variables."""
        s = self.scope
        used = self.vars_in(e) if s else None
        while s:
            parent, rebound = self._scope_info[s]
            if used & rebound:
                break
            s = parent
        return s

    def of(self, e):
        k = (self.keys.key(e), self.scope_of(e))
        b = self._memo.get(k)
        if b is None:
            b = self._memo[k] = self._compute(e)
        return b

    def of_sum(self, s):
        return clamp(s.dtype, self.math(s))

    def math(self, s):
        """Bound of the true integer value of a Sum, its atoms bounded as evaluated."""
        b = self._plain(s)
        alt = self._divmod_rewritten(s)
        return b if alt is None else intersect(b, self._plain(alt))

    def _plain(self, s):
        lo = hi = s.const
        for atoms, c in s.terms.values():
            m = self.of(atoms[0])
            for a in atoms[1:]:
                m = _mul(m, self.of(a))
            m = _scale(m, c)
            lo, hi = lo + m[0], hi + m[1]
        return (lo, hi)

    def _divmod_rewritten(self, s):
        """s with ``z//k`` or ``z%k`` spelled through the other when z shares terms with s.

        ``8*(x//8) - x`` is bounded loosely term by term, but as ``-(x%8)`` exactly; both forms
        are equal, so the intersection of their bounds is sound.
        """
        out = None
        for mkey, (atoms, c) in list(s.terms.items()):
            a = atoms[0]
            k = _const(getattr(a, "b", None))
            if len(atoms) != 1 or type(a) not in (E.FloorDiv, E.FloorMod) or not k or k < 0:
                continue
            z = self.collect(a.a)
            if type(a) is E.FloorDiv and c % k or not any(m in s.terms for m in z.terms):
                continue
            out = out or s.copy()
            out.add_term(mkey, atoms, -c)
            if type(a) is E.FloorDiv:  # c*(z//k) == (c/k)*(z - z%k)
                out.add(z, c // k)
                out.add(atom_sum(E.FloorMod(a.dtype, a.a, a.b), self.keys), -(c // k))
            else:  # c*(z%k) == c*(z - k*(z//k))
                out.add(z, c)
                out.add(atom_sum(E.FloorDiv(a.dtype, a.a, a.b), self.keys), -c * k)
        return out

    def _compute(self, e):
        t = type(e)
        dtype = e.dtype
        if t is E.IntImm:
            return (e.value, e.value)
        if t is E.Var:
            return self.ranges.get(e) or natural(dtype)
        if not (is_index_type(dtype) or dtype == "bool"):
            return natural(dtype)
        if t in (E.Add, E.Sub, E.Mul):
            s = self.collect(e)
            one = s.single_atom()
            if one is not None and type(one[0]) is E.Mul:  # a product of sums kept whole
                m = one[0]
                return clamp(dtype, _scale(_mul(self.of(m.a), self.of(m.b)), one[1]))
            return self.of_sum(s)
        if t is E.FloorDiv:
            return clamp(dtype, self._floordiv(e))
        if t is E.FloorMod:
            return self._floormod(e)
        if t in (E.Min, E.Max):
            a, b = self.of(e.a), self.of(e.b)
            f = min if t is E.Min else max
            return (f(a[0], b[0]), f(a[1], b[1]))
        if t is E.Select:
            c = _const(e.cond)
            if c is not None:
                return self.of(e.true_value if c else e.false_value)
            a, b = self.of(e.true_value), self.of(e.false_value)
            return (min(a[0], b[0]), max(a[1], b[1]))
        if t is E.Cast:
            if dt.is_float(e.value.dtype) or dt.lanes(e.value.dtype) != 1:
                return natural(dtype)
            return clamp(dtype, self.of(e.value))
        if t is E.Let:
            value = self.of(e.value) if is_index_type(e.value.dtype) else None
            with self.scoped([(e.var, value)]):
                return self.of(e.body)
        return natural(dtype)

    def _floordiv(self, e):
        a = self.of(e.a)
        c = _const(e.b)
        if c is not None:
            d = (c, c)
        else:
            d = self.of(e.b)
        if not (d[0] > 0 or d[1] < 0):
            return natural(e.dtype)
        qs = [_fdiv(x, y) for x in a for y in d]
        return (min(qs), max(qs))

    def _floormod(self, e):
        a = self.of(e.a)
        c = _const(e.b)
        if c is not None and c != 0 and -INF < a[0] and a[1] < INF and a[0] // c == a[1] // c:
            return (a[0] % c, a[1] % c)
        d = (c, c) if c is not None else self.of(e.b)
        if d[0] > 0:
            return (0, d[1] - 1 if a[0] < 0 else min(a[1], d[1] - 1))
        if d[1] < 0:
            return (d[0] + 1 if a[1] > 0 else max(a[0], d[0] + 1), 0)
        return natural(e.dtype)
