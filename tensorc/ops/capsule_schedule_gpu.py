"""GPU schedules of the capsule ops (``ops.capsule``), which ``schedule_for_gpu`` picks for the
tag "capsule".

Routing (with the prediction fused in front or on given prediction vectors) is one kernel
with **one thread block per batch element**. Every round needs all input capsules before the
next can start, so a block is the largest group of threads that can run a batch element's
rounds back to back, synchronising with barriers instead of kernel launches; the price is that
a batch of B keeps B multiprocessors busy, not more.

Inside a block, threadIdx.x runs over the J x Dout (j, d) pairs of the output capsules and
threadIdx.y over ``rows`` input capsules. A round walks the input capsules in chunks of
``rows x depth`` (the knobs); in the first round (couplings 1/J) each thread just sums the
prediction elements it computes, in every later one, per chunk:

- every thread computes ``depth`` prediction vector elements u_hat[b, i, j, d] = W[i, j, d, :] .
  u[b, i] into shared memory. Consecutive threads of a warp take consecutive (j, d) rows of W,
  so a warp's loads are one contiguous run (W[i] is contiguous) and u[b, i] is a broadcast.
  The prediction is recomputed every round rather than kept: a batch element's u_hat (737 KB
  at MNIST sizes) fits no on-chip memory, and a kernel has no global scratch to keep it in.
  Its sum over Din is written out as Din terms (``Schedule.expand_reduction``) so that each
  round inlines its own copy. The price: every round streams all of W (5.9 MB at MNIST sizes, Din floats
  per u_hat element) from L2 into each block's multiprocessor, which bounds a round's time;
  routing on given prediction vectors (``dynamic_routing``) reads one float per element.
- the chunk's logits u_hat[b, i, j] . V[b, j] (V the running sum of the rounds' outputs, see
  ``ops.capsule``), accumulated in a register; their maximum and sum of exponentials over j,
  one thread per input capsule; the couplings c[b, j, i], one thread per (i, j): small shared
  stages (a coupling inlined into the sum below would cost Dout exponentials, as much as the
  prediction's multiply-adds);
- every thread adds c[b, j, i] * u_hat[b, i, j, d] for its own (j, d) into one register.

After the last chunk one all-reduce over threadIdx.y combines the ``rows`` partial sums of
every (j, d) side by side, and |s|^2, squash and the next V are computed in shared memory.
Shared memory per block is dominated by the rounds' u_hat chunks (``depth`` is cut so that
everything fits the 48 KB a block may declare); registers stay few (one partial sum per
thread), so nothing spills.

The other ops are one thread per output element (prediction, votes: a Din- or P-long dot
product in registers) or per squashed vector (squash: |s|^2 once, then the vector scaled):
their vectors are short, so cross-thread reductions would cost more than they share.
"""
from .. import te
from ..ir import dtype as dt
from .capsule_schedule import is_predict, part_of
from .schedule_cpu import composite_parts
from .util import prod

#: Most threads of a block.
MAX_THREADS = 1024
#: Input capsules of a routing chunk along threadIdx.y.
ROWS = 4
#: Input capsules each routing thread predicts per chunk (a chunk is ROWS x DEPTH of them).
DEPTH = 8
#: Shared memory a block may declare statically.
SHARED_BYTES = 48 * 1024
#: Threads per block of the one-thread-per-output kernels.
THREADS = 256


def _bind(st, axis, tag):
    st.bind(axis, te.thread_axis(tag))


def _fuse(st, axes):
    return axes[0] if len(axes) == 1 else st.fuse(*axes)


def _over_x(st, axes, tx):
    """The (fused) ``axes`` dealt over ``tx`` threads of threadIdx.x (a serial loop outside
    when there are more points): (outer loop, thread loop)."""
    outer, inner = st.split(_fuse(st, axes), factor=tx)
    _bind(st, inner, "threadIdx.x")
    return outer, inner


def _threads_over(st, axes, n, threads):
    """The (fused) ``axes``, ``n`` points, cut into blocks of at most ``threads`` threads."""
    bx, tx = st.split(_fuse(st, axes), factor=max(1, min(threads, n)))
    _bind(st, bx, "blockIdx.x")
    _bind(st, tx, "threadIdx.x")
    return bx, tx


