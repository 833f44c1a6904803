"""Tuning templates of the built-in ops for CUDA targets ("cuda", "cuda -arch=sm_XX" and
"cuda-emu"): the default GPU schedules (``schedule_gpu``) with their constants turned into
knobs.

They share the names of the CPU templates (``create_task("matmul", args, target="cuda")``
takes this variant) and their rule: every knob lists the default schedule's value first, so
point 0 of every space is what ``schedule_for_gpu`` makes and a tuner can only improve on it.
Knobs go as far as a block may (1024 threads, 48 KiB of static shared memory, 64K registers):
the points past a device's limits are rejected by the measurement before they run, and
recorded, so the tuner learns to avoid them.

Registered when ``ops.templates`` is imported.
"""
from .. import te
from ..autotune import get_config, template
from . import conv as _conv
from . import matmul as _matmul
from . import norm as _norm
from . import reduction as _reduction
from . import schedule_gpu as _gpu
from .softmax import softmax as _softmax
from .templates import REDUCERS, _define
from .util import prod

#: Candidate block sizes of one-dimensional thread blocks.
_BLOCKS = (32, 64, 128, 256, 512, 1024)


# ------------------------------------------------------------------------------ matrix products

def matmul_knobs(cfg, anchor, dtype):
    """Knobs of ``schedule_gpu.schedule_matmul`` for the product ``anchor``: threads per block
    side, register block, K-slice, unrolling and (where every tile row is 16-byte aligned)
    vector loads of the shared-tile fetch."""
    M, N, K = (anchor.op.attrs[a] for a in ("M", "N", "K"))
    cfg.add_flop(2.0 * prod(anchor.shape) * K)
    threads = _define(cfg, "threads", _gpu.MM_THREADS, [8, 32])
    large = min(M, N) >= 8 * _gpu.MM_THREADS * _gpu.REG_LARGE
    default_reg = _gpu.REG_LARGE if large else _gpu.REG_SMALL
    reg = _define(cfg, "reg", default_reg, [r for r in (1, 2, 4, 8) if r <= max(M, N)])
    default_kt = _gpu.KT_LARGE if default_reg == _gpu.REG_LARGE else _gpu.KT_SMALL
    knobs = {"threads": threads, "reg": reg,
             "kt": _define(cfg, "kt", default_kt, [k for k in (4, 8, 16, 32) if k <= K]),
             "unroll": _define(cfg, "unroll", True, [False])}
    b_major = anchor.op.attrs.get("b_major", "j") == "j"
    if dtype == "float32" and b_major and K % 4 == 0 and N % 4 == 0:
        knobs["vector"] = _define(cfg, "vector", 1, [4])
    return knobs


def _schedule_product(y, tensors, dtype):
    cfg = get_config()
    s = te.create_schedule(y.op)
    anchor = _gpu.heavy_anchor(s, y)
    _gpu.schedule_matmul(s, anchor, y, **matmul_knobs(cfg, anchor, dtype))
    return _gpu.inline_leftovers(s), tensors


@template("matmul", target="cuda")
def matmul(M, N, K, dtype="float32"):
    """a[M, K] @ b[K, N] (``ops.matmul``) on a GPU."""
    a = te.placeholder((M, K), dtype, name="a")
    b = te.placeholder((K, N), dtype, name="b")
    y = _matmul.matmul(a, b)
    return _schedule_product(y, [a, b, y], dtype)


@template("dense", target="cuda")
def dense(M, N, K, dtype="float32"):
    """x[M, K] . w[N, K]^T (``ops.dense``) on a GPU."""
    x = te.placeholder((M, K), dtype, name="x")
    w = te.placeholder((N, K), dtype, name="w")
    y = _matmul.dense(x, w)
    return _schedule_product(y, [x, w, y], dtype)


@template("batch_matmul", target="cuda")
def batch_matmul(B, M, N, K, dtype="float32"):
    """a[B, M, K] @ b[B, K, N] (``ops.batch_matmul``) on a GPU."""
    a = te.placeholder((B, M, K), dtype, name="a")
    b = te.placeholder((B, K, N), dtype, name="b")
    y = _matmul.batch_matmul(a, b)
    return _schedule_product(y, [a, b, y], dtype)


# ------------------------------------------------------------------------------ convolutions

