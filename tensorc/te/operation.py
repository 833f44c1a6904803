"""The user-facing TE constructors: placeholder, compute, reduce_axis, reducers, thread_axis."""
import inspect
import math

from ..ir import dtype as dt
from ..ir.expr import CommReducer, IntImm, IterVar, ProducerLoad, Range, Reduce, Select, Var
from ..ir.functor import IRVisitor, post_order_visit
from ..ir.op import const, convert
from .tensor import ComputeOp, PlaceholderOp

def _check_shape(shape, what):
    if isinstance(shape, int):
        shape = (shape,)
    out = []
    for n, s in enumerate(shape):
        if isinstance(s, IntImm):
            s = s.value
        if not isinstance(s, int) or isinstance(s, bool):
            raise TypeError(f"{what}: dimension {n} is {s!r}; shapes must be static integers")
        if s <= 0:
            raise ValueError(f"{what}: dimension {n} is {s}; extents must be positive")
        out.append(int(s))
    return tuple(out)


def placeholder(shape, dtype="float32", name="placeholder"):
    """An input tensor of static shape."""
    shape = _check_shape(shape, f"placeholder {name!r}")
    return PlaceholderOp(name, shape, dt.check(dtype)).output(0)


def var(name="v", dtype="int32"):
    return Var(name, dt.check(dtype))


def _as_range(dom, what):
    if isinstance(dom, Range):
        return dom
    if isinstance(dom, int):
        dom = (0, dom)
    lo, hi = dom
    lo, hi = int(lo), int(hi)
    if hi <= lo:
        raise ValueError(f"{what}: empty range [{lo}, {hi})")
    return Range(const(lo), const(hi - lo))


def reduce_axis(dom, name="rv"):
    """A reduction axis over dom = (begin, end) or an extent."""
    return IterVar(_as_range(dom, f"reduce_axis {name!r}"), Var(name), "reduce")


def thread_axis(tag, name=None, dom=None):
    """A GPU thread index ("blockIdx.x", "threadIdx.y", ...) to bind loops to."""
    valid = [f"{a}.{c}" for a in ("blockIdx", "threadIdx") for c in "xyz"] + ["vthread"]
    if tag not in valid:
        raise ValueError(f"thread_axis: unknown tag {tag!r}; expected one of {valid}")
    return IterVar(None if dom is None else _as_range(dom, tag), Var(name or tag), "thread", tag)


class _FindNestedReduce(IRVisitor):
    def __init__(self):
        self.found = False

    def visit_Reduce(self, r):
        self.found = True


def compute(shape, fcompute, name="compute", tag="", attrs=None):
    """A tensor whose element at (i, j, ...) is ``fcompute(i, j, ...)``.

    A reduction (te.sum, ...) may only be the whole body, as in TVM, so every output element has
    one well-defined accumulator.
    """
    shape = _check_shape(shape, f"compute {name!r}")
    params = list(inspect.signature(fcompute).parameters.values())
    fixed = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params) and len(fixed) <= len(shape):
        names = fixed + [f"i{n}" for n in range(len(fixed), len(shape))]
    else:
        names = fixed
        if len(names) != len(shape):
            raise ValueError(f"compute {name!r}: shape has {len(shape)} dimensions but the "
                             f"function takes {len(names)} index arguments")
    axis = [IterVar(Range(const(0), const(n)), Var(v), "data_par") for v, n in zip(names, shape)]
    body = fcompute(*axis)
    if isinstance(body, (list, tuple)):
        raise NotImplementedError(f"compute {name!r}: tuple-valued (multi-output) computes are "
                                  "not supported yet")
    body = convert(body)
    top = body if isinstance(body, Reduce) else None
    check = _FindNestedReduce()
    check.visit(top.source if top is not None else body)
    if top is not None:
        check.visit(top.condition)
    if check.found:
        raise ValueError(f"compute {name!r}: a reduction must be the whole body of a compute "
                         "(write the reduction as its own te.compute and combine after)")
    _check_reads(body, name, axis)
    return ComputeOp(name, tag, attrs, axis, body).output(0)


def _reads_data(e):
    """True for indices whose range interval bounds cannot pin down: gathers and selects."""
    found = []
    post_order_visit(e, lambda n: found.append(n) if isinstance(n, (ProducerLoad, Select))
                     else None)
    return bool(found)


