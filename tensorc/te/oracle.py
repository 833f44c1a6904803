"""The numpy reference semantics of TE: the oracle every backend is tested against.

It reads only the op graph (never schedules or lowered code), so a bug in lowering or codegen
cannot hide in it. Each op is computed once over its whole index domain: every index variable
becomes a broadcastable ``np.arange`` grid and each expression node one numpy operation, following
docs/semantics.md (node dtype arithmetic, wrapping ints, lazy Select, saturating casts).

Lazy Select is done with masks rather than by gathering the taken lanes: a branch is evaluated
on the whole grid with a mask of the lanes that take it, and the two operations that can fail
(tensor reads and integer division) only complain about masked-in lanes and are made harmless on
the others. Errors in untaken lanes therefore vanish, errors in taken lanes are still reported.
"""
import math

import numpy as np

from ..ir import dtype as dt
from ..ir import expr as E
from .tensor import ComputeOp, PlaceholderOp, Tensor

#: Largest grid (in elements) evaluated at once. Every temporary is at most this big, so with
#: 8-byte elements a temporary stays under 32 MB whatever the size of the reduction.
CHUNK_ELEMS = 1 << 22


def evaluate(tensors, feed):
    """Values of ``tensors`` (one Tensor or a list) given ``feed``: placeholder (or its name) ->
    numpy array of exactly the placeholder's shape and dtype. Returns fresh arrays."""
    single = isinstance(tensors, Tensor)
    outs = [tensors] if single else list(tensors)
    for t in outs:
        if not isinstance(t, Tensor):
            raise TypeError(f"evaluate: expected te.Tensor, got {type(t).__name__} {t!r}")
    for k in feed:
        if not isinstance(k, (Tensor, str)):
            raise TypeError(f"evaluate: feed keys must be placeholder tensors or names, "
                            f"got {type(k).__name__} {k!r}")
    order = _topo_order([t.op for t in outs])
    values = {}
    with np.errstate(all="ignore"):
        for op in order:
            if isinstance(op, PlaceholderOp):
                values[op] = _fed_value(op, feed, order)
            elif isinstance(op, ComputeOp):
                values[op] = _compute(op, values)
            else:
                raise TypeError(f"evaluate: cannot evaluate {type(op).__name__} {op.name!r}")
    res = [values[t.op].copy() for t in outs]
    return res[0] if single else res


def _topo_order(roots):
    """Producers before consumers, iteratively so long chains of computes need no deep recursion."""
    order, seen = [], set()
    stack = [(op, False) for op in reversed(roots)]
    while stack:
        op, expanded = stack.pop()
        if expanded:
            order.append(op)
            continue
        if op in seen:
            continue
        seen.add(op)
        stack.append((op, True))
        stack.extend((t.op, False) for t in reversed(op.input_tensors) if t.op not in seen)
    return order


def _fed_value(op, feed, order):
    by_tensor = [v for k, v in feed.items() if isinstance(k, Tensor) and k.op is op]
    if by_tensor:
        value = by_tensor[0]
    elif op.name in feed:
        twins = [o for o in order if isinstance(o, PlaceholderOp) and o.name == op.name]
        if len(twins) > 1:
            raise ValueError(f"evaluate: {len(twins)} placeholders are named {op.name!r}; "
                             "feed them by tensor, not by name")
        value = feed[op.name]
    else:
        raise ValueError(f"evaluate: no value fed for placeholder {op.name!r} "
                         f"(shape {op.shape}, {op.dtype}); feed it by tensor or by name")
    if not isinstance(value, (np.ndarray, np.generic)):
        raise TypeError(f"evaluate: placeholder {op.name!r} expects a numpy array of dtype "
                        f"{op.dtype} and shape {op.shape}, got {type(value).__name__}")
    value = np.asarray(value)
    if value.dtype != dt.to_numpy(op.dtype):
        raise TypeError(f"evaluate: placeholder {op.name!r} expects dtype {op.dtype}, "
                        f"the fed array has dtype {value.dtype}")
    if value.shape != op.shape:
        raise ValueError(f"evaluate: placeholder {op.name!r} expects shape {op.shape}, "
                         f"the fed array has shape {value.shape}")
    return value


