"""Data movement: reshapes, permutations, joins, slicing, gathers, padding, ranges, scans.

Most operators here map each output element to one input element (or a constant) by index
arithmetic, so they are tagged "injective" ("broadcast" for expand) and a consumer inlines
them: a transpose feeding an add is just a different read inside the add. Index arithmetic is
written with static Python ints wherever an attribute is static, so the simplifier folds it.
Three are not injective: cumsum (a masked reduction, tagged "reduce"), einsum with summed
letters ("reduce") and topk (selection rounds tagged "reduce", stacked by injective stages).
The sums of cumsum and einsum accumulate float16 in float32 (``_summed``).
"""
import math

from .. import te
from ..ir import dtype as dt
from .util import (
    accumulation_dtype,
    broadcast_index,
    check_tensor,
    normalize_axes,
    normalize_axis,
    prod,
    ravel,
    static_int,
    unravel,
)


def _injective(shape, fn, name):
    return te.compute(shape, fn, name=name, tag="injective")


def _summed(shape, fn, name, dtype):
    """A "reduce" compute out[i] = fn(acc, *i), a sum in the accumulation type ``acc`` of
    ``dtype``; for float16 an inner stage (``attrs["part"]``) sums in float32 and the result
    stage rounds once."""
    acc = accumulation_dtype(dtype)
    if acc == dtype:
        return te.compute(shape, lambda *i: fn(acc, *i), name=name, tag="reduce")
    total = te.compute(shape, lambda *i: fn(acc, *i), name=f"{name}.acc", tag="reduce",
                       attrs={"part": "acc"})
    return te.compute(shape, lambda *i: total[i].astype(dtype), name=name, tag="reduce")


# ------------------------------------------------------------------------------ shapes

def reshape(x, newshape):
    """x's elements in row-major order, laid out in ``newshape`` (one entry may be -1).

    Leading and trailing dimensions the two shapes share map straight through; only the middle
    run is linearised and unravelled, so e.g. (B, S, H*D) -> (B, S, H, D) costs one div/mod.
    """
    check_tensor("reshape", x)
    newshape = [static_int("reshape", "a dimension of newshape", n) for n in newshape]
    total = prod(x.shape)
    if newshape.count(-1) > 1 or any(n == 0 or n < -1 for n in newshape):
        raise ValueError(f"reshape: newshape {tuple(newshape)} for tensor {x.name!r} must have "
                         "positive dimensions and at most one -1")
    if -1 in newshape:
        known = -prod(newshape)
        if total % known:
            raise ValueError(f"reshape: cannot reshape tensor {x.name!r} of shape {x.shape} "
                             f"({total} elements) to {tuple(newshape)}")
        newshape[newshape.index(-1)] = total // known
    newshape = tuple(newshape)
    if prod(newshape) != total:
        raise ValueError(f"reshape: cannot reshape tensor {x.name!r} of shape {x.shape} "
                         f"({total} elements) to {newshape} ({prod(newshape)} elements)")
    head = 0
    while head < min(x.ndim, len(newshape)) and x.shape[head] == newshape[head]:
        head += 1
    tail = 0
    while tail < min(x.ndim, len(newshape)) - head and x.shape[-1 - tail] == newshape[-1 - tail]:
        tail += 1

    def body(*i):
        mid_out = i[head:len(i) - tail]
        mid_in = unravel(ravel(mid_out, newshape[head:len(newshape) - tail]),
                         x.shape[head:x.ndim - tail])
        return x[tuple(i[:head]) + tuple(mid_in) + tuple(i[len(i) - tail:])]
    return _injective(newshape, body, "reshape")


def flatten(x, axis=1):
    """2-D view (prod(shape[:axis]), prod(shape[axis:])) (ONNX Flatten; axis in [-r, r])."""
    check_tensor("flatten", x)
    static_int("flatten", "axis", axis)
    if not -x.ndim <= axis <= x.ndim:
        raise ValueError(f"flatten: axis {axis} is out of range for tensor {x.name!r} of shape "
                         f"{x.shape} (valid: {-x.ndim} to {x.ndim})")
    axis = axis + x.ndim if axis < 0 else axis
    return reshape(x, (prod(x.shape[:axis]), prod(x.shape[axis:])))


