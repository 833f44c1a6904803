"""Default CPU schedules for matmul/dense, convolutions, pooling and resize.

Every ``schedule_<op>(s, anchor, out)`` works inside a larger schedule ``s``: ``anchor`` is the
tensor the op returned and ``out`` the last tensor of its group -- the anchor itself, or an
elementwise epilogue after it (bias add, ReLU, folded batch-norm scale/shift, residual add).
When ``out`` has the anchor's shape and every compute between them is injective, the epilogue
is inlined and ``out`` is tiled so that the reduction runs, tile by tile, into a small local
buffer (kept in vector registers) right before its epilogue writes the result (TVM's
"schedule the output, compute_at the anchor" pattern). Otherwise the anchor is scheduled on
its own and the epilogue is left to the caller.

The micro-kernels keep up to 12 accumulators of 8 float lanes in AVX2 registers (the BLIS Zen
shape: 12 accumulators + operands fit the 16 ymm registers):

- matmul / dense (4+ rows): 6 rows x 16 columns of C, B packed into 16-wide column panels;
  matrix-vector products: 64-column blocks (B rows contiguous) or 4 outputs x 16 partial sums
  (rfactor; W rows contiguous, the batch-1 classifier);
- conv2d NCHWc: up to 6 output columns x 16 output channels (12 x 8 for 8-channel blocks);
  the input is packed to NCHW[x]c, the kernel to OIHW[i][o], and the result is unpacked by the
  epilogue at the tile, so NCHW stays at the op boundary. Small planes (<= 196 pixels)
  accumulate the whole plane of a channel block in L1 with the input channels blocked outside;
- 1x1 conv: 6 output channels x 16 pixels of the flattened image (a matmul over channels on
  NCHW itself), computed into a few output rows at a time;
- depthwise conv: 4 output rows x 8 or 16 output columns of one channel, over a padded,
  stride-phase-split copy of that channel built in the same parallel iteration.

Tails (sizes the tiles do not divide) are guarded; loop partitioning peels them off, so the
main loops stay guard-free and vectorised. Loops run in parallel only with enough work
(``_work_ok``).
"""
import math

from ..te.tensor import ComputeOp
from .conv import find_anchor

# ------------------------------------------------------------------------- group helpers

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


INJECTIVE = ("elemwise", "broadcast", "injective")


def _inlinable(s, t):
    """An injective compute nobody has scheduled yet (so inlining it undoes nothing)."""
    st = s[t]
    return isinstance(t.op, ComputeOp) and not t.op.reduce_axis and \
        t.op.tag in INJECTIVE and not st.is_output and st.attach_type == "root" and \
        not st.relations and not st.iter_var_attrs


def _inline_injective_inputs(s, t):
    """Inline the unscheduled injective computes feeding t (a pad or pack stage reads the
    producer directly), recursively."""
    for x in t.op.input_tensors:
        if _inlinable(s, x):
            s[x].compute_inline()
            _inline_injective_inputs(s, x)


# ------------------------------------------------------------------------------ matmul

MATMUL_TAGS = ("matmul", "dense")


def _find_reduction(t, tags):
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


def schedule_matmul(s, anchor, out=None, mr=6, nr=16):
    """matmul / batch_matmul / dense / gemm (and an elementwise epilogue).

    Row-blocked products (at least 4 rows): an mr x nr tile of the result accumulates in 12
    vector registers over the whole K loop, reading the packed 16-column panels of B; the tile
    is computed at the output's tile, so the epilogue (bias, alpha/beta, C) is applied on the
    way out. Matrix-vector products (fewer rows) skip the packing: along contiguous B rows
    they vectorise the columns (64 per tile); along contiguous W rows (dense) they vectorise
    the reduction into 16 partial sums (rfactor) for 4 outputs at a time.
    """
    out = anchor if out is None else out
    C = _find_reduction(anchor, MATMUL_TAGS)
    if C is None:
        raise ValueError(f"schedule_matmul: {anchor.name!r} is not (the result of) a matmul, "
                         "batch_matmul, dense or gemm")
    st = fuse_epilogue(s, C, out) if out is not C else s[C]
    if st is None:
        # the epilogue changes the shape (a view of a 1-D product): schedule C alone and
        # leave the views to inline into out where they can
        st = s[C]
        out = C
    bp = next(t for t in C.op.input_tensors if getattr(t.op, "tag", None) == "matmul_pack")
    for t in C.op.input_tensors:
        if t is not bp and _inlinable(s, t):
            s[t].compute_inline()
    M = C.op.attrs["M"]
    b_major = C.op.attrs.get("b_major", "j")
    if M >= 4:
        _schedule_matmul_packed(s, C, out, bp, mr, nr)
    elif b_major == "j":
        s[bp].compute_inline()
        _schedule_matvec_cols(s, C, out, M)
    else:
        s[bp].compute_inline()
        _schedule_matvec_rows(s, C, out, M)
    return s


