"""Elementwise operators: unary math, binary arithmetic with numpy broadcasting, activations.

Each operator is one ``te.compute`` whose body is the formula, tagged "elemwise" when every
operand has the output's shape and "broadcast" when some operand is broadcast: both kinds map
each output element from inputs at the same (or a broadcast) position, so a consumer can inline
them. Binary operators accept a Python scalar on either side; it takes the type of the tensor
(docs/semantics.md), and two tensors promote by numpy's rules.
"""
import math

from .. import te
from ..ir import dtype as dt
from ..ir import op as irop
from ..ir.expr import Expr
from ..te.tensor import Tensor
from .util import broadcast_shape, check_tensor, normalize_axis, read_broadcast


def _tag(shape, operands):
    same = all(t.shape == shape for t in operands if isinstance(t, Tensor))
    return "elemwise" if same else "broadcast"


def map_elements(name, fn, *operands):
    """out[i] = fn(operand_1[i], ...) with numpy broadcasting; scalars pass through as they are.

    The building block of every operator in this module, exposed for composite ops elsewhere.
    """
    if not any(isinstance(t, Tensor) for t in operands):
        raise TypeError(f"{name}: at least one operand must be a te.Tensor")
    for t in operands:
        if not isinstance(t, (Tensor, int, float, bool)):
            raise TypeError(f"{name}: operands must be te.Tensors or Python scalars, got "
                            f"{type(t).__name__} {t!r}")
    shape = broadcast_shape(name, operands)
    return te.compute(shape, lambda *i: fn(*(read_broadcast(t, i) for t in operands)),
                      name=name, tag=_tag(shape, operands))


def _float_input(name, x):
    check_tensor(name, x)
    if not dt.is_float(x.dtype):
        raise TypeError(f"{name}: tensor {x.name!r} has dtype {x.dtype}; {name} needs a "
                        f"floating-point tensor (cast it first)")
    return x


def _float_unary(name, fn):
    def op(x):
        return map_elements(name, fn, _float_input(name, x))
    op.__name__ = name
    op.__doc__ = f"Elementwise {name} of a floating-point tensor."
    return op


# ------------------------------------------------------------------------------ unary math

exp = _float_unary("exp", te.exp)
exp2 = _float_unary("exp2", te.exp2)
expm1 = _float_unary("expm1", te.expm1)
log = _float_unary("log", te.log)
log2 = _float_unary("log2", te.log2)
log1p = _float_unary("log1p", te.log1p)
sqrt = _float_unary("sqrt", te.sqrt)
rsqrt = _float_unary("rsqrt", te.rsqrt)
sin = _float_unary("sin", te.sin)
cos = _float_unary("cos", te.cos)
tanh = _float_unary("tanh", te.tanh)
erf = _float_unary("erf", te.erf)
sigmoid = _float_unary("sigmoid", te.sigmoid)
floor = _float_unary("floor", te.floor)
ceil = _float_unary("ceil", te.ceil)
round = _float_unary("round", te.round)  # noqa: A001  (half to even, as np.round)
trunc = _float_unary("trunc", te.trunc)
tan = _float_unary("tan", lambda v: te.sin(v) / te.cos(v))
reciprocal = _float_unary("reciprocal", lambda v: 1.0 / v)
log10 = _float_unary("log10", lambda v: te.log2(v) * (1.0 / math.log2(10.0)))


def neg(x):
    """-x."""
    return map_elements("neg", lambda v: -v, check_tensor("neg", x))


def abs(x):  # noqa: A001
    """|x| for any numeric dtype."""
    return map_elements("abs", te.abs, check_tensor("abs", x))


def square(x):
    """x * x."""
    return map_elements("square", lambda v: v * v, check_tensor("square", x))


def sign(x):
    """-1, 0 or 1 with x's dtype (NaN stays NaN, as np.sign)."""
    def f(v):
        s = te.if_then_else(v > 0, 1, te.if_then_else(v < 0, -1, 0)).astype(v.dtype)
        return te.if_then_else(v != v, v, s) if dt.is_float(v.dtype) else s
    return map_elements("sign", f, check_tensor("sign", x))