def squeeze(x, axis=None):
    """x without the given axes of extent 1 (None: all of them)."""
    check_tensor("squeeze", x)
    axes = tuple(d for d, n in enumerate(x.shape) if n == 1) if axis is None else \
        normalize_axes("squeeze", x, axis)
    for d in axes:
        if x.shape[d] != 1:
            raise ValueError(f"squeeze: axis {d} of tensor {x.name!r} (shape {x.shape}) has "
                             f"extent {x.shape[d]}, not 1")
    return reshape(x, [n for d, n in enumerate(x.shape) if d not in axes])


def unsqueeze(x, axis):
    """x with new axes of extent 1 at ``axis`` (positions in the result, as ONNX Unsqueeze)."""
    check_tensor("unsqueeze", x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    rank = x.ndim + len(axes)
    pos = [normalize_axis("unsqueeze", x, a, rank) for a in axes]
    if len(set(pos)) != len(pos):
        raise ValueError(f"unsqueeze: axes {axes} for tensor {x.name!r} repeat a position")
    dims = iter(x.shape)
    return reshape(x, [1 if d in pos else next(dims) for d in range(rank)])


def expand(x, shape):
    """x broadcast against ``shape`` in both directions (ONNX Expand): the result has the
    numpy broadcast of x.shape and shape, so a 1 in shape keeps x's extent."""
    check_tensor("expand", x)
    shape = tuple(static_int("expand", "a dimension of shape", n) for n in shape)
    ndim = max(x.ndim, len(shape))
    a = (1,) * (ndim - x.ndim) + x.shape
    b = (1,) * (ndim - len(shape)) + shape
    out = []
    for d, (m, n) in enumerate(zip(a, b)):
        if m != n and 1 not in (m, n):
            raise ValueError(f"expand: tensor {x.name!r} of shape {x.shape} cannot broadcast "
                             f"to {shape}: axis {d - ndim} has extents {m} and {n}")
        out.append(max(m, n))
    return te.compute(tuple(out), lambda *i: x[broadcast_index(x, i)], name="expand",
                      tag="broadcast")


def broadcast_to(x, shape):
    """numpy's broadcast_to: like expand, but the result must be exactly ``shape``."""
    out = expand(x, shape)
    if out.shape != tuple(shape):
        raise ValueError(f"broadcast_to: tensor {x.name!r} of shape {x.shape} does not "
                         f"broadcast to {tuple(shape)} (it would give {out.shape})")
    return out


def transpose(x, perm=None):
    """out[i] = x[i permuted back]: axis d of the result is axis perm[d] of x (default:
    reversed)."""
    check_tensor("transpose", x)
    perm = tuple(reversed(range(x.ndim))) if perm is None else \
        tuple(normalize_axis("transpose", x, p) for p in perm)
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"transpose: perm {perm} is not a permutation of the {x.ndim} axes "
                         f"of tensor {x.name!r} (shape {x.shape})")
    inverse = [perm.index(d) for d in range(x.ndim)]
    return _injective(tuple(x.shape[p] for p in perm),
                      lambda *i: x[tuple(i[inverse[d]] for d in range(x.ndim))], "transpose")


# ------------------------------------------------------------------------------ join and split

