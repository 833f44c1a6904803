"""Buffer indices computed in 64-bit arithmetic.

An address needs a 64-bit offset anyway, and an index that stays inside its buffer never
overflows, so doing a narrower signed index expression's arithmetic in int64 changes no in-bounds
access (C compilers do the same for ``a[i]``). It also sidesteps a miscompile in LLVM 22.1's loop
vectorizer, which treats a zero-extended 32-bit ``(trunc(iv) & 15) + offset`` (a fused axis
``% 16`` plus an offset, as schedules produce) as consecutive across the wrap of the mask; the
same arithmetic done in 64 bits is vectorized correctly.
"""
from ..ir import dtype as dt
from ..ir import expr as E

_ARITH = (E.Add, E.Sub, E.Mul, E.Div, E.FloorDiv, E.FloorMod, E.Min, E.Max)


def needs_widening(dtype):
    return dt.is_int(dtype) and dt.bits(dtype) < 64


def widen_index(e, twins):
    """An int64 expression equal to the signed integer index e wherever e does not overflow.

    ``twins`` maps let-bound variables to int64 variables bound to their widened values, so an
    index through a let is 64-bit all the way down too.
    """
    if not needs_widening(e.dtype):
        return e
    wide = dt.with_lanes("int64", dt.lanes(e.dtype))
    t = type(e)
    if t is E.IntImm:
        return E.IntImm(wide, e.value)
    if t in _ARITH:
        return t(wide, widen_index(e.a, twins), widen_index(e.b, twins))
    if t is E.Ramp:
        return E.Ramp(wide, widen_index(e.base, twins), widen_index(e.stride, twins), e.lanes)
    if t is E.Broadcast:
        return E.Broadcast(wide, widen_index(e.value, twins), e.lanes)
    if t is E.Select:
        return E.Select(wide, e.cond, widen_index(e.true_value, twins),
                        widen_index(e.false_value, twins))
    if t is E.Let:
        return E.Let(wide, e.var, e.value, widen_index(e.body, twins))
    if t is E.Var and e in twins:
        return twins[e]
    return E.Cast(wide, e)
