"""Tuning templates of the built-in heavy ops: their default CPU schedules with the constants
turned into knobs.

Each template builds the op with its ``tensorc.ops`` function from JSON arguments (shapes,
strides, padding, dtype) and schedules it with the op's default schedule function, passing the
config's choices as that function's keyword arguments. Every knob lists the default schedule's
value first, so point 0 of every space *is* the default schedule (same lowered program) and a
tuner can only improve on it. Knobs that cannot matter for a shape (a register block wider
than the output, the matrix-vector kernel's blocks for a row-blocked product) are not defined,
nor is the parallel knob below the work the default schedule runs in parallel for, so the
spaces hold few duplicate points.

The capsule templates live in ``capsule_templates``. Importing this module registers the
templates; ``autotune.create_task`` imports it on the
first unknown template name.
"""
from .. import te
from ..autotune import get_config, template
from ..schedule.schedule_ops import inline_bodies
from . import conv as _conv
from . import matmul as _matmul
from . import schedule_cpu as _cpu
from .schedule_cpu import (
    vector_lanes,
)
from .schedule_nn import find_group_anchor
from .schedule_nn_conv import (
    PLANE_IC,
    PLANE_PIXELS,
    _divisor_near,
    conv1x1_mr,
    conv1x1_mr_cap,
    nchwc_defaults,
    nchwc_regn_cap,
    schedule_conv2d,
    winograd_lanes,
)
from .schedule_nn_fusion import find_reduction, macs, work_ok
from .schedule_nn_matmul import MATMUL_TAGS, default_mr, schedule_matmul
from .softmax import softmax as _softmax
from .util import prod


def _options(default, others):
    """``default`` first, then the other candidates, without repeats."""
    out = [default]
    for o in others:
        if o not in out:
            out.append(o)
    return out


def _define(cfg, name, default, others):
    """A knob with the default first; returns the config's choice."""
    cfg.define_knob(name, _options(default, others))
    return cfg[name].val


# ------------------------------------------------------------------------------ matmul family

def matmul_knobs(cfg, y, dtype):
    """Knobs of ``schedule_matmul`` for the product behind ``y``, as keyword arguments."""
    anchor = find_group_anchor(y)
    C = find_reduction(anchor, MATMUL_TAGS)
    M, N, K = (C.op.attrs[a] for a in ("M", "N", "K"))
    cfg.add_flop(2.0 * prod(C.shape) * K)
    knobs = {}
    if M >= 4:
        lanes = vector_lanes(dtype)
        top = max(8, default_mr(M))
        knobs["mr"] = _define(cfg, "mr", min(default_mr(M), M),
                              [m for m in range(1, top + 1) if m <= M])
        knobs["nr"] = _define(cfg, "nr", C.op.attrs["panel"],
                              [v for v in range(lanes, 65, lanes) if v - lanes < N])
        knobs["unroll"] = _define(cfg, "unroll", True, [False])
    elif C.op.attrs.get("b_major", "j") == "j":
        knobs["cols"] = _define(cfg, "cols", 512, [64, 128, 256, 1024])
        knobs["vec"] = _define(cfg, "vec", 64, [8, 16, 32])
    else:
        knobs["kv"] = _define(cfg, "kv", min(16, K), [v for v in (8, 32, 64) if v <= K])
    if work_ok(M * N * K):
        knobs["parallel"] = _define(cfg, "parallel", "auto", ["outer", "none"])
    return anchor, knobs


def _schedule_product(y, tensors, dtype):
    cfg = get_config()
    anchor, knobs = matmul_knobs(cfg, y, dtype)
    s = te.create_schedule(y.op)
    schedule_matmul(s, anchor, y, **knobs)
    return s, tensors


@template("dense")
def dense(M, N, K, dtype="float32"):
    """x[M, K] . w[N, K]^T (``ops.dense``; W is packed into column panels)."""
    x = te.placeholder((M, K), dtype, name="x")
    w = te.placeholder((N, K), dtype, name="w")
    y = _matmul.dense(x, w)
    return _schedule_product(y, [x, w, y], dtype)


