"""A schedule as a plain list of records: printable, saveable as JSON, replayable.

Each primitive appends one tuple (primitive, stage name, arguments by axis name). Replaying the
records on a fresh schedule of the same program rebuilds the same schedule, which is how tuned
schedules are stored and how a user shares one.
"""
import json

from ..ir.expr import IterVar
from .stage import ScheduleError


def format_trace(trace):
    return "\n".join(f"{r[0]}({', '.join(repr(a) for a in r[1:])})" for r in trace)


def dumps(trace):
    return json.dumps([list(r) for r in trace])


def loads(text):
    return [tuple(tuple(a) if isinstance(a, list) else a for a in r) for r in json.loads(text)]


def _axis(stage, name):
    for iv in reversed(stage.all_iter_vars):
        if iv.var.name == name:
            return iv
    raise ScheduleError(f"replay: stage {stage.name!r} has no axis named {name!r}")


def _stage(sch, name):
    for st in sch.stages:
        if st.name == name:
            return st
    raise ScheduleError(f"replay: no stage named {name!r}")


def replay(sch, trace):
    """Apply recorded primitives to ``sch`` (a fresh schedule of the same program)."""
    from ..te.operation import thread_axis
    for rec in trace:
        prim, name, args = rec[0], rec[1], rec[2:]
        if prim == "cache_read":
            scope, readers = args
            sch.cache_read(_stage(sch, name).op.output(0), scope,
                           [_stage(sch, r).op for r in readers])
            continue
        if prim == "cache_write":
            sch.cache_write(_stage(sch, name).op.output(0), args[0])
            continue
        st = _stage(sch, name)
        if prim == "expand_reduction":
            sch.expand_reduction(st.op.output(0))
        elif prim == "rfactor":
            sch.rfactor(st.op.output(0), _axis(st, args[0]), args[1])
        elif prim == "split":
            st.split(_axis(st, args[0]), factor=args[1], nparts=args[2])
        elif prim == "fuse":
            st.fuse(_axis(st, args[0]), _axis(st, args[1]))
        elif prim == "reorder":
            st.reorder(*[_axis(st, a) for a in args])
        elif prim in ("vectorize", "unroll", "parallel"):
            getattr(st, prim)(_axis(st, args[0]))
        elif prim == "bind":
            extent = args[2] if len(args) > 2 else None
            st.bind(_axis(st, args[0]), thread_axis(args[1], dom=extent))
        elif prim == "compute_at":
            parent = _stage(sch, args[0])
            st.compute_at(parent, _axis(parent, args[1]))
        elif prim in ("compute_inline", "compute_root"):
            getattr(st, prim)()
        elif prim == "set_scope":
            st.set_scope(args[0])
        elif prim == "prefetch":
            st.prefetch(_stage(sch, args[0]).op.output(0), _axis(st, args[1]), args[2])
        else:
            raise ScheduleError(f"replay: unknown primitive {prim!r}")
    return sch


__all__ = ["format_trace", "dumps", "loads", "replay", "IterVar"]
