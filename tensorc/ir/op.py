"""Typed constructors for expressions: promotion, literal conversion and constant folding.

Python literals take the type of the other operand (``A[i] * 2`` stays float16 if A is), the way
TVM and numpy's scalar rules treat them, so a literal never silently widens a computation.
"""
import operator

import numpy as np

from . import dtype as dt
from .expr import (Add, And, Broadcast, Cast, Div, EQ, Expr, FloatImm, FloorDiv, FloorMod, GE, GT,
                   IntImm, IterVar, LE, LT, Max, Min, Mul, NE, Not, Or, Select, Sub)


def const(value, dtype=None):
    """A constant of the given dtype (default: int32 for ints, float32 for floats, bool for bools)."""
    if dtype is None:
        if isinstance(value, bool):
            dtype = "bool"
        elif isinstance(value, int):
            dtype = "int32" if -2**31 <= value < 2**31 else "int64"
        else:
            dtype = "float32"
    dtype = dt.check(dtype)
    if dt.lanes(dtype) > 1:
        return Broadcast(dtype, const(value, dt.element_of(dtype)), dt.lanes(dtype))
    if dt.is_float(dtype):
        return FloatImm(dtype, float(dt.to_numpy(dtype).type(value)))  # rounded to the dtype
    if dt.is_bool(dtype):
        return IntImm(dtype, int(bool(value)))
    value = int(value)
    if dtype != "handle":
        info = np.iinfo(dt.to_numpy(dtype))
        if not info.min <= value <= info.max:
            raise OverflowError(f"constant {value} does not fit {dtype} "
                                f"[{info.min}, {info.max}]; cast the other operand first")
    return IntImm(dtype, value)


def convert(x, like=None):
    """Turn x (Expr, IterVar, Python number) into an Expr; literals take the type of ``like``."""
    if isinstance(x, Expr):
        return x
    if isinstance(x, IterVar):
        return x.var
    if isinstance(x, (bool, int, float, np.generic)):
        if isinstance(x, np.generic):
            x = x.item()
        if like is not None:
            target = like.dtype
            if isinstance(x, float) and not dt.is_float(target):
                target = "float32"
            if isinstance(x, bool) is False and dt.is_bool(target):
                target = "int32" if isinstance(x, int) else "float32"
            return const(x, dt.element_of(target) if dt.lanes(target) == 1 else target)
        return const(x)
    raise TypeError(f"cannot use {type(x).__name__} {x!r} in an expression")


def _binary_operands(a, b):
    if not isinstance(a, (Expr, IterVar)):
        b = convert(b)
        a = convert(a, like=b)
    else:
        a = convert(a)
        b = convert(b, like=a)
    t = dt.promote(a.dtype, b.dtype)
    return _to(a, t), _to(b, t), t


def _arith_operands(name, a, b):
    a, b, t = _binary_operands(a, b)
    if dt.is_bool(t):
        raise TypeError(f"{name} on bool values {a} and {b}: cast to a number first, or use "
                        "& | ~ for logic")
    return a, b, t


def _to(e, t):
    if e.dtype == t:
        return e
    if dt.lanes(t) > 1 and dt.lanes(e.dtype) == 1:
        e = _to(e, dt.element_of(t))
        return Broadcast(t, e, dt.lanes(t))
    return cast(t, e)


def _fmin(a, b):
    return a if a != a else b if b != b else min(a, b)  # NaN propagates, as np.minimum


def _fmax(a, b):
    return a if a != a else b if b != b else max(a, b)


_FOLD = {Add: operator.add, Sub: operator.sub, Mul: operator.mul, Min: _fmin, Max: _fmax,
         FloorDiv: operator.floordiv, FloorMod: operator.mod, Div: operator.truediv,
         EQ: operator.eq, NE: operator.ne, LT: operator.lt, LE: operator.le, GT: operator.gt,
         GE: operator.ge}


def is_const(e, value=None):
    if isinstance(e, (IntImm, FloatImm)):
        return value is None or e.value == value
    return False


def _make(cls, a, b, t, out_dtype=None):
    out = out_dtype or t
    if isinstance(a, (IntImm, FloatImm)) and isinstance(b, (IntImm, FloatImm)):
        if cls in (FloorDiv, FloorMod, Div) and b.value == 0:
            raise ZeroDivisionError(f"division by constant zero in {cls.__name__}({a}, {b})")
        v = _FOLD[cls](a.value, b.value)
        if dt.is_integral(out) and not isinstance(v, bool):
            v = _wrap_int(int(v), out)
        return const(v, out)
    return cls(out, a, b)