@template("conv2d_nchw", target="cuda")
def conv2d_nchw(N, C, H, W, OC, KH, KW, strides=1, padding=0, dilation=1, dtype="float32"):
    """conv2d of NCHW data by an OIHW weight (``ops.conv2d``) on a GPU: threads per block and
    whether the channel block is unrolled."""
    x = te.placeholder((N, C, H, W), dtype, name="x")
    w = te.placeholder((OC, C, KH, KW), dtype, name="w")
    y = _conv.conv2d(x, w, strides=strides, padding=padding, dilation=dilation)
    cfg = get_config()
    s = te.create_schedule(y.op)
    anchor = _gpu.heavy_anchor(s, y)  # the convolution's reduction
    _gpu.schedule_conv(s, anchor, y, **conv_knobs(cfg, anchor, y))
    return _gpu.inline_leftovers(s), [x, w, y]


def conv_knobs(cfg, anchor, out):
    """Knobs of ``schedule_gpu.schedule_conv`` for the convolution ``anchor`` computing
    ``out``: threads per block and whether the channel block is unrolled."""
    cfg.add_flop(2.0 * prod(out.shape) * prod(int(r.dom.extent.value)
                                              for r in anchor.op.reduce_axis))
    return {"threads": _define(cfg, "threads", _gpu.CONV_THREADS, _BLOCKS),
            "unroll": _define(cfg, "unroll", True, [False])}


# ------------------------------------------------------------------------------ row reductions

def _row_threads(cfg, n):
    """The knob of the most threads that share a row of ``n`` elements. A row gets the
    largest power of two within the cap and ``n``, so caps that give the default's count
    are left out."""
    p = 1 << (max(n, 1).bit_length() - 1)
    default = min(_gpu.ROW_THREADS, p)
    return _define(cfg, "row_threads", _gpu.ROW_THREADS,
                   [t for t in (8, 16, *_BLOCKS) if t <= p and t != default])


@template("softmax", target="cuda")
def softmax(shape, axis=-1, dtype="float32"):
    """``ops.softmax`` of a tensor of ``shape`` along ``axis`` on a GPU: threads per row."""
    x = te.placeholder(tuple(shape), dtype, name="x")
    y = _softmax(x, axis)
    row_threads = _row_threads(get_config(), y.shape[y.op.attrs["axis"]])
    s = te.create_schedule(y.op)
    _gpu.schedule_softmax(s, y, row_threads=row_threads)
    return _gpu.inline_leftovers(s), [x, y]


@template("layer_norm", target="cuda")
def layer_norm(shape, axis=-1, dtype="float32"):
    """``ops.layer_norm`` (no scale or bias) of a tensor of ``shape`` from ``axis`` on, on a
    GPU: threads per statistics group."""
    x = te.placeholder(tuple(shape), dtype, name="x")
    y = _norm.layer_norm(x, axis=axis)
    lead = y.op.attrs["stat_axes"]
    row_threads = _row_threads(get_config(), prod(y.shape[lead:]))
    s = te.create_schedule(y.op)
    _gpu.schedule_norm(s, y, row_threads=row_threads)
    return _gpu.inline_leftovers(s), [x, y]


@template("reduce", target="cuda")
def reduce(shape, axis=None, reducer="sum", keepdims=False, dtype="float32"):
    """``ops.reduction.<reducer>`` of a tensor of ``shape`` over ``axis`` (None: all) on a
    GPU: threads per row (a block per output) and block size (a thread per output; which of
    the two forms runs is the default schedule's choice)."""
    if reducer not in REDUCERS:
        raise ValueError(f"template reduce: unknown reducer {reducer!r}; expected one of "
                         f"{', '.join(REDUCERS)}")
    x = te.placeholder(tuple(shape), dtype, name="x")
    y = getattr(_reduction, reducer)(x, axis, keepdims)
    axes = range(len(shape)) if axis is None else [axis] if isinstance(axis, int) else axis
    cfg = get_config()
    cfg.add_flop(float(prod(x.shape)))
    row_threads = _row_threads(cfg, prod(shape[a] for a in axes))
    threads = _define(cfg, "threads", _gpu.THREADS, _BLOCKS)
    s = te.create_schedule(y.op)
    _gpu.schedule_reduce(s, y, row_threads=row_threads, threads=threads)
    return _gpu.inline_leftovers(s), [x, y]


__all__ = ["matmul", "dense", "batch_matmul", "conv2d_nchw", "softmax", "layer_norm",
           "reduce"]