def concat(*tensors, axis=0):
    """The tensors joined along ``axis``; they must agree on every other extent.

    Takes the tensors as arguments (the graph IR's ``op(*inputs, **attrs)`` form) or as one
    list (numpy's form)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tensors[0]
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    first = check_tensor("concat", tensors[0])
    axis = normalize_axis("concat", first, axis)
    for t in tensors[1:]:
        check_tensor("concat", t)
        if t.ndim != first.ndim or any(m != n for d, (m, n) in
                                       enumerate(zip(t.shape, first.shape)) if d != axis):
            raise ValueError(f"concat: tensor {t.name!r} of shape {t.shape} does not match "
                             f"tensor {first.name!r} of shape {first.shape} outside axis {axis}")
    offsets = [0]
    for t in tensors:
        offsets.append(offsets[-1] + t.shape[axis])

    def body(*i):
        k = i[axis]

        def part(n):
            j = tuple(i[:axis]) + (k - offsets[n],) + tuple(i[axis + 1:])
            v = tensors[n][j]
            return v if n == len(tensors) - 1 else te.if_then_else(k < offsets[n + 1], v,
                                                                    part(n + 1))
        return part(0)
    shape = first.shape[:axis] + (offsets[-1],) + first.shape[axis + 1:]
    return _injective(shape, body, "concat")


def split(x, sizes, axis=0):
    """x cut along ``axis`` into pieces of the given sizes, or into ``sizes`` equal pieces."""
    check_tensor("split", x)
    axis = normalize_axis("split", x, axis)
    n = x.shape[axis]
    if isinstance(sizes, int):
        if sizes <= 0 or n % sizes:
            raise ValueError(f"split: axis {axis} of tensor {x.name!r} (shape {x.shape}) has "
                             f"extent {n}, which does not split into {sizes} equal parts")
        sizes = [n // sizes] * sizes
    sizes = [static_int("split", "a size", s) for s in sizes]
    if any(s <= 0 for s in sizes) or sum(sizes) != n:
        raise ValueError(f"split: sizes {tuple(sizes)} must be positive and sum to {n}, the "
                         f"extent of axis {axis} of tensor {x.name!r} (shape {x.shape})")
    starts = [sum(sizes[:k]) for k in range(len(sizes))]
    return [slice(x, [b], [b + s], [axis]) for b, s in zip(starts, sizes)]


def slice(x, starts, ends, axes=None, steps=None):  # noqa: A001
    """x[starts:ends:steps] on ``axes`` (default: the first len(starts) axes), ONNX Slice:
    negative positions count from the end, out-of-range ones are clamped, steps may be
    negative (then ends clamp to -1, "before the first element")."""
    check_tensor("slice", x)
    axes = list(range(len(starts))) if axes is None else \
        [normalize_axis("slice", x, a) for a in axes]
    steps = [1] * len(axes) if steps is None else list(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps) or len(set(axes)) != len(axes):
        raise ValueError(f"slice: starts, ends, axes and steps for tensor {x.name!r} need one "
                         "entry per distinct axis")
    begin, step = [0] * x.ndim, [1] * x.ndim
    shape = list(x.shape)
    for a, b, e, s in zip(axes, starts, ends, steps):
        n = x.shape[a]
        if s == 0:
            raise ValueError(f"slice: step 0 on axis {a} of tensor {x.name!r}")
        b, e = b + n if b < 0 else b, e + n if e < 0 else e
        if s > 0:
            b, e = min(max(b, 0), n), min(max(e, 0), n)
        else:
            b, e = min(max(b, 0), n - 1), min(max(e, -1), n - 1)
        length = max(0, -(-(e - b) // s))
        if length == 0:
            raise ValueError(f"slice: the slice of axis {a} of tensor {x.name!r} (extent {n}) "
                             f"is empty; empty tensors are not supported")
        begin[a], step[a], shape[a] = b, s, length
    return _injective(tuple(shape),
                      lambda *i: x[tuple(b + s * j for b, s, j in zip(begin, step, i))], "slice")


def tile(x, reps):
    """x repeated reps[d] times along each axis (numpy tile; shorter reps apply to the last
    axes, longer ones add leading axes)."""
    check_tensor("tile", x)
    reps = tuple(static_int("tile", "a repetition count", r) for r in reps)
    if any(r <= 0 for r in reps):
        raise ValueError(f"tile: repetitions {reps} for tensor {x.name!r} must be positive")
    ndim = max(x.ndim, len(reps))
    base = (1,) * (ndim - x.ndim) + x.shape
    reps = (1,) * (ndim - len(reps)) + reps
    return _injective(tuple(n * r for n, r in zip(base, reps)),
                      lambda *i: x[tuple(j % n for j, n in zip(i[ndim - x.ndim:],
                                                               x.shape))], "tile")


# ------------------------------------------------------------------------------ gathers

def _position(x, axis, index):
    """A data index into x's ``axis``: negative counts from the end; out-of-range values are
    clamped (ONNX calls them an error; generated code must never read outside x)."""
    n = x.shape[axis]
    index = index.astype("int64") if dt.bits(index.dtype) < 64 else index
    wrapped = te.if_then_else(index < 0, index + n, index)
    return te.min(te.max(wrapped, 0), n - 1)


def _int_indices(op, indices):
    check_tensor(op, indices, "indices")
    if not dt.is_integral(indices.dtype):
        raise TypeError(f"{op}: indices {indices.name!r} have dtype {indices.dtype}; they must "
                        "be integers")


def gather(x, indices, axis=0):
    """out[a, j, b] = x[a, indices[j], b] along ``axis`` (numpy take, ONNX Gather)."""
    check_tensor("gather", x)
    _int_indices("gather", indices)
    axis = normalize_axis("gather", x, axis)
    k = indices.ndim

    def body(*i):
        j = _position(x, axis, indices[tuple(i[axis:axis + k])])
        return x[tuple(i[:axis]) + (j,) + tuple(i[axis + k:])]
    return _injective(x.shape[:axis] + indices.shape + x.shape[axis + 1:], body, "gather")


def gather_elements(x, indices, axis=0):
    """out[i] = x[i with its ``axis`` entry replaced by indices[i]] (ONNX GatherElements,
    numpy take_along_axis); indices has x's rank and fits inside x on the other axes."""
    check_tensor("gather_elements", x)
    _int_indices("gather_elements", indices)
    axis = normalize_axis("gather_elements", x, axis)
    if indices.ndim != x.ndim or any(m > n for d, (m, n) in
                                     enumerate(zip(indices.shape, x.shape)) if d != axis):
        raise ValueError(f"gather_elements: indices {indices.name!r} of shape {indices.shape} "
                         f"must have the rank of tensor {x.name!r} (shape {x.shape}) and fit "
                         f"inside it on every axis but {axis}")

    def body(*i):
        j = _position(x, axis, indices[i])
        return x[tuple(i[:axis]) + (j,) + tuple(i[axis + 1:])]
    return _injective(indices.shape, body, "gather_elements")