schedule_dense = schedule_matmul
schedule_batch_matmul = schedule_matmul
schedule_gemm = schedule_matmul


def _parallel_choice(batch, shape, jo, N, nr, work):
    """The loop to run in parallel: a batch dimension, else the column-panel loop when its
    guard-free main part is long enough for loop partitioning to peel the tail panel (a
    parallel loop is only cut with 8+ iterations in its main part), else none (small work)."""
    if not _work_ok(work):
        return None
    big = [a for a, n in zip(batch, shape) if n > 1]
    if big:
        return big[0]
    panels = -(-N // nr)
    if N % nr == 0 or panels > 8:
        return jo
    return None


def _local_accumulator(s, C, out):
    """The stage that accumulates C's reduction in a small local buffer at the output tile:
    a cache_write of C when C is the group's output, else C itself (an epilogue reads it)."""
    if out is C:
        return s.cache_write(C, "local")
    s[C].set_scope("local")
    return C


def _schedule_matmul_packed(s, C, out, bp, mr, nr):
    M = C.op.attrs["M"]
    mr = min(mr, M)
    CC = _local_accumulator(s, C, out)
    st = s[out]
    *batch, i, j = st.op.axis
    io, ii = st.split(i, factor=mr)
    jo, ji = st.split(j, factor=nr)
    st.reorder(*batch, jo, io, ii, ji)
    st.unroll(ii)
    st.vectorize(ji)
    par = _parallel_choice(batch, out.shape, jo, C.op.attrs["N"], nr,
                           M * C.op.attrs["N"] * C.op.attrs["K"])
    if par is not None:
        st.parallel(par)
    cs = s[CC]
    cs.compute_at(st, io)
    *cb, ci, cj = cs.op.axis
    (k,) = cs.op.reduce_axis
    cs.reorder(*cb, k, ci, cj)
    cs.unroll(ci)
    cs.vectorize(cj)
    ps = s[bp]
    if ps.attach_type == "root" and not ps.is_output:
        _inline_injective_inputs(s, bp)
        ax = ps.op.axis
        outer = ps.fuse(*ax[:-2]) if len(ax) > 3 else ax[0]
        if _work_ok(_macs(C)):
            ps.parallel(outer)
        ps.vectorize(ax[-1])


def _schedule_matvec_cols(s, C, out, M, cols=512, vec=64):
    """Few rows, B rows contiguous along the output columns: every thread owns a block of
    ``cols`` columns whose accumulators stay in L1 while the rows of B stream past, k outer
    (sequential reads of B)."""
    CC = _local_accumulator(s, C, out)
    st = s[out]
    *batch, i, j = st.op.axis
    jo, ji = st.split(j, factor=cols)
    st.reorder(*batch, jo, i, ji)
    _, jii = st.split(ji, factor=vec)
    st.vectorize(jii)
    big = [a for a, n in zip(batch, out.shape) if n > 1]
    if _work_ok(_macs(C)):
        st.parallel(big[0] if big else jo)
    cs = s[CC]
    cs.compute_at(st, jo)
    *cb, ci, cj = cs.op.axis
    (k,) = cs.op.reduce_axis
    cjo, cji = cs.split(cj, factor=vec)
    cs.reorder(*cb, k, ci, cjo, cji)
    cs.unroll(ci)
    cs.vectorize(cji)


def _schedule_matvec_rows(s, C, out, M, kv=16):
    """Few rows, W rows contiguous along K (dense): 16 partial sums per output (rfactor),
    4 outputs at a time sharing the loads of x."""
    rows = max(1, 4 // M)
    K = C.op.attrs["K"]
    kv = min(kv, K)
    cst = s[C]
    (k,) = cst.op.reduce_axis
    _, ki = cst.split(k, factor=kv)
    RF = s.rfactor(C, ki, factor_axis=len(C.op.axis))
    st = s[out]
    if out is not C:
        s[C].set_scope("local")
    *batch, i, j = st.op.axis
    if out is C:
        (kr,) = st.op.reduce_axis
        jo, ji = st.split(j, factor=rows)
        st.reorder(*batch, jo, i, ji, kr)
        st.unroll(ji)
    else:
        jo, ji = st.split(j, factor=rows)
        st.reorder(*batch, jo, i, ji)
        cs = s[C]
        cs.compute_at(st, jo)
        *cb, ci, cj = cs.op.axis
        (kr,) = cs.op.reduce_axis
        cs.reorder(*cb, ci, cj, kr)
        cs.unroll(cj)
    big = [a for a, n in zip(batch, out.shape) if n > 1]
    if _work_ok(M * C.op.attrs["N"] * K):
        st.parallel(big[0] if big else jo)
    rs = s[RF]
    rs.compute_at(st, jo)
    rs.set_scope("local")
    *rb, ri, rj, kf = rs.op.axis
    (rko,) = rs.op.reduce_axis
    rs.reorder(*rb, rko, ri, rj, kf)
    rs.unroll(ri)
    rs.unroll(rj)
    rs.vectorize(kf)


# ------------------------------------------------------------------------------ conv2d

def schedule_conv2d(s, anchor, out=None):
    """Schedule a conv2d / conv1d / depthwise / conv_transpose2d result (and its epilogue)."""
    out = anchor if out is None else out
    conv = find_anchor(anchor)
    if conv is None:
        raise ValueError(f"schedule_conv2d: {anchor.name!r} is not the result of a tensorc "
                         "conv op (no internal anchor compute found)")
    st = fuse_epilogue(s, anchor, out)
    if st is None:
        out = anchor
        st = s[anchor]
    algo = conv.op.attrs["algo"]
    if algo == "nchwc":
        _schedule_nchwc(s, conv, out)
    elif algo == "1x1":
        _schedule_1x1(s, conv, out)
    elif algo == "spatial":
        _schedule_depthwise(s, conv, out)
    else:  # pragma: no cover
        raise ValueError(f"schedule_conv2d: unknown algorithm {algo!r}")
    return s


schedule_depthwise_conv2d = schedule_conv2d
schedule_conv2d_transpose = schedule_conv2d
schedule_conv1d = schedule_conv2d


def _split_out_axes(st):
    axes = list(st.op.axis)
    if len(axes) == 4:
        return axes
    n, c, x = axes
    return [n, c, None, x]


def _nchwc_regn(ow, ocb):
    """Output columns per register tile: ocb/8 * regn accumulators (at most 12 of the 16 ymm
    registers), preferring a tile that divides the width (a tail tile costs a full pass)."""
    cap = 6 if ocb == 16 else 12 if ocb == 8 else 8
    if ow <= cap:
        return ow
    best = max(range(max(1, cap // 2), cap + 1),
               key=lambda r: (ow / (-(-ow // r) * r), r))
    return best


#: output planes up to this many pixels are accumulated whole (per 16-channel block) with the
#: input channels blocked outside, so each kernel block is reused by every pixel from L1
PLANE_PIXELS = 196
PLANE_IC = 32


def _schedule_nchwc(s, conv, out):
    info = conv.op.attrs
    ocb = info["oc_bn"]
    dv, kv = conv.op.input_tensors
    st = s[out]
    n, c, y, x = _split_out_axes(st)
    OH, OW = conv.shape[2], conv.shape[3]
    icb = info["ic_bn"]
    icblocks = int(conv.op.reduce_axis[0].dom.extent.value)
    if OH * OW <= PLANE_PIXELS and icblocks * icb >= 2 * PLANE_IC:
        _schedule_nchwc_plane(s, conv, out, st, n, c, y, x, ocb, icb, dv, kv)
        return
    regn = _nchwc_regn(conv.shape[3], ocb)
    co, ci = st.split(c, factor=ocb)
    xo, xi = st.split(x, factor=regn)
    order = [n, co] + ([y] if y is not None else []) + [xo, ci, xi]
    st.reorder(*order)
    st.unroll(ci)
    st.unroll(xi)
    par = st.fuse(co, y) if y is not None else co
    if _work_ok(_macs(conv)):
        st.parallel(par)
    cs = s[conv]
    cs.compute_at(st, xo)
    cs.set_scope("local")
    cn, cc, cy, cx, cb = cs.op.axis
    r_ico, r_kh, r_kw, r_ici = cs.op.reduce_axis
    cs.reorder(cn, cc, cy, r_ico, r_kh, r_kw, r_ici, cx, cb)
    cs.unroll(cx)
    cs.vectorize(cb)
    _pack_stages_root(s, dv, kv)


def _macs(t):
    """Multiply-adds of a reduction compute (output elements x reduction extent)."""
    return math.prod(t.shape) * math.prod(int(r.dom.extent.value) for r in t.op.reduce_axis)


def _divisor_near(n, target):
    """The divisor of n closest to target (ties: the larger)."""
    divs = [d for d in range(1, n + 1) if n % d == 0]
    return min(divs, key=lambda d: (abs(d - target), -d))


def _pack_stages_root(s, dv, kv):
    """The input and kernel packing computes at the root, outer loops fused in parallel."""
    for t, nfuse in ((dv, 3), (kv, 2)):
        if isinstance(t.op, ComputeOp) and s[t].attach_type == "root" and \
                not s[t].relations:
            _inline_injective_inputs(s, t)
            a = s[t].op.axis
            fused = s[t].fuse(*a[:nfuse])
            if _work_ok(math.prod(t.shape)):
                s[t].parallel(fused)


def _schedule_nchwc_plane(s, conv, out, st, n, c, y, x, ocb, icb, dv, kv):
    """Small output planes: the whole plane of one 16-channel block accumulates in L1 while
    the input channels run in blocks of PLANE_IC outside the pixel loops, so each kernel block
    (16 oc x PLANE_IC ic x KH x KW) is read from L2 once and reused by every pixel."""
    OW = conv.shape[3]
    regn = _nchwc_regn(OW, ocb)
    co, ci = st.split(c, factor=ocb)
    st.reorder(n, co, *([y] if y is not None else []), x, ci)
    if _work_ok(_macs(conv)):
        st.parallel(co)
    cs = s[conv]
    cs.compute_at(st, co)
    cs.set_scope("local")
    cn, cc, cy, cx, cb = cs.op.axis
    r_ico, r_kh, r_kw, r_ici = cs.op.reduce_axis
    io, ii = cs.split(r_ico, factor=max(1, PLANE_IC // icb))
    cxo, cxi = cs.split(cx, factor=regn)
    cs.reorder(cn, cc, io, cy, cxo, ii, r_kh, r_kw, r_ici, cxi, cb)
    cs.unroll(cxi)
    cs.vectorize(cb)
    _pack_stages_root(s, dv, kv)


def _schedule_1x1(s, conv, out, mr=6, nr=16):
    """1x1 conv = matmul W[OC, IC] x X[IC, P] over flattened pixels.

    Three levels: ``out`` (the epilogue) is tiled by mr output channels x ry output rows;
    the anchor is computed at that tile into a small buffer (mr x ry*OW pixels, in L1),
    in 16-pixel chunks whose mr x 16 accumulators (cache_write "local") live in registers.
    """
    OH, OW = conv.op.attrs["out_hw"]
    _, OC, P = conv.shape
    IC = int(conv.op.reduce_axis[0].dom.extent.value)
    st = s[out]
    n, c, y, x = _split_out_axes(st)
    if y is None:
        ry = 1
    else:
        ry = _divisor_near(OH, max(1, 320 // OW))
    cl = s.cache_write(conv, "local")
    co, ci = st.split(c, factor=mr)
    if y is not None:
        yo, yi = st.split(y, factor=ry)
    else:
        yo, yi = None, None
    if OW > 16:
        xo, xi = st.split(x, factor=16)
        xs = [xo, xi]
    else:
        xi = x
        xs = [x]
    # Which operand to keep in cache: with the pixel loop outside, every pixel tile streams
    # all the weights; with the channel loop outside, every channel tile streams the input.
    wbytes = OC * IC * 4
    xbytes = IC * P * 4
    ntiles = OH // ry
    pixel_outer = ntiles >= 2 and (wbytes <= 256 * 1024 or wbytes <= xbytes)
    inner = [ci] + ([yi] if yi is not None else []) + xs
    if pixel_outer:
        st.reorder(n, yo, co, *inner)
        attach, par = co, yo
    else:
        st.reorder(n, co, *([yo] if yo is not None else []), *inner)
        attach = yo if yo is not None else co
        par = co
    st.vectorize(xi)
    if _work_ok(_macs(conv)):
        st.parallel(par)
    cs = s[conv]
    cs.compute_at(st, attach)
    cs.set_scope("local")
    cn, cc, cp = cs.op.axis
    po, pi = cs.split(cp, factor=nr)
    cs.reorder(cn, po, cc, pi)
    cs.unroll(cc)
    cs.vectorize(pi)
    ls = s[cl]
    ls.compute_at(cs, po)
    ln, lc, lp = ls.op.axis
    (k,) = ls.op.reduce_axis
    ls.reorder(ln, k, lc, lp)
    ls.unroll(lc)
    ls.vectorize(lp)
    for t in conv.op.input_tensors:
        if isinstance(t.op, ComputeOp) and s[t].attach_type == "root" \
                and t.op.tag == "injective":
            _inline_injective_inputs(s, t)
            a = s[t].op.axis
            fused = s[t].fuse(a[0], a[1])
            if _work_ok(math.prod(t.shape)):
                s[t].parallel(fused)


def _schedule_depthwise(s, conv, out, ry=4):
    info = conv.op.attrs
    vx = info["vx"]
    st = s[out]
    n, c, y, x = _split_out_axes(st)
    OH = conv.shape[2]
    xo, xi = st.split(x, factor=vx)
    if y is not None and OH > 1:
        yo, yi = st.split(y, factor=min(ry, OH))
        st.reorder(n, c, yo, xo, yi, xi)
        st.unroll(yi)
    else:
        st.reorder(n, c, *([y] if y is not None else []), xo, xi)
    st.vectorize(xi)
    nc = st.fuse(n, c)
    if _work_ok(_macs(conv)):
        st.parallel(nc)
    cs = s[conv]
    cs.compute_at(st, xo)
    cs.set_scope("local")
    cn, cc, cy, cx = cs.op.axis
    kh, kw = cs.op.reduce_axis
    cs.reorder(cn, cc, kh, kw, cy, cx)
    cs.unroll(kh)
    cs.unroll(kw)
    cs.unroll(cy)
    cs.vectorize(cx)
    (dp,) = [t for t in conv.op.input_tensors if getattr(t.op, "tag", None) == "injective"]
    if s[dp].attach_type == "root":
        _inline_injective_inputs(s, dp)
        s[dp].compute_at(st, nc)


# ------------------------------------------------------------------------------ pooling

def _work_ok(n):
    """Enough work (output elements x taps) to be worth waking the thread pool."""
    return n >= 1 << 15


def schedule_pool(s, anchor, out=None):
    """Window and global pooling: one (n, c) plane per parallel iteration; the padded plane is
    built inside that iteration; window pools vectorise 8 output columns (taps unrolled)."""
    out = anchor if out is None else out
    R = _find_reduction(anchor, ("pool",))
    if R is None:
        raise ValueError(f"schedule_pool: {anchor.name!r} is not the result of a pooling op")
    st = fuse_epilogue(s, anchor, out)
    if st is None:
        out, st = anchor, s[anchor]
        if anchor is not R:
            fused = fuse_epilogue(s, R, anchor)
            st = fused if fused is not None else st
    inputs = R.op.input_tensors
    RC = _local_accumulator(s, R, out)
    st = s[out]
    n, c, *sp = list(st.op.axis)
    nc = st.fuse(n, c)
    work = math.prod(out.shape) * max(1, math.prod(
        int(r.dom.extent.value) for r in R.op.reduce_axis))
    if _work_ok(work):
        st.parallel(nc)
    if R.op.attrs.get("global"):
        s[RC].compute_at(st, nc)
        R = RC
    else:
        x = sp[-1]
        xo, xi = st.split(x, factor=8)
        st.vectorize(xi)
        s[RC].compute_at(st, xo)
        rn, rc, *rsp = s[RC].op.axis
        red = list(s[RC].op.reduce_axis)
        s[RC].reorder(rn, rc, *rsp[:-1], *red, rsp[-1])
        for r in red:
            if int(r.dom.extent.value) <= 8:
                s[RC].unroll(r)
        s[RC].vectorize(rsp[-1])
        R = RC
    for t in inputs:
        if isinstance(t.op, ComputeOp) and t.op.tag == "injective" and \
                s[t].attach_type == "root" and not s[t].is_output:
            _inline_injective_inputs(s, t)
            s[t].compute_at(st, nc)
    return s


# ------------------------------------------------------------------------------- resize

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
    if _work_ok(math.prod(out.shape)):
        st.parallel(outer)
    return s


# ------------------------------------------------------------------------ dispatching

def _anchor_schedules():
    g = globals()
    return {"conv2d_nchw": schedule_conv2d, "depthwise_conv2d_nchw": schedule_conv2d,
            "conv2d_transpose": schedule_conv2d, "matmul": g.get("schedule_matmul"),
            "dense": g.get("schedule_dense"), "pool": g.get("schedule_pool"),
            "resize": g.get("schedule_resize")}


#: anchor tag -> schedule function(s, anchor, out)
ANCHOR_TAGS = ("conv2d_nchw", "depthwise_conv2d_nchw", "conv2d_transpose", "matmul", "dense",
               "pool", "resize")


def find_group_anchor(out):
    """The nearest tensor with an anchor tag that ``out`` reaches through injective computes."""
    stack, seen = [out], set()
    while stack:
        t = stack.pop()
        if t.op in seen:
            continue
        seen.add(t.op)
        tag = getattr(t.op, "tag", None)
        if tag in ANCHOR_TAGS:
            return t
        if isinstance(t.op, ComputeOp) and not t.op.reduce_axis:
            stack.extend(t.op.input_tensors)
    return None


def schedule_group(s, anchor, out=None):
    """Apply the default schedule of ``anchor``'s op (by tag) with epilogue ``out``."""
    fn = _anchor_schedules().get(anchor.op.tag)
    if fn is None:
        raise ValueError(f"schedule_group: no schedule for tag {anchor.op.tag!r} of "
                         f"{anchor.name!r}; known: {ANCHOR_TAGS}")
    fn(s, anchor, out)
    return s


def create_schedule(out):
    """A schedule of the graph ending in ``out`` with its anchor's default schedule applied."""
    from .. import te
    s = te.create_schedule(out.op)
    anchor = find_group_anchor(out)
    if anchor is None:
        raise ValueError(f"create_schedule: {out.name!r} has no matmul/conv/pool/resize anchor")
    return schedule_group(s, anchor, out)


__all__ = [
    "ANCHOR_TAGS",
    "create_schedule",
    "find_group_anchor",
    "fuse_epilogue",
    "schedule_batch_matmul",
    "schedule_conv1d",
    "schedule_conv2d",
    "schedule_conv2d_transpose",
    "schedule_dense",
    "schedule_depthwise_conv2d",
    "schedule_gemm",
    "schedule_group",
    "schedule_matmul",
    "schedule_pool",
    "schedule_resize",
]
