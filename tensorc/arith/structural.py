"""Structural keys: equality and a deterministic order for expressions.

IR nodes compare by identity, but the simplifier must see that two separately built ``x // 8``
are the same term (so ``(x//8)*8 + x%8`` folds) and must order terms the same way on every run.
Keys are hash-consed: structurally equal expressions get the very same ``Key`` object, so
equality is ``is``, hashing is O(1), and expression DAGs whose unfolded trees are huge cost only
their number of distinct nodes.

Keys order by ``(leading variable name, kind, ...)``: variables sort by name, then by identity
(two distinct variables may share a name), and a compound term sorts next to the first variable
it mentions, so ``x + x//8 + y`` prints in reading order.
"""
from ..ir import expr as E

_VAR, _NODE = 0, 1

_FIELDS = {
    E.Not: ("a",), E.Cast: ("value",), E.Select: ("cond", "true_value", "false_value"),
    E.Let: ("var", "value", "body"), E.Ramp: ("base", "stride"), E.Broadcast: ("value",),
    E.Load: ("buffer", "index"),
}


class Key:
    """The interned identity of a structure; compares by its ``order`` tuple."""
    __slots__ = ("order", "_hash")

    def __init__(self, order, serial):
        self.order = order
        self._hash = serial

    def __hash__(self):
        return self._hash

    def __lt__(self, other):
        return self.order < other.order

    def __gt__(self, other):
        return self.order > other.order


class KeyCache:
    """Structural keys of expressions, for the lifetime of one analysis.

    The cache holds the nodes themselves so that an ``id`` cannot be reused while it is cached.
    """

    def __init__(self):
        self._memo = {}
        self._interned = {}

    def key(self, e):
        hit = self._memo.get(id(e))
        if hit is not None:
            return hit[1]
        shape, order = self._build(e)
        k = self._interned.get(shape)
        if k is None:
            k = self._interned[shape] = Key(order, len(self._interned))
        self._memo[id(e)] = (e, k)
        return k

    def equal(self, a, b):
        return a is b or self.key(a) is self.key(b)

    def _build(self, e):
        """(shape, order): a flat hashable shape naming the structure, and its sort tuple."""
        t = type(e)
        if t is E.Var:
            return ("Var", id(e)), (e.name, _VAR, id(e), e.dtype)
        if t in (E.IntImm, E.FloatImm):
            v = e.value if t is E.IntImm else repr(e.value)
            return self._compound(t, e.dtype, (v,))
        if isinstance(e, E.BinaryOp):
            return self._compound(t, e.dtype, (self.key(e.a), self.key(e.b)))
        if t in _FIELDS:
            kids = tuple(self.key(getattr(e, f)) for f in _FIELDS[t])
            if t in (E.Ramp, E.Broadcast):
                kids += (e.lanes,)
            return self._compound(t, e.dtype, kids)
        if t is E.Call:
            return self._compound(t, e.dtype, (e.name,) + tuple(self.key(a) for a in e.args))
        if t is E.ProducerLoad:
            p = e.producer
            ident = (getattr(p, "name", ""), id(getattr(p, "op", p)), getattr(p, "value_index", 0))
            return self._compound(t, e.dtype, ident + tuple(self.key(i) for i in e.indices))
        # Reductions and unknown nodes are only equal to themselves.
        return ("opaque", id(e)), ("", _NODE, t.__name__, id(e))

    @staticmethod
    def _compound(t, dtype, kids):
        lead = next((k.order[0] for k in kids if isinstance(k, Key) and k.order[0]), "")
        return (t.__name__, dtype) + kids, (lead, _NODE, t.__name__, dtype) + kids
