"""Generic traversal of IR trees.

``IRMutator`` rebuilds a node only when a child changed and otherwise returns the very same
object (Halide's IRMutator contract), so passes can test ``new is old`` to skip work. Subclasses
override ``visit_<NodeClass>`` for the nodes they care about and call ``self.generic(node)`` to
recurse into the rest.
"""
import dataclasses

from .expr import Expr, Range, Var
from .stmt import Stmt

_FIELDS = {}


def _fields(node):
    cls = type(node)
    f = _FIELDS.get(cls)
    if f is None:
        f = _FIELDS[cls] = tuple(x.name for x in dataclasses.fields(cls))
    return f


def _is_ir(x):
    return isinstance(x, (Expr, Stmt, Range))


def children(node):
    """The IR nodes directly under ``node`` (fields and tuple fields), in field order."""
    out = []
    for name in _fields(node):
        value = getattr(node, name)
        if _is_ir(value):
            out.append(value)
        elif isinstance(value, tuple):
            out.extend(v for v in value if _is_ir(v))
    return out


class IRMutator:
    def visit(self, node):
        if node is None:
            return None
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is not None:
            return method(node)
        return self.generic(node)

    def _child(self, value):
        if _is_ir(value):
            return self.visit(value)
        if isinstance(value, tuple) and value and any(_is_ir(v) for v in value):
            new = tuple(self.visit(v) if _is_ir(v) else v for v in value)
            return value if all(a is b for a, b in zip(new, value)) else new
        return value

    def generic(self, node):
        changes = {}
        for name in _fields(node):
            old = getattr(node, name)
            new = self._child(old)
            if new is not old:
                changes[name] = new
        if not changes:
            return node
        return dataclasses.replace(node, **changes)


class IRVisitor:
    """Read-only walk: override ``visit_<NodeClass>`` and call ``self.generic`` to go deeper.

    Each expression node is visited once even when it is shared (a DAG built by reusing a
    Python variable would otherwise cost exponential time); statements are visited every time
    they occur, since their context (enclosing loops) can differ.
    """

    def visit(self, node):
        if node is None:
            return
        if isinstance(node, Expr):
            seen = self.__dict__.setdefault("_seen", set())
            if id(node) in seen:
                return
            seen.add(id(node))
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is not None:
            method(node)
        else:
            self.generic(node)

    def generic(self, node):
        for name in _fields(node):
            value = getattr(node, name)
            if _is_ir(value):
                self.visit(value)
            elif isinstance(value, tuple):
                for v in value:
                    if _is_ir(v):
                        self.visit(v)


def post_order_visit(node, fn):
    """Call fn on every IR node under node, children first."""

    seen = set()

    class _V(IRVisitor):
        def visit(self, n):
            if n is None or id(n) in seen:
                return
            if isinstance(n, Expr):
                seen.add(id(n))
            self.generic(n)
            fn(n)

    _V().visit(node)


class _Substitute(IRMutator):
    """Context-free, so each shared expression node is rewritten once."""

    def __init__(self, vmap):
        self.vmap = vmap
        self.memo = {}

    def visit(self, node):
        if isinstance(node, Expr):
            key = id(node)
            hit = self.memo.get(key)
            if hit is None:
                hit = self.memo[key] = (node, super().visit(node))
            return hit[1]
        return super().visit(node)

    def visit_Var(self, v):
        return self.vmap.get(v, v)


def substitute(node, vmap):
    """Replace variables by expressions (vmap: Var -> Expr) everywhere under node."""
    if not vmap:
        return node
    return _Substitute(vmap).visit(node)


def free_vars(node):
    """The set of Vars used under node (loop variables included)."""
    found = set()
    post_order_visit(node, lambda n: found.add(n) if isinstance(n, Var) else None)
    return found


def uses_var(node, var_set):
    """True if any variable of var_set occurs under node."""
    return bool(free_vars(node) & set(var_set))
