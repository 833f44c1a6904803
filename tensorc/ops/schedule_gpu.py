"""Default GPU schedules, chosen by an operator's tag, and ``schedule_for_gpu``, which applies
them (the CUDA counterpart of ``schedule_cpu.schedule_for``).

Every schedule makes each output one kernel, its producers inlined or computed inside it:

- **Injective** ops: all axes fused and cut into blocks of THREADS threads, one element per
  thread, or four (one float4) when the innermost extent is a multiple of four.
- **Reductions, softmax and norms**: one block per output row when the row is long enough to
  share (ROW_MIN): its threads stride through the row, each keeping a partial result, and a
  cross-thread all-reduce (warp shuffles, shared memory across warps) combines the partials;
  a composite's statistics (max, sum, mean, variance) are made that way at the top of the
  block, then the block writes the normalised row. Short rows get a thread per output.
- **Matrix products** (matmul, batch_matmul, dense): a block computes a TILE x TILE output tile
  from A and B tiles that all its threads fetch into shared memory, KT columns of A at a time;
  each thread accumulates a REG x REG block in registers. Ragged edges are guarded.
- **Convolutions**: one thread per output pixel and block of output channels (the anchor's
  channel block), so each input value it loads feeds that many accumulators in registers;
  consecutive threads take consecutive pixels, so their input reads coalesce.

The CPU layouts the ops build (packed weights, NCHW[x]c blocks) are inlined into these kernels:
a GPU reads the operands in place.

The schedule functions take their constants as keyword arguments, defaulting to the ones
below: the CUDA tuning templates (``templates_gpu``) turn them into knobs.
"""
from .. import te
from ..schedule.schedule_ops import inline_bodies
from ..te.tensor import Tensor
from .capsule_schedule_gpu import schedule_capsule_gpu
from .schedule_cpu import composite_parts, inline_injective_producers, reduces_innermost
from .util import is_injective, prod

#: Threads per block of an elementwise kernel.
THREADS = 256
#: The most threads that cooperate on one row of a reduction.
ROW_THREADS = 256
#: Rows shorter than this are reduced by one thread each.
ROW_MIN = 32
#: Matrix products: threads per block side, and outputs per thread side (small / large).
MM_THREADS = 16
REG_SMALL, REG_LARGE = 4, 8
#: K-slice of the shared tiles (small / large register blocks).
KT_SMALL, KT_LARGE = 16, 8
#: Threads per block of a convolution.
CONV_THREADS = 128

MATMUL_TAGS = ("matmul", "dense")
CONV_ANCHOR = "conv2d_NCHWc"
CONV_TAGS = ("conv2d_nchw", "depthwise_conv2d_nchw", "conv2d_transpose")


def _bind(st, axis, tag):
    st.bind(axis, te.thread_axis(tag))


def _extent(iv):
    return int(iv.dom.extent.value)


def _fuse(st, axes):
    return axes[0] if len(axes) == 1 else st.fuse(*axes)


def _row_threads(n, cap=ROW_THREADS):
    """Threads for a row of n elements: the largest power of two not above n or ``cap``,
    so that every thread of the all-reduce has a share."""
    t = 1
    while t * 2 <= min(n, cap):
        t *= 2
    return t


def cross_thread_reduce(st, threads):
    """Reduce the stage's axes with ``threads`` threads of threadIdx.x: each strides through
    the (fused) reduce axes, then an all-reduce combines the partial results."""
    r = _fuse(st, list(st.op.reduce_axis))
    ro, ri = st.split(r, factor=threads)
    st.reorder(ri, ro)
    _bind(st, ri, "threadIdx.x")


def _threads_over(st, axes, threads):
    """The (fused) ``axes`` cut into blocks of ``threads`` threads: (block loop, thread loop)."""
    bx, tx = st.split(_fuse(st, axes), factor=threads)
    _bind(st, bx, "blockIdx.x")
    _bind(st, tx, "threadIdx.x")
    return bx, tx


# ------------------------------------------------------------------------------ injective

