"""Math intrinsics and conditional helpers of the TE language."""
from functools import reduce as _fold

from ..ir import dtype as dt
from ..ir.expr import IterVar
from ..ir.op import (call, cast, const, convert, logical_and, logical_or, maximum, minimum,
                     select)

FLOAT_UNARY = ("exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "erf", "floor", "ceil", "round",
               "sin", "cos", "exp2", "log2", "log1p", "expm1", "trunc")


def _float_call(name, x):
    x = convert(x)
    if not dt.is_float(x.dtype):
        raise TypeError(f"te.{name} needs a floating-point argument, got {x} of type {x.dtype}; "
                        f"cast it first, e.g. te.{name}(x.astype('float32'))")
    return call(name, x.dtype, x)


def _make_unary(name):
    def f(x):
        return _float_call(name, x)
    f.__name__ = name
    f.__doc__ = f"Elementwise {name} of a floating-point expression."
    return f


exp, log, sqrt, rsqrt, tanh, sigmoid, erf, floor, ceil, round, sin, cos, exp2, log2, log1p, \
    expm1, trunc = (_make_unary(n) for n in FLOAT_UNARY)


def abs(x):  # noqa: A001
    """|x| for any numeric type."""
    x = convert(x)
    if dt.is_uint(x.dtype) or dt.is_bool(x.dtype):
        return x
    if dt.is_float(x.dtype):
        return call("fabs", x.dtype, x)
    return select(x < 0, -x, x)


def _float_pair(name, a, b):
    if not isinstance(a, (IterVar,)) and not hasattr(a, "dtype"):
        b = convert(b)
        a = convert(a, like=b)
    else:
        a = convert(a)
        b = convert(b, like=a)
    t = dt.promote(a.dtype, b.dtype)
    if not dt.is_float(t):
        raise TypeError(f"te.{name} needs floating-point arguments, got {t}")
    return call(name, t, cast(t, a), cast(t, b))


def power(a, b):
    """a ** b for floats."""
    return _float_pair("pow", a, b)


pow = power  # noqa: A001


def fmod(a, b):
    """C fmod: remainder with the sign of a."""
    return _float_pair("fmod", a, b)


def if_then_else(cond, t, f):
    """cond ? t : f; the branch not taken is never evaluated (safe for padding reads)."""
    return select(cond, t, f)


def all(*conds):  # noqa: A001
    """Logical and of all conditions."""
    return _fold(logical_and, [convert(c) for c in conds])


def any(*conds):  # noqa: A001
    """Logical or of all conditions."""
    return _fold(logical_or, [convert(c) for c in conds])


def max_value(dtype):
    from .operation import _identity_min
    return _identity_min(dt.check(dtype))


def min_value(dtype):
    from .operation import _identity_max
    return _identity_max(dt.check(dtype))


__all__ = ["exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "erf", "floor", "ceil", "round",
           "sin", "cos", "exp2", "log2", "log1p", "expm1", "trunc", "abs", "power", "pow", "fmod",
           "if_then_else", "all", "any", "max_value", "min_value", "minimum", "maximum", "const",
           "cast"]
