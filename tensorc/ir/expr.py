"""Expression nodes: small immutable records.

Every node carries its ``dtype``. Nodes compare by identity (``==`` builds an ``EQ`` node, as in
TVM), so passes can key dictionaries by node and ``is`` tells whether a mutator changed anything.
Arithmetic on nodes (``a + b``, ``a // 2``) goes through ``tensorc.ir.op`` where types are promoted
and Python literals are converted.
"""
from dataclasses import dataclass
from typing import Any, Optional, Tuple


class ExprOp:
    """Operator overloading shared by expressions and iteration variables."""
    __slots__ = ()

    def __add__(self, o): return _op().add(self, o)
    def __radd__(self, o): return _op().add(o, self)
    def __sub__(self, o): return _op().sub(self, o)
    def __rsub__(self, o): return _op().sub(o, self)
    def __mul__(self, o): return _op().mul(self, o)
    def __rmul__(self, o): return _op().mul(o, self)
    def __truediv__(self, o): return _op().div(self, o)
    def __rtruediv__(self, o): return _op().div(o, self)
    def __floordiv__(self, o): return _op().floordiv(self, o)
    def __rfloordiv__(self, o): return _op().floordiv(o, self)
    def __mod__(self, o): return _op().floormod(self, o)
    def __rmod__(self, o): return _op().floormod(o, self)
    def __neg__(self): return _op().neg(self)
    def __lt__(self, o): return _op().lt(self, o)
    def __le__(self, o): return _op().le(self, o)
    def __gt__(self, o): return _op().gt(self, o)
    def __ge__(self, o): return _op().ge(self, o)
    def __eq__(self, o): return _op().eq(self, o)
    def __ne__(self, o): return _op().ne(self, o)
    def __and__(self, o): return _op().logical_and(self, o)
    def __rand__(self, o): return _op().logical_and(o, self)
    def __or__(self, o): return _op().logical_or(self, o)
    def __ror__(self, o): return _op().logical_or(o, self)
    def __invert__(self): return _op().logical_not(self)
    __hash__ = object.__hash__

    def __bool__(self):
        raise TypeError(f"symbolic expression {self} has no truth value; "
                        "use te.if_then_else / te.all / te.any to build conditions")

    def astype(self, dtype):
        return _op().cast(dtype, self)

    def __str__(self):
        from .printer import expr_str
        return expr_str(self)

    __repr__ = __str__


def _op():
    from . import op
    return op


class Expr(ExprOp):
    """Base of all expression nodes."""
    __slots__ = ()


def _node(cls):
    return dataclass(frozen=True, eq=False, repr=False)(cls)


@_node
class IntImm(Expr):
    """An integer or boolean constant."""
    dtype: str
    value: int


@_node
class FloatImm(Expr):
    """A floating-point constant."""
    dtype: str
    value: float


@_node
class Var(Expr):
    """A named scalar variable (loop index, parameter); identity, not name, makes it unique.

    Variables of dtype "handle" stand for buffer base pointers after storage flattening.
    """
    name: str
    dtype: str = "int32"


@_node
class BinaryOp(Expr):
    dtype: str
    a: Expr
    b: Expr


class Add(BinaryOp): """a + b."""
class Sub(BinaryOp): """a - b."""
class Mul(BinaryOp): """a * b."""
class Div(BinaryOp): """True division; only for floating-point types."""
class FloorDiv(BinaryOp): """Integer division rounding towards minus infinity (Python's //)."""
class FloorMod(BinaryOp): """Remainder with the sign of the divisor (Python's %)."""
class Min(BinaryOp): """Smaller of a and b."""
class Max(BinaryOp): """Larger of a and b."""
class EQ(BinaryOp): """a == b, giving bool."""
class NE(BinaryOp): """a != b, giving bool."""
class LT(BinaryOp): """a < b, giving bool."""
class LE(BinaryOp): """a <= b, giving bool."""
class GT(BinaryOp): """a > b, giving bool."""
class GE(BinaryOp): """a >= b, giving bool."""
class And(BinaryOp): """Logical and of two bools."""
class Or(BinaryOp): """Logical or of two bools."""