def schedule_injective(s, out):
    """All axes fused into one thread per element (or per float4 when the innermost extent
    is a multiple of 4); injective producers inlined."""
    st = s[out]
    inline_injective_producers(s, out)
    axes = list(st.op.axis)
    if not axes:
        raise ValueError(f"schedule_for_gpu: {out.name!r} is a 0-d tensor; a GPU kernel needs "
                         "at least one axis to spread over threads")
    lanes = 4 if out.dtype == "float32" and out.shape[-1] % 4 == 0 else 1
    if lanes > 1:
        axes[-1], v = st.split(axes[-1], factor=lanes)
        st.vectorize(v)
    _threads_over(st, axes, min(THREADS, prod(out.shape) // lanes))
    return s


# ------------------------------------------------------------------------------ reductions

def _rows(s, out, lead, parts, n, row_threads=ROW_THREADS):
    """Block-per-row shape shared by reductions, softmax and norms: ``out``'s ``lead`` axes
    on blockIdx, its other axes on threads; the composite's reductions computed at the block
    with a cross-thread all-reduce over their rows of ``n`` elements (by at most
    ``row_threads`` threads), its other parts inlined."""
    st = s[out]
    threads = _row_threads(n, row_threads)
    if not st.op.axis[:lead] and (parts or not st.op.reduce_axis):
        raise ValueError(f"schedule_for_gpu: {out.name!r} is computed from whole-tensor "
                         "statistics in one block, which needs an axis to attach them to; "
                         "keep a reduced axis (keepdims=True)")
    row = _fuse(st, st.op.axis[:lead]) if lead else None
    rest = st.op.axis[lead:]
    if not st.op.reduce_axis and not rest:
        row, tx = st.split(row, factor=1)  # one thread stores the block's output
        _bind(st, tx, "threadIdx.x")
    if row is not None:
        _bind(st, row, "blockIdx.x")
    if st.op.reduce_axis:
        cross_thread_reduce(st, threads)
    elif rest:
        _, tx = st.split(_fuse(st, rest), factor=threads)
        _bind(st, tx, "threadIdx.x")
    for t in parts:
        if not s[t].op.reduce_axis:
            s[t].compute_inline()
            continue
        s[t].compute_at(st, row)
        cross_thread_reduce(s[t], threads)


def schedule_reduce(s, out, row_threads=ROW_THREADS, threads=THREADS):
    """One block per output (point of a composite) when the reduction is long and its
    layout lets a block read a row contiguously (or there are few outputs); otherwise one
    thread per output, consecutive threads reading consecutive addresses. ``row_threads``
    caps a row's threads, ``threads`` is the block size of the thread-per-output form."""
    parts = composite_parts(s, out)
    for t in [out] + parts:
        inline_injective_producers(s, t)
    reductions = [t for t in [out] + parts if s[t].op.reduce_axis]
    if not reductions:
        return schedule_injective(s, out)
    main = s[reductions[0]]
    n = prod(_extent(iv) for iv in main.op.reduce_axis)
    few = prod(out.shape) < 4 * THREADS
    if n >= ROW_MIN and (few or reduces_innermost(main, inline_bodies(s))) or not out.shape:
        _rows(s, out, len(out.shape), parts, n, row_threads)
        return s
    st = s[out]
    _, tx = _threads_over(st, list(st.op.axis), min(threads, prod(out.shape)))
    for t in parts:
        s[t].compute_at(st, tx)
    return s


def schedule_softmax(s, out, row_threads=ROW_THREADS):
    """One block per row (the axes before the softmax axis): max and sum all-reduced by at
    most ``row_threads`` threads, the exponentials recomputed where they are read, the row
    written by all threads."""
    parts = composite_parts(s, out)
    for t in [out] + parts:
        inline_injective_producers(s, t)
    axis = s[out].op.attrs["axis"]
    _rows(s, out, axis, parts, out.shape[axis], row_threads)
    return s


def schedule_norm(s, out, row_threads=ROW_THREADS):
    """One block per statistics group: sum and centred sum of squares all-reduced (by at
    most ``row_threads`` threads), then the normalised group written by all threads."""
    parts = composite_parts(s, out)
    for t in [out] + parts:
        inline_injective_producers(s, t)
    stats = [t for t in parts if s[t].op.reduce_axis]
    n = prod(_extent(iv) for iv in s[stats[0]].op.reduce_axis) if stats else 1
    _rows(s, out, s[out].op.attrs["stat_axes"], parts, n, row_threads)
    return s


# ------------------------------------------------------------------------------ matrix products

def _cooperative_fetch(s, cache, threads_y, threads_x, vector=1):
    """Every thread of the block copies part of a shared tile: its axes fused and dealt out
    over threadIdx.y x threadIdx.x, consecutive threads taking consecutive elements (or
    ``vector`` consecutive elements each, one vector load)."""
    st = s[cache]
    axes = list(st.op.axis)
    if vector > 1:
        axes[-1], v = st.split(axes[-1], factor=vector)
        st.vectorize(v)
    _, inner = st.split(_fuse(st, axes), factor=threads_y * threads_x)
    ty, tx = st.split(inner, factor=threads_x)
    _bind(st, ty, "threadIdx.y")
    _bind(st, tx, "threadIdx.x")


def schedule_matmul(s, anchor, out, threads=MM_THREADS, reg=None, kt=None, unroll=True,
                    vector=1):
    """Shared-memory tiles and register blocks for ``anchor`` (a matmul/dense reduction over
    its last axes), written to ``out`` (the anchor itself or an elementwise epilogue of it).

    ``threads`` per block side, ``reg`` x ``reg`` outputs per thread and a K-slice of ``kt``
    (by default REG_LARGE / KT_LARGE for big products, else REG_SMALL / KT_SMALL); ``unroll``
    the register block; ``vector``: elements per load of the shared-tile fetch (the caller
    makes sure the tiles' rows are that aligned)."""
    m, n = anchor.shape[-2:]
    if reg is None:
        reg = REG_LARGE if min(m, n) >= 8 * threads * REG_LARGE else REG_SMALL
    if kt is None:
        kt = KT_LARGE if reg == REG_LARGE else KT_SMALL
    if out is anchor:
        local = s.cache_write(anchor, "local")
    else:
        local = anchor
    ost = s[out]
    *batch, i, j = ost.op.axis
    bi, ii = ost.split(i, factor=threads * reg)
    bj, jj = ost.split(j, factor=threads * reg)
    # no more threads per side than rows / columns: every thread then reaches the barriers
    # of the shared-tile fetch (a guarded thread loop could not hold them)
    ty, tx = min(threads, m), min(threads, n)
    ti, ii = ost.split(ii, nparts=ty)
    tj, jj = ost.split(jj, nparts=tx)
    ost.reorder(bi, bj, ti, tj, ii, jj)
    if batch:
        _bind(ost, _fuse(ost, batch), "blockIdx.z")
    for axis, tag in ((bi, "blockIdx.y"), (bj, "blockIdx.x"), (ti, "threadIdx.y"),
                      (tj, "threadIdx.x")):
        _bind(ost, axis, tag)
    lst = s[local]
    lst.compute_at(ost, tj)
    *_, ci, cj = lst.op.axis
    ko, ki = lst.split(lst.op.reduce_axis[0], factor=kt)
    lst.reorder(ko, ki, ci, cj)
    if unroll:
        lst.unroll(ci)
        lst.unroll(cj)
    operands = []
    for t in list(lst.op.input_tensors):
        if getattr(t.op, "tag", None) == "matmul_pack_rows":
            # the left operand's row packing is for the CPU micro-kernel: the tile is
            # fetched from the operand itself, in its own layout
            s[t].compute_inline()
            operands.extend(t.op.input_tensors)
        else:
            operands.append(t)
    for t in operands:
        cache = s.cache_read(t, "shared", [local])
        s[cache].compute_at(lst, ko)
        _cooperative_fetch(s, cache, ty, tx, vector)
        if not s[t].is_placeholder:
            s[t].compute_inline()
    return s


# ------------------------------------------------------------------------------ convolutions

def schedule_conv(s, anchor, out, threads=CONV_THREADS, unroll=True):
    """A thread per output pixel and block of ``cb`` output channels (the anchor's channel
    block, or 4 for a 1x1 convolution): the anchor computed in its registers, reduction
    loops outside the channel block so each input value feeds ``cb`` accumulators.
    ``threads`` per block; ``unroll`` the channel block."""
    for t in s[anchor].op.input_tensors:
        if not s[t].is_placeholder and not s[t].op.reduce_axis:
            s[t].compute_inline()
    cb = anchor.shape[-1] if len(anchor.shape) == 5 else (4 if len(anchor.shape) == 3 else 1)
    ost = s[out]
    n, c, *pixel = ost.op.axis
    co, ci = ost.split(c, factor=cb)
    ost.reorder(n, co, *pixel, ci)
    _, tx = _threads_over(ost, [n, co, *pixel], threads)
    if unroll:
        ost.unroll(ci)
    ast = s[anchor]
    ast.compute_at(ost, tx)
    ast.reorder(*ast.op.reduce_axis, *ast.op.axis)
    if cb > 1 and unroll:
        ast.unroll(ast.op.axis[-1] if len(anchor.shape) == 5 else ast.op.axis[1])
    return s


def _row_anchor(s, out):
    """The reduction, softmax or norm of ``out``'s shape that the elementwise ``out`` is an
    epilogue of (the elementwise stages between are inlined); None when there is none."""
    found, between, stack = [], [], list(s[out].op.input_tensors)
    while stack:
        st = s[stack.pop()]
        if st.is_placeholder or st.is_output or st.attach_type == "inline":
            continue
        if st.op.tag in SCHEDULES or st.op.reduce_axis:
            if st not in found:
                found.append(st)
            continue
        between.append(st)
        stack.extend(st.op.input_tensors)
    if len(found) != 1 or tuple(found[0].op.output(0).shape) != tuple(out.shape):
        return None
    for st in between:
        st.compute_inline()
    return found[0].op.output(0)


def schedule_row_epilogue(s, anchor, out):
    """A reduction, softmax or norm ``anchor`` written through the elementwise ``out``: the
    row shape of ``anchor``'s schedule with ``out`` as the stage the block writes."""
    parts = composite_parts(s, anchor) if anchor.op.tag in SCHEDULES else []
    for t in [anchor, out] + parts:
        inline_injective_producers(s, t)
    lead = {"softmax": "axis", "norm": "stat_axes"}.get(anchor.op.tag)
    lead = anchor.op.attrs[lead] if lead else len(out.shape)
    stats = [t for t in parts + [anchor] if s[t].op.reduce_axis]
    n = prod(_extent(iv) for iv in s[stats[0]].op.reduce_axis)
    if s[anchor].op.reduce_axis:
        parts = parts + [anchor]
    else:
        s[anchor].compute_inline()
    _rows(s, out, lead, parts, n)
    return s


# ------------------------------------------------------------------------------ entry point

#: tag -> schedule(s, out) of the ops that are not injective.
SCHEDULES = {"reduce": schedule_reduce, "softmax": schedule_softmax, "norm": schedule_norm,
             "capsule": schedule_capsule_gpu}


def _heavy_anchor(s, out):
    """The matmul or convolution reduction behind ``out`` through stages that only map
    elements (epilogues, layout views), which are inlined; None when there is none."""
    found, between, stack = [], [], list(s[out].op.input_tensors)
    while stack:
        st = s[stack.pop()]
        if st.is_placeholder or st.is_output or st.attach_type == "inline":
            continue
        if st.op.reduce_axis:
            if st.op.tag in MATMUL_TAGS + (CONV_ANCHOR,) and st not in found:
                found.append(st)
            continue
        between.append(st)
        stack.extend(st.op.input_tensors)
    if len(found) != 1:
        return None
    for st in between:
        st.compute_inline()
    return found[0].op.output(0)


def heavy_anchor(s, out):
    """The matmul or convolution reduction ``out`` is (or is an elementwise epilogue of, whose
    stages between are then inlined); None when there is none."""
    if s[out].op.reduce_axis and s[out].op.tag in MATMUL_TAGS + (CONV_ANCHOR,):
        return out
    return _heavy_anchor(s, out)


def _schedule_heavy(s, anchor, out):
    if anchor.op.tag == CONV_ANCHOR:
        return schedule_conv(s, anchor, out)
    return schedule_matmul(s, anchor, out)


def schedule_for_gpu(outs):
    """A schedule of the TE graph ending in ``outs`` (a tensor or a list) with the default GPU
    schedules applied: each output becomes one kernel, by its tag (see the module docstring);
    a matmul or convolution followed by elementwise ops is fused with them. Intermediates no
    schedule placed are inlined; one that cannot be (a reduction another output does not
    contain) makes the build ask for it as an argument."""
    outs = [outs] if isinstance(outs, Tensor) else list(outs)
    s = te.create_schedule([o.op for o in outs])
    for o in outs:
        st = s[o]
        tag = st.op.tag
        if st.op.reduce_axis and tag in MATMUL_TAGS + (CONV_ANCHOR,):
            _schedule_heavy(s, st.op.output(0), st.op.output(0))
            continue
        anchor = _heavy_anchor(s, o) if tag in CONV_TAGS or is_injective(tag) else None
        row = _row_anchor(s, o) if anchor is None and is_injective(tag) else None
        if anchor is not None:
            _schedule_heavy(s, anchor, st.op.output(0))
        elif row is not None and row.op.tag == "capsule":
            schedule_capsule_gpu(s, row, st.op.output(0))
        elif row is not None:
            schedule_row_epilogue(s, row, st.op.output(0))
        elif tag in SCHEDULES:
            SCHEDULES[tag](s, st.op.output(0))
        elif st.op.reduce_axis:
            schedule_reduce(s, st.op.output(0))
        else:
            schedule_injective(s, st.op.output(0))
    return inline_leftovers(s)


def inline_leftovers(s):
    """Inline the elementwise intermediates no schedule placed (a template that schedules
    one op by hand ends the same way ``schedule_for_gpu`` does)."""
    for st in s.stages:
        if not st.is_placeholder and not st.is_output and st.attach_type == "root" and \
                not st.op.reduce_axis and not st.relations and not st.iter_var_attrs:
            st.compute_inline()
    return s
