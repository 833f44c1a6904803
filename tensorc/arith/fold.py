"""Exact constant folding of floating-point operations and casts.

Folding must give the value the program would compute (docs/semantics.md): float32 arithmetic
rounds to float32 at every step, min/max propagate NaN, float-to-integer casts truncate and
saturate. numpy scalars of the expression's dtype compute exactly that, so they do the folding.
Integer arithmetic is folded by ``tensorc.ir.op`` (wrap-around) and by the linear form.
"""
import operator

import numpy as np

from ..ir import dtype as dt
from ..ir import expr as E
from ..ir import op
from .int_bounds import full_range
from .linear import wrap

_FLOAT_OPS = {E.Add: operator.add, E.Sub: operator.sub, E.Mul: operator.mul,
              E.Div: operator.truediv, E.Min: np.minimum, E.Max: np.maximum,
              E.EQ: operator.eq, E.NE: operator.ne, E.LT: operator.lt, E.LE: operator.le,
              E.GT: operator.gt, E.GE: operator.ge}


def _np_value(imm):
    return dt.to_numpy(imm.dtype).type(imm.value)


def float_binary(cls, a, b, out_dtype):
    """cls(a, b) on two float constants, as a constant of out_dtype."""
    with np.errstate(all="ignore"):
        v = _FLOAT_OPS[cls](_np_value(a), _np_value(b))
    return op.const(bool(v) if dt.is_bool(out_dtype) else float(v), out_dtype)


def cast(dtype, imm):
    """The constant imm converted to scalar dtype, or None where the result is not defined."""
    with np.errstate(all="ignore"):
        return _cast(dtype, imm)


def _cast(dtype, imm):
    src = imm.dtype
    v = imm.value
    if dt.is_bool(dtype):
        return op.const(bool(v), dtype)
    if dt.is_float(dtype):
        return op.const(float(dt.to_numpy(dtype).type(_np_value(imm))), dtype)
    if not dt.is_float(src):
        return op.const(wrap(int(v), dtype), dtype)
    if v != v:
        return None
    lo, hi = full_range(dtype)
    if v in (float("inf"), float("-inf")):
        return op.const(lo if v < 0 else hi, dtype)
    return op.const(min(max(int(_np_value(imm)), lo), hi), dtype)
