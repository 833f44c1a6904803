"""Converters of elementwise ops: arithmetic, comparisons and logic with torch's type
promotion, unary math, where/masked_fill/clamp and dtype casts; also the identities
(contiguous, eval-mode dropout) and the ops that read a run-time tensor's values as Python
numbers, refused with an error that says why (tensorc shapes are static).
"""
import numpy as np

from tensorc.graph.ir import Value
from tensorc.ir import dtype as dt

from .errors import NonConstantInputError, UnsupportedDtypeError, UnsupportedFeatureError
from .torchscript_dtypes import _torch, tc_dtype
from .torchscript_ops_common import (_binary_operands, _is_tensor, _scaled, as_float, dtype_of,
                                     result_dtype)
from .torchscript_registry import CONVERTERS, NEVER_FOLD, converter

# ------------------------------------------------------------------------------ data-dependent

@converter("aten::Int", "aten::Float", "aten::Bool", "aten::item", "aten::ScalarImplicit",
           "aten::tolist", "aten::nonzero", "aten::masked_select", "aten::unique",
           "aten::_unique2", "aten::is_nonzero")
def _data_dependent(ctx, c):
    raise NonConstantInputError(
        f"{c}: reads the values of a tensor computed at run time (%{c[0].name}) as a Python "
        "number or a data-dependent shape; tensorc compiles static shapes, so only sizes and "
        "constants may feed Python arithmetic", node=c.node.output().debugName(),
        value=c[0].name)


# ------------------------------------------------------------------------------ identities

@converter("aten::contiguous", "aten::clone", "aten::detach", "aten::alias", "aten::lift_fresh",
           "aten::detach_", "prim::data", "aten::resolve_conj", "aten::resolve_neg",
           "aten::_assert_tensor_metadata", "aten::requires_grad_")
def _ident(ctx, c):
    return c[0]


@converter("aten::dropout", "aten::feature_dropout", "aten::alpha_dropout",
           "aten::feature_alpha_dropout")
def _dropout(ctx, c):
    train = c.arg("train", False)
    p = c.arg("p", 0.0)
    if train and p:
        raise UnsupportedFeatureError(f"{c}: dropout in training mode (train=True); tensorc "
                                      "compiles inference: call .eval() on the module")
    return c[0]


NEVER_FOLD.update(["aten::dropout", "aten::feature_dropout", "aten::alpha_dropout",
                   "aten::feature_alpha_dropout"])


# ------------------------------------------------------------------------------ elementwise

_FLOAT_UNARY = {
    "aten::exp": "exp", "aten::log": "log", "aten::log2": "log2", "aten::log10": "log10",
    "aten::log1p": "log1p", "aten::expm1": "expm1", "aten::sqrt": "sqrt", "aten::rsqrt": "rsqrt",
    "aten::reciprocal": "reciprocal", "aten::sin": "sin", "aten::cos": "cos", "aten::tan": "tan",
    "aten::erf": "erf", "aten::sigmoid": "sigmoid", "aten::tanh": "tanh", "aten::silu": "silu",
    "aten::hardswish": "hard_swish", "aten::exp2": "exp2", "aten::special_expit": "sigmoid",
}
_ANY_UNARY = {"aten::neg": "neg", "aten::negative": "neg", "aten::abs": "abs",
              "aten::square": "square", "aten::sign": "sign", "aten::relu": "relu"}
_ROUNDING = {"aten::floor": "floor", "aten::ceil": "ceil", "aten::round": "round",
             "aten::trunc": "trunc", "aten::fix": "trunc"}


def _float_unary(op):
    def conv(ctx, c):
        return ctx.emit(op, [as_float(ctx, c[0])])
    return conv


def _any_unary(op):
    def conv(ctx, c):
        x = ctx.tensor(c[0])
        if x.dtype == "bool" and op in ("neg", "abs", "square", "sign"):
            raise UnsupportedDtypeError(f"{c}: {op} of a bool tensor")
        return ctx.emit(op, [x])
    return conv


def _rounding(op):
    def conv(ctx, c):
        x = ctx.tensor(c[0])
        if op == "round" and c.arg("decimals", 0):
            s = 10.0 ** c.arg("decimals")
            y = ctx.emit("multiply", [x, ctx.scalar(s, x.dtype)])
            return ctx.emit("divide", [ctx.emit("round", [y]), ctx.scalar(s, x.dtype)])
        return x if not dt.is_float(x.dtype) else ctx.emit(op, [x])
    return conv


for _k, _o in _FLOAT_UNARY.items():
    CONVERTERS[_k] = _float_unary(_o)
for _k, _o in _ANY_UNARY.items():
    CONVERTERS[_k] = _any_unary(_o)
for _k, _o in _ROUNDING.items():
    CONVERTERS[_k] = _rounding(_o)


@converter("aten::isnan")
def _isnan(ctx, c):
    x = ctx.tensor(c[0])
    if not dt.is_float(x.dtype):
        return ctx.const(np.zeros(x.shape, bool))
    return ctx.emit("isnan", [x])


