"""Default CPU schedules of pooling and resize: one (n, c) plane, or one output row, per
parallel iteration; a window pool takes a native vector of output columns, resize 8."""
import math

from ..te.tensor import ComputeOp
from .schedule_cpu import vector_lanes
from .schedule_nn_fusion import (
    find_reduction,
    fuse_epilogue,
    inline_injective_inputs,
    local_accumulator,
    work_ok,
)


def schedule_pool(s, anchor, out=None):
    """Window and global pooling: one (n, c) plane per parallel iteration. Window pools
    vectorise a native vector of output columns (taps unrolled; a strided window reads each
    tap as a span and a shuffle) and read the input through its padding (inlined: loop
    partitioning leaves the interior without selects). ResNet-18's 3x3 stride-2 max pool on
    the Zen 5: 0.186 ms with 8 columns and a padded copy of each plane, 0.162 with 16
    columns, 0.124 with 16 and the padding inlined (benchmarks/RESULTS.md, "Twelfth
    session"). A global pool's padded input (there is none in practice) is built per plane."""
    out = anchor if out is None else out
    R = find_reduction(anchor, ("pool",))
    if R is None:
        raise ValueError(f"schedule_pool: {anchor.name!r} is not the result of a pooling op")
    st = fuse_epilogue(s, anchor, out)
    if st is None:
        out, st = anchor, s[anchor]
        if anchor is not R:
            fused = fuse_epilogue(s, R, anchor)
            st = fused if fused is not None else st
    inputs = R.op.input_tensors
    is_global = R.op.attrs.get("global")
    RC = local_accumulator(s, R, out)
    st = s[out]
    n, c, *sp = list(st.op.axis)
    nc = st.fuse(n, c)
    work = math.prod(out.shape) * max(1, math.prod(
        int(r.dom.extent.value) for r in R.op.reduce_axis))
    if work_ok(work):
        st.parallel(nc)
    if is_global:
        s[RC].compute_at(st, nc)
    else:
        x = sp[-1]
        xo, xi = st.split(x, factor=vector_lanes(out.dtype))
        st.vectorize(xi)
        s[RC].compute_at(st, xo)
        rn, rc, *rsp = s[RC].op.axis
        red = list(s[RC].op.reduce_axis)
        s[RC].reorder(rn, rc, *rsp[:-1], *red, rsp[-1])
        for r in red:
            if int(r.dom.extent.value) <= 8:
                s[RC].unroll(r)
        s[RC].vectorize(rsp[-1])
    for t in inputs:
        if isinstance(t.op, ComputeOp) and t.op.tag == "injective" and \
                s[t].attach_type == "root" and not s[t].is_output:
            inline_injective_inputs(s, t)
            if not is_global:
                s[t].compute_inline()
                continue
            s[t].compute_at(st, nc)
            row = s[t].op.axis[-1]
            if int(row.dom.extent.value) >= 8:
                _, lanes = s[t].split(row, factor=8)
                s[t].vectorize(lanes)
    return s


def schedule_resize(s, anchor, out=None):
    """Resize (and its epilogue): rows in parallel, 8 output columns per vector (gathers)."""
    out = anchor if out is None else out
    st = fuse_epilogue(s, anchor, out)
    if st is None:
        out, st = anchor, s[anchor]
    n, c, *sp = list(st.op.axis)
    outer = st.fuse(n, c, *sp[:-1])
    x = sp[-1]
    if out.shape[-1] >= 8:
        _, xi = st.split(x, factor=8)
        st.vectorize(xi)
    if work_ok(math.prod(out.shape)):
        st.parallel(outer)
    return s
