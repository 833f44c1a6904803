"""Operators (TVM's TOPI shape): each op is a TE definition that reads as its math, tagged for
the graph compiler, plus a default CPU schedule chosen by that tag.

Tags: "elemwise", "broadcast" and "injective" ops map elements one to one and may be inlined
into their consumers; "reduce", "softmax" and "norm" ops are anchors with their own schedules.
An anchor may be a composite of several stages (softmax: max, exp, sum, output): the inner ones
carry ``attrs["part"]``, are read only by their composite and are scheduled with its output,
so a graph compiler should group them with it.
``schedule_for(outs)`` builds the schedule of a small TE graph with all of that applied:

    y = ops.relu(ops.add(ops.mean(x, axis=-1), b))   # add inlines into relu; mean: own stage
    s = ops.schedule_for(y)
    f = tc.build(s, [x, b, y])

Modules: elemwise (unary/binary math with numpy broadcasting, activations), reduction,
softmax, norm, transform (data movement, gathers, padding, cumsum, einsum, topk) and
schedule_cpu. The neural-network modules of the other half of the library (nn, conv, pool,
matmul) and the capsule ops (capsule) load on first use as ``tensorc.ops.<name>``: add a
module's name to ``_LAZY`` below to expose it.
"""
import importlib

from .elemwise import (abs, add, cast, ceil, clip, cos, divide, elu, equal, erf, exp,  # noqa: A004
                       exp2, expm1, floor, floor_divide, fmod, gelu, greater, greater_equal,
                       hard_sigmoid, hard_swish, isfinite, isinf, isnan, leaky_relu, less,
                       less_equal, log, log1p, log2, log10, logical_and, logical_not,
                       logical_or, logical_xor, map_elements, maximum, minimum, mod, multiply,
                       neg, not_equal, power, prelu, reciprocal, relu, round, rsqrt, selu,
                       sigmoid, sign, silu, sin, softplus, sqrt, square, subtract, tan, tanh,
                       trunc, where)
from .norm import batch_norm, group_norm, instance_norm, layer_norm
from .reduction import (argmax, argmin, l1, l2, log_sum_exp, max, mean, min,  # noqa: A004
                        prod, sum, sum_square)
from .schedule_cpu import (SCHEDULES, register_schedule, schedule_for, schedule_injective,
                           schedule_norm, schedule_reduce, schedule_softmax)
from .softmax import log_softmax, softmax
from .transform import (arange, broadcast_to, concat, cumsum, einsum, expand, flatten, gather,
                        gather_elements, pad, reshape, slice, split, squeeze, tile,  # noqa: A004
                        topk, transpose, unsqueeze)
from .util import INJECTIVE_TAGS, is_injective

#: Operator modules written elsewhere, imported when first accessed as ``tensorc.ops.<name>``.
_LAZY = ("conv", "pool", "matmul", "resize", "schedule_nn", "capsule")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'tensorc.ops' has no attribute {name!r}")
