"""Matrix products: matmul (numpy semantics), batch_matmul, dense (x W^T + b), gemm (ONNX).

The reduction of each op is one compute tagged "matmul" (matmul, batch_matmul, gemm) or
"dense"; the right-hand operand is read through a packing compute (tag "matmul_pack")
``BP[..., N/P, K, P]`` -- P-column panels (``panel_width``: 16, or 32 with AVX-512) that the
CPU schedule's register micro-kernel streams contiguously (for dense, the panels also
transpose W) -- and, from ``MIN_ROWS`` rows on, the left-hand one through another (tag
"matmul_pack_rows") ``AP[..., M/6, K, 6]``: the micro-kernel's six rows interleaved, so its
broadcasts read one contiguous stream instead of six rows 4 KB apart (matmul 1024^3 ran 5-7%
faster, benchmarks/RESULTS.md). A schedule that does not want a packing inlines it, which
then reads the operand in place. Bias, alpha/beta scaling and gemm's C are elementwise
epilogue computes (tag "broadcast") after the anchor.

float16 products accumulate in float32 (the reduction, named ``<name>_acc``, is float32) and
are rounded to float16 once, by an elementwise compute after it, as numpy and ONNX Runtime do;
the epilogue then works on the rounded float16 product, as ONNX's Gemm definition does.
"""
from .. import te
from ..ir import dtype as dt
from ..te.tensor import Tensor
from .util import accumulation_dtype

#: Columns per panel of the packed right-hand operand (``panel_width``): 16, two AVX2 vectors.
PANEL = 16


def panel_width(N):
    """Columns per packed panel of a product with N columns: two native float32 vectors (32
    with AVX-512) when N is at least that and a multiple of one vector, else ``PANEL``. The
    micro-kernel's tile is one panel wide, so each broadcast element of A feeds two FMAs: on
    the Zen 5 one broadcast per FMA caps a kernel at 78% of the FMA peak, and 12 x 32 tiles
    ran 1024^3 at 490 against 431 GFLOP/s and BERT's 128 x 3072 x 768 at 434 against 348.
    Where N leaves a partial vector in the last panel, that panel's guarded columns ran scalar
    and 1000^3 fell to 265 (benchmarks/RESULTS.md, thirteenth session)."""
    from .schedule_cpu import vector_lanes
    lanes = vector_lanes("float32")
    wide = 2 * lanes
    return wide if wide > PANEL and N >= wide and N % lanes == 0 else PANEL

#: Rows of the left-hand operand interleaved by its packing: the CPU micro-kernel's rows.
ROWS = 6

#: Fewest rows for which the left-hand operand is packed; below, the schedules use
#: matrix-vector kernels that read it in place.
MIN_ROWS = 4


def _check(op, x, what):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {what} must be a te.Tensor, got {type(x).__name__} {x!r}")
    return x


def _broadcast_batch(op, a, b, abatch, bbatch):
    nd = max(len(abatch), len(bbatch))
    ab = (1,) * (nd - len(abatch)) + tuple(abatch)
    bb = (1,) * (nd - len(bbatch)) + tuple(bbatch)
    out = []
    for d, (x, y) in enumerate(zip(ab, bb)):
        if x != y and 1 not in (x, y):
            raise ValueError(f"{op}: batch dimension {d - nd} of {a.name!r} ({x}) and "
                             f"{b.name!r} ({y}) cannot be broadcast (shapes {a.shape} and "
                             f"{b.shape})")
        out.append(max(x, y))
    return tuple(out)


def _bidx(batch_shape, idx):
    """Index into an operand's batch dims from the output's (right-aligned, size-1 -> 0)."""
    lead = len(idx) - len(batch_shape)
    return tuple(0 if n == 1 else i for n, i in zip(batch_shape, idx[lead:]))