for _cls in (Add, Sub, Mul, Div, FloorDiv, FloorMod, Min, Max, EQ, NE, LT, LE, GT, GE, And, Or):
    _node(_cls)

CMP_OPS = (EQ, NE, LT, LE, GT, GE)


def _eq_bool(self):
    # Lets `a == b` between nodes work in `if` and `in` (identity), as in TVM.
    return self.a is self.b


def _ne_bool(self):
    return self.a is not self.b


EQ.__bool__ = _eq_bool
NE.__bool__ = _ne_bool


@_node
class Not(Expr):
    """Logical negation."""
    dtype: str
    a: Expr


@_node
class Select(Expr):
    """cond ? true_value : false_value.

    Only the chosen branch is evaluated, so a branch may read out of bounds when the condition
    excludes it (padding is written this way). Codegen emits a branch (scalar) or masked loads
    (vector) when a side has loads. ``lazy=False`` marks a select whose branches were proven
    safe to evaluate on every lane (transform/eager_select.py): both sides are computed and
    one is picked, with plain loads.
    """
    dtype: str
    cond: Expr
    true_value: Expr
    false_value: Expr
    lazy: bool = True


@_node
class Cast(Expr):
    """Conversion of value to dtype with C semantics (float->int truncates)."""
    dtype: str
    value: Expr


@_node
class Call(Expr):
    """A pure math intrinsic by name (exp, log, sqrt, tanh, pow, ...)."""
    dtype: str
    name: str
    args: Tuple[Expr, ...]


@_node
class Let(Expr):
    """Binds var to value inside body."""
    dtype: str
    var: Var
    value: Expr
    body: Expr


@_node
class Ramp(Expr):
    """The vector [base, base+stride, ..., base+(lanes-1)*stride]."""
    dtype: str
    base: Expr
    stride: Expr
    lanes: int


@_node
class Broadcast(Expr):
    """A scalar repeated in every lane of a vector."""
    dtype: str
    value: Expr
    lanes: int


@_node
class Load(Expr):
    """Read of element ``index`` (a scalar or a Ramp) from the flat buffer whose pointer is ``buffer``."""
    dtype: str
    buffer: Var
    index: Expr


@_node
class ProducerLoad(Expr):
    """Read of a TE tensor at multi-dimensional indices; removed by storage flattening."""
    dtype: str
    producer: Any
    indices: Tuple[Expr, ...]


@_node
class Range:
    """The half-open interval [min, min + extent)."""
    min: Expr
    extent: Expr

    def __str__(self):
        return f"range(min={self.min}, ext={self.extent})"

    __repr__ = __str__


@dataclass(frozen=True, eq=False, repr=False)
class IterVar(ExprOp):
    """An iteration axis: a variable, its domain and what kind of axis it is.

    ``iter_type`` is "data_par" (spatial), "reduce", "ordered" or "thread"; ``thread_tag`` names the
    GPU index ("threadIdx.x") for thread axes. Arithmetic on an IterVar uses its variable.
    """
    dom: Optional[Range]
    var: Var
    iter_type: str = "data_par"
    thread_tag: str = ""

    def __str__(self):
        return self.var.name

    __repr__ = __str__


@_node
class CommReducer:
    """A commutative reduction: combine(lhs, rhs) with an identity element.

    ``lhs``/``rhs`` are the variables ``result`` is written over; ``identity`` gives the starting
    value for a dtype.
    """
    name: str
    lhs: Var
    rhs: Var
    result: Expr
    identity: Any  # dtype -> Expr

    def combine(self, a, b):
        from .functor import substitute
        return substitute(self.result, {self.lhs: a, self.rhs: b})


@_node
class Reduce(Expr):
    """combiner over ``axis`` of ``source``, counting only points where ``condition`` holds."""
    dtype: str
    combiner: CommReducer
    source: Expr
    axis: Tuple[IterVar, ...]
    condition: Expr
