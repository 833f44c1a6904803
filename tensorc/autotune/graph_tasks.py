"""Tuning a whole model: one task per distinct heavy kernel, trials spread where they pay, and
the records used by ``tensorc.compile(graph, tuning_db=...)``.

A task here is a fused group of the graph compiler (a conv or matmul anchor with its epilogue,
a pooling, a softmax...): its TE is the group's, exactly as the compiler builds it. Its space
is one of two (``space=``):

- "template": for a group whose anchor has a knob template (matmul family, conv2d, depthwise;
  ``tensorc.ops.templates``), the anchor's default schedule with its constants as knobs --
  point 0 is exactly the compiler's default schedule, so the search starts from it;
- "auto": the auto-template of the group's TE (any group; larger, template-free spaces).

Under "template", groups without a template get the auto-template. The compiler's own default
schedule of the group is measured first and recorded as the ``DEFAULT`` config, so a tuned
model never runs a kernel that was measured slower than the kernel it would have run untuned;
``compile`` takes, per group, the best record of either space.

For a GPU target ("cuda", "cuda -arch=sm_XX", "cuda-emu") a task is a group around a matmul
or convolution, in the template space of its GPU schedule (``ops.templates_gpu``: threads,
register block, K-slice, unrolling, vector loads), point 0 and ``DEFAULT`` being what
``schedule_for_gpu`` makes; the auto-template is CPU-only.
"""
import logging
import math

from .. import te
from ..graph.compiler import _inline_leftovers, group_signature, group_tensors, schedule_group
from .auto_template import AutoTask, auto_schedule
from .space import get_config
from .task import value_arith

log = logging.getLogger("tensorc.autotune")

#: The record config that stands for "the compiler's default schedule of this group".
DEFAULT = {"__default__": True}

SPACES = ("template", "auto")


def _is_gpu(target):
    from ..transform.pipeline import is_gpu
    return is_gpu(target)


class GroupTask(AutoTask):
    """One fused group in one kind of space; ``weight`` is how many times the model runs it."""

    def __init__(self, group, target="llvm", weight=1, space="template"):
        from ..graph.compiler import _strip
        if space not in SPACES:
            raise ValueError(f"GroupTask: space must be one of {SPACES}, got {space!r}")
        self.group = _strip(group)
        self.weight = weight
        phs, outs = group_tensors(self.group)
        if _is_gpu(target):
            if space != "template":
                raise ValueError(f"GroupTask: target {target!r} has the template space only "
                                 "(the auto-template schedules for CPUs)")
            if not _gpu_anchor(outs):
                raise ValueError(f"GroupTask: the group {group!r} has no GPU tuning template "
                                 "(those are for groups around a matmul or a convolution)")
        self.space_kind = space if space == "auto" or _is_gpu(target) or \
            _anchor_schedule(outs) else "auto"
        ops = "_".join(dict.fromkeys(n.op for n in self.group.nodes))
        name = ("group_" if self.space_kind == "template" else "group_auto_") + ops
        super().__init__(name[:64], outs, phs + outs, target)
        self._flop = None

    def _template(self):
        if self.space_kind == "auto":
            return auto_schedule(self._outs), self._args
        if _is_gpu(self.target):
            return _gpu_template(self._outs[0], get_config()), self._args
        out = self._outs[0]
        anchor, fn, knobs = _anchor_schedule([out], get_config())
        s = te.create_schedule(out.op)
        fn(s, anchor, out, **knobs)
        _inline_leftovers(s)
        return s, self._args

    @property
    def flop(self):
        """The arithmetic of the group's graph nodes (``node_flop``), the same in both spaces:
        the group's TE also holds weight packs and padded tiles, work that is no part of the
        model's computation and would flatter a schedule's flop rate."""
        if self._flop is None:
            self._flop = float(sum(node_flop(n) for n in self.group.nodes))
        return self._flop

    def config(self, config):
        if is_default(config):
            return DefaultConfig()
        return super().config(config)

    def baseline_config(self):
        """Candidates are timed against the schedule the model runs untuned."""
        return DefaultConfig()

    def instantiate(self, config):
        """(schedule, tensors) of a point, or of the compiler's default schedule for
        ``DEFAULT`` (index -1)."""
        if is_default(config):
            if _is_gpu(self.target):
                from ..ops.schedule_gpu import schedule_for_gpu
                return schedule_for_gpu(self._outs), self._args
            return schedule_group(self._outs), self._args
        return super().instantiate(config)

    def __reduce__(self):
        return (GroupTask, (self.group, self.target, self.weight, self.space_kind))


