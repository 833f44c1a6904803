"""Per-kind converters of the TorchScript importer: ``aten::*`` nodes on graph tensors ->
graph nodes naming ``tensorc.ops`` operators, plus the Python builtins that evaluate static
values (sizes, ints, lists, tuples) and the shape queries on graph tensors.

A converter is ``f(ctx, c) -> value`` (a list of values for nodes with several outputs),
registered in ``CONVERTERS`` under the node kind (``aten::relu``; the in-place ``aten::relu_``
finds it too). ``c`` is a ``torchscript_importer.Call``: ``c[k]`` is the k-th input, resolved
(a graph ``Value``, a constant ``torch.Tensor``, or a Python value), ``c.arg(name)`` the input
named ``name`` in the node's schema, ``c.overload`` the schema's overload name. ``ctx.emit``
adds ``ops.<op>(*inputs, **attrs)``, ``ctx.tensor(x, dtype)`` makes a graph value of an
operand (a constant for static ones).

Where torch and tensorc conventions differ the converter translates: type promotion follows
``torch.result_type`` (Python scalars and 0-dim tensors do not widen a tensor's dtype; integer
``/`` is true division), ``alpha`` of add/sub, ``rounding_mode`` of div, ``squeeze(dim)`` of an
extent other than 1 is a no-op, ``chunk``/``split`` sizes, ``end`` of ``slice`` past the axis,
``adaptive_avg_pool2d`` to a global pool or a pool with the computed kernel, conv bias as a
broadcast add, ``norm``'s ``p``, ``var``'s ``correction``, ``scaled_dot_product_attention``'s
mask and scale.
"""
import math

import numpy as np

from tensorc.graph.ir import Value
from tensorc.ir import dtype as dt

from .errors import (ImporterError, NonConstantInputError, UnsupportedDtypeError,
                     UnsupportedFeatureError)
from .torchscript_importer import _torch, tc_dtype, torch_dtype

CONVERTERS = {}

#: kind -> f(call, *args): Python evaluation of builtins on static values (and containers of
#: graph values: lists and tuples of tensors are Python lists and tuples here).
STATIC_OPS = {}
#: STATIC_OPS that also take constant torch tensors as direct arguments.
STATIC_TENSOR_OK = set()
#: kind -> f(call): queries answered from a graph tensor's static shape and dtype.
SHAPE_QUERIES = {}
#: STATIC_OPS that take graph values as direct arguments (containers: append a tensor to a
#: list, test it against None).
VALUES_OK = {"aten::append", "aten::extend", "aten::insert", "aten::_set_item",
             "aten::__is__", "aten::__isnot__", "aten::warn", "aten::list", "aten::__getitem__"}
#: kinds that go to their converter even when every input is static (identity ops that torch
#: marks nondeterministic, like dropout).
NEVER_FOLD = set()
#: nondeterministic kinds that are safe to evaluate statically.
DETERMINISTIC_OK = set()

_INT64_MAX = 2 ** 63 - 1


def converter(*kinds):
    def deco(fn):
        for k in kinds:
            CONVERTERS[k] = fn
        return fn
    return deco


def static_op(*kinds, tensors=False):
    def deco(fn):
        for k in kinds:
            STATIC_OPS[k] = fn
            if tensors:
                STATIC_TENSOR_OK.add(k)
        return fn
    return deco


def shape_query(*kinds):
    def deco(fn):
        for k in kinds:
            SHAPE_QUERIES[k] = fn
        return fn
    return deco


# ------------------------------------------------------------------------------ helpers

def _is_tensor(x):
    return isinstance(x, Value) or isinstance(x, _torch().Tensor)


def shape_of(x):
    if isinstance(x, Value):
        return tuple(x.shape)
    torch = _torch()
    if isinstance(x, torch.Tensor):
        return tuple(int(d) for d in x.shape)
    return ()


def rank(x):
    return len(shape_of(x))


def dtype_of(x):
    if isinstance(x, Value):
        return x.dtype
    torch = _torch()
    if isinstance(x, torch.Tensor):
        return tc_dtype(x.dtype)
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int):
        return "int64"
    return "float32"


def norm_axis(c, d, r, what="dim"):
    if not isinstance(d, int) or isinstance(d, bool):
        raise NonConstantInputError(f"{c}: {what} must be a static int, got {d!r}")
    if r == 0 and d in (0, -1):
        return 0
    if not -r <= d < r:
        raise ImporterError(f"{c}: {what} {d} is out of range for a tensor of rank {r}")
    return d + r if d < 0 else d


def norm_axes(c, dims, r):
    if dims is None:
        return None
    if isinstance(dims, int):
        dims = [dims]
    dims = list(dims)
    if not dims:
        return None
    return sorted({norm_axis(c, d, r) for d in dims})


def _proto(x):
    torch = _torch()
    if isinstance(x, Value):
        return torch.empty((1,) * len(x.shape), dtype=torch_dtype(x.dtype), device="meta")
    if isinstance(x, torch.Tensor):
        return torch.empty(tuple(x.shape), dtype=x.dtype, device="meta")
    return x


def result_dtype(*xs):
    """torch.result_type of the operands (graph values, constant tensors, Python numbers)."""
    torch = _torch()
    xs = [x for x in xs if x is not None]
    tensors = [x for x in xs if _is_tensor(x)]
    if not tensors:
        return dtype_of(xs[0]) if xs else "float32"
    # tensors with dims first, then 0-dim ones, then scalars: torch's categories
    acc = _proto(tensors[0])
    for x in xs:
        if x is tensors[0]:
            continue
        t = torch.result_type(acc, _proto(x))
        acc = torch.empty((1,) * max(acc.dim(), rank(x)), dtype=t, device="meta")
    return tc_dtype(acc.dtype)


def float_dtype(x):
    d = dtype_of(x)
    return d if dt.is_float(d) else "float32"


def as_float(ctx, x):
    v = ctx.tensor(x)
    return ctx.cast(v, "float32") if not dt.is_float(v.dtype) else v


def static_ints(c, v, what):
    torch = _torch()
    if isinstance(v, torch.Tensor):
        v = v.tolist()
    if isinstance(v, int) and not isinstance(v, bool):
        return [v]
    if isinstance(v, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool)
                                            for x in v):
        return list(v)
    raise NonConstantInputError(f"{c}: {what} must be static ints (shapes are static in "
                                f"tensorc), got {v!r}")


def _pairs(v, n):
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    if len(v) == 1:
        v = v * n
    return [int(x) for x in v]


def _identity(ctx, c):
    return c[0]


def _emit_reshape(ctx, v, shape):
    shape = [int(d) for d in shape]
    if tuple(shape) == tuple(v.shape):
        return v
    return ctx.emit("reshape", [v], newshape=shape)


def _static_tensor(t):
    return isinstance(t, _torch().Tensor)


# ------------------------------------------------------------------------------ static builtins

def _py(fn):
    def f(call, *args):
        return fn(*args)
    return f