def _blocks(extents, budget):
    """Split an index box into sub-boxes of at most ``budget`` points, as per-axis (lo, hi).

    Inner axes are kept whole as far as the budget allows, the next one is cut into runs and the
    outer ones are walked one index at a time, so each block is one contiguous slab.
    """
    n = len(extents)
    inner, d = 1, n - 1
    while d >= 0 and inner * extents[d] <= budget:
        inner *= extents[d]
        d -= 1
    whole = [(0, e) for e in extents[d + 1:]]
    if d < 0:
        yield tuple(whole)
        return
    step = max(1, budget // inner)
    for flat in range(math.prod(extents[:d])):
        prefix = np.unravel_index(flat, extents[:d]) if d else ()
        outer = [(int(p), int(p) + 1) for p in prefix]
        for lo in range(0, extents[d], step):
            yield tuple(outer + [(lo, min(lo + step, extents[d]))] + whole)


def _grid(var, lo, hi, axis, ndim):
    shape = [1] * ndim
    shape[axis] = hi - lo
    return np.arange(lo, hi, dtype=dt.to_numpy(var.dtype)).reshape(shape)


def _compute(op, values):
    """Fill the output block by block; grid axes are (reduce axes..., spatial axes...)."""
    out = np.empty(op.shape, dt.to_numpy(op.output(0).dtype))
    body = op.body
    red = body if isinstance(body, E.Reduce) else None
    rext = tuple(_extent(iv) for iv in red.axis) if red is not None else ()
    nr, ndim = len(rext), len(rext) + len(op.shape)
    # Leave room for a reduction run of a few dozen points so per-chunk overhead stays small.
    sbudget = max(1, CHUNK_ELEMS // min(math.prod(rext), 32))
    for block in _blocks(op.shape, sbudget):
        env = {iv.var: _grid(iv.var, lo, hi, nr + k, ndim)
               for k, (iv, (lo, hi)) in enumerate(zip(op.axis, block))}
        ev = _Eval(op.name, values, env)
        sshape = tuple(hi - lo for lo, hi in block)
        val = ev.run(body, None) if red is None else _reduce(ev, red, rext, sshape)
        out[tuple(slice(lo, hi) for lo, hi in block)] = val.reshape(val.shape[nr:])
    return out


def _extent(iv):
    return int(iv.dom.extent.value)


_FAST_REDUCE = {E.Add: np.add, E.Mul: np.multiply, E.Max: np.maximum, E.Min: np.minimum}


def _numpy_reducer(comb):
    """The ufunc a combiner is, when it is plainly ``lhs op rhs`` (te.sum/prod/max/min)."""
    r = comb.result
    ufunc = _FAST_REDUCE.get(type(r))
    if ufunc and {id(r.a), id(r.b)} == {id(comb.lhs), id(comb.rhs)}:
        return ufunc
    return None


def _reduce(ev, red, rext, sshape):
    """Reduce one spatial block, a reduction chunk at a time, starting from the identity.

    Reduce axes come first in the grid, so numpy's reduction over them (and the accumulation
    across chunks) adds whole planes in loop order, in the output dtype.
    """
    nr = len(rext)
    npt = dt.to_numpy(red.dtype)
    ident = _Eval(ev.name, ev.values, {}).run(red.combiner.identity(red.dtype), None)
    ufunc = _numpy_reducer(red.combiner)
    acc = np.broadcast_to(ident, (1,) * nr + sshape)
    rbudget = max(1, CHUNK_ELEMS // max(1, math.prod(sshape)))
    for block in _blocks(rext, rbudget):
        env = dict(ev.env)
        ndim = nr + len(sshape)
        env.update({iv.var: _grid(iv.var, lo + int(iv.dom.min.value), hi + int(iv.dom.min.value),
                                  k, ndim)
                    for k, (iv, (lo, hi)) in enumerate(zip(red.axis, block))})
        cev = _Eval(ev.name, ev.values, env)
        cond = cev.run(red.condition, None)
        mask = None if cond.ndim == 0 and cond else cond
        if mask is not None and not mask.any():
            continue
        full = tuple(hi - lo for lo, hi in block) + sshape
        val = np.broadcast_to(cev.run(red.source, mask), full)
        if mask is not None:
            val = np.where(mask, val, ident)
        if ufunc is not None:
            part = ufunc.reduce(val, axis=tuple(range(nr)), dtype=npt, keepdims=True)
            acc = ufunc(acc, part, dtype=npt)
        else:
            acc = _combine(ev, red.combiner, acc, _fold(ev, red.combiner, val, nr))
    return np.broadcast_to(acc, (1,) * nr + sshape)


def _fold(ev, comb, val, nr):
    """Tree-combine the reduce axes of val: log2(n) vectorised steps even for scalar outputs."""
    x = val.reshape((-1,) + val.shape[nr:])
    while len(x) > 1:
        h = len(x) // 2
        y = _combine(ev, comb, x[:h], x[h:2 * h])
        x = y if len(x) % 2 == 0 else np.concatenate([y, x[2 * h:]])
    return x.reshape((1,) * nr + x.shape[1:])


def _combine(ev, comb, a, b):
    return _Eval(ev.name, ev.values, {comb.lhs: a, comb.rhs: b}).run(comb.result, None)


def _wrap_int(value, npt):
    bits = npt.itemsize * 8
    value &= (1 << bits) - 1
    if npt.kind == "i" and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def _cast(x, dtype):
    """C conversion, except float -> int saturates (LLVM fptosi.sat): NaN -> 0, clip to range."""
    npt = dt.to_numpy(dtype)
    if x.dtype.kind != "f" or npt.kind not in "iu":
        return x.astype(npt)
    info = np.iinfo(npt)
    t = np.trunc(x.astype(np.float64))
    t = np.where(np.isnan(t), 0.0, t)
    over = t >= 2.0 ** (info.bits - (npt.kind == "i"))  # a power of two, exact in float64
    under = t < float(info.min)
    safe = np.where(over | under, 0.0, t).astype(npt)
    return np.where(over, npt.type(info.max), np.where(under, npt.type(info.min), safe))


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# Intrinsics numpy provides run in the argument's dtype (float16 through numpy's float32 loops);
# the composite ones run in float64 and are rounded once, so they are as exact as a good libm.
_INTRIN = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh, "floor": np.floor,
           "ceil": np.ceil, "round": np.round, "trunc": np.trunc, "fabs": np.abs,
           "pow": np.power, "fmod": np.fmod, "fmod_floor": np.remainder, "sin": np.sin,
           "cos": np.cos, "exp2": np.exp2, "log2": np.log2, "log1p": np.log1p,
           "expm1": np.expm1}
_INTRIN_F64 = {"rsqrt": lambda x: 1.0 / np.sqrt(x), "sigmoid": _sigmoid, "erf": _erf}

_BINARY = {E.Add: np.add, E.Sub: np.subtract, E.Mul: np.multiply, E.Div: np.true_divide,
           E.Min: np.minimum, E.Max: np.maximum, E.EQ: np.equal, E.NE: np.not_equal,
           E.LT: np.less, E.LE: np.less_equal, E.GT: np.greater, E.GE: np.greater_equal,
           E.And: np.logical_and, E.Or: np.logical_or,
           E.FloorDiv: np.floor_divide, E.FloorMod: np.remainder}


class _Eval:
    """Evaluates expressions of one compute over one block of its grid.

    ``mask`` (None: every lane) marks the lanes whose value is actually used; results are
    memoised per (node, mask) so expressions shared within a body are computed once.
    """

    def __init__(self, name, values, env):
        self.name = name
        self.values = values
        self.env = env
        self.memo = {}
        self.masks = []  # keeps masks alive so their ids in memo keys stay unique

    def run(self, node, mask):
        key = (id(node), id(mask))
        hit = self.memo.get(key)
        if hit is None:
            method = getattr(self, "_" + type(node).__name__, None)
            if method is None:
                method = self._binary if type(node) in _BINARY else self._unsupported
            hit = np.asarray(method(node, mask))
            npt = dt.to_numpy(node.dtype)
            if hit.dtype != npt:
                hit = hit.astype(npt)
            self.masks.append(mask)
            self.memo[key] = hit
        return hit

    def _unsupported(self, node, mask):
        raise TypeError(f"evaluate: compute {self.name!r}: {type(node).__name__} nodes cannot "
                        f"appear in a TE body ({node})")

    def _IntImm(self, node, mask):
        npt = dt.to_numpy(node.dtype)
        if npt.kind == "b":
            return np.array(bool(node.value))
        return np.array(_wrap_int(int(node.value), npt), dtype=npt)

    def _FloatImm(self, node, mask):
        return np.array(node.value, dtype=dt.to_numpy(node.dtype))

    def _Var(self, node, mask):
        if node not in self.env:
            raise ValueError(f"evaluate: compute {self.name!r} uses variable {node.name!r}, "
                             "which is neither one of its axes nor bound by a Let")
        return self.env[node]

    def _binary(self, node, mask):
        a, b = self.run(node.a, mask), self.run(node.b, mask)
        cls = type(node)
        if cls in (E.FloorDiv, E.FloorMod) and dt.is_integral(node.dtype):
            b = self._nonzero_divisor(node, b, mask)
        return _BINARY[cls](a, b)

    def _nonzero_divisor(self, node, b, mask):
        zero = b == 0
        if not zero.any():
            return b
        live = zero if mask is None else zero & mask
        if live.any():
            raise ZeroDivisionError(f"evaluate: integer division by zero while computing "
                                    f"{self.name!r}, in {node}")
        return np.where(zero, b.dtype.type(1), b)

    def _Not(self, node, mask):
        return np.logical_not(self.run(node.a, mask))

    def _Select(self, node, mask):
        cond = self.run(node.cond, mask)
        take_t = cond if mask is None else cond & mask
        if not take_t.any():
            return self.run(node.false_value, mask)
        take_f = ~cond if mask is None else ~cond & mask
        if not take_f.any():
            return self.run(node.true_value, mask)
        t = self.run(node.true_value, take_t)
        f = self.run(node.false_value, take_f)
        return np.where(cond, t, f)

    def _Cast(self, node, mask):
        return _cast(self.run(node.value, mask), node.dtype)

    def _Call(self, node, mask):
        args = [self.run(a, mask) for a in node.args]
        if node.name in _INTRIN:
            return _INTRIN[node.name](*args)
        if node.name in _INTRIN_F64:
            return _INTRIN_F64[node.name](*(a.astype(np.float64) for a in args))
        raise ValueError(f"evaluate: compute {self.name!r} calls unknown intrinsic "
                         f"{node.name!r}; known: {', '.join(sorted({**_INTRIN, **_INTRIN_F64}))}")

    def _Let(self, node, mask):
        value = self.run(node.value, mask)
        # A fresh scope: memoised values inside the body depend on this binding.
        inner = _Eval(self.name, self.values, {**self.env, node.var: value})
        return inner.run(node.body, mask)

    def _ProducerLoad(self, node, mask):
        tensor = node.producer
        arr = self.values[tensor.op]
        idx = []
        for d, (e, n) in enumerate(zip(node.indices, arr.shape)):
            i = self.run(e, mask).astype(np.intp, copy=False)
            bad = (i < 0) | (i >= n)
            if mask is not None:
                bad = bad & mask
            if bad.any():
                used = i if mask is None else \
                    np.broadcast_to(i, bad.shape)[np.broadcast_to(mask, bad.shape)]
                raise IndexError(f"evaluate: computing {self.name!r} reads tensor "
                                 f"{tensor.name!r} out of bounds: dimension {d} is indexed over "
                                 f"[{used.min()}, {used.max()}] but its valid range is "
                                 f"[0, {n - 1}]")
            idx.append(np.clip(i, 0, n - 1) if mask is not None else i)
        return arr[tuple(idx)]