@converter("aten::logical_not", "aten::bitwise_not")
def _logical_not(ctx, c):
    x = ctx.tensor(c[0])
    if c.kind == "aten::bitwise_not" and x.dtype != "bool":
        raise UnsupportedFeatureError(f"{c}: bitwise_not of a {x.dtype} tensor (only bool)")
    return ctx.emit("logical_not", [x])


@converter("aten::add", "aten::sub", "aten::subtract")
def _add_sub(ctx, c):
    a, b = c[0], c[1]
    alpha = c.arg("alpha", 1)
    rt = result_dtype(a, b)
    if rt == "bool":
        if c.kind == "aten::add":
            return ctx.emit("logical_or", [ctx.tensor(a, rt), ctx.tensor(b, rt)])
        raise UnsupportedDtypeError(f"{c}: subtraction of bool tensors")
    b = _scaled(ctx, b, alpha, rt)
    a, b, _ = _binary_operands(ctx, a, b, rt)
    return ctx.emit("add" if c.kind == "aten::add" else "subtract", [a, b])


@converter("aten::rsub")
def _rsub(ctx, c):
    a, b = c[0], c[1]
    alpha = c.arg("alpha", 1)
    rt = result_dtype(a, b)
    a = _scaled(ctx, a, alpha, rt)
    a, b, _ = _binary_operands(ctx, a, b, rt)
    return ctx.emit("subtract", [b, a])


@converter("aten::mul", "aten::multiply")
def _mul(ctx, c):
    a, b, rt = _binary_operands(ctx, c[0], c[1])
    if rt == "bool":
        return ctx.emit("logical_and", [a, b])
    if a is b:
        return ctx.emit("square", [a])
    return ctx.emit("multiply", [a, b])


@converter("aten::div", "aten::divide", "aten::true_divide")
def _div(ctx, c):
    mode = c.arg("rounding_mode")
    rt = result_dtype(c[0], c[1])
    if mode is None:
        rt = rt if dt.is_float(rt) else "float32"
        a, b, _ = _binary_operands(ctx, c[0], c[1], rt)
        return ctx.emit("divide", [a, b])
    a, b, _ = _binary_operands(ctx, c[0], c[1], rt)
    if mode == "floor":
        if dt.is_float(rt):
            return ctx.emit("floor", [ctx.emit("divide", [a, b])])
        return ctx.emit("floor_divide", [a, b])
    if mode == "trunc":
        if dt.is_float(rt):
            return ctx.emit("trunc", [ctx.emit("divide", [a, b])])
        fa, fb = ctx.cast(a, "float64"), ctx.cast(b, "float64")
        return ctx.cast(ctx.emit("trunc", [ctx.emit("divide", [fa, fb])]), rt)
    raise UnsupportedFeatureError(f"{c}: rounding_mode {mode!r}")


@converter("aten::floor_divide")
def _floor_divide(ctx, c):
    a, b, rt = _binary_operands(ctx, c[0], c[1])
    if dt.is_float(rt):
        return ctx.emit("floor", [ctx.emit("divide", [a, b])])
    return ctx.emit("floor_divide", [a, b])


@converter("aten::remainder")
def _remainder(ctx, c):
    a, b, _ = _binary_operands(ctx, c[0], c[1])
    return ctx.emit("mod", [a, b])


@converter("aten::fmod")
def _fmod(ctx, c):
    a, b, rt = _binary_operands(ctx, c[0], c[1])
    if dt.is_float(rt):
        return ctx.emit("fmod", [a, b])
    return _int_fmod(ctx, a, b)


def _int_fmod(ctx, a, b):
    # C remainder on integers: a - trunc(a / b) * b
    fa, fb = ctx.cast(a, "float64"), ctx.cast(b, "float64")
    q = ctx.cast(ctx.emit("trunc", [ctx.emit("divide", [fa, fb])]), a.dtype)
    return ctx.emit("subtract", [a, ctx.emit("multiply", [q, b])])


@converter("aten::pow", "aten::float_power")
def _pow(ctx, c):
    base, ex = c[0], c[1]
    rt = "float64" if c.kind == "aten::float_power" else result_dtype(base, ex)
    if not _is_tensor(ex) and isinstance(base, Value):
        e = float(ex)
        x = ctx.tensor(base, rt)
        if e == 1.0:
            return x
        if e == 2.0:
            return ctx.emit("square", [x])
        if e == 3.0:
            return ctx.emit("multiply", [ctx.emit("square", [x]), x])
        if e == 0.5 and dt.is_float(rt):
            return ctx.emit("sqrt", [x])
        if e == -0.5 and dt.is_float(rt):
            return ctx.emit("rsqrt", [x])
        if e == -1.0 and dt.is_float(rt):
            return ctx.emit("reciprocal", [x])
    a, b, _ = _binary_operands(ctx, base, ex, rt)
    return ctx.emit("power", [a, b])


