"""Default CPU schedules, chosen by an operator's tag, and ``schedule_for``, which applies them.

Three ideas carry all of them:

- **Inline injective producers.** An elementwise, broadcast or injective stage that is not an
  output is substituted into its consumers, so a chain like transpose -> add -> relu is one
  loop nest with no temporary buffers.
- **Vectorize a contiguous innermost loop.** The innermost output axis (where consecutive
  iterations touch consecutive addresses) is split by the host's vector width and the inner
  part vectorized; the tail that the width does not divide becomes a scalar loop (loop
  partitioning). An elementwise body that calls vector math (exp, tanh, erf, ...) is one long
  dependency chain per vector, so it takes several native vectors per step (INTERLEAVE) and
  the core overlaps their chains instead of waiting on one. A reduction whose innermost input
  axis is the reduced one instead gets ``rfactor``-ed into ``lanes`` partial results, updated
  with whole vectors and summed at the end (the reducers are associative and commutative;
  floats may round differently from numpy, as docs/semantics.md allows).
- **Parallelise the outermost loop when there is enough work** (PARALLEL_MIN elements), and
  compute a composite op's inner stages (a softmax's max and sum, a norm's statistics) inside
  that loop, once per row, while the row is still in cache.
"""
from .. import te
from ..ir import dtype as dt
from ..ir.expr import Call, ProducerLoad
from ..ir.functor import free_vars, post_order_visit
from ..schedule.schedule_ops import inline_bodies
from ..te.tensor import Tensor
from .util import is_injective, prod

#: Below this many elements (of the output, or of the input for a reduction) a loop runs on one
#: thread: waking the pool costs more than the work.
PARALLEL_MIN = 1 << 16

#: Output elements a column reduction accumulates at once (1 KB of float32: L1-resident).
COLUMN_BLOCK = 256

#: Native vectors an injective loop computes per step when its body calls vector math. One
#: vector of such a body (a tanh or erf polynomial, an exp's range reduction, a division) is a
#: chain of ~40 dependent instructions, longer than the out-of-order window covers, so a gelu
#: ran at about one vector instruction per cycle on Zen 3. A vector of INTERLEAVE x the native
#: width is split by LLVM into native registers whose chains issue side by side: 1.4x faster at
#: 4 (benchmarks/bench_fused.py); at 8 the registers spill.
INTERLEAVE = 4


