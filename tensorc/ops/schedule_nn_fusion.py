"""What the anchor schedules of ``schedule_nn`` share: fusing an anchor with its epilogue.

Every ``schedule_<op>(s, anchor, out)`` works inside a larger schedule ``s``: ``anchor`` is the
tensor the op returned and ``out`` the last tensor of its group -- the anchor itself, or an
elementwise epilogue after it (bias add, ReLU, folded batch-norm scale/shift, residual add).
When ``out`` has the anchor's shape and every compute between them is injective, the epilogue
is inlined (``fuse_epilogue``) and ``out`` is tiled so that the reduction runs, tile by tile,
into a small local buffer (kept in vector registers) right before its epilogue writes the
result (TVM's "schedule the output, compute_at the anchor" pattern). Otherwise the anchor is
scheduled on its own and the epilogue is left to the caller.

Loops run in parallel only with enough work (``work_ok``: at least PARALLEL_WORK multiply-adds
or taps); tests lower the threshold to take the parallel paths at small sizes.
"""
import math

from ..te.tensor import ComputeOp
from .util import INJECTIVE_TAGS

#: Work (output elements x reduction extent) below which waking the thread pool costs more
#: than it saves.
PARALLEL_WORK = 1 << 15


def work_ok(n):
    """Enough work (output elements x taps) to be worth waking the thread pool."""
    return n >= PARALLEL_WORK


def macs(t):
    """Multiply-adds of a reduction compute (output elements x reduction extent)."""
    return math.prod(t.shape) * math.prod(int(r.dom.extent.value) for r in t.op.reduce_axis)


def _epilogue_ops(anchor, out):
    """Ops on the paths from anchor to out, excluding the anchor (out included)."""
    reaches = {anchor.op: True}
    stack = [(out.op, False)]
    while stack:    # iterative post-order: graphs can be deeper than Python's recursion limit
        op, expanded = stack.pop()
        if op in reaches:
            continue
        if not expanded:
            stack.append((op, True))
            stack.extend((t.op, False) for t in op.input_tensors if t.op not in reaches)
        else:
            reaches[op] = any(reaches.get(t.op, False) for t in op.input_tensors)
    if not reaches[out.op]:
        raise ValueError(f"schedule: output {out.name!r} does not depend on anchor "
                         f"{anchor.name!r}")
    return [op for op, r in reaches.items() if r and op is not anchor.op]


def fuse_epilogue(s, anchor, out):
    """Inline the anchor's result view and the elementwise ops after it into ``out``.

    Returns the stage to tile (out's stage), or None when out cannot be fused with the anchor
    (different shape, a reduction in between, or the anchor is itself an output) -- then the
    caller should schedule ``anchor`` alone.
    """
    if out.op is anchor.op:
        return s[out]
    if tuple(out.shape) != tuple(anchor.shape):
        return None
    ops = _epilogue_ops(anchor, out)
    for op in ops:
        if not isinstance(op, ComputeOp) or op.reduce_axis:
            return None
    if s[anchor].is_output:
        return None
    for op in ops:
        if op is not out.op and s[op].is_output:
            return None
    for op in ops:
        if op is not out.op:
            s[op].compute_inline()
    if not anchor.op.reduce_axis:
        s[anchor].compute_inline()
    return s[out]


def inlinable(s, t):
    """An injective compute nobody has scheduled yet (so inlining it undoes nothing)."""
    st = s[t]
    return isinstance(t.op, ComputeOp) and not t.op.reduce_axis and \
        t.op.tag in INJECTIVE_TAGS and not st.is_output and st.attach_type == "root" and \
        not st.relations and not st.iter_var_attrs


def inline_injective_inputs(s, t):
    """Inline the unscheduled injective computes feeding t (a pad or pack stage reads the
    producer directly), recursively."""
    for x in t.op.input_tensors:
        if inlinable(s, x):
            s[x].compute_inline()
            inline_injective_inputs(s, x)


def find_reduction(t, tags):
    """t itself if it is a reduction with one of ``tags``, else the nearest such compute that
    t reads through injective computes."""
    stack, seen = [t], set()
    while stack:
        x = stack.pop()
        if x.op in seen or not isinstance(x.op, ComputeOp):
            continue
        seen.add(x.op)
        if x.op.tag in tags and x.op.reduce_axis:
            return x
        if not x.op.reduce_axis:
            stack.extend(x.op.input_tensors)
    return None


def local_accumulator(s, C, out):
    """The stage that accumulates C's reduction in a small local buffer at the output tile:
    a cache_write of C when C is the group's output, else C itself (an epilogue reads it)."""
    if out is C:
        return s.cache_write(C, "local")
    s[C].set_scope("local")
    return C
