"""Vectorization: a loop marked "vectorized" becomes one statement over vector lanes.

The loop variable becomes the vector [0, 1, ..., n-1]; every expression that depends on it
becomes a vector of n lanes, and the rest stay scalar and are broadcast where they meet
vectors. Accesses whose index is affine in the loop variable become Ramp (contiguous when the
stride is 1) loads and stores; others become gathers and scatters. Where the body cannot be
expressed on vectors (a condition, an allocation or a lazy integer division that depends on
the lane, a store whose address does not) the loop stays a scalar loop, which is correct and
lets LLVM try. A lazy select with loads in its branches stays vectorized: the code generator
masks those loads by the lanes that take the branch.
"""
from ..arith import simplify
from ..arith.linear import Collector, Sum, is_index_type
from ..arith.structural import KeyCache
from ..ir import dtype as dt
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.functor import IRMutator, children, post_order_visit, substitute
from ..ir.op import const


class _NotVectorizable(Exception):
    pass


class _Reads:
    """Whether an IR node reads a variable, each node decided once (by identity): the
    vectorizer asks it of every subexpression on its way down, and walking each subtree again
    made it quadratic in the depth of the long transform sums of a Winograd kernel."""

    def __init__(self, var):
        self.var = var
        self._memo = {}

    def __call__(self, node):
        hit = self._memo.get(id(node))
        if hit is None:
            hit = node is self.var or (not isinstance(node, E.Var) and
                                       any(self(c) for c in children(node)))
            self._memo[id(node)] = (hit, node)   # the node is kept, so its id stays unique
            return hit
        return hit[0]


def _may_trap(e):
    """Whether evaluating ``e`` on a lane the condition excludes could fault: an integer
    division or remainder by anything but a non-zero constant (the divisor may be the zero
    the condition guards against). Loads
    are not listed: the code generator masks them by the lanes' condition."""
    found = []

    def visit(n):
        if isinstance(n, (E.FloorDiv, E.FloorMod)) and not dt.is_float(n.dtype) and not \
                (isinstance(n.b, E.IntImm) and n.b.value != 0):
            found.append(n)
    post_order_visit(e, visit)
    return bool(found)


