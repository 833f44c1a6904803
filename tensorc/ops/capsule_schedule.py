"""CPU schedules of the capsule ops (``ops.capsule``), registered for the tag "capsule".

Prediction + routing is one loop nest. The prediction vectors of a block of batch elements
(up to MAX_BLOCK) are computed together, input capsule by input capsule, so each W[i]
(J x Dout x Din, 5 KB at MNIST sizes), packed Dout-innermost, is multiplied from L1 into every
element of the block, the results accumulating in vector registers. (W is packed per input
capsule on the way when each thread has one block, else once for all blocks up front; a block
of one element reads W's columns in place, and a W that comes packed, ``weight_layout=
"packed"``, is read as it is: at batch 1, transposing W is most of the prediction's work.) Then,
per batch element while its u_hat (I x J x Dout) is still in cache, every routing round runs:
the weighted sum over i with Dout in vectors, and, for the rounds after the first, the
logits, softmax and couplings of a ``chunk`` of input capsules computed right before the
chunk's part of the sum reads them, so a round reads u_hat once.
The blocks run in parallel.

The lanes layout (``capsule.predict_and_route_lanes``, batch >= 4) is scheduled by
``schedule_routing_lanes``: per block of one vector of batch elements, the prediction
broadcasts each element of W (read in place) against the block, and each round runs over
chunks of input capsules, all vertical vector arithmetic. Blocks of 16 lanes (AVX-512)
recompute each chunk's prediction vectors in every round instead of keeping the block's in
memory (``capsule.RECOMPUTE_LANES``).
"""
import functools

from .capsule import RECOMPUTE_LANES
from .schedule_cpu import PARALLEL_MIN, composite_parts, register_schedule, vector_lanes
from .util import prod

#: Most batch elements whose prediction vectors are computed together per packed W[i]. Four,
#: not eight: a block's u_hat (737 KB per element at MNIST sizes) is then 2.9 MB a thread, and
#: DigitCaps at batch 32 / 128 ran 20-25% faster on 2 threads (7.1 vs 9.2 ms, 19.9 vs 27.7 ms;
#: benchmarks/RESULTS.md) though each block reads W once more.
MAX_BLOCK = 4

#: Batch elements whose results accumulate in registers together (x two vectors of Dout=16:
#: 8 accumulators, leaving registers for W and the broadcast u).
ROWS = 4

#: Logits accumulated side by side: a logit is a dot product over Dout, a chain of dependent
#: scalar multiply-adds; interleaving CHAINS of them hides the latency of each.
CHAINS = 4

#: Input capsules whose couplings are computed at once (vectors over i) before the weighted
#: sum reads them.
CHUNK = 64


