"""Default CPU schedules of matmul, batch_matmul, dense and gemm (and their epilogues).

The micro-kernel keeps 6 rows x 16 columns of C in 12 accumulators of 8 float lanes in AVX2
registers (the BLIS Zen shape: 12 accumulators + operands fit the 16 ymm registers), or 12
rows x 32 columns in 24 zmm registers with AVX-512 (``default_mr``; 12 x 16 where N is below
32 or not a multiple of 16, ``ops.matmul.panel_width``): one packed column panel of B wide, A
read from its six-row interleaving, so each broadcast element of A feeds two vector FMAs.
Products of fewer than 4 rows are matrix-vector products and skip the packing: 64-column
blocks when B's rows are contiguous, 4 outputs x 16 partial sums (rfactor) when W's rows are
(the batch-1 classifier).

A float16 product accumulates in a float32 reduction (``<name>_acc``) that an elementwise
compute rounds: it is the epilogue's first stage, so the accumulator tile stays float32 in
registers and is rounded as it is stored.
"""
from .matmul import MIN_ROWS, ROWS
from .schedule_cpu import tile_rows, vector_registers
from .schedule_nn_fusion import (
    find_reduction,
    fuse_epilogue,
    inlinable,
    inline_injective_inputs,
    local_accumulator,
    macs,
    work_ok,
)

MATMUL_TAGS = ("matmul", "dense")


