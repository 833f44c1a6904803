"""Bound inference: which region of each tensor every stage must compute, and loop extents.

A stage computed at the root (or an output) computes its whole tensor. A stage attached with
compute_at computes, once per iteration of the attach loop, the union of what its consumers read
during that iteration: each read index is bounded by interval arithmetic with the loops inside
the attach point relaxed to their ranges and the loops outside kept symbolic. Extents must come
out constant (they size buffers); where only an upper bound is known, that bound is used and the
producer guards each point against its tensor's domain.
"""
import math

from ..arith import const_int_bound, simplify
from ..ir import expr as E
from ..ir.functor import IRVisitor, substitute
from ..ir.op import const, maximum, minimum
from .relations import pass_down_extents, pass_up_values
from .stage import ScheduleError


class StageBounds:
    """Per stage: start of each root axis (an Expr), every axis' extent (int), root values."""

    def __init__(self, root_min, ext, relations, leaves):
        self.root_min = root_min
        self.ext = ext
        rel, self.split_conds = pass_up_values(relations, {iv: iv.var for iv in leaves}, ext)
        self.root_value = {iv: root_min[iv] + rel[iv] for iv in root_min}


def interval(e, relax):
    """(lo, hi) inclusive bounds of e as expressions, relaxing Vars in ``relax`` (Var -> (lo, hi)).

    Returns None when the bound cannot be expressed (data-dependent indices, products of two
    relaxed terms with symbolic bounds).
    """
    t = type(e)
    if t is E.Var:
        return relax.get(e, (e, e))
    if t in (E.IntImm, E.FloatImm) or not _has_relaxed(e, relax) and not _has_load(e):
        return e, e  # a point: keep the node itself so enclosing div/mod stay exact
    if t is E.Add:
        a, b = interval(e.a, relax), interval(e.b, relax)
        return None if a is None or b is None else (a[0] + b[0], a[1] + b[1])
    if t is E.Sub:
        a, b = interval(e.a, relax), interval(e.b, relax)
        return None if a is None or b is None else (a[0] - b[1], a[1] - b[0])
    if t is E.Mul:
        a, b = interval(e.a, relax), interval(e.b, relax)
        if a is None or b is None:
            return None
        if b[0] is b[1] and isinstance(b[0], E.IntImm):
            a, b = b, a
        if a[0] is a[1] and isinstance(a[0], E.IntImm):
            c = a[0]
            return (b[0] * c, b[1] * c) if c.value >= 0 else (b[1] * c, b[0] * c)
        if a[0] is a[1] and b[0] is b[1]:
            return _point(e, a[0], b[0])
        return _const_product(a, b)
    if t is E.FloorDiv:
        a = interval(e.a, relax)
        if a is None or not (isinstance(e.b, E.IntImm) and e.b.value > 0):
            return None if a is None or a[0] is not a[1] else _point(e, a[0], e.b)
        return _quotients(a, e.b)
    if t is E.FloorMod:
        a = interval(e.a, relax)
        if a is None:
            return None
        if a[0] is a[1]:
            return _point(e, a[0], e.b)
        if isinstance(e.b, E.IntImm) and e.b.value > 0:
            return const(0, e.dtype), const(e.b.value - 1, e.dtype)
        return None
    if t in (E.Min, E.Max):
        a, b = interval(e.a, relax), interval(e.b, relax)
        if a is None or b is None:
            return None
        f = minimum if t is E.Min else maximum
        return f(a[0], b[0]), f(a[1], b[1])
    if t is E.Select:
        a, b = interval(e.true_value, relax), interval(e.false_value, relax)
        if a is None or b is None:
            return None
        return minimum(a[0], b[0]), maximum(a[1], b[1])
    if t is E.Cast and not _has_relaxed(e, relax):
        return e, e
    return None