_BINARY = {"aten::maximum": "maximum", "aten::minimum": "minimum", "aten::fmax": "maximum",
           "aten::fmin": "minimum"}
_COMPARE = {"aten::eq": "equal", "aten::ne": "not_equal", "aten::lt": "less",
            "aten::le": "less_equal", "aten::gt": "greater", "aten::ge": "greater_equal",
            "aten::greater": "greater", "aten::less": "less", "aten::greater_equal":
            "greater_equal", "aten::less_equal": "less_equal", "aten::not_equal": "not_equal"}
_LOGICAL = {"aten::logical_and": "logical_and", "aten::logical_or": "logical_or",
            "aten::logical_xor": "logical_xor", "aten::bitwise_and": "logical_and",
            "aten::bitwise_or": "logical_or", "aten::bitwise_xor": "logical_xor",
            "aten::__and__": "logical_and", "aten::__or__": "logical_or",
            "aten::__xor__": "logical_xor"}


def _binary(op):
    def conv(ctx, c):
        a, b, _ = _binary_operands(ctx, c[0], c[1])
        return ctx.emit(op, [a, b])
    return conv


def _compare(op):
    def conv(ctx, c):
        a, b, _ = _binary_operands(ctx, c[0], c[1])
        return ctx.emit(op, [a, b])
    return conv


def _logical(op):
    def conv(ctx, c):
        a, b = ctx.tensor(c[0]), ctx.tensor(c[1])
        if (c.kind.startswith("aten::bitwise") or c.kind.startswith("aten::__")) and \
                (a.dtype != "bool" or b.dtype != "bool"):
            raise UnsupportedFeatureError(f"{c}: bitwise operation on {a.dtype}/{b.dtype} "
                                          "tensors (only bool)")
        return ctx.emit(op, [a, b])
    return conv


for _k, _o in _BINARY.items():
    CONVERTERS[_k] = _binary(_o)
for _k, _o in _COMPARE.items():
    CONVERTERS[_k] = _compare(_o)
for _k, _o in _LOGICAL.items():
    CONVERTERS[_k] = _logical(_o)


@converter("aten::where")
def _where(ctx, c):
    if len(c.args) == 1:
        raise NonConstantInputError(f"{c}: where(condition) returns data-dependent indices")
    cond = ctx.tensor(c[0])
    if cond.dtype != "bool":
        cond = ctx.emit("not_equal", [cond, ctx.scalar(0, cond.dtype)])
    a, b, _ = _binary_operands(ctx, c[1], c[2])
    return ctx.emit("where", [cond, a, b])


@converter("aten::masked_fill")
def _masked_fill(ctx, c):
    x = ctx.tensor(c[0])
    mask = ctx.tensor(c[1])
    if mask.dtype != "bool":
        raise UnsupportedDtypeError(f"{c}: the mask has dtype {mask.dtype}; masked_fill needs "
                                    "a bool mask")
    value = c[2]
    torch = _torch()
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    v = ctx.tensor(value, x.dtype)
    return ctx.emit("where", [mask, v, x])


@converter("aten::clamp", "aten::clip", "aten::clamp_min", "aten::clamp_max")
def _clamp(ctx, c):
    x = c[0]
    if c.kind == "aten::clamp_min":
        lo, hi = c[1], None
    elif c.kind == "aten::clamp_max":
        lo, hi = None, c[1]
    else:
        lo, hi = c.arg("min"), c.arg("max")
    rt = result_dtype(x, *(b for b in (lo, hi) if b is not None))
    x = ctx.tensor(x, rt)
    attrs = []
    for b in (lo, hi):
        attrs.append(None if b is None else ctx.tensor(b, rt))
    out = x
    if attrs[0] is not None:
        out = ctx.emit("maximum", [out, attrs[0]])
    if attrs[1] is not None:
        out = ctx.emit("minimum", [out, attrs[1]])
    return out


@converter("aten::to", "aten::type_as", "aten::_to_copy")
def _to(ctx, c):
    x = ctx.tensor(c[0])
    target = None
    if c.kind == "aten::type_as":
        target = dtype_of(c[1])
    elif c.has("dtype") and c.arg("dtype") is not None:
        target = tc_dtype(c.arg("dtype"), f"{c}")
    elif c.has("other"):
        target = dtype_of(c.arg("other"))
    return ctx.cast(x, target) if target is not None else x


_DTYPE_METHODS = {"aten::float": "float32", "aten::double": "float64", "aten::half": "float16",
                  "aten::long": "int64", "aten::int": "int32", "aten::bool": "bool",
                  "aten::short": "int16", "aten::char": "int8", "aten::byte": "uint8"}


def _dtype_method(d):
    def conv(ctx, c):
        return ctx.cast(ctx.tensor(c[0]), d)
    return conv


for _k, _d in _DTYPE_METHODS.items():
    CONVERTERS[_k] = _dtype_method(_d)