def default_mr(M):
    """Rows of the register tile: ``tile_rows`` in whole groups of the six-row packing of A.
    On the Zen 5, 12 rows ran a 1024^3 product at 365 against 307 GFLOP/s and BERT's 128 x
    3072 x 768 at 266 against 244; a packing of 12 rows was no faster than two groups of 6."""
    groups = max(1, tile_rows(vector_registers()) // ROWS)
    return min(ROWS * groups, max(ROWS, -(-M // ROWS) * ROWS))


def schedule_matmul(s, anchor, out=None, mr=None, nr=None, parallel="auto", unroll=True,
                    cols=512, vec=64, kv=16):
    """matmul / batch_matmul / dense / gemm (and an elementwise epilogue).

    Row-blocked products (at least 4 rows): an mr x nr tile of the result accumulates in
    vector registers over the whole K loop, reading the packed column panels of B; the tile
    is computed at the output's tile, so the epilogue (bias, alpha/beta, C) is applied on the
    way out. Matrix-vector products (fewer rows) skip the packing: along contiguous B rows
    they vectorise the columns (64 per tile); along contiguous W rows (dense) they vectorise
    the reduction into 16 partial sums (rfactor) for 4 outputs at a time.

    The keyword arguments are the tuning knobs (``ops.templates``); their defaults are the
    default schedule (``mr`` None: ``default_mr``; ``nr`` None: one packed panel).
    ``parallel``: "auto" (the outermost loop worth it, when there is enough work), "outer"
    (the outermost loop whatever the work) or "none"; ``unroll`` unrolls the register tile's
    rows; ``cols``/``vec`` are the column block and vector of the B-row matrix-vector kernel,
    ``kv`` the partial sums of the W-row one.
    """
    if parallel not in ("auto", "outer", "none"):
        raise ValueError(f"schedule_matmul: parallel must be 'auto', 'outer' or 'none', "
                         f"got {parallel!r}")
    out = anchor if out is None else out
    C = find_reduction(anchor, MATMUL_TAGS)
    if C is None:
        raise ValueError(f"schedule_matmul: {anchor.name!r} is not (the result of) a matmul, "
                         "batch_matmul, dense or gemm")
    st = fuse_epilogue(s, C, out) if out is not C else s[C]
    if st is None:
        # the epilogue changes the shape (a view of a 1-D product): schedule C alone and
        # leave the views to inline into out where they can
        st = s[C]
        out = C
    packs = {getattr(t.op, "tag", None): t for t in C.op.input_tensors}
    bp, ap = packs["matmul_pack"], packs.get("matmul_pack_rows")
    for t in C.op.input_tensors:
        if t is not bp and t is not ap and inlinable(s, t):
            s[t].compute_inline()
    M = C.op.attrs["M"]
    b_major = C.op.attrs.get("b_major", "j")
    if M >= MIN_ROWS:
        _schedule_matmul_packed(s, C, out, bp, mr, nr, parallel, unroll)
        if ap is not None:
            _schedule_pack(s, C, ap, parallel, "unroll")
    elif b_major == "j":
        s[bp].compute_inline()
        _schedule_matvec_cols(s, C, out, M, cols, vec, parallel)
    else:
        s[bp].compute_inline()
        _schedule_matvec_rows(s, C, out, M, kv, parallel)
    return s


schedule_dense = schedule_matmul
schedule_batch_matmul = schedule_matmul
schedule_gemm = schedule_matmul


def _parallel_choice(batch, shape, jo, N, nr, work, parallel):
    """The loop to run in parallel: a batch dimension, else the column-panel loop when its
    guard-free main part is long enough for loop partitioning to peel the tail panel (a
    parallel loop is only cut with 8+ iterations in its main part), else none (small work).
    ``parallel="outer"`` takes the batch or panel loop regardless; "none" takes none."""
    if parallel == "none":
        return None
    big = [a for a, n in zip(batch, shape) if n > 1]
    if parallel == "outer":
        return big[0] if big else jo
    if not work_ok(work):
        return None
    if big:
        return big[0]
    panels = -(-N // nr)
    if N % nr == 0 or panels > 8:
        return jo
    return None


def _want_parallel(parallel, work):
    """Enough work for threads under "auto"; always with "outer", never with "none"."""
    return parallel == "outer" or (parallel == "auto" and work_ok(work))


def _outer_parallel(st, big, loop, work, parallel):
    """The matrix-vector kernels' rule: the first batch loop, else ``loop``."""
    if _want_parallel(parallel, work):
        st.parallel(big[0] if big else loop)


def _schedule_matmul_packed(s, C, out, bp, mr, nr, parallel, unroll):
    M = C.op.attrs["M"]
    mr = min(default_mr(M) if mr is None else mr, M)
    nr = C.op.attrs["panel"] if nr is None else nr
    CC = local_accumulator(s, C, out)
    st = s[out]
    *batch, i, j = st.op.axis
    io, ii = st.split(i, factor=mr)
    jo, ji = st.split(j, factor=nr)
    st.reorder(*batch, jo, io, ii, ji)
    if unroll:
        st.unroll(ii)
    st.vectorize(ji)
    par = _parallel_choice(batch, out.shape, jo, C.op.attrs["N"], nr,
                           M * C.op.attrs["N"] * C.op.attrs["K"], parallel)
    if par is not None:
        st.parallel(par)
    cs = s[CC]
    cs.compute_at(st, io)
    *cb, ci, cj = cs.op.axis
    (k,) = cs.op.reduce_axis
    cs.reorder(*cb, k, ci, cj)
    if unroll:
        cs.unroll(ci)
    cs.vectorize(cj)
    _schedule_pack(s, C, bp, parallel, "vectorize")


def _schedule_pack(s, C, pack, parallel, inner):
    """An operand's packing (``ops.matmul``), computed once before the product, in parallel
    over its outer axes when the product is worth threads. ``inner`` is what its innermost
    axis gets: "vectorize" for the columns of a B panel, "unroll" for the 6 interleaved
    rows of A (each step reads one element of every row and writes them side by side)."""
    ps = s[pack]
    if ps.attach_type != "root" or ps.is_output:
        return
    inline_injective_inputs(s, pack)
    ax = ps.op.axis
    outer = ps.fuse(*ax[:-2]) if len(ax) > 3 else ax[0]
    if _want_parallel(parallel, macs(C)):
        ps.parallel(outer)
    getattr(ps, inner)(ax[-1])


def _schedule_matvec_cols(s, C, out, M, cols, vec, parallel):
    """Few rows, B rows contiguous along the output columns: every thread owns a block of
    ``cols`` columns whose accumulators stay in L1 while the rows of B stream past, k outer
    (sequential reads of B)."""
    CC = local_accumulator(s, C, out)
    st = s[out]
    *batch, i, j = st.op.axis
    jo, ji = st.split(j, factor=cols)
    st.reorder(*batch, jo, i, ji)
    _, jii = st.split(ji, factor=vec)
    st.vectorize(jii)
    big = [a for a, n in zip(batch, out.shape) if n > 1]
    _outer_parallel(st, big, jo, macs(C), parallel)
    cs = s[CC]
    cs.compute_at(st, jo)
    *cb, ci, cj = cs.op.axis
    (k,) = cs.op.reduce_axis
    cjo, cji = cs.split(cj, factor=vec)
    cs.reorder(*cb, k, ci, cjo, cji)
    cs.unroll(ci)
    cs.vectorize(cji)


def _schedule_matvec_rows(s, C, out, M, kv, parallel):
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
    _outer_parallel(st, big, jo, M * C.op.attrs["N"] * K, parallel)
    rs = s[RF]
    rs.compute_at(st, jo)
    rs.set_scope("local")
    *rb, ri, rj, kf = rs.op.axis
    (rko,) = rs.op.reduce_axis
    rs.reorder(*rb, rko, ri, rj, kf)
    rs.unroll(ri)
    rs.unroll(rj)
    rs.vectorize(kf)