def _check_reads(body, name, axis):
    """Reject reads that certainly leave their tensor, where no condition guards them.

    Reads inside a select branch or a reduction with ``where=`` may rely on their condition
    (padding), so only unconditional reads are checked; their index ranges over the axis domains
    are exact for the affine and div/mod indices tensor programs use.
    """
    from ..arith import const_int_bound
    ranges = {iv.var: iv.dom for iv in axis}

    class V(IRVisitor):
        def visit_Select(self, sel):
            self.visit(sel.cond)

        def visit_Reduce(self, red):
            for iv in red.axis:
                ranges[iv.var] = iv.dom
            if isinstance(red.condition, IntImm) and red.condition.value:
                self.visit(red.source)

        def visit_ProducerLoad(self, ld):
            if not hasattr(ld.producer, "op"):
                raise TypeError(f"compute {name!r}: reads something that is not a tensor")
            self.generic(ld)
            for d, (i, n) in enumerate(zip(ld.indices, ld.producer.shape)):
                if _reads_data(i):
                    continue  # exactness unknown: never refuse a program that may be right
                lo, hi = const_int_bound(i, ranges)
                if lo < 0 or hi >= n:
                    raise IndexError(f"compute {name!r}: reads {ld.producer.name!r} at index "
                                     f"{i} in dimension {d}, which ranges over [{lo}, {hi}] "
                                     f"but the dimension has extent {n}; guard the read with "
                                     "te.if_then_else if that is intended")
    V().visit(body)


def _identity_sum(t): return const(0, t)
def _identity_prod(t): return const(1, t)


def _identity_max(t):
    if dt.is_float(t):
        return const(-math.inf, t)
    if dt.is_bool(t):
        return const(False, t)
    info = _iinfo(t)
    return const(info[0], t)


def _identity_min(t):
    if dt.is_float(t):
        return const(math.inf, t)
    if dt.is_bool(t):
        return const(True, t)
    return const(_iinfo(t)[1], t)


def _iinfo(t):
    import numpy as np
    i = np.iinfo(dt.to_numpy(t))
    return int(i.min), int(i.max)


class _Identity:
    """A reducer's identity as an object rather than a closure, so that TE programs using the
    built-in reducers pickle (the autotuner ships them to worker processes)."""

    def __init__(self, fidentity):
        self.fidentity = fidentity

    def __call__(self, t):
        v = self.fidentity(t)
        return convert(v).astype(t) if not isinstance(v, (int, float)) else const(v, t)


def comm_reducer(fcombine, fidentity, name="reduce"):
    """A reducer from combine(x, y) and identity(dtype), usable like te.sum."""
    def reducer(expr, axis, where=None, init=None):
        if not isinstance(axis, (list, tuple, IterVar)):
            return convert(fcombine(convert(expr), axis))  # te.max(a, b): elementwise
        expr = convert(expr)
        axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
        for a in axes:
            if not isinstance(a, IterVar) or a.iter_type != "reduce":
                raise TypeError(f"{name}: axis {a} is not a te.reduce_axis")
        if len(set(axes)) != len(axes):
            raise ValueError(f"{name}: the same reduce axis is given twice")
        lhs, rhs = Var("x", expr.dtype), Var("y", expr.dtype)
        result = convert(fcombine(lhs, rhs))
        if result.dtype != expr.dtype:
            result = result.astype(expr.dtype)
        comb = CommReducer(name, lhs, rhs, result, _Identity(fidentity))
        cond = const(True) if where is None else convert(where)
        if init is not None:
            raise NotImplementedError(f"{name}: init= is not supported")
        return Reduce(expr.dtype, comb, expr, axes, cond)
    reducer.__name__ = name
    return reducer


sum = comm_reducer(lambda x, y: x + y, _identity_sum, name="sum")  # noqa: A001
prod = comm_reducer(lambda x, y: x * y, _identity_prod, name="prod")


def _max(x, y):
    from ..ir.op import maximum
    return maximum(x, y)


def _min(x, y):
    from ..ir.op import minimum
    return minimum(x, y)


max = comm_reducer(_max, _identity_max, name="max")  # noqa: A001
min = comm_reducer(_min, _identity_min, name="min")  # noqa: A001


def is_load_of(e, tensor):
    return isinstance(e, ProducerLoad) and e.producer == tensor