def _quotients(a, c):
    """(lo, hi) of x // c for x in the interval a. When a's width w is a constant but the
    quotients' is not (a tile of rows read through a packing of c rows, a tile start not
    a multiple of c), hi is lo + ceil(w / c), an upper bound whatever lo is, so that the
    region's extent stays constant instead of growing to the whole axis."""
    lo, hi = a[0] // c, a[1] // c
    w = simplify(a[1] - a[0])
    if isinstance(w, E.IntImm) and w.value >= 0 and \
            not isinstance(simplify(hi - lo), E.IntImm):
        hi = lo + -(-w.value // c.value)
    return lo, hi


def _point(e, a, b):
    """The single value of binary node e when its operands are the single values a and b.

    The values may differ from e's own operands (a relaxed variable of extent one is its
    start), so e itself is returned only when nothing was substituted.
    """
    if a is e.a and b is e.b:
        return e, e
    v = type(e)(e.dtype, a, b)
    return v, v


def _const_product(a, b):
    vals = [x.value for x in (a[0], a[1], b[0], b[1]) if isinstance(x, E.IntImm)]
    if len(vals) != 4:
        return None
    p = [a[0].value * b[0].value, a[0].value * b[1].value, a[1].value * b[0].value,
         a[1].value * b[1].value]
    return const(min(p), a[0].dtype), const(max(p), a[0].dtype)


def _has_relaxed(e, relax):
    found = []

    class V(IRVisitor):
        def visit_Var(self, v):
            if v in relax:
                found.append(v)
    V().visit(e)
    return bool(found)


def _has_load(e):
    found = []

    class V(IRVisitor):
        def visit_ProducerLoad(self, ld):
            found.append(ld)
    V().visit(e)
    return bool(found)


def reads_of(body, sch, stage):
    """Index tuples of every read of ``stage``'s tensor in an expression."""
    out = []

    class V(IRVisitor):
        def visit_ProducerLoad(self, ld):
            if sch[ld.producer] is stage:
                out.append(ld.indices)
            self.generic(ld)
    V().visit(body)
    return out


def attach_path(stage):
    """[(stage, ivar), ...] from the stage's own attach point outwards to the root."""
    path, s = [], stage
    while s.attach_type == "scope":
        path.append((s.attach_stage, s.attach_ivar))
        s = s.attach_stage
    return path


def infer_bounds(sch, bodies):
    """StageBounds for every computed stage; ``bodies`` maps stage -> body after inlining."""
    result = {}
    computed = [s for s in sch.stages if not s.is_placeholder and s.attach_type != "inline"]
    for stage in reversed(computed):
        op = stage.op
        root_min, ext = {}, {}
        for iv in op.reduce_axis:
            root_min[iv], ext[iv] = iv.dom.min, int(iv.dom.extent.value)
        if stage.attach_type == "scope":
            region = _attached_region(sch, stage, computed, bodies, result)
            for iv, (lo, n) in zip(op.axis, region):
                root_min[iv], ext[iv] = lo, n
        else:
            for iv, n in zip(op.axis, op.shape):
                root_min[iv], ext[iv] = const(0), n
        ext = pass_down_extents(stage.relations, ext)
        result[stage] = StageBounds(root_min, ext, stage.relations, stage.leaf_iter_vars)
    return result


_STORAGE_RANK = {"global": 0, "shared": 1, "local": 2}
_THREAD_RANK = {"blockIdx": 0, "threadIdx": 1, "vthread": 1}


def storage_scope(stage):
    """Where the stage's buffer lives: its scope, except that a "global" stage attached under
    GPU thread loops takes the memory of the innermost thread level (TVM's InferStorageScope):
    shared under blockIdx, local under threadIdx."""
    ranks = [_THREAD_RANK[tag.split(".")[0]] for _, _, tag in _enclosing_threads(stage)]
    if stage.scope != "global" or not ranks:
        return stage.scope
    return "local" if max(ranks) >= 1 else "shared"


def _enclosing_threads(stage):
    """(stage, leaf, thread tag) of every bound loop around the stage's attach point."""
    out = []
    for parent, ivar in attach_path(stage):
        leaves = parent.leaf_iter_vars
        for iv in leaves[:leaves.index(ivar) + 1]:
            kind, thread = parent.iter_var_attrs.get(iv, ("serial", None))
            if kind == "bind":
                out.append((parent, iv, thread.thread_tag))
    return out


def _thread_relax(stage, result):
    """Bound loops outside the attach point whose threads all share the stage's buffer."""
    rank = _STORAGE_RANK.get(storage_scope(stage))
    if rank is None:
        raise ScheduleError(f"stage {stage.name!r}: unknown storage scope {stage.scope!r}; "
                            f"expected one of {', '.join(_STORAGE_RANK)}")
    return {iv.var: (const(0), const(result[s].ext[iv] - 1))
            for s, iv, tag in _enclosing_threads(stage)
            if _THREAD_RANK[tag.split(".")[0]] >= rank}


def _leaf_relax(bounds, leaves):
    return {iv.var: (const(0), const(bounds.ext[iv] - 1)) for iv in leaves}


def _attached_region(sch, stage, computed, bodies, result):
    parent, ivar = stage.attach_stage, stage.attach_ivar
    if parent not in result:
        raise ScheduleError(f"compute_at: stage {stage.name!r} is attached to {parent.name!r}, "
                            "which does not consume it (directly or through stages inside it)")
    inside = parent.leaf_iter_vars[parent.leaf_iter_vars.index(ivar) + 1:]
    ndim = len(stage.op.axis)
    lo, hi = [None] * ndim, [None] * ndim
    readers = [x for x in computed if reads_of(bodies[x], sch, stage)]
    if not any(x is parent or parent in [p for p, _ in attach_path(x)] for x in readers):
        raise ScheduleError(f"compute_at: {parent.name!r} does not read {stage.name!r} "
                            "(neither directly nor through stages computed inside it)")
    threads = _thread_relax(stage, result)
    consumers = 0
    for x in readers:
        reads = reads_of(bodies[x], sch, stage)
        path = [p for p, _ in attach_path(x)]
        if x is not parent and parent not in path:
            raise ScheduleError(f"compute_at: stage {stage.name!r} is computed inside "
                                f"{parent.name!r} at {ivar.var.name!r} but stage {x.name!r} "
                                "also reads it outside that loop")
        if x is not parent:
            inner_at = attach_path(x)[path.index(parent)][1]
            if parent.leaf_iter_vars.index(inner_at) < parent.leaf_iter_vars.index(ivar):
                raise ScheduleError(f"compute_at: stage {x.name!r} reads {stage.name!r} "
                                    f"outside loop {ivar.var.name!r} of {parent.name!r}")
        consumers += 1
        steps = [x] + path[:path.index(parent)] if x is not parent else []
        for idx in reads:
            b = result[x]
            vals = {iv.var: b.root_value[iv] for iv in b.root_value}
            for d, e in enumerate(idx):
                rng = _relaxed(substitute(e, vals), steps, result, parent, inside, threads)
                if rng is None:
                    rng = (const(0), const(stage.op.shape[d] - 1))
                lo[d] = rng[0] if lo[d] is None else _pick(minimum, lo[d], rng[0])
                hi[d] = rng[1] if hi[d] is None else _pick(maximum, hi[d], rng[1])
    if not consumers:
        raise ScheduleError(f"compute_at: {parent.name!r} does not read {stage.name!r}")
    return [_extent(stage, d, lo[d], hi[d], result) for d in range(ndim)]


def _relaxed(e, steps, result, parent, inside, threads):
    rng = (e, e)
    for s in steps:
        rng = _relax_once(rng, _leaf_relax(result[s], s.leaf_iter_vars))
        if rng is None:
            return None
    return _relax_once(rng, {**_leaf_relax(result[parent], inside), **threads})


def _relax_once(rng, relax):
    lo, hi = interval(rng[0], relax), interval(rng[1], relax)
    if lo is None or hi is None:
        return None
    return simplify(lo[0]), simplify(hi[1])


def _pick(f, a, b):
    d = simplify(a - b)
    if isinstance(d, E.IntImm):
        return a if (d.value <= 0) == (f is minimum) else b
    return simplify(f(a, b))


def _extent(stage, d, lo, hi, result):
    n = simplify(hi - lo + 1)
    if isinstance(n, E.IntImm):
        return lo, n.value
    ranges = {}
    for b in result.values():
        for iv, x in b.ext.items():
            ranges[iv.var] = (0, x - 1)
    bound = const_int_bound(n, ranges)[1]
    if bound == math.inf:
        raise ScheduleError(f"compute_at: cannot bound the region of {stage.name!r} along "
                            f"dimension {d} (from {lo} to {hi})")
    return lo, int(bound)
