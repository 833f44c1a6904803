"""Tuning a whole model: one task per distinct heavy kernel, trials spread where they pay, and
the records used by ``tensorc.compile(graph, tuning_db=...)``.

A task here is a fused group of the graph compiler (a conv or matmul anchor with its epilogue,
a pooling, a softmax...): its TE is the group's, exactly as the compiler builds it, and its
space is the auto-template's. The compiler's own default schedule of the group is measured
first and recorded as the ``DEFAULT`` config, so a tuned model never runs a kernel that was
measured slower than the kernel it would have run untuned.
"""
import logging

from ..graph.compiler import group_signature, group_tensors, schedule_group
from .auto_template import AutoTask, auto_schedule

log = logging.getLogger("tensorc.autotune")

#: The record config that stands for "the compiler's default schedule of this group".
DEFAULT = {"__default__": True}


class GroupTask(AutoTask):
    """The auto-template of one fused group; ``weight`` is how many times the model runs it."""

    def __init__(self, group, target="llvm", weight=1):
        from ..graph.compiler import _strip
        self.group = _strip(group)
        self.weight = weight
        phs, outs = group_tensors(self.group)
        name = "group_" + "_".join(dict.fromkeys(n.op for n in self.group.nodes))
        super().__init__(name[:64], outs, phs + outs, target)

    def _template(self):
        return auto_schedule(self._outs), self._args

    def config(self, config):
        if is_default(config):
            return DefaultConfig()
        return super().config(config)

    def instantiate(self, config):
        """(schedule, tensors) of a point, or of the compiler's default schedule for
        ``DEFAULT`` (index -1)."""
        if is_default(config):
            return schedule_group(self._outs), self._args
        return super().instantiate(config)

    def __reduce__(self):
        return (GroupTask, (self.group, self.target, self.weight))


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


def extract_tasks(graph, target="llvm", anchors_only=True):
    """The distinct kernels of ``graph`` worth tuning, heaviest first.

    Runs the compiler's front half (shape inference, graph passes, fusion) and keeps one task
    per distinct group -- with ``anchors_only``, the groups built around a conv, matmul, pool
    or other anchor op (elementwise groups are memory-bound and already near their floor).
    """
    from ..graph.fuse import fuse
    from ..graph.infer import infer_shapes
    from ..graph.passes import run_passes
    groups = fuse(run_passes(infer_shapes(graph)))
    counts, first = {}, {}
    for grp in groups:
        if grp.kind == "alias" or (anchors_only and grp.kind != "anchor"):
            continue
        sig = group_signature(grp)
        counts[sig] = counts.get(sig, 0) + 1
        first.setdefault(sig, grp)
    tasks = [GroupTask(first[sig], target, counts[sig]) for sig in first]
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
    """The knob dict to schedule ``group`` with, or None for the default schedule.

    ``lookup(task_key, target)`` is the dispatch lookup (a Record with ``.config`` or None).
    """
    task = GroupTask(group, target)
    rec = lookup(task.key, target)
    if rec is None or is_default(rec.config):
        return None
    try:
        return task.config(rec.config).to_dict()
    except Exception as e:  # the space changed since the record was made
        log.warning("%s: tuned config no longer fits (%s); using the default schedule",
                    task.key, e)
        return None


def schedule_tuned(group, config):
    """(placeholders + outputs, schedule) of ``group`` at the tuned point ``config``."""
    task = GroupTask(group)
    s, args = task.instantiate(config)
    return s, args


__all__ = ["DEFAULT", "DefaultConfig", "GroupTask", "extract_tasks", "is_default",
           "schedule_tuned", "tuned_config"]