def isnan(x):
    """True where x is NaN (x != x: the only value unequal to itself)."""
    return map_elements("isnan", lambda v: v != v, _float_input("isnan", x))


def isinf(x):
    return map_elements("isinf", lambda v: te.abs(v) == math.inf, _float_input("isinf", x))


def isfinite(x):
    return map_elements("isfinite", lambda v: te.abs(v) < math.inf, _float_input("isfinite", x))


def logical_not(x):
    """not x, with nonzero numbers counting as true."""
    return map_elements("logical_not", irop.logical_not, check_tensor("logical_not", x))


def cast(x, dtype):
    """x converted to dtype (float -> int truncates and saturates, see docs/semantics.md)."""
    dtype = dt.check(dtype)
    return map_elements("cast", lambda v: v.astype(dtype), check_tensor("cast", x))


def clip(x, a_min=None, a_max=None):
    """min(max(x, a_min), a_max); the bounds are scalars or tensors that broadcast (ONNX Clip
    takes them as inputs), None meaning no bound."""
    check_tensor("clip", x)
    bounds = [(b, f) for b, f in ((a_min, irop.maximum), (a_max, irop.minimum)) if b is not None]

    def f(v, *limits):
        for limit, (_, bound) in zip(limits, bounds):
            v = bound(v, limit)
        return v
    return map_elements("clip", f, x, *[b for b, _ in bounds])


# ------------------------------------------------------------------------------ binary

def _binary(name, fn, doc):
    def op(a, b):
        return map_elements(name, fn, a, b)
    op.__name__ = name
    op.__doc__ = doc
    return op


add = _binary("add", lambda a, b: a + b, "a + b with broadcasting.")
subtract = _binary("subtract", lambda a, b: a - b, "a - b with broadcasting.")
multiply = _binary("multiply", lambda a, b: a * b, "a * b with broadcasting.")
divide = _binary("divide", lambda a, b: a / b,
                 "a / b: IEEE division on floats, floor division on integers "
                 "(docs/semantics.md; ONNX's truncating integer Div is the importer's job).")
