"""Canonical sum-of-products form of integer expressions.

An integer expression built from ``+``, ``-`` and ``*`` is collected into ``Sum``: an integer
constant plus integer multiples of monomials, a monomial being a product of *atoms* (variables
and every other kind of node: ``x // 8``, ``min(a, b)``, loads...). Collecting first is what
makes ``x - x`` zero and the bounds of affine forms tight: each atom then occurs once.

Coefficients are kept as the signed representative of their value modulo ``2**bits``: ``+``,
``-`` and ``*`` wrap around in every integer dtype, so arithmetic modulo ``2**bits`` is exact
for them, and a result whose true integer value fits the dtype equals the wrapped one.
Products of sums are expanded only while small (``EXPAND_LIMIT`` term pairs) so that nested
products cannot blow up; a larger product of two sums stays one atom, the ``Mul`` of the two
canonical sums. Such a product is the only atom that is itself arithmetic, and collecting it
again gives the same atom, so ``collect(to_expr(s))`` is ``s`` and simplification is idempotent.
"""
from ..ir import dtype as dt
from ..ir import expr as E
from ..ir import op

EXPAND_LIMIT = 16


def is_index_type(dtype):
    """Scalar integer dtypes, the ones this form (and the integer rules) apply to."""
    return dt.is_integral(dtype) and dt.lanes(dtype) == 1


def wrap(value, dtype):
    """The value modulo 2**bits as the dtype stores it (signed or unsigned)."""
    v = signed_rep(value, dtype)
    return v + (1 << dt.bits(dtype)) if v < 0 and dt.is_uint(dtype) else v


def signed_rep(value, dtype):
    """The value modulo 2**bits as a signed number, so -1 stays -1 in unsigned types too."""
    n = dt.bits(dtype)
    v = value & ((1 << n) - 1)
    return v - (1 << n) if v >> (n - 1) else v


class Sum:
    """const + sum(coeff * prod(atoms)); ``terms`` maps a monomial key to (atoms, coeff)."""
    __slots__ = ("dtype", "terms", "const")

    def __init__(self, dtype, terms=None, const=0):
        self.dtype = dtype
        self.terms = terms if terms is not None else {}
        self.const = const

    def copy(self):
        return Sum(self.dtype, dict(self.terms), self.const)

    def is_const(self):
        return not self.terms

    def add_term(self, mkey, atoms, coeff):
        """In place: add coeff * prod(atoms)."""
        old = self.terms.get(mkey)
        c = signed_rep(coeff + (old[1] if old else 0), self.dtype)
        if c:
            self.terms[mkey] = (atoms, c)
        elif old:
            del self.terms[mkey]

    def add(self, other, scale=1):
        """In place: self += scale * other."""
        for mkey, (atoms, c) in other.terms.items():
            self.add_term(mkey, atoms, c * scale)
        self.const = signed_rep(self.const + other.const * scale, self.dtype)
        return self

    def scaled(self, k):
        return Sum(self.dtype).add(self, k)

    def single_atom(self):
        """(atom, coeff) when self is exactly coeff * atom, else None."""
        if self.const or len(self.terms) != 1:
            return None
        (atoms, c), = self.terms.values()
        return (atoms[0], c) if len(atoms) == 1 else None

    def linear_atoms(self):
        """(mkey, atom, coeff) for each degree-one term, in deterministic order."""
        return [(k, self.terms[k][0][0], self.terms[k][1]) for k in sorted(self.terms)
                if len(self.terms[k][0]) == 1]

    def to_expr(self):
        """Rebuild an expression: positive terms in key order, then the negative ones.

        Without a positive term the constant leads (``31 - i``, ``0 - x``), which keeps unsigned
        results free of huge coefficients; re-collecting the result gives back the same Sum.
        """
        t = self.dtype
        items = [self.terms[k] for k in sorted(self.terms)]
        pos = [(a, c) for a, c in items if c > 0]
        neg = [(a, -c) for a, c in items if c < 0]
        # One representative per residue class, so a constant produced by folding (-254 in
        # uint8) prints the same as the one re-collection gives (+2): simplify is idempotent.
        const = signed_rep(self.const, t)
        if pos:
            out = _monomial(*pos[0], t)
            for a, c in pos[1:]:
                out = op.add(out, _monomial(a, c, t))
        else:
            out, const = op.const(wrap(const, t), t), 0
        for a, c in neg:
            out = op.sub(out, _monomial(a, c, t))
        if const > 0:
            out = op.add(out, op.const(wrap(const, t), t))
        elif const < 0:
            out = op.sub(out, op.const(wrap(-const, t), t))
        return out


def _monomial(atoms, coeff, dtype):
    out = atoms[0]
    for a in atoms[1:]:
        out = op.mul(out, a)
    return op.mul(out, op.const(wrap(coeff, dtype), dtype))


def atom_sum(atom, keys):
    """The Sum that is just ``atom``."""
    return Sum(atom.dtype, {(keys.key(atom),): ((atom,), 1)})


class Collector:
    """Collects integer expressions into Sums, once per distinct structure (DAGs stay linear).

    ``leaf`` (if given) first rewrites each atom; a rewritten atom that turns out to be a sum or
    a constant is collected in turn by ``inner`` (a plain Collector), so callers can simplify
    atoms bottom-up and still get one flat form. Every call returns a Sum the caller may change.
    """

    def __init__(self, keys, leaf=None, inner=None):
        self.keys = keys
        self.leaf = leaf
        self.inner = inner
        self._memo = {}

    def __call__(self, e):
        # Keyed by structure: factors rebuilt by ``multiply`` are new nodes of known shapes.
        k = self.keys.key(e)
        s = self._memo.get(k)
        if s is None:
            s = self._memo[k] = self._collect(e)
        return s.copy()

    def _collect(self, e):
        t = type(e)
        if t in (E.Add, E.Sub, E.Mul) and e.a.dtype == e.dtype == e.b.dtype:
            a, b = self(e.a), self(e.b)
            if t is E.Add:
                return a.add(b)
            if t is E.Sub:
                return a.add(b, -1)
            return multiply(a, b, self.keys)
        if t is E.IntImm:
            return Sum(e.dtype, const=signed_rep(e.value, e.dtype))
        if self.leaf is not None:
            e2 = self.leaf(e)
            if e2 is not e:
                return self.inner(e2)
        return atom_sum(e, self.keys)


def multiply(a, b, keys):
    """a * b, expanding the product only while it stays small."""
    if a.is_const():
        return b.scaled(a.const)
    if b.is_const():
        return a.scaled(b.const)
    na, nb = len(a.terms) + bool(a.const), len(b.terms) + bool(b.const)
    if min(na, nb) > 1 and na * nb > EXPAND_LIMIT:
        x, y = sorted((a.to_expr(), b.to_expr()), key=keys.key)
        return atom_sum(op.mul(x, y), keys)
    out = Sum(a.dtype)
    for ta in _parts(a):
        for tb in _parts(b):
            atoms = tuple(sorted(ta[0] + tb[0], key=keys.key))
            if atoms:
                out.add_term(tuple(keys.key(x) for x in atoms), atoms, ta[1] * tb[1])
            else:
                out.const = signed_rep(out.const + ta[1] * tb[1], out.dtype)
    return out


def _parts(s):
    out = list(s.terms.values())
    if s.const:
        out.append(((), s.const))
    return out
