"""Default CPU schedules for matmul/dense, convolutions, pooling and resize, and the dispatch
that picks one by the tag of a group's anchor.

Every ``schedule_<op>(s, anchor, out)`` schedules the op that returned ``anchor`` together with
its elementwise epilogue ending in ``out``, inside the larger schedule ``s``
(``schedule_nn_fusion`` says how). The schedules live in modules by kind of op:

- ``schedule_nn_matmul``: matmul, batch_matmul, dense, gemm -- register tiles one packed
  column panel wide (6 x 16 with AVX2, 12 x 32 with AVX-512), and matrix-vector kernels;
- ``schedule_nn_conv``: conv2d, conv1d, depthwise and transposed convolutions (NCHWc, 1x1 and
  depthwise kernels);
- ``schedule_nn_pool``: window and global pooling, resize;
- ``schedule_nn_fusion``: what they share (fusing the epilogue, local accumulators, the work
  threshold for running in parallel).

All their public names are importable from here, which is where the graph compiler
(``find_group_anchor``, ``schedule_group``) and the tests and benchmarks
(``create_schedule``) take them from.
"""
from .. import te
from ..te.tensor import ComputeOp
from .schedule_nn_conv import (
    schedule_conv1d,
    schedule_conv2d,
    schedule_conv2d_transpose,
    schedule_depthwise_conv2d,
)
from .schedule_nn_fusion import fuse_epilogue
from .schedule_nn_matmul import (
    schedule_batch_matmul,
    schedule_dense,
    schedule_gemm,
    schedule_matmul,
)
from .schedule_nn_pool import schedule_pool, schedule_resize

#: anchor tag -> schedule function(s, anchor, out)
ANCHOR_SCHEDULES = {"conv2d_nchw": schedule_conv2d, "depthwise_conv2d_nchw": schedule_conv2d,
                    "conv2d_transpose": schedule_conv2d, "matmul": schedule_matmul,
                    "dense": schedule_dense, "pool": schedule_pool, "resize": schedule_resize}
ANCHOR_TAGS = tuple(ANCHOR_SCHEDULES)


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
    fn = ANCHOR_SCHEDULES.get(anchor.op.tag)
    if fn is None:
        raise ValueError(f"schedule_group: no schedule for tag {anchor.op.tag!r} of "
                         f"{anchor.name!r}; known: {ANCHOR_TAGS}")
    fn(s, anchor, out)
    return s


def create_schedule(out):
    """A schedule of the graph ending in ``out`` with its anchor's default schedule applied."""
    s = te.create_schedule(out.op)
    anchor = find_group_anchor(out)
    if anchor is None:
        raise ValueError(f"create_schedule: {out.name!r} has no matmul/conv/pool/resize anchor")
    return schedule_group(s, anchor, out)


__all__ = [
    "ANCHOR_SCHEDULES",
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
