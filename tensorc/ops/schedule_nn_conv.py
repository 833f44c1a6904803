"""Default CPU schedules of the convolutions (conv2d, conv1d, depthwise, conv_transpose2d).

``ops.conv`` lays each convolution out for one of three kernels (its ``attrs["algo"]``):

- NCHWc: as many output columns x 16 output channels as the vector registers hold (6 with
  AVX2, 28 with AVX-512; ``nchwc_regn_cap``); the input is packed to NCHW[x]c, the kernel to
  OIHW[i][o], and the result is unpacked by the epilogue at the tile, so NCHW stays at the op
  boundary. Small planes (<= PLANE_PIXELS pixels) accumulate the whole plane of a channel
  block in L1 with the input channels blocked outside, prefetching the next kernel block;
- 1x1: 6 (AVX2) or 12 (AVX-512) output channels x 16 pixels of the flattened image (a matmul
  over channels on NCHW itself), computed into a few output rows at a time;
- depthwise: 4 output rows x 8 or 16 output columns of one channel, over a padded,
  stride-phase-split copy of that channel built in the same parallel iteration;
- Winograd F(4x4, 3x3) (``ops.conv_winograd``): three parallel phases -- the input transform
  with channels in vector lanes, 36 matrix products in 6 x 16 register tiles, the inverse
  transform (with the epilogue) per 4x4 output tile and 16 output channels.

Tails (sizes the tiles do not divide) are guarded; loop partitioning peels them off, so the
main loops stay guard-free and vectorised.
"""
import math

from ..te.tensor import ComputeOp
from .conv import find_anchor
from .conv_winograd import TILE
from .schedule_cpu import tile_rows, vector_lanes, vector_registers
from .schedule_nn_fusion import fuse_epilogue, inline_injective_inputs, macs, work_ok


def schedule_conv2d(s, anchor, out=None, **knobs):
    """Schedule a conv2d / conv1d / depthwise / conv_transpose2d result (and its epilogue).

    ``knobs`` are the tuning knobs of the op's kernel (``ops.templates``), keyword arguments of
    ``_schedule_nchwc``, ``_schedule_1x1`` or ``_schedule_depthwise``; none gives the default
    schedule, and one the chosen kernel does not take is a TypeError.
    """
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
        _schedule_nchwc(s, conv, out, **knobs)
    elif algo == "1x1":
        _schedule_1x1(s, conv, out, **knobs)
    elif algo == "spatial":
        _schedule_depthwise(s, conv, out, **knobs)
    elif algo == "winograd":
        _schedule_winograd(s, anchor, out, **knobs)
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


