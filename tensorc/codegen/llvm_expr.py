"""Expressions to LLVM values.

Select is lazy (the semantics page: the branch not taken is never evaluated) but only costs
anything when a branch reads memory, since nothing else can fault: integer division is guarded and
float arithmetic does not trap. So a load-free Select is an LLVM ``select``; a scalar one with loads
becomes branches and a phi; a vector one evaluates both sides with a lane mask that its loads
honour (masked loads and gathers), which keeps the code vectorized. A scalar expression with loads
evaluated under a mask (the operand of a Broadcast, say) runs only if some lane is live.
"""
import contextlib

from ..ir import dtype as dt
from ..ir import expr as E
from ..ir.functor import post_order_visit
from . import llvm_arith as arith
from .llvm_builder import const, const_vector, llvm_type, vector_type, zero
from .llvm_index import needs_widening, widen_index
from .llvm_intrin import emit_call
from .llvm_memory import emit_load

_BINARY = (E.Add, E.Sub, E.Mul, E.Div, E.FloorDiv, E.FloorMod, E.Min, E.Max, E.EQ, E.NE, E.LT,
           E.LE, E.GT, E.GE, E.And, E.Or)
_UNBOUND = object()


@contextlib.contextmanager
def _scoped(mapping, key, value):
    """mapping[key] = value inside a with-block, then whatever was there before."""
    old = mapping.get(key, _UNBOUND)
    mapping[key] = value
    try:
        yield
    finally:
        if old is _UNBOUND:
            del mapping[key]
        else:
            mapping[key] = old


def _const_int(e):
    """The value of an integer constant (or a broadcast one), else None."""
    if isinstance(e, E.Broadcast):
        e = e.value
    return e.value if isinstance(e, E.IntImm) else None