@template("matmul")
def matmul(M, N, K, dtype="float32"):
    """a[M, K] @ b[K, N] (``ops.matmul``)."""
    a = te.placeholder((M, K), dtype, name="a")
    b = te.placeholder((K, N), dtype, name="b")
    y = _matmul.matmul(a, b)
    return _schedule_product(y, [a, b, y], dtype)


@template("batch_matmul")
def batch_matmul(B, M, N, K, dtype="float32"):
    """a[B, M, K] @ b[B, K, N] (``ops.batch_matmul``)."""
    a = te.placeholder((B, M, K), dtype, name="a")
    b = te.placeholder((B, K, N), dtype, name="b")
    y = _matmul.batch_matmul(a, b)
    return _schedule_product(y, [a, b, y], dtype)


# ------------------------------------------------------------------------------ convolutions

def conv_knobs(cfg, conv):
    """Knobs of the kernel ``ops.conv`` chose for ``conv`` (its ``attrs["algo"]``)."""
    info = conv.op.attrs
    algo = info["algo"]
    knobs = {}
    if algo == "nchwc":
        ocb, icb = info["oc_bn"], info["ic_bn"]
        icblocks = int(conv.op.reduce_axis[0].dom.extent.value)
        cap = nchwc_regn_cap(ocb)
        OH, OW = conv.shape[2], conv.shape[3]
        auto = nchwc_defaults(conv)
        knobs["regn"] = _define(cfg, "regn", auto["regn"],
                                [r for r in range(1, cap + 1) if r <= OW or auto["flat"]])
        knobs["plane"] = _define(cfg, "plane", auto["plane"], [not auto["plane"]])
        if auto["plane"]:
            knobs["flat"] = _define(cfg, "flat", auto["flat"], [not auto["flat"]])
        if OH * OW > PLANE_PIXELS:
            knobs["rows"] = _define(cfg, "rows", auto["rows"],
                                    [r for r in (1, 2, 4, 7, 8) if OH % r == 0])
        if icblocks > 1:
            knobs["plane_ic"] = _define(cfg, "plane_ic", PLANE_IC,
                                        [b for b in (16, 64, 128) if b // icb <= icblocks])
        knobs["unroll"] = _define(cfg, "unroll", True, [False])
    elif algo == "1x1":
        OH, OW = info["out_hw"]
        OC = conv.shape[1]
        top = max(8, conv1x1_mr_cap())
        knobs["mr"] = _define(cfg, "mr", conv1x1_mr(OC), [m for m in range(1, top + 1) if m <= OC])
        knobs["nr"] = _define(cfg, "nr", 16, [8, 32, 64])
        if OH > 1:
            default = _divisor_near(OH, max(1, 320 // OW))
            knobs["ry"] = _define(cfg, "ry", default,
                                  [d for d in range(1, OH + 1) if OH % d == 0][:8])
    elif algo == "winograd":
        default = winograd_lanes(conv.shape[3])
        knobs["tile_p"] = _define(cfg, "tile_p", 6, [4, 8, 12])
        knobs["lanes"] = _define(cfg, "lanes", default, [8 if default == 16 else 16])
    else:
        OH = conv.shape[2]
        knobs["ry"] = _define(cfg, "ry", min(4, OH), [r for r in (1, 2, 3, 6, 8) if r <= OH])
        knobs["vx"] = _define(cfg, "vx", info["vx"], [8, 16, 32])
        knobs["unroll"] = _define(cfg, "unroll", True, [False])
    if work_ok(macs(conv)):
        knobs["parallel"] = _define(cfg, "parallel", True, [False])
    return knobs


def _schedule_conv(y, tensors):
    cfg = get_config()
    anchor = find_group_anchor(y)
    conv = _conv.find_anchor(anchor)
    cfg.add_flop(2.0 * prod(y.shape) * prod(int(r.dom.extent.value)
                                            for r in conv.op.reduce_axis))
    knobs = conv_knobs(cfg, conv)
    s = te.create_schedule(y.op)
    schedule_conv2d(s, anchor, y, **knobs)
    return s, tensors


@template("conv2d_nchw")
def conv2d_nchw(N, C, H, W, OC, KH, KW, strides=1, padding=0, dilation=1, dtype="float32"):
    """conv2d of NCHW data by an OIHW weight as ``ops.conv2d`` lays it out (NCHWc packed
    input and kernel, or the 1x1 kernel on NCHW)."""
    x = te.placeholder((N, C, H, W), dtype, name="x")
    w = te.placeholder((OC, C, KH, KW), dtype, name="w")
    y = _conv.conv2d(x, w, strides=strides, padding=padding, dilation=dilation)
    return _schedule_conv(y, [x, w, y])


@template("depthwise_conv2d")
def depthwise_conv2d(N, C, H, W, KH, KW, strides=1, padding=0, dilation=1, dtype="float32"):
    """Depthwise conv2d (one KH x KW filter per channel, ``ops.depthwise_conv2d``)."""
    x = te.placeholder((N, C, H, W), dtype, name="x")
    w = te.placeholder((C, 1, KH, KW), dtype, name="w")
    y = _conv.depthwise_conv2d(x, w, strides=strides, padding=padding, dilation=dilation)
    return _schedule_conv(y, [x, w, y])


# ------------------------------------------------------------------------------ softmax

@template("softmax")
def softmax(shape, axis=-1, dtype="float32"):
    """``ops.softmax`` of a tensor of ``shape`` along ``axis``."""
    x = te.placeholder(tuple(shape), dtype, name="x")
    y = _softmax(x, axis)
    cfg = get_config()
    native = vector_lanes(dtype)
    lanes = _define(cfg, "lanes", native, [v for v in (native // 2, native * 2, native * 4) if v >= 1])
    rows = prod(y.shape[:y.op.attrs["axis"]])
    parallel = rows > 1 and prod(y.shape) >= _cpu.PARALLEL_MIN and \
        _define(cfg, "parallel", True, [False])
    s = te.create_schedule(y.op)
    _cpu.schedule_softmax(s, y, lanes, parallel)
    return s, [x, y]


# ------------------------------------------------------------------------------ reductions

#: reducer name -> the ops.reduction function the "reduce" template builds
REDUCERS = ("sum", "mean", "max", "min", "prod", "l1", "l2", "sum_square", "log_sum_exp")


@template("reduce")
def reduce(shape, axis=None, reducer="sum", keepdims=False, dtype="float32"):
    """``ops.reduction.<reducer>`` of a tensor of ``shape`` over ``axis`` (None: all).

    Knobs: a reduce-innermost layout (rows) has ``lanes``, the vector partial sums rfactor
    keeps (more than one native vector keeps several adds in flight); a spatial-innermost one
    (columns) has ``block``, the output elements accumulated at once; both ``parallel``."""
    from . import reduction as _reduction
    if reducer not in REDUCERS:
        raise ValueError(f"template reduce: unknown reducer {reducer!r}; expected one of "
                         f"{', '.join(REDUCERS)}")
    x = te.placeholder(tuple(shape), dtype, name="x")
    y = getattr(_reduction, reducer)(x, axis, keepdims)
    cfg = get_config()
    cfg.add_flop(float(prod(x.shape)))
    s = te.create_schedule(y.op)
    main = next(s[t] for t in [y] + _cpu.composite_parts(s, y) if s[t].op.reduce_axis)
    knobs = {}
    if _cpu.reduces_innermost(main, inline_bodies(s)):
        native = vector_lanes(dtype)
        knobs["lanes"] = _define(cfg, "lanes", native, [native * 2, native * 4])
    else:
        knobs["block"] = _define(cfg, "block", _cpu.COLUMN_BLOCK, [64, 128, 512, 1024])
    if prod(x.shape) >= _cpu.PARALLEL_MIN:
        knobs["parallel"] = _define(cfg, "parallel", True, [False])
    _cpu.schedule_reduce(s, y, **knobs)
    return s, [x, y]


from .capsule_templates import (capsule_dynamic_routing,  # noqa: E402  (registers them)
                                capsule_em_votes, capsule_predict, capsule_routing,
                                capsule_routing_lanes)
from . import templates_gpu  # noqa: E402, F401  (registers the CUDA variants)

__all__ = ["dense", "matmul", "batch_matmul", "conv2d_nchw", "depthwise_conv2d", "softmax",
           "reduce", "capsule_dynamic_routing", "capsule_em_votes", "capsule_predict",
           "capsule_routing", "capsule_routing_lanes"]