def nchwc_regn_cap(ocb, dtype="float32"):
    """The most output columns a register tile of ``ocb`` channels holds: its accumulators
    (ceil(ocb / lanes) vectors per column) take all vector registers but four, which hold the
    kernel vector and the loads in flight. 6 with AVX2 and 16-channel blocks (two ymm per
    column), 28 with AVX-512 (one zmm): at 6 columns an AVX-512 tile has too few independent
    FMA chains to cover two FMA units of latency 4, and 3x3 layers ran at 63% of the FMA peak
    instead of 86% (benchmarks/RESULTS.md, "Twelfth session")."""
    per_column = -(-ocb // vector_lanes(dtype))
    return max(1, (vector_registers() - 4) // per_column)


def register_tile(n, cap):
    """Rows of a register tile over an axis of n: the full tile (``cap``) unless its tail
    wastes more than 10% of the axis: a short tile has too few accumulators to hide the FMA
    latency, so a 3x3 layer 56 or 28 columns wide runs faster in AVX2 tiles of 6 with a tail
    than in tiles of 4 that divide the row (see benchmarks/RESULTS.md, "ResNet-18 per layer").
    Otherwise the tile that wastes least (ties: the wider), at least half the full one."""
    if n <= cap:
        return n
    if n / (-(-n // cap) * cap) >= 0.9:
        return cap
    return max(range(max(1, cap // 2), cap + 1), key=lambda r: (n / (-(-n // r) * r), r))


def _nchwc_regn(ow, ocb):
    """Output columns per register tile of the NCHWc kernel."""
    return register_tile(ow, nchwc_regn_cap(ocb))


def conv1x1_mr_cap():
    """Output channels per register tile of the 1x1 kernel (16-pixel vectors): ``tile_rows``.
    On the Zen 5, 12 beat 6 on all seven MobileNetV2 1x1 shapes measured (1.1-1.6x)."""
    return tile_rows(vector_registers())


def conv1x1_mr(oc):
    """The 1x1 kernel's default output channels per tile, for ``oc`` output channels."""
    return register_tile(oc, conv1x1_mr_cap())


#: output planes up to this many pixels are accumulated whole (per 16-channel block) with the
#: input channels blocked outside, so each kernel block is reused by every pixel from L1; larger
#: planes are accumulated that way a few rows (up to this many pixels) at a time when the kernel
#: of one channel block is larger than KERNEL_L1 bytes
PLANE_PIXELS = 196
PLANE_IC = 32
KERNEL_L1 = 16 * 1024


def plane_rows(oh, ow):
    """Output rows accumulated together: the most that divide OH within PLANE_PIXELS pixels."""
    return max(r for r in range(1, oh + 1) if oh % r == 0 and (r * ow <= PLANE_PIXELS or r == 1))


def _schedule_nchwc(s, conv, out, regn=None, plane=None, plane_ic=PLANE_IC, rows=None,
                    flat=None, parallel=True, unroll=True, prefetch=True):
    """regn: output columns per register tile (None: ``nchwc_defaults``); plane: accumulate the
    output in L1 with the input channels blocked outside (None: when the plane and input
    channels are as PLANE_* and KERNEL_L1 say); plane_ic: input channels per block of that
    kernel; rows: output rows per such accumulation (None: the whole plane when it has at most
    PLANE_PIXELS pixels, else ``plane_rows``); flat: in that kernel, tile the pixels of the
    accumulated rows as one flattened sequence (None: for whole planes); parallel: only with
    enough work when True; prefetch: in that kernel, prefetch the next kernel block."""
    info = conv.op.attrs
    ocb, icb = info["oc_bn"], info["ic_bn"]
    dv, kv = conv.op.input_tensors
    st = s[out]
    n, c, y, x = _split_out_axes(st)
    auto = nchwc_defaults(conv, plane, rows, flat)
    plane, rows, flat = auto["plane"], auto["rows"], auto["flat"]
    regn = auto["regn"] if regn is None else regn
    if plane:
        _schedule_nchwc_plane(s, conv, out, st, n, c, y, x, ocb, icb, dv, kv, regn, plane_ic,
                              parallel, unroll, rows, flat, prefetch)
        return
    co, ci = st.split(c, factor=ocb)
    xo, xi = st.split(x, factor=regn)
    order = [n, co] + ([y] if y is not None else []) + [xo, ci, xi]
    st.reorder(*order)
    if unroll:
        st.unroll(ci)
        st.unroll(xi)
    par = st.fuse(co, y) if y is not None else co
    if parallel and work_ok(macs(conv)):
        st.parallel(par)
    cs = s[conv]
    cs.compute_at(st, xo)
    cs.set_scope("local")
    cn, cc, cy, cx, cb = cs.op.axis
    r_ico, r_kh, r_kw, r_ici = cs.op.reduce_axis
    cs.reorder(cn, cc, cy, r_ico, r_kh, r_kw, r_ici, cx, cb)
    if unroll:
        cs.unroll(cx)
    cs.vectorize(cb)
    _pack_stages_root(s, dv, kv, parallel)


def nchwc_defaults(conv, plane=None, rows=None, flat=None):
    """The NCHWc kernel's default knobs (regn, plane, rows, flat) for ``conv``, given any of
    them already chosen; shared with the tuning template, whose point 0 they are."""
    info = conv.op.attrs
    ocb, icb = info["oc_bn"], info["ic_bn"]
    icblocks = int(conv.op.reduce_axis[0].dom.extent.value)
    KH, KW = info["kernel"]
    OH, OW = conv.shape[2], conv.shape[3]
    if plane is None:
        plane = OH * OW <= PLANE_PIXELS and icblocks * icb >= 2 * PLANE_IC or \
            icblocks * icb * KH * KW * ocb * 4 > KERNEL_L1
    if rows is None and OH * OW > PLANE_PIXELS:
        rows = plane_rows(OH, OW)
    flat = plane and rows is None if flat is None else flat
    regn = _nchwc_regn(OW * (rows or OH) if flat and plane else OW, ocb)
    return {"regn": regn, "plane": plane, "rows": rows, "flat": flat}


def _divisor_near(n, target):
    """The divisor of n closest to target (ties: the larger)."""
    divs = [d for d in range(1, n + 1) if n % d == 0]
    return min(divs, key=lambda d: (abs(d - target), -d))


def _pack_stages_root(s, dv, kv, parallel):
    """The input and kernel packing computes at the root, outer loops fused (in parallel)."""
    for t, nfuse in ((dv, 3), (kv, 2)):
        if isinstance(t.op, ComputeOp) and s[t].attach_type == "root" and \
                not s[t].relations:
            inline_injective_inputs(s, t)
            a = s[t].op.axis
            fused = s[t].fuse(*a[:nfuse])
            if parallel and work_ok(math.prod(t.shape)):
                s[t].parallel(fused)


def _schedule_nchwc_plane(s, conv, out, st, n, c, y, x, ocb, icb, dv, kv, regn, plane_ic,
                          parallel, unroll, rows=None, flat=False, prefetch=True):
    """The output of one 16-channel block accumulates in L1 -- its whole plane (``rows`` None)
    or ``rows`` output rows at a time (row blocks outside channel blocks, so the input rows of
    a row block serve every channel block from L2) -- while the input channels run in blocks
    of ``plane_ic`` outside the pixel loops, so each kernel block (16 oc x plane_ic ic x KH x
    KW) is read from L2 once per tile and reused by every pixel of it. Without it a register tile
    walks all input channels, and the kernel block of a 64-channel 3x3 layer (37 KB) no
    longer fits L1 beside the input rows.

    With ``flat`` the register tiles run over the rows' pixels as one sequence, so a 7x7 plane
    is eight tiles of 6 and one pixel rather than 7 x (4 + 3): only the sequence's last tile is
    short, and a short tile has too few accumulators to hide the FMA latency. (Each pixel's
    input address then needs a division by the width, computed once per tile outside the
    reduction loops; on wide row blocks that cost more than it saved.)"""
    co, ci = st.split(c, factor=ocb)
    if rows is None or y is None or rows >= conv.shape[2]:
        st.reorder(n, co, *([y] if y is not None else []), x, ci)
        attach = par = co
    else:
        yo, yi = st.split(y, factor=rows)
        st.reorder(n, yo, co, yi, x, ci)
        attach = par = st.fuse(yo, co)
    if parallel and work_ok(macs(conv)):
        st.parallel(par)
    cs = s[conv]
    cs.compute_at(st, attach)
    cs.set_scope("local")
    cn, cc, cy, cx, cb = cs.op.axis
    r_ico, r_kh, r_kw, r_ici = cs.op.reduce_axis
    io, ii = cs.split(r_ico, factor=max(1, plane_ic // icb))
    if flat:
        cxo, cxi = cs.split(cs.fuse(cy, cx), factor=regn)
        cs.reorder(cn, cc, io, cxo, ii, r_kh, r_kw, r_ici, cxi, cb)
    else:
        cxo, cxi = cs.split(cx, factor=regn)
        cs.reorder(cn, cc, io, cy, cxo, ii, r_kh, r_kw, r_ici, cxi, cb)
    inner = r_ici
    if conv.op.attrs["dilation"][-1] == 1:
        # (kw, ici) walk one contiguous run of the packed input row and of the packed kernel
        # (stride or not): one loop of KW x icb instead of KW loops of icb (16), whose
        # overhead (reloading the tile's input pointers) cost 3-8% per 3x3 layer
        inner = cs.fuse(r_kw, r_ici)
    if unroll:
        cs.unroll(cxi)
    cs.vectorize(cb)
    if prefetch:
        # The kernel block of the next input-channel block, one line per step of the
        # innermost reduction loop (the packed kernel is read in that order): in a whole
        # model the weights come from DRAM, and a 3x3 512-channel layer ran 25% slower with
        # them cold (benchmarks/RESULTS.md, "Twelfth session"). All of the block at once,
        # at the top of the block's loop, was slower still: the misses queue up at once.
        KH, KW = conv.op.attrs["kernel"]
        cs.prefetch(kv, inner, max(1, plane_ic // icb) * KH * KW * icb)
    _pack_stages_root(s, dv, kv, parallel)


def _schedule_1x1(s, conv, out, mr=None, nr=16, ry=None, parallel=True):
    """1x1 conv = matmul W[OC, IC] x X[IC, P] over flattened pixels.

    Three levels: ``out`` (the epilogue) is tiled by mr output channels (None:
    ``register_tile`` under ``conv1x1_mr_cap``) x ry output rows
    (None: the divisor of OH nearest 320 pixels); the anchor is computed at that tile into a
    small buffer (mr x ry*OW pixels, in L1), in nr-pixel chunks whose mr x nr accumulators
    (cache_write "local") live in registers.
    """
    OH, OW = conv.op.attrs["out_hw"]
    _, OC, P = conv.shape
    IC = int(conv.op.reduce_axis[0].dom.extent.value)
    mr = conv1x1_mr(OC) if mr is None else mr
    st = s[out]
    n, c, y, x = _split_out_axes(st)
    if y is None:
        ry = 1
    elif ry is None:
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
    if parallel and work_ok(macs(conv)):
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
            inline_injective_inputs(s, t)
            a = s[t].op.axis
            fused = s[t].fuse(a[0], a[1])
            if parallel and work_ok(math.prod(t.shape)):
                s[t].parallel(fused)


def _schedule_depthwise(s, conv, out, ry=4, vx=None, parallel=True, unroll=True):
    """ry output rows x vx output columns (None: the layout's, ``attrs["vx"]``) per tile, the
    kernel taps unrolled with ``unroll``; the padded channel copy is built per (n, c)."""
    info = conv.op.attrs
    vx = info["vx"] if vx is None else vx
    st = s[out]
    n, c, y, x = _split_out_axes(st)
    OH = conv.shape[2]
    xo, xi = st.split(x, factor=vx)
    if y is not None and OH > 1:
        yo, yi = st.split(y, factor=min(ry, OH))
        st.reorder(n, c, yo, xo, yi, xi)
        if unroll:
            st.unroll(yi)
    else:
        st.reorder(n, c, *([y] if y is not None else []), xo, xi)
    st.vectorize(xi)
    nc = st.fuse(n, c)
    if parallel and work_ok(macs(conv)):
        st.parallel(nc)
    cs = s[conv]
    cs.compute_at(st, xo)
    cs.set_scope("local")
    cn, cc, cy, cx = cs.op.axis
    kh, kw = cs.op.reduce_axis
    cs.reorder(cn, cc, kh, kw, cy, cx)
    if unroll:
        cs.unroll(kh)
        cs.unroll(kw)
        cs.unroll(cy)
    cs.vectorize(cx)
    (dp,) = [t for t in conv.op.input_tensors if getattr(t.op, "tag", None) == "injective"]
    if s[dp].attach_type == "root":
        inline_injective_inputs(s, dp)
        s[dp].compute_at(st, nc)


def winograd_lanes(n):
    """Output channels per vector of the Winograd products and inverse transform, for n of
    them: 16 or 8 when they divide n, else 16 (the tail is guarded)."""
    return next((b for b in (16, 8) if n % b == 0), 16)


def _half_transform_at(s, t, stage, loop):
    """Compute ``t`` -- the first half of a transform, axes (coefficient row, column, tile,
    channel) -- at ``loop`` of ``stage``: its coefficient axes unrolled, so that their selects
    fold, and its channels in vector lanes."""
    st = s[t]
    st.compute_at(stage, loop)
    row, col, tile, chan = st.op.axis
    st.reorder(tile, row, col, chan)
    st.unroll(row)
    st.unroll(col)
    st.vectorize(chan)


def _schedule_winograd(s, y, out, tile_p=6, lanes=None, parallel=True):
    """The three phases of ``ops.conv_winograd``, each at the root, in parallel:

    - input transform: per (tile, channel block), the row transform ``tV`` (6 x 6 vectors of
      channels) and then ``V``, all unrolled so that every coefficient select folds;
    - products: for each of the 36 (e1, e2), ``tile_p`` tiles x 16 output channels in
      registers (``cache_write`` local), summed over the input channels;
    - inverse transform: per 4x4 output tile and 16 output channels, ``tY`` then the result
      with the epilogue, output channels in vector lanes.
    """
    (tY,) = y.op.input_tensors
    (M,) = tY.op.input_tensors
    V, U = sorted(M.op.input_tensors, key=lambda t: getattr(t.op, "tag", None) != "injective")
    (tV,) = V.op.input_tensors
    (dv,) = tV.op.input_tensors
    OC = M.shape[3]
    kl, cl = lanes or winograd_lanes(OC), M.op.attrs["ic_bn"]
    enough = parallel and work_ok(macs(M))

    sv = s[V]
    e1, e2, p, c = sv.op.axis
    co, ci = sv.split(c, factor=cl)
    sv.reorder(p, co, e1, e2, ci)
    sv.unroll(e1)
    sv.unroll(e2)
    sv.vectorize(ci)
    pc = sv.fuse(p, co)
    if enough:
        sv.parallel(pc)
    _half_transform_at(s, tV, sv, pc)

    acc = s.cache_write(M, "local")
    sm = s[M]
    e1, e2, p, k = sm.op.axis
    ko, ki = sm.split(k, factor=kl)
    po, pi = sm.split(p, factor=tile_p)
    sm.reorder(e1, e2, ko, po, pi, ki)
    sm.vectorize(ki)
    par = sm.fuse(sm.fuse(e1, e2), ko)
    if enough:
        sm.parallel(par)
    sa = s[acc]
    sa.compute_at(sm, po)
    _, _, ap, ak = sa.op.axis
    (ric,) = sa.op.reduce_axis
    sa.reorder(ric, ap, ak)
    sa.unroll(ap)
    sa.vectorize(ak)

    so = s[out]
    n, k, h, w = so.op.axis
    ko, ki = so.split(k, factor=kl)
    ho, hi = so.split(h, factor=TILE)
    wo, wi = so.split(w, factor=TILE)
    so.reorder(n, ho, wo, ko, hi, wi, ki)
    so.unroll(hi)
    so.unroll(wi)
    so.vectorize(ki)
    nh = so.fuse(n, ho)
    if enough:
        so.parallel(nh)
    _half_transform_at(s, tY, so, ko)
    _pack_stages_root(s, dv, U, parallel)