floor_divide = _binary("floor_divide", lambda a, b: a // b, "a // b (Python's floor division).")
mod = _binary("mod", lambda a, b: a % b, "a % b with the sign of b (Python's %, np.mod).")
fmod = _binary("fmod", te.fmod, "C's fmod on floats: the remainder has the sign of a.")
maximum = _binary("maximum", irop.maximum, "Larger of a and b; NaN propagates (np.maximum).")
minimum = _binary("minimum", irop.minimum, "Smaller of a and b; NaN propagates (np.minimum).")
equal = _binary("equal", lambda a, b: a == b, "a == b, giving bool.")
not_equal = _binary("not_equal", lambda a, b: a != b, "a != b, giving bool.")
less = _binary("less", lambda a, b: a < b, "a < b, giving bool.")
less_equal = _binary("less_equal", lambda a, b: a <= b, "a <= b, giving bool.")
greater = _binary("greater", lambda a, b: a > b, "a > b, giving bool.")
greater_equal = _binary("greater_equal", lambda a, b: a >= b, "a >= b, giving bool.")
logical_and = _binary("logical_and", irop.logical_and, "a and b (nonzero is true).")
logical_or = _binary("logical_or", irop.logical_or, "a or b (nonzero is true).")
logical_xor = _binary("logical_xor", lambda a, b: _truth(a) != _truth(b),
                      "a xor b (nonzero is true).")


def _truth(v):
    v = irop.convert(v)
    return v if dt.is_bool(v.dtype) else v != 0


def power(a, b):
    """a ** b. Integer ** integer is computed in float64 and rounded back, which is exact
    while the result fits 2**53 (the range an integer power is useful in)."""
    def f(x, y):
        if isinstance(x, Expr):
            y = irop.convert(y, like=x)
        else:
            x = irop.convert(x, like=y)
        t = dt.promote(x.dtype, y.dtype)
        if dt.is_float(t):
            return te.power(x.astype(t), y.astype(t))
        return te.round(te.power(x.astype("float64"), y.astype("float64"))).astype(t)
    return map_elements("power", f, a, b)


def where(cond, a, b):
    """a where cond (nonzero) else b, broadcasting all three; only the chosen side is read."""
    return map_elements("where", te.if_then_else, cond, a, b)


# ------------------------------------------------------------------------------ activations

def relu(x):
    """max(x, 0)."""
    return map_elements("relu", lambda v: irop.maximum(v, 0), check_tensor("relu", x))


def leaky_relu(x, alpha=0.01):
    """x for x > 0, else alpha * x."""
    return map_elements("leaky_relu", lambda v: te.if_then_else(v > 0, v, v * alpha),
                        _float_input("leaky_relu", x))


def elu(x, alpha=1.0):
    """x for x > 0, else alpha * (exp(x) - 1) (expm1 keeps small negative x exact)."""
    return map_elements("elu", lambda v: te.if_then_else(v > 0, v, te.expm1(v) * alpha),
                        _float_input("elu", x))


SELU_ALPHA = 1.6732632423543772
SELU_GAMMA = 1.0507009873554805


def selu(x, alpha=SELU_ALPHA, gamma=SELU_GAMMA):
    """gamma * elu(x, alpha), the self-normalising constants by default."""
    return map_elements("selu", lambda v: te.if_then_else(v > 0, v, te.expm1(v) * alpha) * gamma,
                        _float_input("selu", x))


def gelu(x, approximate="none"):
    """x * Phi(x): the exact erf form, or with approximate="tanh" the tanh fit GPT-2 uses."""
    _float_input("gelu", x)
    if approximate == "none":
        return map_elements("gelu", lambda v: v * (te.erf(v * math.sqrt(0.5)) + 1.0) * 0.5, x)
    if approximate == "tanh":
        c = math.sqrt(2.0 / math.pi)
        return map_elements(
            "gelu", lambda v: v * (te.tanh((v + v * v * v * 0.044715) * c) + 1.0) * 0.5, x)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(x):
    """x * sigmoid(x) (swish)."""
    return map_elements("silu", lambda v: v * te.sigmoid(v), _float_input("silu", x))


def hard_sigmoid(x, alpha=0.2, beta=0.5):
    """clip(alpha * x + beta, 0, 1) (ONNX HardSigmoid's defaults)."""
    return map_elements("hard_sigmoid",
                        lambda v: irop.minimum(irop.maximum(v * alpha + beta, 0.0), 1.0),
                        _float_input("hard_sigmoid", x))


def hard_swish(x):
    """x * hard_sigmoid(x, 1/6, 1/2) = x * relu6(x + 3) / 6."""
    return map_elements("hard_swish",
                        lambda v: v * irop.minimum(irop.maximum(v * (1.0 / 6.0) + 0.5, 0.0), 1.0),
                        _float_input("hard_swish", x))


def softplus(x):
    """log(1 + exp(x)), as max(x, 0) + log1p(exp(-|x|)) so that no exp overflows."""
    return map_elements("softplus", lambda v: irop.maximum(v, 0.0) + te.log1p(te.exp(-te.abs(v))),
                        _float_input("softplus", x))


def prelu(x, slope, axis=1):
    """x for x > 0, else slope * x.

    With ``axis`` (default 1, the channel axis of NCHW) slope is 1-D with one value per entry of
    that axis, as in PyTorch and TVM; with ``axis=None`` slope broadcasts against x by numpy's
    rules, as ONNX PRelu specifies.
    """
    _float_input("prelu", x)
    check_tensor("prelu", slope, "slope")
    if axis is None:
        return map_elements("prelu", lambda v, s: te.if_then_else(v > 0, v, v * s), x, slope)
    axis = normalize_axis("prelu", x, axis)
    if slope.shape != (x.shape[axis],):
        raise ValueError(f"prelu: slope {slope.name!r} has shape {slope.shape} but tensor "
                         f"{x.name!r} of shape {x.shape} needs ({x.shape[axis]},), one slope per "
                         f"entry of axis {axis}")
    return te.compute(x.shape, lambda *i: te.if_then_else(x[i] > 0, x[i], x[i] * slope[i[axis]]),
                      name="prelu", tag="broadcast")