def _wrap_int(v, dtype):
    nbits = dt.bits(dtype)
    mask = (1 << nbits) - 1
    v &= mask
    if dt.is_int(dtype) and v >= 1 << (nbits - 1):
        v -= 1 << nbits
    return v


def add(a, b):
    a, b, t = _arith_operands("+", a, b)
    if is_const(b, 0):
        return a
    if is_const(a, 0):
        return b
    return _make(Add, a, b, t)


def sub(a, b):
    a, b, t = _arith_operands("-", a, b)
    if is_const(b, 0):
        return a
    return _make(Sub, a, b, t)


def mul(a, b):
    a, b, t = _arith_operands("*", a, b)
    if dt.is_integral(t):
        if is_const(b, 1):
            return a
        if is_const(a, 1):
            return b
    return _make(Mul, a, b, t)


def div(a, b):
    """``/``: true division for floats; floor division for integers (docs/semantics.md)."""
    a, b, t = _arith_operands("/", a, b)
    if dt.is_float(t):
        return _make(Div, a, b, t)
    return floordiv(a, b)


def _check_int(name, t):
    if not dt.is_integral(t):
        raise TypeError(f"{name} needs integer operands, got {t}")


def floordiv(a, b):
    a, b, t = _arith_operands("//", a, b)
    if dt.is_float(t):
        return floor(_make(Div, a, b, t))
    _check_int("// (floordiv)", t)
    if is_const(b, 1):
        return a
    return _make(FloorDiv, a, b, t)


def floormod(a, b):
    a, b, t = _arith_operands("%", a, b)
    if dt.is_float(t):
        return call("fmod_floor", t, a, b)
    _check_int("% (floormod)", t)
    if is_const(b, 1):
        return const(0, t)
    return _make(FloorMod, a, b, t)


def neg(a):
    a = convert(a)
    return sub(const(0, a.dtype), a)


def minimum(a, b):
    a, b, t = _binary_operands(a, b)
    return _make(Min, a, b, t)


def maximum(a, b):
    a, b, t = _binary_operands(a, b)
    return _make(Max, a, b, t)


def _cmp(cls, a, b):
    a, b, t = _binary_operands(a, b)
    return _make(cls, a, b, t, out_dtype=dt.with_lanes("bool", dt.lanes(t)))


def eq(a, b): return _cmp(EQ, a, b)
def ne(a, b): return _cmp(NE, a, b)
def lt(a, b): return _cmp(LT, a, b)
def le(a, b): return _cmp(LE, a, b)
def gt(a, b): return _cmp(GT, a, b)
def ge(a, b): return _cmp(GE, a, b)


def _as_bool(e):
    e = convert(e)
    if dt.is_bool(e.dtype):
        return e
    return ne(e, const(0, e.dtype))


def logical_and(a, b):
    a, b = _as_bool(a), _as_bool(b)
    if is_const(a):
        return b if a.value else a
    if is_const(b):
        return a if b.value else b
    return And(a.dtype, a, b)


def logical_or(a, b):
    a, b = _as_bool(a), _as_bool(b)
    if is_const(a):
        return a if a.value else b
    if is_const(b):
        return b if b.value else a
    return Or(a.dtype, a, b)


def logical_not(a):
    a = _as_bool(a)
    if is_const(a):
        return const(not a.value, a.dtype)
    return Not(a.dtype, a)


def cast(dtype, value):
    dtype = dt.check(dtype)
    value = convert(value)
    if value.dtype == dtype:
        return value
    if isinstance(value, (IntImm, FloatImm)) and dt.lanes(dtype) == 1:
        v = value.value
        if dt.is_bool(dtype):
            return const(bool(v), dtype)
        if dt.is_integral(dtype):
            if isinstance(value, FloatImm):
                if v != v:
                    return const(0, dtype)  # NaN -> 0, as fptosi.sat and the oracle do
                info = np.iinfo(dt.to_numpy(dtype))
                return const(int(min(max(v, info.min), info.max)), dtype)
            return const(_wrap_int(int(v), dtype), dtype)
        return const(float(v), dtype)
    return Cast(dtype, value)


def select(cond, t, f):
    cond = _as_bool(cond)
    t, f, ty = _binary_operands(t, f)
    if is_const(cond):
        return t if cond.value else f
    return Select(ty, cond, t, f)


def call(name, dtype, *args):
    from .expr import Call
    return Call(dt.check(dtype), name, tuple(convert(a) for a in args))


def floor(x):
    x = convert(x)
    return x if not dt.is_float(x.dtype) else call("floor", x.dtype, x)