class ExprEmitter:
    """Emits expressions into the function being built by ``fb``.

    ``env`` maps IR variables (loop indices, lets, buffer handles) to the LLVM values bound to them;
    its insertion order is deterministic, which keeps the generated text (and cache key) stable.
    """

    def __init__(self, fb, fast_math):
        self.fb = fb
        self.env = {}
        self.mask = None
        self.fflags = "fast" if fast_math else "contract"
        self.call_flags = "fast" if fast_math else ""
        self.twins = {}
        self._has_load = {}

    def expr(self, e):
        if self.mask is not None and dt.lanes(e.dtype) == 1 and self.has_load(e):
            return self._when_any_lane(e)
        method = _DISPATCH.get(type(e))
        if method is None:
            raise TypeError(f"LLVM codegen cannot emit {type(e).__name__} ({e}); lowering should "
                            "have removed it")
        return method(self, e)

    @contextlib.contextmanager
    def let(self, var, value_expr):
        """Bind var to the value of value_expr for a with-block.

        A load-free signed integer value (one that may feed an index) also gets an int64 twin,
        which indices through var use instead (see llvm_index); LLVM drops whichever is unused.
        """
        with self.bound(var, self.expr(value_expr)):
            if not needs_widening(var.dtype) or self.has_load(value_expr):
                yield
                return
            twin = E.Var(f"{var.name}.i64", dt.with_lanes("int64", dt.lanes(var.dtype)))
            with self.bound(twin, self.expr(widen_index(value_expr, self.twins))), \
                    _scoped(self.twins, var, twin):
                yield

    def bound(self, var, value):
        """Bind var to an LLVM value for the duration of a with-block (shadowing allowed)."""
        return _scoped(self.env, var, value)

    def has_load(self, e):
        found = self._has_load.get(e)
        if found is None:
            hits = []
            post_order_visit(e, lambda n: hits.append(n) if isinstance(n, E.Load) else None)
            found = self._has_load[e] = bool(hits)
        return found

    def _when_any_lane(self, e):
        fb, mask = self.fb, self.mask
        any_lane = arith.call_intrinsic(fb, "vector.reduce.or", [mask], ret="i1")
        before, live, join = fb.block, fb.label("lanes.live"), fb.label("lanes.join")
        fb.cbr(any_lane, live, join)
        fb.start_block(live)
        self.mask = None
        try:
            value = self.expr(e)
        finally:
            self.mask = mask
        end = fb.block
        fb.br(join)
        fb.start_block(join)
        return fb.phi(value.ty, [(value.ref, end), (zero(value.ty).ref, before)])

    def _imm(self, e):
        return const(llvm_type(e.dtype), e.value)

    def _var(self, v):
        value = self.env.get(v)
        if value is None:
            raise ValueError(f"LLVM codegen: variable {v.name!r} ({v.dtype}) is used outside "
                             "the scope that binds it")
        return value

    def _binary(self, e):
        a, b = self.expr(e.a), self.expr(e.b)
        return arith.binary(self.fb, type(e), e.a.dtype, a, b, self.fflags, _const_int(e.b))

    def _not(self, e):
        a = self.expr(e.a)
        return self.fb.binop("xor", a, const(a.ty, 1))

    def _cast(self, e):
        src, dst = e.value.dtype, e.dtype
        value = self.expr(e.value)
        if dt.lanes(src) == 1 and dt.lanes(dst) > 1:
            scalar = arith.cast(self.fb, value, src, dt.element_of(dst))
            return self.fb.splat(scalar, dt.lanes(dst))
        return arith.cast(self.fb, value, src, dst)

    def _let(self, e):
        with self.let(e.var, e.value):
            return self.expr(e.body)

    def _ramp(self, e):
        if not dt.is_integral(e.dtype):
            raise TypeError(f"LLVM codegen: Ramp of {e.dtype} (only integer ramps are supported)")
        fb = self.fb
        base = self.expr(e.base)
        ty = vector_type(base.ty, e.lanes)
        stride = _const_int(e.stride)
        if stride is not None:
            offsets = const_vector(ty, [k * stride for k in range(e.lanes)])
        else:
            offsets = fb.binop("mul", fb.splat(self.expr(e.stride), e.lanes),
                               const_vector(ty, range(e.lanes)))
        return fb.binop("add", fb.splat(base, e.lanes), offsets)

    def _broadcast(self, e):
        return self.fb.splat(self.expr(e.value), e.lanes)

    def _select(self, e):
        cond = self.expr(e.cond)
        if not e.lazy or not (self.has_load(e.true_value) or self.has_load(e.false_value)):
            return self.fb.select(cond, self.expr(e.true_value), self.expr(e.false_value))
        if dt.lanes(e.cond.dtype) == 1:
            return self._branch_select(cond, e)
        return self._masked_select(cond, e)

    def _branch_select(self, cond, e):
        fb = self.fb
        on_true, on_false, join = fb.label("sel.true"), fb.label("sel.false"), fb.label("sel.join")
        fb.cbr(cond, on_true, on_false)
        arms = []
        for label, branch in ((on_true, e.true_value), (on_false, e.false_value)):
            fb.start_block(label)
            value = self.expr(branch)
            arms.append((value, fb.block))
            fb.br(join)
        fb.start_block(join)
        return fb.phi(arms[0][0].ty, [(v.ref, block) for v, block in arms])

    def _masked_select(self, cond, e):
        fb, outer = self.fb, self.mask
        negated = fb.binop("xor", cond, const(cond.ty, 1))
        values = []
        for lanes_on, branch in ((cond, e.true_value), (negated, e.false_value)):
            if self.has_load(branch):
                self.mask = lanes_on if outer is None else fb.binop("and", outer, lanes_on)
            try:
                values.append(self.expr(branch))
            finally:
                self.mask = outer
        return fb.select(cond, *values)


_DISPATCH = {cls: ExprEmitter._binary for cls in _BINARY}
_DISPATCH.update({
    E.IntImm: ExprEmitter._imm, E.FloatImm: ExprEmitter._imm, E.Var: ExprEmitter._var,
    E.Not: ExprEmitter._not, E.Select: ExprEmitter._select, E.Cast: ExprEmitter._cast,
    E.Call: emit_call, E.Let: ExprEmitter._let, E.Ramp: ExprEmitter._ramp,
    E.Broadcast: ExprEmitter._broadcast, E.Load: emit_load,
})