class _Vectorizer:
    def __init__(self, var, lanes, collect):
        self.var, self.lanes = var, lanes
        self.reads = _Reads(var)
        self.collect = collect

    def widen(self, e):
        """Broadcast a scalar expression to the vector width."""
        if dt.lanes(e.dtype) == self.lanes:
            return e
        return E.Broadcast(dt.with_lanes(e.dtype, self.lanes), e, self.lanes)

    def index(self, idx):
        """A vector index: a Ramp when affine in the loop variable, else a general vector."""
        ramp = self._ramp_of_sum(idx)
        if ramp is not None:
            return ramp
        base = simplify(substitute(idx, {self.var: const(0, self.var.dtype)}))
        one = simplify(substitute(idx, {self.var: const(1, self.var.dtype)}))
        stride = simplify(one - base)
        if isinstance(stride, E.IntImm):
            affine = simplify(idx - (base + self.var * stride))
            if isinstance(affine, E.IntImm) and affine.value == 0:
                return E.Ramp(dt.with_lanes(idx.dtype, self.lanes), base, stride, self.lanes)
        return self.expr(idx)

    def _ramp_of_sum(self, idx):
        """The Ramp of ``rest + c * var`` read off idx's collected sum when the loop variable
        occurs only in that one term -- the common case, decided without simplifying (four
        simplifications per access dominated lowering time on unrolled kernels); None
        otherwise."""
        if not is_index_type(idx.dtype):
            return None
        total = self.collect(idx)
        stride, rest = None, Sum(idx.dtype, const=total.const)
        for mkey, (atoms, c) in total.terms.items():
            if len(atoms) == 1 and atoms[0] is self.var:
                stride = c
            elif any(self.reads(a) for a in atoms):
                return None
            else:
                rest.add_term(mkey, atoms, c)
        if stride is None:
            return None
        return E.Ramp(dt.with_lanes(idx.dtype, self.lanes), rest.to_expr(),
                      const(stride, idx.dtype), self.lanes)

    def expr(self, e):
        if not self.reads(e):
            return e
        t = type(e)
        n = self.lanes
        if t is E.Var:
            return E.Ramp(dt.with_lanes(e.dtype, n), const(0, e.dtype), const(1, e.dtype), n)
        if isinstance(e, E.BinaryOp):
            a, b = self.widen(self.expr(e.a)), self.widen(self.expr(e.b))
            return t(dt.with_lanes(e.dtype, n), a, b)
        if t is E.Not:
            return E.Not(dt.with_lanes(e.dtype, n), self.expr(e.a))
        if t is E.Cast:
            return E.Cast(dt.with_lanes(e.dtype, n), self.widen(self.expr(e.value)))
        if t is E.Call:
            args = tuple(self.widen(self.expr(a)) for a in e.args)
            return E.Call(dt.with_lanes(e.dtype, n), e.name, args)
        if t is E.Select:
            if self.reads(e.cond) and (_may_trap(e.true_value) or
                                            _may_trap(e.false_value)):
                raise _NotVectorizable("lazy select of an integer division with a "
                                       "lane-dependent condition")
            return E.Select(dt.with_lanes(e.dtype, n), self.widen(self.expr(e.cond)),
                            self.widen(self.expr(e.true_value)),
                            self.widen(self.expr(e.false_value)))
        if t is E.Load:
            return E.Load(dt.with_lanes(e.dtype, n), e.buffer, self.index(e.index))
        if t is E.Let:
            raise _NotVectorizable("let binding")
        raise _NotVectorizable(f"{t.__name__} in a vectorized loop")

    def stmt(self, s):
        t = type(s)
        if t is S.Store:
            if not self.reads(s.index):
                if self.reads(s.value):
                    raise _NotVectorizable("store to a lane-independent address")
                return s
            return S.Store(s.buffer, self.widen(self.expr(s.value)), self.index(s.index))
        if t is S.SeqStmt:
            return S.seq(*[self.stmt(x) for x in s.seq])
        if t is S.For:
            if self.reads(s.min) or self.reads(s.extent):
                raise _NotVectorizable("inner loop bounds depend on the lane")
            return S.For(s.loop_var, s.min, s.extent, s.kind, self.stmt(s.body), s.thread_tag)
        if t is S.IfThenElse:
            if self.reads(s.cond):
                raise _NotVectorizable("condition depends on the lane")
            return S.IfThenElse(s.cond, self.stmt(s.then_case),
                                None if s.else_case is None else self.stmt(s.else_case))
        if t is S.AttrStmt:
            return S.AttrStmt(s.node, s.key, s.value, self.stmt(s.body))
        if t is S.Evaluate:
            return s
        if t is S.Prefetch:   # the first lane's line: the hint stays scalar
            return S.Prefetch(s.buffer, s.dtype, substitute(s.index, {self.var: const(0, self.var.dtype)}))
        raise _NotVectorizable(f"{t.__name__} in a vectorized loop")


class _Vectorize(IRMutator):
    def __init__(self):
        self.collect = Collector(KeyCache())   # one for the pass: the loops' indices share parts

    def visit_For(self, f):
        f = self.generic(f)
        if f.kind != "vectorized":
            return f
        serial = S.For(f.loop_var, f.min, f.extent, "serial", f.body)
        if not isinstance(f.extent, E.IntImm) or f.extent.value < 2:
            return serial
        body = substitute(f.body, {f.loop_var: f.loop_var + f.min}) \
            if not (isinstance(f.min, E.IntImm) and f.min.value == 0) else f.body
        try:
            return _Vectorizer(f.loop_var, f.extent.value, self.collect).stmt(body)
        except _NotVectorizable:
            return serial


def vectorize_loops(func):
    return func.with_body(_Vectorize().visit(func.body))