# ------------------------------------------------------------------------------ padding

def pad(x, pad_width, mode="constant", value=0):
    """x padded by pad_width[d] = (before, after) elements on each axis (negative crops).

    "constant" fills with ``value``; "edge" repeats the border element; "reflect" mirrors
    around the border element without repeating it (numpy's modes; a pad wider than the axis
    keeps reflecting, as numpy does).
    """
    check_tensor("pad", x)
    pad_width = [tuple(p) for p in pad_width]
    if len(pad_width) != x.ndim or any(len(p) != 2 for p in pad_width):
        raise ValueError(f"pad: pad_width needs one (before, after) pair per axis of tensor "
                         f"{x.name!r} (shape {x.shape}), got {pad_width}")
    if mode not in ("constant", "edge", "reflect"):
        raise ValueError(f"pad: unknown mode {mode!r}; expected constant, edge or reflect")
    shape = tuple(n + b + a for n, (b, a) in zip(x.shape, pad_width))
    for d, m in enumerate(shape):
        if m <= 0:
            raise ValueError(f"pad: axis {d} of tensor {x.name!r} (shape {x.shape}) would have "
                             f"extent {m} after padding by {pad_width[d]}")

    def source(j, n):
        if mode == "edge" or n == 1:
            return te.min(te.max(j, 0), n - 1)
        # Fold j onto one period [0, 2(n-1)) and mirror its second half back: min(t, p - t).
        # The outer min with n - 1 changes no value; it lets the bound checker (interval
        # arithmetic, blind to how t and p - t correlate) prove the read stays inside x.
        period = 2 * (n - 1)
        t = j % period
        return te.min(te.min(t, period - t), n - 1)

    def body(*i):
        j = [k - b for k, (b, _) in zip(i, pad_width)]
        if mode == "constant":
            inside = [c for k, n, (b, a) in zip(j, x.shape, pad_width)
                      for c in ((k >= 0) if b > 0 else None, (k < n) if a > 0 else None)
                      if c is not None]
            v = x[tuple(j)]
            return te.if_then_else(te.all(*inside), v, value) if inside else v
        return x[tuple(source(k, n) if (b > 0 or a > 0) else k
                       for k, n, (b, a) in zip(j, x.shape, pad_width))]
    return _injective(shape, body, "pad")