def node_flop(node):
    """Arithmetic operations of one graph node: each compute op of its own TE (built over fresh
    placeholders, so nothing of its group's neighbours) contributes its value's arithmetic per
    point -- a multiply-add reduction two -- and an elementwise op one per element.

    Only the data's arithmetic counts: index expressions, padding conditions and reduction
    predicates are address work, and a copy, pack or pad costs nothing. A reduction's output
    tile may be padded past the node's result (conv's output-channel block, a vector-width
    row), so its points are capped at the node's output size; its reduction extents are real.
    """
    from ..graph.infer import build_node, placeholders
    from ..te.tensor import ComputeOp
    outs = build_node(node, placeholders(node.inputs))
    real = sum(math.prod(int(d) for d in v.shape) for v in node.outputs)
    total, seen, stack = 0, set(), [t.op for t in outs]
    while stack:
        op = stack.pop()
        if op in seen or not isinstance(op, ComputeOp):
            continue
        seen.add(op)
        stack.extend(t.op for t in op.input_tensors)
        count = value_arith(op.body)
        if not count:
            continue
        points = math.prod(int(iv.dom.extent.value) for iv in op.axis)
        if op.reduce_axis:
            points = min(points, real) * math.prod(int(iv.dom.extent.value)
                                                   for iv in op.reduce_axis)
        total += points * count
    return total


def _anchor_schedule(outs, cfg=None):
    """(anchor, its schedule function, knob values) when the group's single output has an
    anchor with a knob template; with ``cfg`` None only whether it has one."""
    from ..ops import conv as _conv
    from ..ops import schedule_cpu, templates
    from ..ops.schedule_nn import find_group_anchor
    from ..ops.schedule_nn_conv import schedule_conv2d
    from ..ops.schedule_nn_matmul import MATMUL_TAGS, schedule_matmul
    if len(outs) != 1:
        return None
    out = outs[0]
    anchor = find_group_anchor(out)
    if anchor is None or anchor.op.tag in schedule_cpu.SCHEDULES:
        return None
    tag = anchor.op.tag
    if tag in MATMUL_TAGS:
        if cfg is None:
            return True
        _, knobs = templates.matmul_knobs(cfg, out, anchor.dtype)
        return anchor, schedule_matmul, knobs
    if tag in ("conv2d_nchw", "depthwise_conv2d_nchw"):
        conv = _conv.find_anchor(anchor)
        if conv is None or conv.op.attrs.get("algo") not in ("nchwc", "1x1", "spatial",
                                                             "winograd"):
            return None
        if cfg is None:
            return True
        return anchor, schedule_conv2d, templates.conv_knobs(cfg, conv)
    return None


def _gpu_anchor(outs):
    """Whether the group ending in ``outs`` has a GPU tuning template: one output, computed by
    a matmul or convolution reduction (and elementwise ops after it)."""
    from ..ops import schedule_gpu
    if len(outs) != 1:
        return False
    s = te.create_schedule(outs[0].op)
    return schedule_gpu.heavy_anchor(s, outs[0]) is not None


