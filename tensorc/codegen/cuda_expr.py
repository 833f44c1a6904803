"""Expressions to CUDA C text, following docs/semantics.md.

Integer ``//`` and ``%`` floor (C truncates), so they become plain ``/`` and ``%`` only where the
dividend is provably non-negative and the divisor a positive constant, which is every index of a
usual schedule. Float min/max propagate NaN, float16 is computed as float and rounded after each
operation, and integers narrower than int are cast back after arithmetic so that they wrap.
Operands are printed with C precedence, so index expressions read as in ``tc.lower``.

Vector expressions never reach this module: ``lane`` rewrites them into one scalar expression
per lane, and the statement emitter decides which lanes to load and store together.
"""
import math

from ..arith import const_int_bound, simplify
from ..ir import dtype as dt
from ..ir import expr as E
from ..ir.functor import substitute
from .cuda_source import c_type

_PRIMARY, _UNARY, _MUL, _ADD, _REL, _EQ, _AND, _OR, _COND = 16, 14, 13, 12, 10, 9, 5, 4, 3
_BINARY = {E.Add: ("+", _ADD), E.Sub: ("-", _ADD), E.Mul: ("*", _MUL), E.Div: ("/", _MUL),
           E.EQ: ("==", _EQ), E.NE: ("!=", _EQ), E.LT: ("<", _REL), E.LE: ("<=", _REL),
           E.GT: (">", _REL), E.GE: (">=", _REL), E.And: ("&&", _AND), E.Or: ("||", _OR)}
_SUFFIXED = ("exp", "exp2", "log", "log2", "sqrt", "floor", "ceil", "trunc", "fabs", "sin",
             "cos", "tanh", "erf", "log1p", "expm1", "pow", "fmod")
_RENAMED = {"round": "rint"}
#: warp shuffles of a cross-thread reduction (transform/lower_allreduce.py): value, offset, width
_SHUFFLES = {"tc.shfl_xor": "__shfl_xor_sync", "tc.shfl_down": "__shfl_down_sync"}


def lane(e, k, lane_vars=None):
    """The scalar expression lane ``k`` of vector expression ``e`` computes; ``lane_vars`` maps
    vector variables (and hoisted vector loads) to their per-lane scalar variables."""
    lane_vars = lane_vars or {}
    hit = lane_vars.get(e)
    if hit is not None:
        return hit[k]
    if dt.lanes(e.dtype) == 1 and not isinstance(e, E.Let):
        return e
    t, scalar = type(e), dt.element_of(e.dtype)
    if t is E.Ramp:
        return simplify(e.base + e.stride * k)
    if t is E.Broadcast:
        return e.value
    if t is E.Load:
        return E.Load(scalar, e.buffer, lane(e.index, k, lane_vars))
    if issubclass(t, E.BinaryOp):
        return t(scalar, lane(e.a, k, lane_vars), lane(e.b, k, lane_vars))
    if t is E.Not:
        return E.Not(scalar, lane(e.a, k, lane_vars))
    if t is E.Select:
        return E.Select(scalar, *(lane(x, k, lane_vars)
                                  for x in (e.cond, e.true_value, e.false_value)))
    if t is E.Cast:
        return E.Cast(scalar, lane(e.value, k, lane_vars))
    if t is E.Call:
        return E.Call(scalar, e.name, tuple(lane(a, k, lane_vars) for a in e.args))
    if t is E.Let:
        return lane(substitute(e.body, {e.var: e.value}), k, lane_vars)
    raise TypeError(f"CUDA codegen: cannot split {t.__name__} {e} into lanes")