# ------------------------------------------------------------------------------ generators, scans

def arange(start, stop=None, step=1, dtype=None):
    """[start, start + step, ...) up to stop, as a compute (numpy arange, ONNX Range); the
    dtype defaults to int64 for integer arguments and float32 otherwise."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange: step must not be 0")
    n = math.ceil((stop - start) / step)
    if n <= 0:
        raise ValueError(f"arange: [{start}, {stop}) with step {step} is empty; empty tensors "
                         "are not supported")
    if dtype is None:
        dtype = "int64" if all(isinstance(v, int) for v in (start, stop, step)) else "float32"
    dtype = dt.check(dtype)
    return _injective((n,), lambda i: te.const(start, dtype) + i.var.astype(dtype) * step,
                      "arange")


def cumsum(x, axis=0, exclusive=False, reverse=False, dtype=None):
    """Running sum along ``axis`` (ONNX CumSum): ``exclusive`` leaves the current element out,
    ``reverse`` sums from the end. Written as a masked reduction over the whole axis, which
    costs O(n^2) per line: fine for the short axes (sequence positions) models scan."""
    check_tensor("cumsum", x)
    axis = normalize_axis("cumsum", x, axis)
    t = dt.check(dtype) if dtype is not None else x.dtype

    def body(acc, *i):
        k = te.reduce_axis((0, x.shape[axis]), name="k")
        p = i[axis]
        keep = {(False, False): k <= p, (True, False): k < p,
                (False, True): k >= p, (True, True): k > p}[(bool(exclusive), bool(reverse))]
        j = tuple(i[:axis]) + (k,) + tuple(i[axis + 1:])
        return te.sum(x[j].astype(acc), axis=k, where=keep)
    return _summed(x.shape, body, "cumsum", t)


# ------------------------------------------------------------------------------ einsum

def einsum(*operands, subscripts=None):
    """numpy einsum without ellipsis: one compute that multiplies the operands at each point
    and sums over the letters missing from the output (implicit output: the letters that
    occur once, sorted). Summed letters are ordered so that those indexing the innermost
    dimensions of the operands come last, which is the loop the schedule keeps innermost.

    Called as numpy's ``einsum("ij,jk->ik", a, b)`` or in the graph IR's form with the
    subscripts as an attribute, ``einsum(a, b, subscripts="ij,jk->ik")``."""
    if subscripts is None:
        if not operands or not isinstance(operands[0], str):
            raise TypeError("einsum: give the subscripts first or as subscripts=")
        subscripts, operands = operands[0], operands[1:]
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise ValueError(f"einsum: {subscripts!r}: ellipsis ('...') is not supported")
    lhs, arrow, rhs = spec.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(operands):
        raise ValueError(f"einsum: {subscripts!r} names {len(ins)} operands, got "
                         f"{len(operands)}")
    size = {}
    for sub, t in zip(ins, operands):
        check_tensor("einsum", t, "operand")
        if not sub.isalpha() or len(sub) != t.ndim:
            raise ValueError(f"einsum: subscripts {sub!r} do not fit operand {t.name!r} of "
                             f"shape {t.shape} (one letter per axis)")
        for d, c in enumerate(sub):
            if size.setdefault(c, t.shape[d]) != t.shape[d]:
                raise ValueError(f"einsum: letter {c!r} is axis {d} of operand {t.name!r} "
                                 f"with extent {t.shape[d]}, but {size[c]} elsewhere")
    if not arrow:
        rhs = "".join(sorted(c for c in size if lhs.count(c) == 1))
    if not (rhs.isalpha() or rhs == "") or len(set(rhs)) != len(rhs) or \
            any(c not in size for c in rhs):
        raise ValueError(f"einsum: output subscripts {rhs!r} of {subscripts!r} must be "
                         "distinct letters of the inputs")
    depth = {c: min(len(s) - 1 - s.index(c) for s in ins if c in s) for c in size}
    summed = sorted((c for c in size if c not in rhs), key=lambda c: -depth[c])
    t = operands[0].dtype
    for o in operands[1:]:
        t = dt.promote(t, o.dtype)

    def body(acc, *i):
        env = dict(zip(rhs, i))
        rvs = [te.reduce_axis((0, size[c]), name=c) for c in summed]
        env.update(zip(summed, rvs))
        term = None
        for sub, o in zip(ins, operands):
            v = o[tuple(env[c] for c in sub)].astype(acc)
            term = v if term is None else term * v
        return te.sum(term, axis=rvs) if rvs else term
    shape = tuple(size[c] for c in rhs)
    if not summed:
        return _injective(shape, lambda *i: body(t, *i), "einsum")
    return _summed(shape, body, "einsum", t)


# ------------------------------------------------------------------------------ topk

def topk(x, k, axis=-1, largest=True):
    """(values, int64 indices) of the k largest (smallest) elements along ``axis``, sorted,
    ties broken towards the lower index (ONNX TopK); a NaN counts as the extreme.

    Selection, one element at a time: round r reduces the row for its extreme value among the
    positions not taken yet, then for the first position holding it; 2k reduction stages,
    O(k n) work, meant for the small k of sampling and beam search.
    """
    check_tensor("topk", x)
    axis = normalize_axis("topk", x, axis)
    n = x.shape[axis]
    static_int("topk", "k", k)
    if not 0 < k <= n:
        raise ValueError(f"topk: k={k} is out of range for axis {axis} of tensor {x.name!r} "
                         f"(shape {x.shape}, extent {n})")
    extreme = te.max if largest else te.min
    row_shape = x.shape[:axis] + x.shape[axis + 1:]
    vals, idxs = [], []

    def along(i, p):
        return tuple(i[:axis]) + (p,) + tuple(i[axis:])

    def free(i, p):
        return te.all(*[p.var.astype("int64") != taken[i] for taken in idxs]) if idxs else True

    for r in range(k):
        def best(*i):
            p = te.reduce_axis((0, n), name="p")
            return extreme(x[along(i, p)], axis=p, where=free(i, p))
        v = te.compute(row_shape, best, name=f"topk.value{r}", tag="reduce")

        def first(*i, v=v):
            p = te.reduce_axis((0, n), name="p")
            e = x[along(i, p)]
            hit = (e == v[i]) | (e != e) if dt.is_float(x.dtype) else e == v[i]
            return te.min(te.if_then_else(hit, p.var.astype("int64"), te.const(n, "int64")),
                          axis=p, where=free(i, p))
        vals.append(v)
        idxs.append(te.compute(row_shape, first, name=f"topk.index{r}", tag="reduce"))

    def stack(parts, name):
        def body(*i):
            j, row = i[axis], tuple(i[:axis]) + tuple(i[axis + 1:])
            out = parts[-1][row]
            for r in range(len(parts) - 2, -1, -1):
                out = te.if_then_else(j == r, parts[r][row], out)
            return out
        return _injective(x.shape[:axis] + (k,) + x.shape[axis + 1:], body, name)
    return stack(vals, "topk.values"), stack(idxs, "topk.indices")