def vector_lanes(dtype):
    """How many elements of ``dtype`` fill one native vector register of the host."""
    from ..codegen.target import host
    return max(1, host().vector_bits // max(8, dt.bits(dtype)))


def vector_registers():
    """How many vector registers the host's kernels can keep accumulators in."""
    from ..codegen.target import host
    return host().vector_registers


def tile_rows(registers):
    """Rows of the 1x1 conv's and the matmul's register tiles, given how many vector
    registers there are: 6 with 16 (a 16-column tile is two ymm per row, BLIS's Zen shape), 12
    with 32. On the Zen 5, 12 rows beat 6 in both kernels and 16-24 were no better
    (benchmarks/RESULTS.md, "Twelfth session"); the matmul's tile is then 12 x 32 where N
    allows (``ops.matmul.panel_width``), 24 zmm accumulators."""
    return registers * 3 // 8


def _extent(iv):
    return int(iv.dom.extent.value)


def inline_injective_producers(s, t):
    """compute_inline every injective stage that ``t`` reads, directly or through other such
    stages, unless it is an output of the schedule."""
    stack = list(s[t].op.input_tensors)
    while stack:
        st = s[stack.pop()]
        if st.is_placeholder or st.is_output or st.attach_type == "inline" or \
                not is_injective(st.op.tag):
            continue
        st.compute_inline()
        stack.extend(st.op.input_tensors)


def composite_parts(s, out):
    """The inner stages (``attrs["part"]``, same tag) of the composite op that returns ``out``,
    in dependency order."""
    tag, found, stack = s[out].op.tag, [], [out]
    while stack:
        for t in s[stack.pop()].op.input_tensors:
            op = s[t].op
            if getattr(op, "tag", None) == tag and "part" in getattr(op, "attrs", {}) and \
                    t not in found:
                found.append(t)
                stack.append(t)
    return sorted(found, key=lambda t: s.stages.index(s[t]))


def _vectorize_last(st, axes, extents, lanes, fuse_short=True):
    """Vectorize the innermost of ``axes`` (adjacent leaf loops) by ``lanes``.

    When the last axis is shorter than a vector and ``fuse_short``, it is fused with the one
    before (a two-axis fuse flattens back to a contiguous index). Returns the remaining loops
    as (loop, extent) pairs, outermost first, the vector loop excluded.
    """
    loops = list(zip(axes, extents))
    if fuse_short and len(loops) >= 2 and loops[-1][1] < lanes:
        (a, m), (b, n) = loops[-2:]
        loops[-2:] = [(st.fuse(a, b), m * n)]
    if loops and loops[-1][1] >= lanes:
        axis, n = loops[-1]
        outer, inner = st.split(axis, factor=lanes)
        st.vectorize(inner)
        loops[-1] = (outer, -(-n // lanes))
    return loops


def _parallel(st, loops, work):
    """Parallelise the outermost of ``loops`` ((loop, extent) pairs) that has more than one
    iteration, when ``work`` elements justify waking threads."""
    loops = [x for x, n in loops if x is not None and n > 1]
    if work >= PARALLEL_MIN and loops:
        st.parallel(loops[0])


# ------------------------------------------------------------------------------ injective

def _calls_vector_math(body):
    """Whether ``body`` calls a function that codegen expands into a vector polynomial."""
    from ..codegen.llvm_vecmath import FUNCTIONS
    found = []
    post_order_visit(body, lambda n: found.append(n) if isinstance(n, Call) and
                     n.name in FUNCTIONS else None)
    return bool(found)


def _interleaved_lanes(s, out, n):
    """The vector width of an injective stage whose innermost loop has ``n`` iterations: the
    native width, times INTERLEAVE (or a smaller power of two) for a float32 body that calls
    vector math when n holds whole steps of that many vectors (no longer scalar tail)."""
    lanes = vector_lanes(out.dtype)
    if out.dtype != "float32" or not _calls_vector_math(inline_bodies(s)[s[out]]):
        return lanes
    steps, k = n // lanes, INTERLEAVE
    while k > 1 and (steps < k or steps % k):
        k //= 2
    return lanes * k


def schedule_injective(s, out):
    """Fuse the outer axes of ``out`` into one (parallel) loop, vectorize the innermost one;
    inline its injective producers."""
    st = s[out]
    inline_injective_producers(s, out)
    fuse_short = st.op.tag == "elemwise"
    n = out.shape[-1] if out.shape else 1
    if fuse_short and len(out.shape) >= 2 and n < vector_lanes(out.dtype):
        n *= out.shape[-2]  # _vectorize_last fuses the last two axes
    loops = _vectorize_last(st, st.op.axis, out.shape, _interleaved_lanes(s, out, n),
                            fuse_short=fuse_short)
    if len(loops) > 2:
        loops = [(st.fuse(*[x for x, _ in loops[:-1]]), prod(n for _, n in loops[:-1])),
                 loops[-1]]
    _parallel(st, loops, prod(out.shape))
    return s


# ------------------------------------------------------------------------------ reductions

def _loads(expr):
    found = []
    post_order_visit(expr, lambda n: found.append(n) if isinstance(n, ProducerLoad) else None)
    return found


def reduces_innermost(st, bodies):
    """Whether the stage's last reduce axis, rather than its last spatial axis, walks the
    contiguous (last) dimension of more of the tensors it reads (after inlining)."""
    if not st.op.axis:
        return True
    body = bodies[st]
    r, j = st.op.reduce_axis[-1].var, st.op.axis[-1].var
    lasts = [free_vars(ld.indices[-1]) for ld in _loads(body.source) if ld.indices]
    return sum(r in v for v in lasts) > sum(j in v for v in lasts)


def _rfactor_innermost(s, t, lanes=None):
    """Split the last reduce axis of ``t`` by ``lanes`` (default: the vector width) and
    rfactor it: the partial results form a vector updated with whole loads. Returns the
    partial tensor, or None when the axis is too short to pay for it. Must run before t's
    loops are restructured."""
    st = s[t]
    lanes = lanes or vector_lanes(t.dtype)
    if _extent(st.op.reduce_axis[-1]) < 2 * lanes:
        return None
    _, ki = st.split(st.op.reduce_axis[-1], factor=lanes)
    rf = s.rfactor(t, ki, factor_axis=len(st.op.axis))
    r = s[rf]
    lane = r.op.axis[-1]
    r.reorder(*r.op.reduce_axis, lane)
    r.vectorize(lane)
    return rf


def _attach(s, t, parent, loop):
    """compute_at t inside ``loop`` of ``parent``; at the root when there is no loop."""
    if loop is not None:
        s[t].compute_at(s[parent], loop)


def _row_reduction(s, t, lanes=None):
    """Schedule reduction ``t`` for a reduce-innermost layout: rfactor-vectorized when long,
    the partial results computed per output point (at t's last spatial axis)."""
    rf = _rfactor_innermost(s, t, lanes)
    if rf is not None:
        axes = s[t].op.axis
        _attach(s, rf, t, axes[-1] if axes else None)


def _column_reduction(st, block, lanes):
    """Schedule a reduction for a spatial-innermost layout, computed inside the output's loops
    over a ``block`` of its last axis: reduce loops outside that axis, which is vectorized."""
    if st.op.axis:
        last = st.op.axis[-1]
        st.reorder(*st.op.reduce_axis, last)
        _vectorize_last(st, [last], [block], lanes, fuse_short=False)


def _even_block(n, most, lanes):
    """The block size (a multiple of ``lanes``, at most about ``most``) that cuts n into the
    fewest blocks of nearly equal size, so the last block is not mostly overhang."""
    if n <= most:
        return n
    per = -(-n // -(-n // most))
    return -(-per // lanes) * lanes


def schedule_reduce(s, out, lanes=None, block=COLUMN_BLOCK, parallel=True):
    """A reduction (or a composite whose result maps reductions elementwise) computed per output
    point, the output's outer loops in parallel.

    Reduce-innermost layouts (summing along rows) fuse the output axes and rfactor long rows
    into ``lanes`` vector partial sums (None: the native width; a multiple of it keeps several
    vector adds in flight). Spatial-innermost layouts (summing columns) put the reduction loops
    outside a block of ``block`` elements of the output's last axis, vectorized: each step
    streams a contiguous piece of an input row into accumulators that stay in L1. ``parallel``
    False keeps every loop on one thread (the tuning template's knobs).
    """
    st = s[out]
    parts = composite_parts(s, out)
    for t in [out] + parts:
        inline_injective_producers(s, t)
    reductions = [t for t in [out] + parts if s[t].op.reduce_axis]
    if not reductions:
        return schedule_injective(s, out)
    main = s[reductions[0]]
    work = prod(out.shape) * prod(_extent(iv) for iv in main.op.reduce_axis)
    bodies = inline_bodies(s)
    if reduces_innermost(main, bodies):
        rf = _rfactor_innermost(s, out, lanes) if st.op.reduce_axis else None
        loop = st.fuse(*st.op.axis) if st.op.axis else None
        if rf is not None:
            _attach(s, rf, out, loop)
        for t in parts:
            _attach(s, t, out, loop)
            if s[t].op.reduce_axis:
                _row_reduction(s, t, lanes)
        if parallel:
            _parallel(st, [(loop, prod(out.shape))], work)
        return s
    vec = vector_lanes(out.dtype)
    axes, n = list(st.op.axis), out.shape[-1]
    outer = st.fuse(*axes[:-1]) if len(axes) > 1 else None
    block = _even_block(n, block, vec)
    jc, jb = st.split(axes[-1], factor=block) if n > block else (None, axes[-1])
    st.reorder(*st.op.reduce_axis, jb)
    _vectorize_last(st, [jb], [block], vec, fuse_short=False)
    attach = jc if jc is not None else outer
    for t in parts:
        _attach(s, t, out, attach)
        _column_reduction(s[t], block, vec)
    if parallel:
        _parallel(st, [(outer, prod(out.shape[:-1])), (jc, -(-n // block))], work)
    return s


# ------------------------------------------------------------------------------ softmax, norms

def _rows(s, out, attach_axes, lanes=None, parallel=True):
    """The common shape of softmax and norm schedules: the output's leading ``attach_axes``
    axes fused into one (parallel) loop, the rest vectorized innermost; the composite's inner
    stages computed inside that loop, so each row's statistics are made just before use."""
    st = s[out]
    parts = composite_parts(s, out)
    for t in [out] + parts:
        inline_injective_producers(s, t)
    lanes = lanes or vector_lanes(out.dtype)
    lead = st.op.axis[:attach_axes]
    outer = st.fuse(*lead) if lead else None
    _vectorize_last(st, st.op.axis[attach_axes:], out.shape[attach_axes:], lanes)
    if parallel:
        _parallel(st, [(outer, prod(out.shape[:attach_axes]))], prod(out.shape))
    return parts, outer


def schedule_softmax(s, out, lanes=None, parallel=True):
    """Per row (the axes before the softmax axis): max, exp and sum computed at the row, the
    sums rfactor-vectorized when the softmax axis is the last one, vector loops elsewhere.
    ``lanes`` (default: the native vector width) and ``parallel`` are the tuning template's
    knobs (tensorc.ops.templates)."""
    axis = s[out].op.attrs["axis"]
    lanes = lanes or vector_lanes(out.dtype)
    parts, outer = _rows(s, out, axis, lanes, parallel)
    for t in parts:
        _attach(s, t, out, outer)
        pst = s[t]
        row_axes = pst.op.axis[axis:]  # max and sum lack the softmax axis, exp has it
        if pst.op.reduce_axis and not row_axes:
            _row_reduction(s, t, lanes)
            continue
        if pst.op.reduce_axis:
            pst.reorder(*pst.op.reduce_axis, *row_axes)
        _vectorize_last(pst, row_axes, t.shape[axis:], lanes)
    return s


def schedule_norm(s, out):
    """Statistics per leading group of axes (``attrs["stat_axes"]``), computed inside the
    output's parallel loop over those axes; each is a row reduction, rfactor-vectorized."""
    parts, outer = _rows(s, out, s[out].op.attrs["stat_axes"])
    for t in parts:
        _attach(s, t, out, outer)
        _row_reduction(s, t)
    return s


# ------------------------------------------------------------------------------ entry point

#: tag -> schedule(s, out) for ops that are not injective. Operator modules add theirs with
#: ``register_schedule``.
SCHEDULES = {"reduce": schedule_reduce, "softmax": schedule_softmax, "norm": schedule_norm}


def register_schedule(tag):
    """Decorator: ``@register_schedule("conv2d")`` makes schedule_for use the function for
    stages with that tag."""
    def deco(fn):
        SCHEDULES[tag] = fn
        return fn
    return deco


def schedule_for(outs):
    """A schedule of the TE graph ending in ``outs`` (a tensor or a list) with the default CPU
    schedules applied.

    Consumers first, every output and every non-injective stage is scheduled by its tag (a
    composite's inner stages by the stage that returns its result, injective outputs by
    schedule_injective), and each of these schedules decides about its injective producers
    (the default ones inline them; a conv schedule may rather lay out a packed copy). Then the
    injective intermediates no schedule touched are inlined. Stages with unknown tags stay as
    create_schedule leaves them.
    """
    outs = [outs] if isinstance(outs, Tensor) else list(outs)
    s = te.create_schedule([o.op for o in outs])
    computed = [st for st in s.stages if not st.is_placeholder]
    for st in reversed(computed):
        op = st.op
        if st.attach_type == "inline" or "part" in op.attrs or \
                (is_injective(op.tag) and not st.is_output):
            continue
        fn = SCHEDULES.get(op.tag)
        if fn is None and is_injective(op.tag):
            fn = schedule_injective
        elif fn is None and op.reduce_axis:
            fn = schedule_reduce
        if fn is not None:
            fn(s, op.output(0))
    for st in computed:
        if is_injective(st.op.tag) and not st.is_output and st.attach_type == "root" and \
                not st.relations and not st.iter_var_attrs:
            st.compute_inline()
    return s