for _k, _f in {
    "aten::add": lambda a, b, *alpha: a + b * (alpha[0] if alpha else 1)
    if not isinstance(a, (list, tuple, str)) else a + b,
    "aten::sub": lambda a, b, *alpha: a - b * (alpha[0] if alpha else 1),
    "aten::mul": lambda a, b: a * b,
    "aten::div": lambda a, b, *mode: (a / b) if not mode or mode[0] is None else
    (math.trunc(a / b) if mode[0] == "trunc" else math.floor(a / b)),
    "aten::floordiv": lambda a, b: a // b,
    "aten::floor_divide": lambda a, b: a // b,
    "aten::remainder": lambda a, b: a % b,
    "aten::fmod": lambda a, b: math.fmod(a, b),
    "aten::pow": lambda a, b: a ** b,
    "aten::neg": lambda a: -a,
    "aten::abs": lambda a: abs(a),
    "aten::eq": lambda a, b: a == b,
    "aten::ne": lambda a, b: a != b,
    "aten::lt": lambda a, b: a < b,
    "aten::le": lambda a, b: a <= b,
    "aten::gt": lambda a, b: a > b,
    "aten::ge": lambda a, b: a >= b,
    "aten::__not__": lambda a: not a,
    "aten::__and__": lambda a, b: a and b if isinstance(a, bool) else a & b,
    "aten::__or__": lambda a, b: a or b if isinstance(a, bool) else a | b,
    "aten::__xor__": lambda a, b: a != b if isinstance(a, bool) else a ^ b,
    "aten::__is__": lambda a, b: a is b,
    "aten::__isnot__": lambda a, b: a is not b,
    "aten::__contains__": lambda a, b: b in a,
    "aten::__getitem__": lambda a, i: a[i],
    "aten::len": lambda a: len(a),
    "aten::Int": lambda a: int(a),
    "aten::Float": lambda a: float(a),
    "aten::Bool": lambda a: bool(a),
    "aten::ScalarImplicit": lambda a: a,
    "aten::floor": lambda a: math.floor(a),
    "aten::ceil": lambda a: math.ceil(a),
    "aten::round": lambda a: float(round(a)),
    "aten::sqrt": lambda a: math.sqrt(a),
    "aten::exp": lambda a: math.exp(a),
    "aten::log": lambda a, *b: math.log(a, *b),
    "aten::sin": lambda a: math.sin(a),
    "aten::cos": lambda a: math.cos(a),
    "aten::tanh": lambda a: math.tanh(a),
    "aten::list": lambda a: list(a),
    "aten::str": lambda a: str(a),
    "aten::slice": lambda a, start=None, end=None, step=1: a[start:end:step],
    "aten::min": lambda *a: min(*a),
    "aten::max": lambda *a: max(*a),
    "aten::__range_length": lambda lo, hi, step: max(0, -(-(hi - lo) // step)),
    "aten::__derive_index": lambda i, start, step: start + i * step,
    "aten::format": lambda fmt, *a: fmt.replace("{}", "%s") % a if a else fmt,
    "aten::warn": lambda *a: None,
    "aten::dict": lambda *a: {},
    "aten::keys": lambda d: list(d.keys()),
    "aten::values": lambda d: list(d.values()),
    "aten::sum": lambda a: sum(a),
    "aten::count": lambda a, x: a.count(x),
    "aten::index": lambda a, x: a.index(x),
}.items():
    STATIC_OPS[_k] = _py(_f)


@static_op("aten::append")
def _append(call, lst, x):
    lst.append(x)
    return lst


@static_op("aten::extend")
def _extend(call, lst, x):
    lst.extend(x)
    return lst


@static_op("aten::insert")
def _insert(call, lst, i, x):
    lst.insert(i, x)
    return lst


@static_op("aten::_set_item")
def _set_item(call, lst, i, x):
    lst[i] = x
    return lst


@static_op("prim::ListConstruct")
def _list(call, *a):
    return list(a)


@static_op("prim::TupleConstruct")
def _tuple(call, *a):
    return tuple(a)


@static_op("prim::DictConstruct")
def _dict(call, *a):
    return dict(zip(a[0::2], a[1::2]))


@static_op("prim::ListUnpack", "prim::TupleUnpack")
def _unpack(call, seq):
    seq = list(seq)
    if len(seq) != call.n_outputs:
        raise ImporterError(f"{call}: unpacks {len(seq)} values into {call.n_outputs}")
    return seq


@static_op("prim::TupleIndex", "prim::ListIndex")
def _tuple_index(call, seq, i):
    return seq[i]


@static_op("prim::TupleSlice")
def _tuple_slice(call, seq):
    node = call.node
    return tuple(seq[node.i("beg"):node.i("end")])


@static_op("prim::unchecked_cast", "prim::data", "prim::unchecked_unwrap_optional",
           "aten::detach", "aten::lift_fresh", "prim::grad", tensors=True)
def _same(call, x, *_):
    return x


@static_op("prim::Uninitialized")
def _uninit(call):
    return None


@static_op("prim::Print")
def _print(call, *a):
    return None


@static_op("prim::RaiseException")
def _raise(call, msg=None, *a):
    raise ImporterError(f"{call}: the model raises an exception for these input shapes: "
                        f"{msg}")


@static_op("prim::GetAttr")
def _getattr(call, obj):
    name = call.node.s("name")
    try:
        return getattr(obj, name)
    except AttributeError:
        torch = _torch()
        if isinstance(obj, torch._C.ScriptModule):
            return obj.getattr(name)
        raise


@static_op("prim::NumToTensor")
def _num_to_tensor(call, x, *_):
    torch = _torch()
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, bool):
        return torch.tensor(x)
    return torch.tensor(x, dtype=torch.int64 if isinstance(x, int) else torch.float64)


@static_op("prim::min", "prim::max")
def _prim_minmax(call, *a):
    fn = min if call.kind == "prim::min" else max
    return fn(*a) if len(a) > 1 else fn(a[0])


@static_op("prim::abs")
def _prim_abs(call, a):
    return abs(a)


@static_op("prim::is_cuda", "prim::requires_grad", "prim::is_sparse", "prim::is_quantized",
           "prim::is_mkldnn", "prim::is_meta", "prim::is_xpu", "prim::is_mps", "prim::is_vulkan",
           "prim::is_nested", tensors=True)
def _false(call, *a):
    return False


@static_op("aten::dim", "aten::size", "prim::dtype", "prim::device", "aten::numel",
           "prim::layout", "aten::is_floating_point", tensors=True)
def _static_query(call, *a):
    return SHAPE_QUERIES[call.kind](call)


# ------------------------------------------------------------------------------ shape queries

@shape_query("aten::size", "prim::shape", "aten::sym_size")
def _size(c):
    shape = list(shape_of(c[0]))
    if len(c.args) > 1 and c[1] is not None:
        return shape[norm_axis(c, c[1], len(shape))]
    return shape


@shape_query("aten::dim")
def _dim(c):
    return rank(c[0])


@shape_query("aten::numel", "aten::sym_numel")
def _numel(c):
    return int(np.prod(shape_of(c[0]), dtype=np.int64))


@shape_query("aten::len")
def _len(c):
    s = shape_of(c[0])
    if not s:
        raise ImporterError(f"{c}: len() of a 0-d tensor")
    return s[0]


@shape_query("prim::dtype")
def _dtype(c):
    t = torch_dtype(dtype_of(c[0]))
    codes = {v: k for k, v in _scalar_codes().items()}
    return codes[t]


@shape_query("prim::device")
def _device(c):
    return _torch().device("cpu")


@shape_query("prim::layout")
def _layout(c):
    return 0  # torch.strided


@shape_query("aten::is_floating_point")
def _is_float(c):
    return dt.is_float(dtype_of(c[0]))


@shape_query("aten::is_contiguous")
def _is_contig(c):
    return True


def _scalar_codes():
    from .torchscript_importer import _SCALAR_TYPE_CODES
    torch = _torch()
    return {k: getattr(torch, v) for k, v in _SCALAR_TYPE_CODES.items()}


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


def _binary_operands(ctx, a, b, dtype=None):
    rt = dtype or result_dtype(a, b)
    return ctx.tensor(a, rt), ctx.tensor(b, rt), rt


def _scaled(ctx, x, alpha, rt):
    """alpha * x for a static or graph operand."""
    if alpha == 1:
        return x
    if isinstance(x, Value):
        return ctx.emit("multiply", [x, ctx.scalar(alpha, rt)])
    torch = _torch()
    if isinstance(x, torch.Tensor):
        return x * alpha
    return x * alpha


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


@converter("aten::hardtanh", "aten::relu6")
def _hardtanh(ctx, c):
    x = ctx.tensor(c[0])
    lo, hi = (0.0, 6.0) if c.kind == "aten::relu6" else \
        (c.arg("min_val", -1.0), c.arg("max_val", 1.0))
    if not dt.is_float(x.dtype):
        x = ctx.cast(x, "float32")
    return ctx.emit("clip", [x], a_min=float(lo), a_max=float(hi))


@converter("aten::leaky_relu")
def _leaky_relu(ctx, c):
    return ctx.emit("leaky_relu", [as_float(ctx, c[0])],
                    alpha=float(c.arg("negative_slope", 0.01)))


@converter("aten::gelu")
def _gelu(ctx, c):
    approx = c.arg("approximate", "none") or "none"
    if approx not in ("none", "tanh"):
        raise UnsupportedFeatureError(f"{c}: gelu approximate={approx!r}")
    return ctx.emit("gelu", [as_float(ctx, c[0])], approximate=approx)


@converter("aten::elu")
def _elu(ctx, c):
    x = as_float(ctx, c[0])
    alpha, scale, iscale = (float(c.arg("alpha", 1.0)), float(c.arg("scale", 1.0)),
                            float(c.arg("input_scale", 1.0)))
    if iscale != 1.0:
        # scale * (x if x > 0 else alpha * (exp(input_scale * x) - 1))
        neg = ctx.emit("multiply", [ctx.emit("expm1", [ctx.emit("multiply", [
            x, ctx.scalar(iscale, x.dtype)])]), ctx.scalar(alpha, x.dtype)])
        y = ctx.emit("where", [ctx.emit("greater", [x, ctx.scalar(0, x.dtype)]), x, neg])
    else:
        y = ctx.emit("elu", [x], alpha=alpha)
    if scale != 1.0:
        y = ctx.emit("multiply", [y, ctx.scalar(scale, x.dtype)])
    return y


@converter("aten::selu")
def _selu(ctx, c):
    return ctx.emit("selu", [as_float(ctx, c[0])])


@converter("aten::celu")
def _celu(ctx, c):
    x = as_float(ctx, c[0])
    alpha = float(c.arg("alpha", 1.0))
    z = ctx.emit("multiply", [x, ctx.scalar(1.0 / alpha, x.dtype)])
    return ctx.emit("multiply", [ctx.emit("elu", [z], alpha=1.0), ctx.scalar(alpha, x.dtype)])


@converter("aten::hardsigmoid")
def _hardsigmoid(ctx, c):
    return ctx.emit("hard_sigmoid", [as_float(ctx, c[0])], alpha=1.0 / 6.0, beta=0.5)


@converter("aten::softplus")
def _softplus(ctx, c):
    x = as_float(ctx, c[0])
    beta = float(c.arg("beta", 1.0))
    if beta == 1.0:
        return ctx.emit("softplus", [x])
    y = ctx.emit("softplus", [ctx.emit("multiply", [x, ctx.scalar(beta, x.dtype)])])
    return ctx.emit("multiply", [y, ctx.scalar(1.0 / beta, x.dtype)])


@converter("aten::mish")
def _mish(ctx, c):
    x = as_float(ctx, c[0])
    return ctx.emit("multiply", [x, ctx.emit("tanh", [ctx.emit("softplus", [x])])])


@converter("aten::log_sigmoid")
def _log_sigmoid(ctx, c):
    x = as_float(ctx, c[0])
    return ctx.emit("neg", [ctx.emit("softplus", [ctx.emit("neg", [x])])])


@converter("aten::prelu")
def _prelu(ctx, c):
    x = as_float(ctx, c[0])
    w = ctx.tensor(c[1], x.dtype)
    if w.shape == (1,) or w.shape == ():
        return ctx.emit("prelu", [x, w], axis=None)
    return ctx.emit("prelu", [x, w], axis=1 if len(x.shape) > 1 else 0)


@converter("aten::threshold")
def _threshold(ctx, c):
    x = ctx.tensor(c[0])
    th, val = c.arg("threshold"), c.arg("value")
    return ctx.emit("where", [ctx.emit("greater", [x, ctx.scalar(th, x.dtype)]), x,
                              ctx.scalar(val, x.dtype)])


@converter("aten::glu")
def _glu(ctx, c):
    x = as_float(ctx, c[0])
    a, b = ctx.emit("split", [x], sizes=2, axis=c.arg("dim", -1))
    return ctx.emit("multiply", [a, ctx.emit("sigmoid", [b])])


@converter("aten::softmax", "aten::log_softmax", "aten::_softmax", "aten::_log_softmax",
           "aten::special_softmax")
def _softmax(ctx, c):
    x = ctx.tensor(c[0])
    dtype = c.arg("dtype")
    if dtype is not None:
        x = ctx.cast(x, tc_dtype(dtype))
    elif not dt.is_float(x.dtype):
        x = ctx.cast(x, "float32")
    axis = norm_axis(c, c[1], len(x.shape))
    op = "log_softmax" if "log_softmax" in c.kind else "softmax"
    return ctx.emit(op, [x], axis=axis)


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


# ------------------------------------------------------------------------------ matmul family

@converter("aten::linear")
def _linear(ctx, c):
    x, w, b = c[0], c[1], c.arg("bias")
    rt = result_dtype(x, w)
    x, w = ctx.tensor(x, rt), ctx.tensor(w, rt)
    if len(w.shape) == 1:
        y = ctx.emit("matmul", [x, w])
        return y if b is None else ctx.emit("add", [y, ctx.tensor(b, rt)])
    if len(x.shape) == 1:
        y = ctx.emit("matmul", [x, ctx.emit("transpose", [w])])
        return y if b is None else ctx.emit("add", [y, ctx.tensor(b, rt)])
    if b is None:
        return ctx.emit("dense", [x, w])
    return ctx.emit("dense", [x, w, ctx.tensor(b, rt)])


@converter("aten::matmul", "aten::mm", "aten::bmm", "aten::mv", "aten::dot", "aten::inner")
def _matmul(ctx, c):
    a, b, rt = _binary_operands(ctx, c[0], c[1])
    if c.kind == "aten::inner" and len(b.shape) > 1:
        raise UnsupportedFeatureError(f"{c}: inner of tensors of rank > 1")
    return ctx.emit("matmul", [a, b])


@converter("aten::addmm", "aten::baddbmm", "aten::addmv")
def _addmm(ctx, c):
    inp, m1, m2 = c[0], c[1], c[2]
    beta, alpha = c.arg("beta", 1), c.arg("alpha", 1)
    rt = result_dtype(inp, m1, m2)
    m1, m2 = ctx.tensor(m1, rt), ctx.tensor(m2, rt)
    prod = None
    if c.kind == "aten::addmm" and _static_tensor(c[2]) and len(m2.shape) == 2:
        # addmm(b, x, W^T) from old traces: dense reads the weight as stored
        wt = c[2].t().contiguous()
        prod = ctx.emit("dense", [m1, ctx.const_tensor(wt, rt)])
    if prod is None:
        prod = ctx.emit("matmul", [m1, m2])
    prod = _scaled(ctx, prod, alpha, rt)
    if beta == 0:
        return prod
    bias = ctx.tensor(_scaled(ctx, inp, beta, rt), rt)
    return ctx.emit("add", [prod, bias])


@converter("aten::einsum")
def _einsum(ctx, c):
    eq = c[0]
    ops = list(c[1])
    if "..." in eq:
        raise UnsupportedFeatureError(f"{c}: einsum with an ellipsis ({eq!r})")
    rt = result_dtype(*ops)
    vals = [ctx.tensor(o, rt) for o in ops]
    return ctx.emit("einsum", vals, subscripts=eq.replace(" ", ""))


@converter("aten::t", "aten::numpy_T")
def _t(ctx, c):
    x = ctx.tensor(c[0])
    if len(x.shape) < 2:
        return x
    return ctx.emit("transpose", [x])


# ------------------------------------------------------------------------------ convolution

def _bias_add(ctx, y, bias, nd):
    if bias is None:
        return y
    torch = _torch()
    if isinstance(bias, torch.Tensor):
        b = ctx.const_tensor(bias.reshape((-1,) + (1,) * nd), y.dtype)
    else:
        b = _emit_reshape(ctx, ctx.tensor(bias, y.dtype), [bias.shape[0]] + [1] * nd)
    return ctx.emit("add", [y, b])


def _conv(ctx, c, x, w, bias, stride, padding, dilation, groups, transposed=False,
          output_padding=0):
    x = ctx.tensor(x)
    if not dt.is_float(x.dtype):
        raise UnsupportedDtypeError(f"{c}: convolution of a {x.dtype} tensor")
    w = ctx.tensor(w, x.dtype)
    nd = len(w.shape) - 2
    if nd not in (1, 2) or (transposed and nd != 2):
        raise UnsupportedFeatureError(f"{c}: {nd}-D {'transposed ' if transposed else ''}"
                                      "convolution (tensorc has 1-D and 2-D convolutions and "
                                      "2-D transposed ones)")
    unbatched = len(x.shape) == nd + 1
    if unbatched:
        x = _emit_reshape(ctx, x, (1,) + tuple(x.shape))
    stride, dilation = _pairs(stride, nd), _pairs(dilation, nd)
    if isinstance(padding, str):
        if padding == "valid":
            pads = [0] * nd
        elif padding == "same":
            total = [d * (k - 1) for d, k in zip(dilation, w.shape[2:])]
            begins = [t // 2 for t in total]
            pads = begins + [t - b for t, b in zip(total, begins)]
        else:
            raise UnsupportedFeatureError(f"{c}: padding={padding!r}")
    else:
        pads = _pairs(padding, nd)
    if transposed:
        y = ctx.emit("conv_transpose2d", [x, w], strides=stride, padding=pads,
                     output_padding=_pairs(output_padding, nd), dilation=dilation,
                     groups=int(groups))
    else:
        op = "conv2d" if nd == 2 else "conv1d"
        y = ctx.emit(op, [x, w], strides=stride, padding=pads, dilation=dilation,
                     groups=int(groups))
    y = _bias_add(ctx, y, bias, nd)
    if unbatched:
        y = _emit_reshape(ctx, y, y.shape[1:])
    return y


@converter("aten::conv2d", "aten::conv1d", "aten::conv3d", "aten::_convolution_mode")
def _convnd(ctx, c):
    return _conv(ctx, c, c[0], c[1], c.arg("bias"), c.arg("stride", 1), c.arg("padding", 0),
                 c.arg("dilation", 1), c.arg("groups", 1))


@converter("aten::_convolution", "aten::convolution")
def _convolution(ctx, c):
    return _conv(ctx, c, c[0], c[1], c.arg("bias"), c.arg("stride"), c.arg("padding"),
                 c.arg("dilation"), c.arg("groups"), bool(c.arg("transposed")),
                 c.arg("output_padding"))


@converter("aten::conv_transpose2d", "aten::conv_transpose1d")
def _conv_transpose(ctx, c):
    return _conv(ctx, c, c[0], c[1], c.arg("bias"), c.arg("stride", 1), c.arg("padding", 0),
                 c.arg("dilation", 1), c.arg("groups", 1), True, c.arg("output_padding", 0))


# ------------------------------------------------------------------------------ normalisation

@converter("aten::batch_norm")
def _batch_norm(ctx, c):
    x = ctx.tensor(c[0])
    if c.arg("training", False):
        raise UnsupportedFeatureError(f"{c}: batch norm in training mode (batch statistics); "
                                      "call .eval() on the module")
    ch = x.shape[1] if len(x.shape) > 1 else x.shape[0]
    torch = _torch()
    w, b = c.arg("weight"), c.arg("bias")
    mean, var = c.arg("running_mean"), c.arg("running_var")
    if mean is None or var is None:
        raise UnsupportedFeatureError(f"{c}: batch norm without running statistics")
    w = torch.ones(ch) if w is None else w
    b = torch.zeros(ch) if b is None else b
    vals = [ctx.tensor(p, x.dtype) for p in (w, b, mean, var)]
    return ctx.emit("batch_norm", [x] + vals, epsilon=float(c.arg("eps", 1e-5)),
                    axis=1 if len(x.shape) > 1 else 0)


@converter("aten::layer_norm")
def _layer_norm(ctx, c):
    x = ctx.tensor(c[0])
    shape = static_ints(c, c[1], "normalized_shape")
    if tuple(x.shape[len(x.shape) - len(shape):]) != tuple(shape):
        raise ImporterError(f"{c}: normalized_shape {shape} does not match the trailing dims "
                            f"of the input {x.shape}")
    ins = [x]
    w, b = c.arg("weight"), c.arg("bias")
    torch = _torch()
    if w is None and b is not None:
        w = torch.ones(shape)
    if w is not None:
        ins.append(ctx.tensor(w, x.dtype))
    if b is not None:
        ins.append(ctx.tensor(b, x.dtype))
    return ctx.emit("layer_norm", ins, axis=len(x.shape) - len(shape),
                    epsilon=float(c.arg("eps", 1e-5)))


@converter("aten::group_norm")
def _group_norm(ctx, c):
    x = ctx.tensor(c[0])
    torch = _torch()
    ch = x.shape[1]
    w, b = c.arg("weight"), c.arg("bias")
    w = torch.ones(ch) if w is None else w
    b = torch.zeros(ch) if b is None else b
    return ctx.emit("group_norm", [x, ctx.tensor(w, x.dtype), ctx.tensor(b, x.dtype)],
                    num_groups=int(c.arg("num_groups")), epsilon=float(c.arg("eps", 1e-5)))


@converter("aten::instance_norm")
def _instance_norm(ctx, c):
    x = ctx.tensor(c[0])
    torch = _torch()
    ch = x.shape[1]
    w, b = c.arg("weight"), c.arg("bias")
    w = torch.ones(ch) if w is None else w
    b = torch.zeros(ch) if b is None else b
    if c.arg("use_input_stats", True):
        return ctx.emit("instance_norm", [x, ctx.tensor(w, x.dtype), ctx.tensor(b, x.dtype)],
                        epsilon=float(c.arg("eps", 1e-5)))
    vals = [ctx.tensor(p, x.dtype) for p in (w, b, c.arg("running_mean"), c.arg("running_var"))]
    return ctx.emit("batch_norm", [x] + vals, epsilon=float(c.arg("eps", 1e-5)), axis=1)


# ------------------------------------------------------------------------------ pooling

def _pool(ctx, c, kind, nd):
    x = ctx.tensor(c[0])
    kernel = _pairs(c.arg("kernel_size"), nd)
    stride = c.arg("stride")
    stride = kernel if stride is None or stride == [] else _pairs(stride, nd)
    pads = _pairs(c.arg("padding", 0), nd)
    ceil = bool(c.arg("ceil_mode", False))
    unbatched = len(x.shape) == nd + 1
    if unbatched:
        x = _emit_reshape(ctx, x, (1,) + tuple(x.shape))
    if kind == "max":
        dil = _pairs(c.arg("dilation", 1), nd)
        if nd == 2:
            y = ctx.emit("max_pool2d", [x], kernel=kernel, strides=stride, padding=pads,
                         dilation=dil, ceil_mode=ceil)
        else:
            y = ctx.emit("pool1d", [x], kernel=kernel, strides=stride, padding=pads,
                         dilation=dil, pool_type="max", ceil_mode=ceil)
    else:
        if c.arg("divisor_override") is not None:
            raise UnsupportedFeatureError(f"{c}: avg_pool with divisor_override")
        cip = bool(c.arg("count_include_pad", True))
        if nd == 2:
            y = ctx.emit("avg_pool2d", [x], kernel=kernel, strides=stride, padding=pads,
                         ceil_mode=ceil, count_include_pad=cip)
        else:
            y = ctx.emit("pool1d", [x], kernel=kernel, strides=stride, padding=pads,
                         pool_type="avg", ceil_mode=ceil, count_include_pad=cip)
    if unbatched:
        y = _emit_reshape(ctx, y, y.shape[1:])
    return y


@converter("aten::max_pool2d", "aten::max_pool2d_with_indices")
def _max_pool2d(ctx, c):
    y = _pool(ctx, c, "max", 2)
    if c.n_outputs == 2:
        return [y, _no_indices(ctx, c)]
    return y


def _no_indices(ctx, c):
    from .torchscript_importer import Refused
    return Refused(f"the indices output of {c} (tensorc pools return values only)")


@converter("aten::max_pool1d")
def _max_pool1d(ctx, c):
    return _pool(ctx, c, "max", 1)


@converter("aten::avg_pool2d")
def _avg_pool2d(ctx, c):
    return _pool(ctx, c, "avg", 2)


@converter("aten::avg_pool1d")
def _avg_pool1d(ctx, c):
    return _pool(ctx, c, "avg", 1)


def _adaptive(ctx, c, kind, nd):
    x = ctx.tensor(c[0])
    size = c[1]
    size = list(size) if isinstance(size, (list, tuple)) else [size] * nd
    if len(size) == 1 and nd > 1:
        size = size * nd
    spatial = x.shape[-nd:]
    size = [s if o is None else int(o) for s, o in zip(spatial, size)]
    unbatched = len(x.shape) == nd + 1
    if unbatched:
        x = _emit_reshape(ctx, x, (1,) + tuple(x.shape))
    if all(o == 1 for o in size):
        if nd == 2:
            y = ctx.emit("global_avg_pool2d" if kind == "avg" else "global_max_pool2d", [x])
        else:
            y = ctx.emit("global_pool", [x], pool_type=kind)
    elif all(o == s for o, s in zip(size, spatial)):
        y = x
    elif all(s % o == 0 for o, s in zip(size, spatial)):
        k = [s // o for o, s in zip(size, spatial)]
        if nd == 2:
            y = ctx.emit("avg_pool2d" if kind == "avg" else "max_pool2d", [x], kernel=k,
                         strides=k)
        else:
            y = ctx.emit("pool1d", [x], kernel=k, strides=k, pool_type=kind)
    else:
        raise UnsupportedFeatureError(f"{c}: adaptive {kind} pooling of {tuple(spatial)} to "
                                      f"{tuple(size)}: the input extents must be multiples of "
                                      "the output extents")
    if unbatched:
        y = _emit_reshape(ctx, y, y.shape[1:])
    return y


@converter("aten::adaptive_avg_pool2d", "aten::_adaptive_avg_pool2d")
def _adaptive_avg2d(ctx, c):
    return _adaptive(ctx, c, "avg", 2)


@converter("aten::adaptive_avg_pool1d")
def _adaptive_avg1d(ctx, c):
    return _adaptive(ctx, c, "avg", 1)


@converter("aten::adaptive_max_pool2d")
def _adaptive_max2d(ctx, c):
    y = _adaptive(ctx, c, "max", 2)
    return [y, _no_indices(ctx, c)] if c.n_outputs == 2 else y


@converter("aten::adaptive_max_pool1d")
def _adaptive_max1d(ctx, c):
    y = _adaptive(ctx, c, "max", 1)
    return [y, _no_indices(ctx, c)] if c.n_outputs == 2 else y


# ------------------------------------------------------------------------------ resizing

@converter("aten::upsample_nearest2d", "aten::upsample_bilinear2d", "aten::upsample_nearest1d",
           "aten::upsample_linear1d")
def _upsample(ctx, c):
    x = ctx.tensor(c[0])
    nd = len(x.shape) - 2
    size, scales = c.arg("output_size"), c.arg("scale_factors")
    if scales is None and c.has("scales_h"):
        sh, sw = c.arg("scales_h"), c.arg("scales_w")
        scales = [sh, sw] if sh is not None and sw is not None else None
    if scales is None and c.has("scales") and c.arg("scales") is not None:
        scales = [c.arg("scales")]
    nearest = "nearest" in c.kind
    if nearest:
        attrs = dict(method="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor")
    else:
        ac = bool(c.arg("align_corners", False))
        attrs = dict(method="linear", coordinate_transformation_mode="align_corners" if ac
                     else "pytorch_half_pixel")
    if scales is not None and size is None:
        op = "resize2d" if nd == 2 else "resize"
        return ctx.emit(op, [x], scales=[float(s) for s in scales], **attrs)
    size = static_ints(c, size, "output_size")
    return ctx.emit("resize2d" if nd == 2 else "resize", [x], size=size, **attrs)


@converter("aten::pixel_shuffle")
def _pixel_shuffle(ctx, c):
    x = ctx.tensor(c[0])
    r = int(c[1])
    n, ch, h, w = x.shape
    y = _emit_reshape(ctx, x, [n, ch // (r * r), r, r, h, w])
    y = ctx.emit("transpose", [y], perm=[0, 1, 4, 2, 5, 3])
    return _emit_reshape(ctx, y, [n, ch // (r * r), h * r, w * r])


# ------------------------------------------------------------------------------ shapes

def _infer_reshape(c, x, shape):
    shape = static_ints(c, shape, "shape")
    total = int(np.prod(x.shape, dtype=np.int64))
    if shape.count(-1) == 1:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise ImporterError(f"{c}: cannot view a tensor of shape {x.shape} as {shape}")
        shape[shape.index(-1)] = total // known
    if int(np.prod(shape, dtype=np.int64)) != total:
        raise ImporterError(f"{c}: cannot view a tensor of shape {x.shape} ({total} elements) "
                            f"as {shape}")
    return shape


@converter("aten::view", "aten::reshape", "aten::_reshape_alias", "aten::_unsafe_view")
def _view(ctx, c):
    x = ctx.tensor(c[0])
    if c.kind == "aten::view" and c.overload == "dtype":
        raise UnsupportedFeatureError(f"{c}: view(dtype) reinterprets bits")
    return _emit_reshape(ctx, x, _infer_reshape(c, x, c[1]))


@converter("aten::view_as", "aten::reshape_as")
def _view_as(ctx, c):
    x = ctx.tensor(c[0])
    return _emit_reshape(ctx, x, shape_of(c[1]))


@converter("aten::flatten")
def _flatten(ctx, c):
    x = ctx.tensor(c[0])
    r = len(x.shape)
    if r == 0:
        return _emit_reshape(ctx, x, [1])
    s = norm_axis(c, c.arg("start_dim", 0), r)
    e = norm_axis(c, c.arg("end_dim", -1), r)
    shape = list(x.shape[:s]) + [int(np.prod(x.shape[s:e + 1], dtype=np.int64))] + \
        list(x.shape[e + 1:])
    return _emit_reshape(ctx, x, shape)


@converter("aten::unflatten")
def _unflatten(ctx, c):
    x = ctx.tensor(c[0])
    d = norm_axis(c, c[1], len(x.shape))
    sizes = static_ints(c, c[2], "sizes")
    if -1 in sizes:
        known = int(np.prod([s for s in sizes if s != -1]))
        sizes[sizes.index(-1)] = x.shape[d] // known
    return _emit_reshape(ctx, x, list(x.shape[:d]) + sizes + list(x.shape[d + 1:]))


@converter("aten::permute")
def _permute(ctx, c):
    x = ctx.tensor(c[0])
    perm = [norm_axis(c, d, len(x.shape)) for d in static_ints(c, c[1], "dims")]
    if perm == list(range(len(x.shape))):
        return x
    return ctx.emit("transpose", [x], perm=perm)


@converter("aten::transpose", "aten::swapaxes", "aten::swapdims")
def _transpose(ctx, c):
    x = ctx.tensor(c[0])
    r = len(x.shape)
    if r < 2:
        return x
    a, b = norm_axis(c, c[1], r), norm_axis(c, c[2], r)
    if a == b:
        return x
    perm = list(range(r))
    perm[a], perm[b] = perm[b], perm[a]
    return ctx.emit("transpose", [x], perm=perm)


@converter("aten::unsqueeze")
def _unsqueeze(ctx, c):
    x = ctx.tensor(c[0])
    d = norm_axis(c, c[1], len(x.shape) + 1)
    return _emit_reshape(ctx, x, list(x.shape[:d]) + [1] + list(x.shape[d:]))


@converter("aten::squeeze")
def _squeeze(ctx, c):
    x = ctx.tensor(c[0])
    r = len(x.shape)
    dims = c[1] if len(c.args) > 1 else None
    if dims is None:
        axes = [d for d in range(r) if x.shape[d] == 1]
    else:
        dims = dims if isinstance(dims, (list, tuple)) else [dims]
        axes = [norm_axis(c, d, r) for d in dims]
        axes = [d for d in axes if x.shape[d] == 1]   # torch: squeezing a non-1 dim is a no-op
    return _emit_reshape(ctx, x, [n for d, n in enumerate(x.shape) if d not in axes])


@converter("aten::expand", "aten::broadcast_to")
def _expand(ctx, c):
    x = ctx.tensor(c[0])
    size = static_ints(c, c[1], "size")
    lead = len(size) - len(x.shape)
    if lead < 0:
        raise ImporterError(f"{c}: cannot expand a tensor of shape {x.shape} to {size}")
    shape = [x.shape[d - lead] if s == -1 else s for d, s in enumerate(size)]
    if tuple(shape) == tuple(x.shape):
        return x
    return ctx.emit("broadcast_to", [x], shape=shape)


@converter("aten::expand_as")
def _expand_as(ctx, c):
    x = ctx.tensor(c[0])
    shape = list(shape_of(c[1]))
    if tuple(shape) == tuple(x.shape):
        return x
    return ctx.emit("broadcast_to", [x], shape=shape)


@converter("aten::repeat", "aten::tile")
def _repeat(ctx, c):
    x = ctx.tensor(c[0])
    reps = static_ints(c, c[1], "repeats")
    if c.kind == "aten::repeat" and len(reps) < len(x.shape):
        raise ImporterError(f"{c}: repeat needs at least {len(x.shape)} repeat counts")
    if all(r == 1 for r in reps) and len(reps) <= len(x.shape):
        return x
    return ctx.emit("tile", [x], reps=reps)


@converter("aten::repeat_interleave")
def _repeat_interleave(ctx, c):
    x = ctx.tensor(c[0])
    reps = c[1]
    dim = c.arg("dim")
    if not isinstance(reps, int):
        raise UnsupportedFeatureError(f"{c}: repeat_interleave with per-element repeats")
    if dim is None:
        x = _emit_reshape(ctx, x, [int(np.prod(x.shape))])
        dim = 0
    d = norm_axis(c, dim, len(x.shape))
    y = _emit_reshape(ctx, x, list(x.shape[:d + 1]) + [1] + list(x.shape[d + 1:]))
    shape = list(x.shape[:d + 1]) + [reps] + list(x.shape[d + 1:])
    y = ctx.emit("broadcast_to", [y], shape=shape)
    return _emit_reshape(ctx, y, list(x.shape[:d]) + [x.shape[d] * reps] + list(x.shape[d + 1:]))


@converter("aten::cat", "aten::concat", "aten::concatenate")
def _cat(ctx, c):
    ts = [t for t in c[0] if not (_static_tensor(t) and t.dim() == 1 and t.numel() == 0)]
    rt = result_dtype(*ts)
    vals = [ctx.tensor(t, rt) for t in ts]
    if len(vals) == 1:
        return vals[0]
    axis = norm_axis(c, c.arg("dim", 0), len(vals[0].shape))
    return ctx.emit("concat", vals, axis=axis)


@converter("aten::stack")
def _stack(ctx, c):
    ts = list(c[0])
    rt = result_dtype(*ts)
    vals = [ctx.tensor(t, rt) for t in ts]
    r = len(vals[0].shape)
    axis = norm_axis(c, c.arg("dim", 0), r + 1)
    parts = [_emit_reshape(ctx, v, list(v.shape[:axis]) + [1] + list(v.shape[axis:]))
             for v in vals]
    if len(parts) == 1:
        return parts[0]
    return ctx.emit("concat", parts, axis=axis)


def _slice_emit(ctx, x, axis, start, end, step):
    n = x.shape[axis]
    start = 0 if start is None else int(start)
    end = n if end is None or end >= _INT64_MAX // 2 else int(end)
    step = 1 if step is None else int(step)
    if step <= 0:
        raise UnsupportedFeatureError("slice step must be positive (torch requires it)")
    b = start + n if start < 0 else start
    e = end + n if end < 0 else end
    b, e = min(max(b, 0), n), min(max(e, 0), n)
    if b == 0 and e == n and step == 1:
        return x
    if e <= b:
        raise UnsupportedFeatureError(f"the slice [{start}:{end}:{step}] of axis {axis} "
                                      f"(extent {n}) is empty; tensorc has no empty tensors")
    return ctx.emit("slice", [x], starts=[b], ends=[e], axes=[axis], steps=[step])


@converter("aten::slice")
def _slice(ctx, c):
    x = ctx.tensor(c[0])
    if len(x.shape) == 0:
        raise ImporterError(f"{c}: slice of a 0-d tensor")
    axis = norm_axis(c, c.arg("dim", 0), len(x.shape))
    try:
        return _slice_emit(ctx, x, axis, c.arg("start"), c.arg("end"), c.arg("step", 1))
    except UnsupportedFeatureError as e:
        raise UnsupportedFeatureError(f"{c}: {e}") from None


@converter("aten::narrow")
def _narrow(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c[1], len(x.shape))
    start = int(c[2]) if not _static_tensor(c[2]) else int(c[2].item())
    start = start + x.shape[axis] if start < 0 else start
    return _slice_emit(ctx, x, axis, start, start + int(c[3]), 1)


def _select_emit(ctx, x, axis, index):
    n = x.shape[axis]
    i = index + n if index < 0 else index
    if not 0 <= i < n:
        raise ImporterError(f"index {index} is out of range for axis {axis} of extent {n}")
    y = ctx.emit("slice", [x], starts=[i], ends=[i + 1], axes=[axis]) if n > 1 else x
    return _emit_reshape(ctx, y, [d for k, d in enumerate(x.shape) if k != axis])


@converter("aten::select")
def _select(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c[1], len(x.shape))
    idx = c[2]
    if not isinstance(idx, int):
        raise NonConstantInputError(f"{c}: the index must be static, got {idx!r}")
    return _select_emit(ctx, x, axis, idx)


@converter("aten::unbind")
def _unbind(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c.arg("dim", 0), len(x.shape))
    return [_select_emit(ctx, x, axis, i) for i in range(x.shape[axis])]


@converter("aten::flip")
def _flip(ctx, c):
    x = ctx.tensor(c[0])
    axes = [norm_axis(c, d, len(x.shape)) for d in static_ints(c, c[1], "dims")]
    axes = [a for a in axes if x.shape[a] > 1]
    if not axes:
        return x
    return ctx.emit("slice", [x], starts=[-1] * len(axes), ends=[-(2 ** 62)] * len(axes),
                    axes=axes, steps=[-1] * len(axes))


@converter("aten::roll")
def _roll(ctx, c):
    x = ctx.tensor(c[0])
    shifts = static_ints(c, c[1], "shifts")
    dims = static_ints(c, c[2], "dims") if c[2] not in (None, []) else None
    if dims is None:
        flat = _emit_reshape(ctx, x, [int(np.prod(x.shape))])
        return _emit_reshape(ctx, _roll_axis(ctx, flat, 0, shifts[0]), x.shape)
    for s, d in zip(shifts, dims):
        x = _roll_axis(ctx, x, norm_axis(c, d, len(x.shape)), s)
    return x


def _roll_axis(ctx, x, axis, shift):
    n = x.shape[axis]
    s = shift % n
    if s == 0:
        return x
    a = ctx.emit("slice", [x], starts=[n - s], ends=[n], axes=[axis])
    b = ctx.emit("slice", [x], starts=[0], ends=[n - s], axes=[axis])
    return ctx.emit("concat", [a, b], axis=axis)


def _split_sizes(ctx, c, x, sizes, axis):
    if len(sizes) == 1:
        return [x]
    return list(ctx.emit("split", [x], sizes=sizes, axis=axis))


@converter("aten::split", "aten::unsafe_split", "aten::split_with_sizes",
           "aten::unsafe_split_with_sizes")
def _split(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c.arg("dim", 0), len(x.shape))
    n = x.shape[axis]
    arg = c[1]
    if isinstance(arg, int):
        sizes = [min(arg, n - k) for k in range(0, n, arg)]
    else:
        sizes = static_ints(c, arg, "split sizes")
    return _split_sizes(ctx, c, x, sizes, axis)


@converter("aten::chunk", "aten::unsafe_chunk")
def _chunk(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c.arg("dim", 0), len(x.shape))
    n, chunks = x.shape[axis], int(c[1])
    size = -(-n // chunks)
    sizes = [min(size, n - k) for k in range(0, n, size)]
    return _split_sizes(ctx, c, x, sizes, axis)


@converter("prim::ConstantChunk")
def _constant_chunk(ctx, c):
    x = ctx.tensor(c[0])
    chunks, dim = c.node.i("chunks"), c.node.i("dim")
    axis = norm_axis(c, dim, len(x.shape))
    n = x.shape[axis]
    size = -(-n // chunks)
    return _split_sizes(ctx, c, x, [min(size, n - k) for k in range(0, n, size)], axis)


@converter("aten::tensor_split")
def _tensor_split(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c.arg("dim", 0), len(x.shape))
    n = x.shape[axis]
    arg = c[1]
    if isinstance(arg, int):
        q, r = divmod(n, arg)
        sizes = [q + 1] * r + [q] * (arg - r)
    else:
        idx = [0] + static_ints(c, arg, "indices") + [n]
        sizes = [b - a for a, b in zip(idx, idx[1:])]
    if any(s <= 0 for s in sizes):
        raise UnsupportedFeatureError(f"{c}: a part would be empty")
    return _split_sizes(ctx, c, x, sizes, axis)


@converter("aten::index")
def _index(ctx, c):
    x = ctx.tensor(c[0])
    idx = list(c[1])
    torch = _torch()
    used = [(k, t) for k, t in enumerate(idx) if t is not None]
    if len(used) != 1:
        raise UnsupportedFeatureError(f"{c}: advanced indexing with {len(used)} index tensors "
                                      "(tensorc supports one)")
    axis, t = used[0]
    if isinstance(t, torch.Tensor):
        if t.dtype == torch.bool:
            if t.dim() != 1:
                raise UnsupportedFeatureError(f"{c}: a boolean mask index of rank {t.dim()}")
            t = torch.nonzero(t).reshape(-1)
            if t.numel() == 0:
                raise UnsupportedFeatureError(f"{c}: the boolean mask selects nothing")
        t = ctx.const_tensor(t.to(torch.int64), "int64")
    else:
        if t.dtype == "bool":
            raise NonConstantInputError(f"{c}: a boolean mask computed at run time selects a "
                                        "data-dependent number of elements")
    return ctx.emit("gather", [x, t], axis=axis)


@converter("aten::index_select")
def _index_select(ctx, c):
    x = ctx.tensor(c[0])
    axis = norm_axis(c, c[1], len(x.shape))
    idx = ctx.tensor(c[2])
    return ctx.emit("gather", [x, idx], axis=axis)


@converter("aten::gather", "aten::take_along_dim")
def _gather(ctx, c):
    x = ctx.tensor(c[0])
    if c.kind == "aten::take_along_dim":
        idx, dim = ctx.tensor(c[1]), c.arg("dim")
    else:
        dim, idx = c[1], ctx.tensor(c[2])
    axis = norm_axis(c, dim, len(x.shape))
    return ctx.emit("gather_elements", [x, idx], axis=axis)


@converter("aten::embedding")
def _embedding(ctx, c):
    w = ctx.tensor(c[0])
    idx = ctx.tensor(c[1])
    if not dt.is_integral(idx.dtype):
        raise UnsupportedDtypeError(f"{c}: embedding indices have dtype {idx.dtype}")
    return ctx.emit("gather", [w, idx], axis=0)


@converter("aten::constant_pad_nd", "aten::pad", "aten::reflection_pad1d",
           "aten::reflection_pad2d", "aten::replication_pad1d", "aten::replication_pad2d",
           "aten::zero_pad2d")
def _pad(ctx, c):
    x = ctx.tensor(c[0])
    pad = static_ints(c, c[1], "pad")
    mode = {"aten::reflection_pad1d": "reflect", "aten::reflection_pad2d": "reflect",
            "aten::replication_pad1d": "replicate", "aten::replication_pad2d": "replicate"}.get(
        c.kind, c.arg("mode", "constant"))
    value = c.arg("value", 0.0)
    value = 0.0 if value is None else value
    if len(pad) % 2 or len(pad) // 2 > len(x.shape):
        raise ImporterError(f"{c}: pad {pad} does not fit a tensor of rank {len(x.shape)}")
    widths = [(0, 0)] * len(x.shape)
    for k in range(len(pad) // 2):
        widths[len(x.shape) - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    modes = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}
    if mode not in modes:
        raise UnsupportedFeatureError(f"{c}: pad mode {mode!r}")
    if all(p == (0, 0) for p in widths):
        return x
    if modes[mode] == "constant":
        return ctx.emit("pad", [x], pad_width=widths, mode="constant",
                        value=float(value) if dt.is_float(x.dtype) else int(value))
    return ctx.emit("pad", [x], pad_width=widths, mode=modes[mode])


@converter("aten::tril", "aten::triu")
def _tril(ctx, c):
    x = ctx.tensor(c[0])
    k = int(c.arg("diagonal", 0))
    n, m = x.shape[-2:]
    rows = np.arange(n)[:, None]
    cols = np.arange(m)[None, :]
    mask = (cols - rows <= k) if c.kind == "aten::tril" else (cols - rows >= k)
    zero = ctx.scalar(0, x.dtype) if x.dtype != "bool" else ctx.const(np.array(False))
    return ctx.emit("where", [ctx.const(mask), x, zero])


def _static_like(c, fill):
    torch = _torch()
    x = c[0]
    dtype = c.arg("dtype")
    d = torch_dtype(dtype) if dtype is not None else torch_dtype(dtype_of(x))
    return torch.full(shape_of(x), fill, dtype=d)


@converter("aten::zeros_like")
def _zeros_like(ctx, c):
    return _static_like(c, 0)


@converter("aten::ones_like")
def _ones_like(ctx, c):
    return _static_like(c, 1)


@converter("aten::full_like")
def _full_like(ctx, c):
    return _static_like(c, c[1])


@converter("aten::new_zeros", "aten::new_ones", "aten::new_full", "aten::new_empty")
def _new_filled(ctx, c):
    torch = _torch()
    size = static_ints(c, c[1], "size")
    dtype = c.arg("dtype")
    d = torch_dtype(dtype) if dtype is not None else torch_dtype(dtype_of(c[0]))
    fill = {"aten::new_zeros": 0, "aten::new_ones": 1, "aten::new_empty": 0}.get(c.kind)
    if fill is None:
        fill = c[2]
    return torch.full(size, fill, dtype=d)


@converter("aten::fill", "aten::zero")
def _fill(ctx, c):
    """x.fill_(v) / x.zero_(): a constant of x's shape (the in-place form rebinds x)."""
    x = c[0]
    torch = _torch()
    v = 0 if c.kind == "aten::zero" else c[1]
    if isinstance(v, Value):
        return ctx.emit("broadcast_to", [ctx.cast(v, x.dtype)], shape=list(x.shape))
    if isinstance(v, torch.Tensor):
        v = v.item()
    from tensorc.ir import dtype as tdt
    return ctx.const(np.full(x.shape, v, dtype=np.dtype(tdt.to_numpy(x.dtype))))


# ------------------------------------------------------------------------------ reductions

def _reduce_dims(c, x, dims):
    torch = _torch()
    if isinstance(dims, torch.Tensor):
        dims = dims.tolist()
    return norm_axes(c, dims, len(x.shape))


def _reduce(ctx, c, op, x, dims, keepdim, dtype=None):
    axes = _reduce_dims(c, x, dims)
    if len(x.shape) == 0:
        return x
    if op == "mean" and not dt.is_float(x.dtype) and dtype is None:
        raise UnsupportedDtypeError(f"{c}: mean of a {x.dtype} tensor (torch requires a "
                                    "floating-point or complex input)")
    if dtype is not None:
        x = ctx.cast(x, tc_dtype(dtype))
    elif op in ("sum", "prod") and (dt.is_integral(x.dtype) or x.dtype == "bool"):
        x = ctx.cast(x, "int64")    # torch sums integers (and bools) in int64
    return ctx.emit(op, [x], axis=axes, keepdims=bool(keepdim))


@converter("aten::sum", "aten::mean", "aten::nansum")
def _sum_mean(ctx, c):
    x = ctx.tensor(c[0])
    op = "mean" if c.kind == "aten::mean" else "sum"
    if c.kind == "aten::nansum":
        raise UnsupportedFeatureError(f"{c}: nansum")
    return _reduce(ctx, c, op, x, c.arg("dim"), c.arg("keepdim", False), c.arg("dtype"))


@converter("aten::prod")
def _prod(ctx, c):
    x = ctx.tensor(c[0])
    return _reduce(ctx, c, "prod", x, c.arg("dim"), c.arg("keepdim", False), c.arg("dtype"))


@converter("aten::amax", "aten::amin")
def _amax(ctx, c):
    x = ctx.tensor(c[0])
    return _reduce(ctx, c, "max" if c.kind == "aten::amax" else "min", x, c.arg("dim"),
                   c.arg("keepdim", False))


@converter("aten::max", "aten::min")
def _max_min(ctx, c):
    op = "max" if c.kind == "aten::max" else "min"
    if c.overload == "other" or (len(c.args) == 2 and _is_tensor(c[1])):
        a, b, _ = _binary_operands(ctx, c[0], c[1])
        return ctx.emit("maximum" if op == "max" else "minimum", [a, b])
    x = ctx.tensor(c[0])
    if len(c.args) == 1:
        return _reduce(ctx, c, op, x, None, False)
    dim = norm_axis(c, c[1], len(x.shape))
    keep = bool(c.arg("keepdim", False))
    values = ctx.emit(op, [x], axis=[dim], keepdims=keep)
    indices = ctx.emit("argmax" if op == "max" else "argmin", [x], axis=dim, keepdims=keep)
    return [values, indices]


@converter("aten::argmax", "aten::argmin")
def _argmax(ctx, c):
    x = ctx.tensor(c[0])
    dim = c.arg("dim")
    keep = bool(c.arg("keepdim", False))
    op = "argmax" if c.kind == "aten::argmax" else "argmin"
    if dim is None:
        y = ctx.emit(op, [x], axis=None, keepdims=False)
        if keep:
            y = _emit_reshape(ctx, y, [1] * len(x.shape))
        return y
    return ctx.emit(op, [x], axis=norm_axis(c, dim, len(x.shape)), keepdims=keep)


@converter("aten::logsumexp")
def _logsumexp(ctx, c):
    x = as_float(ctx, c[0])
    return ctx.emit("log_sum_exp", [x], axis=_reduce_dims(c, x, c.arg("dim")),
                    keepdims=bool(c.arg("keepdim", False)))


@converter("aten::cumsum")
def _cumsum(ctx, c):
    x = ctx.tensor(c[0])
    dtype = c.arg("dtype")
    d = tc_dtype(dtype) if dtype is not None else \
        ("int64" if dt.is_integral(x.dtype) or x.dtype == "bool" else x.dtype)
    return ctx.emit("cumsum", [ctx.cast(x, d)], axis=norm_axis(c, c[1], len(x.shape)))


def _norm(ctx, c, x, p, dims, keepdim, dtype=None):
    x = ctx.tensor(x)
    if dtype is not None:
        x = ctx.cast(x, tc_dtype(dtype))
    elif not dt.is_float(x.dtype):
        raise UnsupportedDtypeError(f"{c}: norm of a {x.dtype} tensor")
    axes = _reduce_dims(c, x, dims)
    keep = bool(keepdim)
    p = 2.0 if p is None else p
    if isinstance(p, str):
        if p != "fro":
            raise UnsupportedFeatureError(f"{c}: norm p={p!r}")
        p = 2.0
    p = float(p)
    if p == 2.0:
        return ctx.emit("l2", [x], axis=axes, keepdims=keep)
    if p == 1.0:
        return ctx.emit("l1", [x], axis=axes, keepdims=keep)
    a = ctx.emit("abs", [x])
    if p == math.inf:
        return ctx.emit("max", [a], axis=axes, keepdims=keep)
    if p == -math.inf:
        return ctx.emit("min", [a], axis=axes, keepdims=keep)
    if p == 0.0:
        nz = ctx.cast(ctx.emit("not_equal", [x, ctx.scalar(0, x.dtype)]), x.dtype)
        return ctx.emit("sum", [nz], axis=axes, keepdims=keep)
    s = ctx.emit("sum", [ctx.emit("power", [a, ctx.scalar(p, x.dtype)])], axis=axes,
                 keepdims=keep)
    return ctx.emit("power", [s, ctx.scalar(1.0 / p, x.dtype)])


@converter("aten::norm")
def _norm_conv(ctx, c):
    return _norm(ctx, c, c[0], c.arg("p"), c.arg("dim"), c.arg("keepdim", False),
                 c.arg("dtype"))


@converter("aten::linalg_vector_norm")
def _vector_norm(ctx, c):
    return _norm(ctx, c, c[0], c.arg("ord", 2), c.arg("dim"), c.arg("keepdim", False),
                 c.arg("dtype"))


@converter("aten::frobenius_norm")
def _frobenius(ctx, c):
    return _norm(ctx, c, c[0], 2.0, c.arg("dim"), c.arg("keepdim", False))


def _var(ctx, c, x, dims, correction, keepdim):
    x = as_float(ctx, x)
    axes = _reduce_dims(c, x, dims)
    reduced = axes if axes is not None else range(len(x.shape))
    count = int(np.prod([x.shape[a] for a in reduced]))
    m = ctx.emit("mean", [x], axis=axes, keepdims=True)
    d = ctx.emit("subtract", [x, m])
    s = ctx.emit("sum", [ctx.emit("square", [d])], axis=axes, keepdims=bool(keepdim))
    return ctx.emit("divide", [s, ctx.scalar(float(max(count - correction, 0)), x.dtype)])


def _correction(c):
    if c.has("correction"):
        corr = c.arg("correction")
        return 1.0 if corr is None else float(corr)
    return 1.0 if c.arg("unbiased", True) else 0.0


@converter("aten::var", "aten::std")
def _var_std(ctx, c):
    v = _var(ctx, c, c[0], c.arg("dim"), _correction(c), c.arg("keepdim", False))
    return ctx.emit("sqrt", [v]) if c.kind == "aten::std" else v


@converter("aten::var_mean", "aten::std_mean")
def _var_mean(ctx, c):
    x = as_float(ctx, c[0])
    v = _var(ctx, c, x, c.arg("dim"), _correction(c), c.arg("keepdim", False))
    if c.kind == "aten::std_mean":
        v = ctx.emit("sqrt", [v])
    m = ctx.emit("mean", [x], axis=_reduce_dims(c, x, c.arg("dim")),
                 keepdims=bool(c.arg("keepdim", False)))
    return [v, m]


@converter("aten::all", "aten::any")
def _all_any(ctx, c):
    x = ctx.tensor(c[0])
    b = x if x.dtype == "bool" else ctx.emit("not_equal", [x, ctx.scalar(0, x.dtype)])
    i = ctx.cast(b, "int32")
    dims = c.arg("dim")
    op = "min" if c.kind == "aten::all" else "max"
    r = ctx.emit(op, [i], axis=_reduce_dims(c, x, dims), keepdims=bool(c.arg("keepdim", False)))
    return ctx.cast(r, "bool")


# ------------------------------------------------------------------------------ attention

@converter("aten::scaled_dot_product_attention")
def _sdpa(ctx, c):
    q, k, v = ctx.tensor(c[0]), ctx.tensor(c[1]), ctx.tensor(c[2])
    mask = c.arg("attn_mask")
    if c.arg("dropout_p", 0.0):
        raise UnsupportedFeatureError(f"{c}: attention dropout (dropout_p > 0)")
    if c.arg("enable_gqa", False) and q.shape[-3] != k.shape[-3]:
        raise UnsupportedFeatureError(f"{c}: grouped-query attention (enable_gqa)")
    scale = c.arg("scale")
    E = q.shape[-1]
    scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
    r = len(k.shape)
    perm = list(range(r - 2)) + [r - 1, r - 2]
    kt = ctx.emit("transpose", [k], perm=perm)
    att = ctx.emit("matmul", [q, kt])
    att = ctx.emit("multiply", [att, ctx.scalar(scale, att.dtype)])
    L, S = q.shape[-2], k.shape[-2]
    neg_inf = ctx.scalar(-np.inf, att.dtype)
    if c.arg("is_causal", False):
        causal = np.tril(np.ones((L, S), bool))
        att = ctx.emit("where", [ctx.const(causal), att, neg_inf])
    if mask is not None:
        m = ctx.tensor(mask)
        if m.dtype == "bool":
            att = ctx.emit("where", [m, att, neg_inf])
        else:
            att = ctx.emit("add", [att, ctx.cast(m, att.dtype)])
    p = ctx.emit("softmax", [att], axis=-1)
    return ctx.emit("matmul", [p, v])


__all__ = ["CONVERTERS", "STATIC_OPS", "SHAPE_QUERIES", "converter", "static_op",
           "shape_query", "result_dtype"]
