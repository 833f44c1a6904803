"""Static values: Python evaluation of the builtins TorchScript uses on sizes, ints, lists
and tuples (``STATIC_OPS``), and the queries answered from a graph tensor's static shape and
dtype (``SHAPE_QUERIES``).

These are what make shape arithmetic fold to constants: ``x.size(1) // heads`` never becomes
a graph node.
"""
import math

import numpy as np

from tensorc.ir import dtype as dt

from .errors import ImporterError
from .torchscript_dtypes import _SCALAR_TYPE_CODES, _torch, torch_dtype
from .torchscript_ops_common import dtype_of, norm_axis, rank, shape_of
from .torchscript_registry import SHAPE_QUERIES, STATIC_OPS, shape_query, static_op

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
    torch = _torch()
    return {k: getattr(torch, v) for k, v in _SCALAR_TYPE_CODES.items()}