def _pack(op, name, bbatch, K, N, read, dtype):
    """BP[*bbatch, ceil(N/P), K, P] = read(*batch, k, j) (zero past N), P = panel_width(N)."""
    width = panel_width(N)
    panels = -(-N // width)
    zero = te.const(0, dtype)

    def f(*idx):
        *bidx, x, k, z = idx
        j = x * width + z
        v = read(tuple(bidx), k, j)
        return te.if_then_else(j < N, v, zero) if N % width else v
    return te.compute(tuple(bbatch) + (panels, K, width), f, name=f"{name}_pack",
                      tag="matmul_pack", attrs={"panel": width})


def _pack_rows(name, abatch, M, K, read, dtype):
    """AP[*abatch, ceil(M/6), K, 6] = read(*batch, i, k) (zero past M)."""
    zero = te.const(0, dtype)

    def f(*idx):
        *bidx, x, k, z = idx
        i = x * ROWS + z
        v = read(tuple(bidx), i, k)
        return te.if_then_else(i < M, v, zero) if M % ROWS else v
    return te.compute(tuple(abatch) + (-(-M // ROWS), K, ROWS), f, name=f"{name}_pack_rows",
                      tag="matmul_pack_rows", attrs={"rows": ROWS})


def _rows_of(ap):
    """Reads row i, column k of the operand packed in ``ap``."""
    return lambda bi, i, k: ap[bi + (i // ROWS, k, i % ROWS)]


def _product(op, tag, name, a_read, abatch, bp, bbatch, M, N, K, out_batch, in_dtype,
             out_dtype, attrs):
    """The reduction, in the accumulation type of ``out_dtype``; a float16 result is the
    float32 sum rounded once by an elementwise stage after it (which the schedules inline)."""
    acc = accumulation_dtype(out_dtype)
    width = bp.op.attrs["panel"]
    k = te.reduce_axis((0, K), name="k")
    read_a = a_read if M < MIN_ROWS else _rows_of(_pack_rows(name, abatch, M, K, a_read,
                                                             in_dtype))

    def f(*idx):
        *ob, i, j = idx
        x = read_a(_bidx(abatch, tuple(ob)), i, k)
        y = bp[_bidx(bbatch, tuple(ob)) + (j // width, k, j % width)]
        return te.sum(x.astype(acc) * y.astype(acc), axis=k)
    info = {"M": M, "N": N, "K": K, "panel": width}
    info.update(attrs)
    shape = tuple(out_batch) + (M, N)
    if acc == out_dtype:
        return te.compute(shape, f, name=name, tag=tag, attrs=info)
    total = te.compute(shape, f, name=f"{name}_acc", tag=tag, attrs=info)
    return te.compute(shape, lambda *i: total[i].astype(out_dtype), name=name, tag="elemwise")


def _dtypes(op, a, b, out_dtype):
    if a.dtype != b.dtype:
        raise TypeError(f"{op}: {a.name!r} is {a.dtype} but {b.name!r} is {b.dtype}; cast one "
                        "first")
    out = dt.check(out_dtype) if out_dtype is not None else a.dtype
    return a.dtype, out


def matmul(a, b, out_dtype=None, name="matmul"):
    """numpy.matmul / ONNX MatMul: a 1-D a is a row [1, K] and a 1-D b a column [K, 1], the
    added axis removed from the result (two 1-D operands give their dot product, a 0-d
    tensor); batch dimensions broadcast."""
    op = "matmul"
    _check(op, a, "a")
    _check(op, b, "b")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"{op}: operands must have at least 1 dimension, got {a.name!r} "
                         f"{a.shape} and {b.name!r} {b.shape}")
    in_dt, out_dt = _dtypes(op, a, b, out_dtype)
    a_vec, b_vec = a.ndim == 1, b.ndim == 1
    ashape = (1,) + a.shape if a_vec else a.shape
    bshape = b.shape + (1,) if b_vec else b.shape
    M, K = ashape[-2:]
    K2, N = bshape[-2:]
    if K != K2:
        raise ValueError(f"{op}: {a.name!r} dimension {a.ndim - 1} ({K}) does not match "
                         f"{b.name!r} dimension {max(b.ndim - 2, 0)} ({K2}) (shapes {a.shape} "
                         f"and {b.shape})")
    abatch, bbatch = ashape[:-2], bshape[:-2]
    out_batch = _broadcast_batch(op, a, b, abatch, bbatch)

    def a_read(bi, i, k):
        return a[k] if a_vec else a[bi + (i, k)]

    def b_read(bi, k, j):
        return b[k] if b_vec else b[bi + (k, j)]
    bp = _pack(op, name, bbatch, K, N, b_read, in_dt)
    c = _product(op, "matmul", name, a_read, abatch, bp, bbatch, M, N, K, out_batch, in_dt,
                 out_dt, {"op": op, "b_major": "k" if b_vec else "j"})
    if not a_vec and not b_vec:
        return c
    # drop the promoted axes: an injective view the schedule inlines
    shape = tuple(out_batch) + (() if a_vec else (M,)) + (() if b_vec else (N,))

    def f(*idx):
        idx = list(idx)
        full = idx[:len(out_batch)]
        rest = idx[len(out_batch):]
        full.append(0 if a_vec else rest.pop(0))
        full.append(0 if b_vec else rest.pop(0))
        return c[tuple(full)]
    return te.compute(shape, f, name=f"{name}_view", tag="injective")


def batch_matmul(a, b, transpose_a=False, transpose_b=False, out_dtype=None,
                 name="batch_matmul"):
    """[B, M, K] x [B, K, N] (or transposed operands) with batch 1 broadcast to B."""
    op = "batch_matmul"
    _check(op, a, "a")
    _check(op, b, "b")
    for t, what in ((a, "a"), (b, "b")):
        if t.ndim != 3:
            raise ValueError(f"{op}: {what} {t.name!r} must have 3 dimensions [batch, rows, "
                             f"cols], got shape {t.shape}")
    in_dt, out_dt = _dtypes(op, a, b, out_dtype)
    M, K = (a.shape[2], a.shape[1]) if transpose_a else (a.shape[1], a.shape[2])
    K2, N = (b.shape[2], b.shape[1]) if transpose_b else (b.shape[1], b.shape[2])
    if K != K2:
        raise ValueError(f"{op}: reduction length of {a.name!r} ({K}) does not match that of "
                         f"{b.name!r} ({K2}) (shapes {a.shape}, {b.shape}, transpose_a="
                         f"{transpose_a}, transpose_b={transpose_b})")
    out_batch = _broadcast_batch(op, a, b, a.shape[:1], b.shape[:1])

    def a_read(bi, i, k):
        return a[bi + ((k, i) if transpose_a else (i, k))]

    def b_read(bi, k, j):
        return b[bi + ((j, k) if transpose_b else (k, j))]
    bp = _pack(op, name, b.shape[:1], K, N, b_read, in_dt)
    return _product(op, "matmul", name, a_read, a.shape[:1], bp, b.shape[:1], M, N, K,
                    out_batch, in_dt, out_dt,
                    {"op": op, "b_major": "k" if transpose_b else "j"})


def dense(x, weight, bias=None, out_dtype=None, name="dense"):
    """x @ weight^T (+ bias): x [..., K], weight [N, K], bias [N] -> [..., N]."""
    op = "dense"
    _check(op, x, "data")
    _check(op, weight, "weight")
    if x.ndim < 1:
        raise ValueError(f"{op}: data {x.name!r} must have at least 1 dimension")
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight {weight.name!r} must have 2 dimensions [units, "
                         f"input features], got shape {weight.shape}")
    in_dt, out_dt = _dtypes(op, x, weight, out_dtype)
    K = x.shape[-1]
    N, K2 = weight.shape
    if K != K2:
        raise ValueError(f"{op}: weight {weight.name!r} dimension 1 ({K2}) does not match data "
                         f"{x.name!r} dimension {x.ndim - 1} ({K})")
    lead = x.shape[:-1]
    M = 1
    for d in lead:
        M *= d
    if bias is not None:
        _check(op, bias, "bias")
        if bias.shape not in ((N,), (1, N)):
            raise ValueError(f"{op}: bias {bias.name!r} must have shape ({N},), got "
                             f"{bias.shape}")

    def a_read(bi, i, k):
        # rows of x flattened: i -> leading index
        idx = []
        for d in reversed(lead):
            idx.append(i % d if d != 1 else 0)
            i = i // d
        return x[tuple(reversed(idx)) + (k,)] if lead else x[k]

    def w_read(bi, k, j):
        return weight[j, k]
    wp = _pack(op, name, (), K, N, w_read, in_dt)
    y = _product(op, "dense", name, a_read, (), wp, (), M, N, K, (), in_dt, out_dt,
                 {"op": op, "b_major": "k"})
    if len(lead) != 1:
        y2 = y
        shape = tuple(lead) + (N,)

        def fv(*idx):
            *li, j = idx
            flat = 0
            for d, i in zip(lead, li):
                flat = flat * d + i
            return y2[flat, j]
        y = te.compute(shape, fv, name=f"{name}_view", tag="injective")
    if bias is None:
        return y

    def fb(*i):
        bv = bias[i[-1]] if bias.ndim == 1 else bias[0, i[-1]]
        return y[i] + (bv.astype(y.dtype) if bias.dtype != y.dtype else bv)
    return te.compute(y.shape, fb, name=f"{name}_bias", tag="broadcast")


def gemm(a, b, c=None, alpha=1.0, beta=1.0, trans_a=False, trans_b=False, out_dtype=None,
         name="gemm"):
    """ONNX Gemm: alpha * A' @ B' + beta * C, A' = A^T if trans_a, B' = B^T if trans_b;
    C broadcasts (unidirectionally) to [M, N]."""
    op = "gemm"
    _check(op, a, "A")
    _check(op, b, "B")
    for t, what in ((a, "A"), (b, "B")):
        if t.ndim != 2:
            raise ValueError(f"{op}: {what} {t.name!r} must have 2 dimensions, got shape "
                             f"{t.shape}")
    in_dt, out_dt = _dtypes(op, a, b, out_dtype)
    M, K = (a.shape[1], a.shape[0]) if trans_a else a.shape
    K2, N = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if K != K2:
        raise ValueError(f"{op}: A {a.name!r} gives K={K} (shape {a.shape}, trans_a={trans_a}) "
                         f"but B {b.name!r} gives K={K2} (shape {b.shape}, trans_b={trans_b})")

    def a_read(bi, i, k):
        return a[k, i] if trans_a else a[i, k]

    def b_read(bi, k, j):
        return b[j, k] if trans_b else b[k, j]
    bp = _pack(op, name, (), K, N, b_read, in_dt)
    y = _product(op, "dense" if trans_b else "matmul", name, a_read, (), bp, (), M, N, K, (),
                 in_dt, out_dt, {"op": op, "b_major": "k" if trans_b else "j"})
    if c is not None:
        _check(op, c, "C")
        cs = tuple(c.shape)
        if len(cs) > 2 or any(d not in (1, full) for d, full in zip(cs, (M, N)[2 - len(cs):])):
            raise ValueError(f"{op}: C {c.name!r} of shape {cs} does not broadcast to ({M}, "
                             f"{N})")
    if c is None and alpha == 1.0:
        return y

    def f(i, j):
        v = y[i, j]
        if alpha != 1.0:
            v = v * te.const(alpha, out_dt)
        if c is not None:
            idx = (i, j)[2 - c.ndim:]
            cv = c[tuple(0 if d == 1 else x for d, x in zip(c.shape, idx))].astype(out_dt)
            v = v + (cv * te.const(beta, out_dt) if beta != 1.0 else cv)
        return v
    return te.compute((M, N), f, name=f"{name}_epilogue", tag="broadcast")


__all__ = ["batch_matmul", "dense", "gemm", "matmul"]