def _even(n, most):
    """The largest divisor of n up to ``most`` when it is at least most / 2, else ``most``
    (then the last chunk is guarded)."""
    for c in range(min(n, most), max(1, most // 2) - 1, -1):
        if n % c == 0:
            return c
    return min(n, most)


def _vector(st, axis, n, lanes):
    """Vectorize ``axis`` (extent n): whole when n <= lanes, else by ``lanes`` or the native
    width, whichever divides n; a loop neither divides stays scalar (a split would make its
    region overhang the tensor, and consumers' regions with it)."""
    if n <= lanes:
        st.vectorize(axis)
        return
    for w in (lanes, vector_lanes("float32")):
        if n % w == 0:
            _, inner = st.split(axis, factor=w)
            st.vectorize(inner)
            return


def part_of(t):
    return getattr(t.op, "attrs", {}).get("part", "")


def is_predict(s, t):
    op = t.op
    return getattr(op, "tag", None) == "capsule" and op.attrs.get("capsule") == "predict" and \
        "part" not in op.attrs and not s[t].is_output


def _threads():
    from ..runtime.threads import get_num_threads
    return get_num_threads()


def _block(batch):
    """Batch elements per block: enough blocks for every thread, at most MAX_BLOCK (whose
    prediction vectors, 737 KB each at MNIST sizes, should stay in the last-level cache)."""
    return max(1, min(MAX_BLOCK, -(-batch // _threads())))


def schedule_predict_block(s, u_hat, parent=None, loop=None, block=None):
    """u_hat in blocks of ``block`` batch elements: input capsule outer, W[i] packed once
    per input capsule, then per output capsule j the block's results accumulate in vector
    registers over Din. Computed at ``loop`` of ``parent`` (the block that loop covers), or
    at the root, the blocks in parallel (or, with fewer blocks than threads, the input
    capsules)."""
    acc = s.cache_write(u_hat, "local")
    st = s[u_hat]
    b, i, j, d = st.op.axis
    lanes = vector_lanes(u_hat.dtype)
    block = _block(u_hat.shape[0]) if block is None else block
    if parent is not None:
        st.compute_at(parent, loop)
        st.reorder(i, j, b, d)
    else:
        bo, bi = st.split(b, factor=block)
        st.reorder(bo, i, j, bi, d)
        st.parallel(bo if -(-u_hat.shape[0] // block) >= _threads() else i)
    _vector(st, d, u_hat.shape[3], 2 * lanes)
    at = s[acc]
    at.compute_at(st, j)
    ab, _, _, ad = at.op.axis
    (k,) = at.op.reduce_axis
    if block > ROWS:
        abo, ab = at.split(ab, factor=ROWS)
        at.reorder(abo, k, ab, ad)
    else:
        at.reorder(k, ab, ad)
    at.unroll(k)
    at.unroll(ab)
    at.vectorize(ad)
    pack = next((t for t in acc.op.input_tensors if part_of(t) == "pack"), None)
    for t in acc.op.input_tensors:
        if t is not pack and not s[t].is_placeholder and s[t].attach_type == "root":
            s[t].compute_at(st, i)  # u computed (a graph's squash before it): once per i
    if pack is None:          # W came packed (weight_layout="packed")
        return s
    ps = s[pack]
    if block == 1:
        ps.compute_inline()   # each element of W is used once: read W's columns in place
        return s
    pi, _, _, pd = ps.op.axis
    ps.vectorize(pd)
    if -(-u_hat.shape[0] // block) > _threads():
        ps.parallel(pi)       # more blocks than threads: pack all of W once, up front
    else:
        ps.compute_at(st, i)  # each block reads all of W once anyway: pack it on the way
    return s


#: Where ``schedule_routing`` computes the prediction vectors: by the batch size ("auto"),
#: per block of the routing ("block"), or all first, in parallel ("root").
PREDICT_AT = ("auto", "block", "root")


def schedule_routing(s, v, block=None, chunk=CHUNK, predict="auto"):
    """Prediction (when v's u_hat is a capsule.predict nobody else reads) and routing, in
    blocks of ``block`` batch elements run in parallel. With fewer batch elements than
    threads (``predict`` "auto"), the prediction runs first, in parallel over input
    capsules, and with fewer blocks than threads each round's weighted sum is split over
    input capsules into parallel partial sums, as in the lanes layout. The lanes layout
    goes to ``schedule_routing_lanes``."""
    if v.op.attrs.get("lanes"):
        return schedule_routing_lanes(s, v)
    if predict not in PREDICT_AT:
        raise ValueError(f"schedule_routing: predict must be one of {PREDICT_AT}, got "
                         f"{predict!r}")
    st = s[v]
    parts = {part_of(t): t for t in composite_parts(s, v)}
    B, J, Dout = v.shape
    lanes = vector_lanes(v.dtype)
    b, j, d = st.op.axis
    block = _block(B) if block is None else block
    bo, bi = st.split(b, factor=block)
    whole_blocks = -(-B // block) >= _threads()
    if B > block:
        st.parallel(bo)
    _vector(st, d, Dout, 2 * lanes)
    u_hat = next(t for t in s[parts["s0"]].op.input_tensors)
    per_block = False   # u_hat computed inside the block loop: the rounds must stay there too
    if is_predict(s, u_hat):
        if predict == "root" or predict == "auto" and B < _threads():
            schedule_predict_block(s, u_hat)
        else:
            schedule_predict_block(s, u_hat, st, bo, block)
            per_block = True
    I = u_hat.shape[1]
    split = 1 if whole_blocks or per_block else _divisor(I, _threads())
    ch = _even(I // split, chunk)
    jb = _even(J, max(1, 12 // -(-Dout // lanes)))
    for r in range(v.op.attrs["iterations"]):
        if split == 1:
            ts = s[parts[f"s{r}"]]
            ts.compute_at(st, bi)
            lead = [ts.op.axis[0]]
        else:
            ts = s[_split_sum(s, parts[f"s{r}"], split)]
            lead = []   # the batch is fused into the parallel loop over the parts
        tj, td = ts.op.axis[-2:]
        ti = ts.op.reduce_axis[-1]
        jo, ji = ts.split(tj, factor=jb)
        if r == 0:
            ts.reorder(*lead, jo, ti, ji, td)
        else:
            io, ii = ts.split(ti, factor=ch)
            ts.reorder(*lead, io, jo, ii, ji, td)
            _attach_coupling(s, parts, r, ts, io, ch, lanes)
        ts.unroll(ji)
        _vector(ts, td, Dout, 2 * lanes)
        for name in (f"n2_{r}", f"V{r + 1}"):
            if name in parts:
                t = s[parts[name]]
                if split == 1:
                    t.compute_at(st, bi)
                if not t.op.reduce_axis:
                    _vector(t, t.op.axis[-1], Dout, 2 * lanes)
    return s


#: Input capsules per step of a round in the lanes layout: their couplings are computed
#: together, then each (j, d) of the weighted sum adds all of them in a register before one
#: load and store of its accumulator.
LANE_CHUNK = 4
#: The same where the rounds recompute their prediction vectors: a chunk's vectors (10 KB per
#: input capsule at 16 lanes) stay in L1 with 2 capsules, not with 4. At MNIST sizes on the
#: Zen 5, 2 threads: 1.12 against 1.22 ms at batch 32, 4.50 against 5.05 at batch 128
#: (benchmarks/RESULTS.md, "Twelfth session").
RECOMPUTE_CHUNK = 2


def lane_chunk(recompute):
    """The default chunk of ``schedule_routing_lanes``."""
    return RECOMPUTE_CHUNK if recompute else LANE_CHUNK

#: The narrowest vectors the lanes layout is used with (``cpu_lanes``).
MIN_LANES = 4
#: The widest block that keeps its prediction vectors in memory (lanes x 737 KB at MNIST
#: sizes), streaming them once per round: a wider vector unit is not a reason for wider blocks
#: there. On AVX-512, 16-lane blocks (11.8 MB) took 1.6x as long as 8-lane ones at batch 32 and
#: 128 on 2 threads (benchmarks/RESULTS.md, ninth session) -- unless the rounds recompute the
#: vectors (``capsule.RECOMPUTE_LANES``), which 16-lane blocks do.
MAX_LANES = 8

#: Output dimensions whose predictions accumulate in registers together in the lanes layout
#: (each multiply-add broadcasts one element of W).
LANE_DBLOCK = 4


@functools.lru_cache(maxsize=None)   # asked on every run_predict_and_route call
def cpu_lanes(batch, dtype):
    """The ``lanes`` of ``capsule.capsule_routing`` on this CPU. A batch that fills a vector
    of at least ``capsule.RECOMPUTE_LANES`` takes the native width (its blocks recompute their
    prediction vectors each round). Otherwise the native width, at most ``MAX_LANES``, halved
    while that is more than the batch, down to 4; 0 (the layout with Dout in vectors) for a
    batch below 4. At MNIST sizes on 2 threads (benchmarks/RESULTS.md) 4 lanes beat the other
    layout already at batch 4, not at batch 1: a single block runs its rounds on one
    thread."""
    native = vector_lanes(dtype)
    if native >= RECOMPUTE_LANES and batch >= native:
        return native
    lanes = min(native, MAX_LANES)
    while lanes > MIN_LANES and lanes > batch:
        lanes //= 2
    return lanes if batch >= lanes else 0


def _divisor(n, most):
    """The largest divisor of n that is at most ``most``."""
    return next(c for c in range(min(n, most), 0, -1) if n % c == 0)


def schedule_routing_lanes(s, v, chunk=None, dblock=LANE_DBLOCK):
    """``capsule.predict_and_route_lanes``: per block of ``lanes`` batch elements (the
    blocks in parallel), the block's prediction vectors, then every round over them, each
    stage vectorized across the lanes. With ``recompute``, each round computes a chunk's
    prediction vectors right before its logits and weighted sum read them, from u packed per
    block. ``chunk``: input capsules per step of a round (None: ``lane_chunk``).

    With fewer blocks than threads, the prediction runs first, in parallel over (block, input
    capsule), and each round's weighted sum is split over input capsules (rfactor) into one
    part per thread, the parts in parallel, so the rounds do not run on one thread."""
    st = s[v]
    parts = {part_of(t): t for t in composite_parts(s, v)}
    L = v.op.attrs["lanes"]
    B = v.shape[0]
    bo, _ = st.split(st.op.axis[0], factor=L)
    I = parts["pack"].shape[1]
    whole_blocks = -(-B // L) >= _threads()
    if whole_blocks:
        st.parallel(bo)
    recompute = v.op.attrs.get("recompute")
    chunk = lane_chunk(recompute) if chunk is None else chunk
    if not recompute:
        per_i = _schedule_prediction_lanes(s, parts["u_hat"], dblock,
                                           st if whole_blocks else None, bo)
        _pack_lanes(s, parts["pack"], s[parts["u_hat"]], per_i)
    elif whole_blocks:
        _pack_lanes(s, parts["pack"], st, bo)
    else:
        _pack_lanes(s, parts["pack"], None, None)
    split = 1 if whole_blocks else _divisor(I, _threads())
    at = (st, bo) if split == 1 else None   # where a round's small per-block stages go
    for r in range(v.op.attrs["iterations"]):
        if split == 1:
            ts = s[parts[f"s{r}"]]
            ts.compute_at(st, bo)
        else:
            ts = s[_split_sum(s, parts[f"s{r}"], split)]
        _, tj, td, tl = ts.op.axis[-4:]
        io, ii = ts.split(ts.op.reduce_axis[0], factor=_divisor(I // split, chunk))
        ts.reorder(io, tj, td, ii, tl)
        ts.unroll(ii)
        ts.vectorize(tl)
        if recompute:
            _schedule_prediction_lanes(s, parts[f"u_hat{r}"], dblock, ts, io)
        if r:
            for name in ("logit", "max", "exp", "sum", "c"):
                cs = s[parts[f"{name}{r}"]]
                cs.compute_at(ts, io)
                if cs.op.reduce_axis:
                    cs.reorder(*cs.op.axis[:-1], cs.op.reduce_axis[0], cs.op.axis[-1])
                cs.vectorize(cs.op.axis[-1])
        for name in (f"n2_{r}", f"V{r + 1}"):
            if name in parts:
                _lanes_elementwise(s, parts[name], at)
    return s


def _schedule_prediction_lanes(s, uh, dblock, parent, loop):
    """Prediction vectors ``uh`` of the lanes layout at ``loop`` of ``parent`` (one block,
    or one chunk of a round's input capsules), or at the root in parallel over (block, input
    capsule) (``parent`` None): Dout in register blocks of ``dblock`` accumulators, each W
    element broadcast against the lanes. Returns the loop over input capsules."""
    acc = s.cache_write(uh, "local")
    su = s[uh]
    ub, ui, _, ud, ul = su.op.axis
    do, di = su.split(ud, factor=_divisor(uh.shape[3], dblock))
    if parent is not None:
        su.compute_at(parent, loop)
        per_i = ui
    else:
        per_i = su.fuse(ub, ui)
        su.parallel(per_i)
    su.unroll(di)
    su.vectorize(ul)
    at = s[acc]
    at.compute_at(su, do)
    *_, ad, al = at.op.axis
    (k,) = at.op.reduce_axis
    at.reorder(k, ad, al)
    at.unroll(k)
    at.unroll(ad)
    at.vectorize(al)
    return per_i


def _pack_lanes(s, pack, parent, loop):
    """u in the lanes layout at ``loop`` of ``parent``, or at the root, in parallel over
    (block, input capsule)."""
    ps = s[pack]
    if parent is not None:
        ps.compute_at(parent, loop)
    else:
        ps.parallel(ps.fuse(*ps.op.axis[:2]))
    ps.vectorize(ps.op.axis[-1])


def _split_sum(s, t, parts):
    """A round's weighted sum t as ``parts`` partial sums over runs of input capsules, the
    parts (with the blocks) in parallel; t adds them up. Returns the partial-sum tensor."""
    st = s[t]
    io, _ = st.split(st.op.reduce_axis[0], nparts=parts)
    rf = s.rfactor(t, io)
    rs = s[rf]
    rs.parallel(rs.fuse(*rs.op.axis[:2]))
    st.reorder(*st.op.axis[:-1], st.op.reduce_axis[0], st.op.axis[-1])
    st.vectorize(st.op.axis[-1])
    return rf


def _lanes_elementwise(s, t, at):
    """A small per-block stage (|s|^2, the running sum V) at ``at`` (stage, loop) or at the
    root, its reduction (if any) outside the lanes, which are vectorized."""
    ts = s[t]
    if at is not None:
        ts.compute_at(*at)
    if ts.op.reduce_axis:
        ts.reorder(*ts.op.axis[:-1], ts.op.reduce_axis[0], ts.op.axis[-1])
    ts.vectorize(ts.op.axis[-1])


def _attach_coupling(s, parts, r, sum_stage, loop, chunk, lanes):
    """Round r's logits, softmax and couplings for one chunk of input capsules, at ``loop``
    of the weighted sum, vectorized over the chunk."""
    for name in ("logit", "max", "exp", "sum", "c"):
        t = parts[f"{name}{r}"]
        acc = s.cache_write(t, "local") if name == "logit" else None
        ts = s[t]
        ts.compute_at(sum_stage, loop)
        if name == "logit":
            ti = ts.op.axis[-1]
            if chunk % CHAINS == 0:
                ti, _ = ts.split(ti, factor=CHAINS)
            at = s[acc]
            at.compute_at(ts, ti)
            ai, ad = at.op.axis[-1], at.op.reduce_axis[0]
            at.reorder(ad, ai)
            at.unroll(ad)
            at.unroll(ai)
            continue
        if ts.op.reduce_axis:
            tb, ti = ts.op.axis
            (tj,) = ts.op.reduce_axis
            ts.reorder(tb, tj, ti)
        else:
            ti = ts.op.axis[-1]
        _vector(ts, ti, chunk, 4 * lanes)


def schedule_squash(s, out):
    """Parallel over the axes before the squashed one (fused), |s|^2 computed there for
    the rest, the innermost axis vectorized."""
    st = s[out]
    axis = out.op.attrs["axis"]
    (n2,) = [t for t in out.op.input_tensors if part_of(t) == "norm2"]
    lanes = vector_lanes(out.dtype)
    lead = st.op.axis[:axis]
    outer = st.fuse(*lead) if lead else None
    _vector(st, st.op.axis[-1], out.shape[-1], 2 * lanes)
    if outer is not None:
        s[n2].compute_at(st, outer)
        if prod(out.shape) >= PARALLEL_MIN and prod(out.shape[:axis]) > 1:
            st.parallel(outer)
    return s


#: What ``schedule_votes`` fuses into its parallel loop: the batch and output row ("by"), or
#: the output column too ("byx": more, smaller tasks, for a grid of few rows).
VOTES_PARALLEL = ("by", "byx")


def schedule_votes(s, out, parallel="by", oblock=1, unroll_rows=False):
    """Per (batch, output row) (``parallel``) in parallel; each vote's P x P product
    accumulates row by row with the P columns in a vector. ``oblock`` output capsule types
    take each broadcast element of a pose row together (a divisor of their count), and
    ``unroll_rows`` unrolls the rows of a product as well as its inner dimension."""
    if parallel not in VOTES_PARALLEL:
        raise ValueError(f"schedule_votes: parallel must be one of {VOTES_PARALLEL}, got "
                         f"{parallel!r}")
    st = s[out]
    b, y, x, ky, kx, c, o, p, q = st.op.axis
    if out.shape[6] % oblock:
        raise ValueError(f"schedule_votes: oblock {oblock} does not divide the {out.shape[6]} "
                         f"output capsule types of {out.name!r}")
    (r,) = st.op.reduce_axis
    if oblock > 1:
        oo, oi = st.split(o, factor=oblock)
        st.reorder(b, y, x, ky, kx, c, oo, p, r, oi, q)
        st.unroll(oi)
    else:
        st.reorder(b, y, x, ky, kx, c, o, p, r, q)
    st.vectorize(q)
    st.unroll(r)
    if unroll_rows:
        st.unroll(p)
    outer = st.fuse(b, y) if parallel == "by" else st.fuse(b, y, x)
    if prod(out.shape) >= PARALLEL_MIN:
        st.parallel(outer)
    return s


_SCHEDULES = {"routing": schedule_routing, "predict": schedule_predict_block,
              "squash": schedule_squash, "votes": schedule_votes}


@register_schedule("capsule")
def schedule_capsule(s, out):
    """The schedule of a capsule op's result, by ``attrs["capsule"]``; a stage another
    capsule schedule already placed or scheduled is left alone."""
    st = s[out]
    if st.attach_type != "root" or st.relations or st.iter_var_attrs:
        return s
    return _SCHEDULES[out.op.attrs["capsule"]](s, out)