class ExprPrinter:
    """CUDA C text of scalar expressions; ``names`` maps variables and buffers to identifiers
    and ``ranges`` holds the (lo, hi) of the loop variables in scope, for the division rule."""

    def __init__(self, names, ranges):
        self.names = names
        self.ranges = ranges
        self.uses_half = False

    def __call__(self, e):
        return self.emit(e)[0]

    def emit(self, e):
        """(text, precedence) of a scalar expression."""
        if dt.lanes(e.dtype) != 1:
            raise TypeError(f"CUDA codegen: vector expression {e} where a scalar is needed")
        t = type(e)
        if dt.element_of(e.dtype) == "float16" and t not in (E.Var, E.Load, E.Cast, E.Select,
                                                             E.Let):
            self.uses_half = True
            return self._in_float(e)
        method = getattr(self, "_" + t.__name__, None)
        if method is None:
            if t in _BINARY:
                return self._binary(e)
            raise TypeError(f"CUDA codegen cannot emit {t.__name__} ({e})")
        return method(e)

    def _wrap(self, e, prec):
        text, p = self.emit(e)
        return text if p >= prec else f"({text})"

    def _binary(self, e):
        if dt.element_of(e.a.dtype) == "float16":
            self.uses_half = True
            return self.emit(type(e)(e.dtype, E.Cast("float32", e.a), E.Cast("float32", e.b)))
        op, p = _BINARY[type(e)]
        text = f"{self._wrap(e.a, p)} {op} {self._wrap(e.b, p + 1)}"
        if type(e) in (E.Add, E.Sub, E.Mul) and dt.is_integral(e.dtype) and \
                dt.bits(e.dtype) < 32:
            # Narrow integers are promoted to int in C; the IR says they wrap in their type.
            return f"({c_type(e.dtype)})({text})", _UNARY
        return text, p

    def _in_float(self, e):
        """A float16 operation computed in float and rounded back."""
        def up(x):
            return E.Cast("float32", x) if dt.element_of(x.dtype) == "float16" else x
        if isinstance(e, (E.IntImm, E.FloatImm)):
            inner = E.FloatImm("float32", float(e.value))
        elif isinstance(e, E.Call):
            inner = E.Call("float32", e.name, tuple(up(a) for a in e.args))
        else:
            inner = type(e)("float32", up(e.a), up(e.b))
        return f"__float2half({self(inner)})", _PRIMARY

    # -- leaves --------------------------------------------------------------------------------
    def _IntImm(self, e):
        if e.dtype == "bool":
            return ("true" if e.value else "false"), _PRIMARY
        if e.dtype == "int32":
            return (str(e.value), _PRIMARY) if e.value >= 0 else (f"({e.value})", _PRIMARY)
        if e.dtype == "uint32":
            return f"{e.value}u", _PRIMARY
        return f"(({c_type(e.dtype)}){e.value})", _PRIMARY

    def _FloatImm(self, e):
        v = e.value
        if math.isnan(v):
            text = "NAN"
        elif math.isinf(v):
            text = "INFINITY" if v > 0 else "(-INFINITY)"
        else:
            text = repr(float(v))
            if e.dtype == "float32":
                text += "f"
            if v < 0:
                text = f"({text})"
        return (text if e.dtype == "float32" else f"(({c_type(e.dtype)}){text})"), _PRIMARY

    def _Var(self, v):
        name = self.names.get(v)
        if name is None:
            raise ValueError(f"CUDA codegen: variable {v.name!r} is used outside the scope "
                             "that binds it")
        return name, _PRIMARY

    def _Load(self, e):
        return f"{self.names[e.buffer]}[{self(e.index)}]", _PRIMARY

    # -- operators -----------------------------------------------------------------------------
    def _FloorDiv(self, e):
        return self._floor(e, "/")

    def _FloorMod(self, e):
        return self._floor(e, "%")

    def _floor(self, e, op):
        a, b = self._wrap(e.a, _UNARY), self._wrap(e.b, _UNARY)
        positive = isinstance(e.b, E.IntImm) and e.b.value > 0
        if dt.is_uint(e.dtype) or positive and const_int_bound(e.a, self.ranges)[0] >= 0:
            return f"{self._wrap(e.a, _MUL)} {op} {self._wrap(e.b, _MUL + 1)}", _MUL
        # C truncates; the result is one off when the remainder's sign differs from b's.
        fix = f"({a} % {b} != 0 && ({a} % {b} < 0) != ({b} < 0))"
        if op == "/":
            return f"{a} / {b} - {fix}", _ADD
        return f"{a} % {b} + ({fix} ? {b} : 0)", _ADD

    def _Min(self, e):
        return self._minmax(e, "<", "min")

    def _Max(self, e):
        return self._minmax(e, ">", "max")

    def _minmax(self, e, cmp, name):
        if not dt.is_float(e.dtype):
            return f"{name}({self(e.a)}, {self(e.b)})", _PRIMARY
        a, b = self._wrap(e.a, _REL + 1), self._wrap(e.b, _REL + 1)
        # NaN propagates (np.minimum / np.maximum), unlike fminf / fmaxf.
        return f"({a} {cmp} {b} || {a} != {a} ? {a} : {b})", _PRIMARY

    def _Not(self, e):
        return f"!{self._wrap(e.a, _UNARY)}", _UNARY

    def _Select(self, e):
        return (f"{self._wrap(e.cond, _COND + 1)} ? {self._wrap(e.true_value, _COND + 1)} : "
                f"{self._wrap(e.false_value, _COND)}"), _COND

    def _Let(self, e):
        return self.emit(substitute(e.body, {e.var: e.value}))

    def _Cast(self, e):
        src, dst = e.value.dtype, e.dtype
        if src == dst:
            return self.emit(e.value)
        if dst == "bool":
            value = E.Cast("float32", e.value) if src == "float16" else e.value
            return f"{self._wrap(value, _EQ + 1)} != 0", _EQ
        if src == "float16":
            self.uses_half = True
            inner = f"__half2float({self(e.value)})"
            return (inner, _PRIMARY) if dst == "float32" else (f"({c_type(dst)}){inner}", _UNARY)
        if dst == "float16":
            self.uses_half = True
            return f"__float2half((float){self._wrap(e.value, _UNARY)})", _PRIMARY
        return f"({c_type(dst)}){self._wrap(e.value, _UNARY)}", _UNARY

    def _Call(self, e):
        base = dt.element_of(e.dtype)
        suffix = "f" if base == "float32" else ""
        args = [self(a) for a in e.args]
        one = "1.0f" if suffix else "1.0"
        if e.name in _SUFFIXED or e.name in _RENAMED:
            return f"{_RENAMED.get(e.name, e.name)}{suffix}({', '.join(args)})", _PRIMARY
        if e.name == "rsqrt":
            return f"{one} / sqrt{suffix}({args[0]})", _MUL
        if e.name == "sigmoid":
            return f"{one} / ({one} + exp{suffix}(-({args[0]})))", _MUL
        if e.name in _SHUFFLES:
            return (f"{_SHUFFLES[e.name]}(0xffffffffu, {args[0]}, {args[1]}, {args[2]})",
                    _PRIMARY)
        if e.name == "fmod_floor":
            r, b = f"fmod{suffix}({args[0]}, {args[1]})", f"({args[1]})"
            zero = "0.0f" if suffix else "0.0"
            return (f"({r} != {zero} && ({r} < {zero}) != ({b} < {zero}) ? {r} + {b} : "
                    f"copysign{suffix}({r}, {b}))"), _PRIMARY
        raise TypeError(f"CUDA codegen: unknown intrinsic {e.name!r}")
