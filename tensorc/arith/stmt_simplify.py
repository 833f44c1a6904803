"""Statement simplification: expressions everywhere, plus the loop-level clean-ups.

Loop variables get their iteration range while the body is simplified, so index arithmetic
left by split/fuse folds and bounds guards that always hold disappear. Loops of one iteration
become their body, loops of none and branches never taken vanish (``Evaluate(0)`` stands for
"nothing", and sequences drop it). A ``thread_binding`` loop of extent 1 is kept: it is a launch
dimension, not a loop.
"""
import dataclasses

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.functor import substitute
from ..ir.op import const
from .linear import is_index_type
from .rewrite import ExprSimplifier


def is_noop(s):
    return type(s) is S.Evaluate and type(s.value) in (E.IntImm, E.FloatImm)


def noop():
    return S.Evaluate(const(0, "int32"))


class StmtSimplifier(ExprSimplifier):

    def visit_For(self, s):
        mn, ext = self.visit(s.min), self.visit(s.extent)
        n = ext.value if type(ext) is E.IntImm else None
        if n is not None and n <= 0:
            return noop()
        if n == 1 and s.kind != "thread_binding":
            return self.visit(substitute(s.body, {s.loop_var: mn}))
        rng = self.range_bound(E.Range(mn, ext)) if is_index_type(s.loop_var.dtype) else None
        with self.bounds.scoped([(s.loop_var, rng)]):
            body = self.visit(s.body)
        if is_noop(body):
            return body
        if mn is s.min and ext is s.extent and body is s.body:
            return s
        return dataclasses.replace(s, min=mn, extent=ext, body=body)

    def visit_LetStmt(self, s):
        value = self.visit(s.value)
        if type(value) in (E.IntImm, E.FloatImm, E.Var):
            return self.visit(substitute(s.body, {s.var: value}))
        b = self.bounds.of(value) if is_index_type(value.dtype) else None
        with self.bounds.scoped([(s.var, b)]):
            body = self.visit(s.body)
        if value is s.value and body is s.body:
            return s
        return S.LetStmt(s.var, value, body)

    def visit_IfThenElse(self, s):
        cond = self.visit(s.cond)
        if type(cond) is E.IntImm:
            taken = s.then_case if cond.value else s.else_case
            return noop() if taken is None else self.visit(taken)
        with self.assume(cond, True):
            then = self.visit(s.then_case)
        other = None
        if s.else_case is not None:
            with self.assume(cond, False):
                other = self.visit(s.else_case)
            if is_noop(other):
                other = None
        if is_noop(then) and other is None:
            return then
        if cond is s.cond and then is s.then_case and other is s.else_case:
            return s
        return S.IfThenElse(cond, then, other)

    def visit_SeqStmt(self, s):
        new = [self.visit(x) for x in s.seq]
        if all(a is b for a, b in zip(new, s.seq)) and not any(is_noop(x) for x in new):
            return s
        kept = [x for x in new if not is_noop(x)]
        return S.seq(*kept) if kept else noop()