def _gpu_template(out, cfg):
    """The group's GPU schedule with its knobs from ``cfg`` (``ops.templates_gpu``)."""
    from ..ops import schedule_gpu, templates_gpu
    s = te.create_schedule(out.op)
    anchor = schedule_gpu.heavy_anchor(s, out)
    if anchor.op.tag == schedule_gpu.CONV_ANCHOR:
        schedule_gpu.schedule_conv(s, anchor, out, **templates_gpu.conv_knobs(cfg, anchor, out))
    else:
        schedule_gpu.schedule_matmul(s, anchor, out,
                                     **templates_gpu.matmul_knobs(cfg, anchor, anchor.dtype))
    return schedule_gpu.inline_leftovers(s)


class DefaultConfig:
    """The compiler's default schedule as a point: index -1, knobs ``DEFAULT``."""
    index = -1

    def to_dict(self):
        return dict(DEFAULT)

    def __eq__(self, other):
        return isinstance(other, DefaultConfig)

    def __hash__(self):
        return -1

    def __repr__(self):
        return "Config#default"


def is_default(config):
    if isinstance(config, DefaultConfig):
        return True
    if isinstance(config, dict):
        return config.get("__default__") is True
    return isinstance(config, int) and config == -1


def extract_tasks(graph, target="llvm", anchors_only=True, space="template"):
    """The distinct kernels of ``graph`` worth tuning, heaviest first.

    Runs the compiler's front half (shape inference, graph passes, fusion) and keeps one task
    per distinct group -- with ``anchors_only``, the groups built around a conv, matmul, pool
    or other anchor op (elementwise groups are memory-bound and already near their floor).
    On a GPU target, the groups around a matmul or convolution (those with a GPU template).
    """
    from ..graph.fuse import fuse
    from ..graph.infer import infer_shapes
    from ..graph.passes import run_passes
    gpu = _is_gpu(target)
    if gpu and space != "template":
        raise ValueError(f"extract_tasks: target {target!r} has the template space only (the "
                         "auto-template schedules for CPUs)")
    groups = fuse(run_passes(infer_shapes(graph), target=target))
    counts, first = {}, {}
    for grp in groups:
        if grp.kind == "alias" or (anchors_only and grp.kind != "anchor"):
            continue
        if gpu and not _gpu_anchor(group_tensors(grp)[1]):
            continue
        sig = group_signature(grp)
        counts[sig] = counts.get(sig, 0) + 1
        first.setdefault(sig, grp)
    tasks = [GroupTask(first[sig], target, counts[sig], space) for sig in first]
    tasks = [t for t in tasks if any(o.op.reduce_axis or _has_reduction(o) for o in t.outputs)]
    tasks.sort(key=lambda t: -t.flop * t.weight)
    return tasks


def _has_reduction(t):
    stack, seen = [t.op], set()
    while stack:
        op = stack.pop()
        if op in seen or not hasattr(op, "body"):
            continue
        seen.add(op)
        if op.reduce_axis:
            return True
        stack.extend(x.op for x in op.input_tensors)
    return False


def tuned_config(group, target, lookup):
    """``(space, knob dict)`` to schedule ``group`` with -- the fastest record of its tasks in
    either space -- or None for the default schedule (no record, or the default is fastest).

    ``lookup(task_key, target)`` is the dispatch lookup (a Record with ``.config`` or None).
    """
    best = None
    if _is_gpu(target) and not _gpu_anchor(group_tensors(group)[1]):
        return None
    for space in ("template",) if _is_gpu(target) else SPACES:
        task = GroupTask(group, target, space=space)
        if task.space_kind != space:
            continue
        rec = lookup(task.key, target)
        if rec is not None and (best is None or rec.median_cost < best[1].median_cost):
            best = (task, rec)
    if best is None or is_default(best[1].config):
        return None
    task, rec = best
    try:
        return task.space_kind, task.config(rec.config).to_dict()
    except Exception as e:  # noqa: BLE001 - the space changed since the record was made
        log.warning("%s: tuned config no longer fits (%s); using the default schedule",
                    task.key, e)
        return None


__all__ = ["DEFAULT", "SPACES", "DefaultConfig", "GroupTask", "extract_tasks", "is_default",
           "tuned_config"]