def _inline_pack(s, u_hat):
    for t in s[u_hat].op.input_tensors:
        if part_of(t) == "pack":
            s[t].compute_inline()


def routing_shape(I, J, Dout, iterations, itemsize=4, rows=ROWS, depth=DEPTH):
    """(threads along x, rows, depth) of the routing block: ``rows`` cut so the block has at
    most MAX_THREADS threads, ``depth`` so the block's shared buffers fit SHARED_BYTES and,
    where a depth up to the requested one allows, so that the chunks tile the input capsules
    without a ragged last one."""
    for name, value in (("rows", rows), ("depth", depth)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"capsule routing GPU schedule: {name} must be a positive int, "
                             f"got {value!r}")
    P = J * Dout
    tx = min(P, MAX_THREADS)
    rows = min(rows, MAX_THREADS // tx, I)

    def shared_bytes(depth):
        """Per round s, V, |s|^2 and the all-reduce's slots; per coupled round the u_hat
        chunk, logits, couplings, maxima and sums."""
        chunk = rows * depth
        return itemsize * (iterations * (2 * P + J + rows * tx) +
                           (iterations - 1) * (chunk * P + 2 * chunk * J + 2 * chunk))
    depth = min(depth, -(-I // rows))
    while depth > 1 and shared_bytes(depth) > SHARED_BYTES:
        depth -= 1
    return tx, rows, _tile(-(-I // rows), depth)


def _tile(n, most):
    """The largest divisor of n from most down to half of it, else ``most`` (the last chunk is
    then guarded)."""
    for c in range(most, (most + 1) // 2 - 1, -1):
        if n % c == 0:
            return c
    return most


def schedule_routing(s, v, rows=ROWS, depth=DEPTH, out=None):
    """One block per batch element (see the module docstring); ``rows`` and ``depth`` (the
    tuning knobs) are the chunk's input capsules along threadIdx.y and per thread, cut by
    ``routing_shape`` to what a block can hold. ``out``: an elementwise epilogue of v (same
    shape, the stages between already inlined) that the block writes instead of v."""
    if out is not None and out is not v:
        if tuple(out.shape) != tuple(v.shape):
            raise ValueError(f"capsule routing GPU schedule: epilogue {out.name!r} of shape "
                             f"{out.shape} must have the shape {v.shape} of {v.name!r}")
        s[v].compute_inline()
    else:
        out = v
    parts = {part_of(t): t for t in composite_parts(s, v)}
    _, J, Dout = v.shape
    u_hat = s[parts["s0"]].op.input_tensors[0]
    if is_predict(s, u_hat):
        _inline_pack(s, u_hat)
        s.expand_reduction(u_hat)
        s[u_hat].compute_inline()
    iterations = v.op.attrs["iterations"]
    tx, rows, depth = routing_shape(u_hat.shape[1], J, Dout, iterations,
                                    dt.itemsize(v.dtype), rows, depth)
    st = s[out]
    b, j, d = st.op.axis
    _bind(st, b, "blockIdx.x")
    _over_x(st, [j, d], tx)
    for r in range(iterations):
        _weighted_sum(s, st, b, parts, r, u_hat, tx, rows, depth)
        _norm2(s, st, b, parts[f"n2_{r}"], tx)
        if f"V{r + 1}" in parts:
            vs = s[parts[f"V{r + 1}"]]
            vs.compute_at(st, b)
            _over_x(vs, list(vs.op.axis[1:]), tx)
    return s


def _norm2(s, vst, block, t, tx):
    """|s|^2 per output capsule at the block, a thread per j summing in a register: every
    row of threadIdx.y runs it, so the shared result is only ever stored whole (the same
    value by each row), never accumulated in place by several threads."""
    acc = s.cache_write(t, "local")
    st = s[t]
    st.compute_at(vst, block)
    _, x = _over_x(st, [st.op.axis[1]], tx)
    s[acc].compute_at(st, x)


def _weighted_sum(s, vst, block, parts, r, u_hat, tx, rows, depth):
    """Round r's s[b, j, d] at the block: a partial sum per thread (rfactor) over chunks of
    input capsules, then an all-reduce over threadIdx.y."""
    t = parts[f"s{r}"]
    ts = s[t]
    (i,) = ts.op.reduce_axis
    _, rest = ts.split(i, factor=rows * depth)
    _, ii = ts.split(rest, factor=rows)
    rf = s.rfactor(t, ii)
    ts.compute_at(vst, block)
    _, j, d = ts.op.axis
    (ry,) = ts.op.reduce_axis
    _over_x(ts, [j, d], tx)
    _bind(ts, ry, "threadIdx.y")
    rs = s[rf]
    rs.compute_at(ts, ry)
    if r == 0:  # coupling 1/J: each thread predicts its own elements, nothing to share
        return
    chunk, _ = rs.op.reduce_axis
    cache = s.cache_read(u_hat, "shared", [rf, parts[f"logit{r}"]])
    cs = s[cache]
    cs.compute_at(rs, chunk)
    _, ci, cj, cd = cs.op.axis
    cio, cii = cs.split(ci, factor=rows)
    cs.reorder(cii, cio, cj, cd)
    _bind(cs, cii, "threadIdx.y")
    _over_x(cs, [cj, cd], tx)
    # the reductions accumulate in a register and store once
    accs = {name: s.cache_write(parts[f"{name}{r}"], "local") for name in ("logit", "max", "sum")}
    for name in ("logit", "max", "sum", "c"):
        p = s[parts[f"{name}{r}"]]
        p.set_scope("shared")
        p.compute_at(rs, chunk)
        *lead, pi = p.op.axis[1:]
        pio, pii = p.split(pi, factor=rows)
        _bind(p, pii, "threadIdx.y")
        p.reorder(pii, pio, *lead)
        # j fastest: neighbouring lanes read u_hat rows Dout apart, not a chunk row apart
        _, px = _over_x(p, [pio] + lead, tx)
        if name in accs:
            s[accs[name]].compute_at(p, px)
    s[parts[f"exp{r}"]].compute_inline()


def schedule_predict(s, u_hat, threads=THREADS):
    """A thread per prediction vector element, its Din-long dot product unrolled: consecutive
    threads read consecutive (j, d) rows of W."""
    _inline_pack(s, u_hat)
    st = s[u_hat]
    _threads_over(st, list(st.op.axis), prod(st.op.shape), threads)
    st.unroll(st.op.reduce_axis[0])
    return s


def schedule_squash(s, out, threads=THREADS):
    """A thread per squashed vector: its |s|^2 once, in a register, then the vector scaled."""
    st = s[out]
    axis = out.op.attrs["axis"]
    (n2,) = [t for t in out.op.input_tensors if part_of(t) == "norm2"]
    axes = list(st.op.axis)
    along = axes.pop(axis)
    if not axes:  # one vector: one thread
        one, along = st.split(along, factor=out.shape[axis])
        axes = [one]
    st.reorder(*axes, along)
    _, tx = _threads_over(st, axes, prod(out.shape) // out.shape[axis], threads)
    s[n2].compute_at(st, tx)
    return s


def schedule_votes(s, out, threads=THREADS):
    """A thread per vote element, its P-long dot product unrolled: consecutive threads take
    consecutive columns q of W's matrices."""
    st = s[out]
    _threads_over(st, list(st.op.axis), prod(st.op.shape), threads)
    st.unroll(st.op.reduce_axis[0])
    return s


_SCHEDULES = {"routing": schedule_routing, "predict": schedule_predict,
              "squash": schedule_squash, "votes": schedule_votes}


def schedule_capsule_gpu(s, out, epilogue=None):
    """The GPU schedule of a capsule op's result, by ``attrs["capsule"]``; routing may be
    written through an elementwise ``epilogue`` (see ``schedule_routing``)."""
    kind = out.op.attrs.get("capsule")
    if kind not in _SCHEDULES or "part" in out.op.attrs:
        raise ValueError(f"schedule_for_gpu: {out.name!r} is an inner stage of a capsule op "
                         f"({out.op.attrs.get('part') or kind!r}); schedule the op's result")
    if epilogue is not None and epilogue is not out:
        if kind != "routing":
            raise ValueError(f"schedule_for_gpu: the GPU schedule of capsule {kind} "
                             f"{out.name!r} takes no epilogue ({epilogue.name!r})")
        return schedule_routing(s, out, out=epilogue)
    return _SCHEDULES[kind](s, out)


__all__ = ["routing_shape", "schedule_capsule_gpu", "schedule_predict",
           "schedule_routing", "schedule_squash", "schedule_votes"]
