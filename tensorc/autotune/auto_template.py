"""The auto-template: a search space derived from any TE compute, so an op a user writes is
tunable with no schedule code (the idea of Ansor's sketches, as one fixed sketch per shape of
program and knobs for everything numeric).

Three program shapes are recognised after injective (elementwise, broadcast, reshape-like)
stages are inlined into their readers:

- **a reduction at the output** (matmul, conv, a reduce op with an elementwise epilogue):
  multi-level tiling "SSRSRS" -- every spatial axis split in three (outer tiles run in
  parallel, middle tiles, inner register tile), every reduction axis in two, the innermost
  spatial loop vectorized and the register tile's inner loops unrolled up to a bound on
  the copies (a knob). The reduction can accumulate in a small local buffer (cache_write, or
  the reduction itself when an epilogue reads it) computed at either tile level of the
  output, so the epilogue is applied on the way out of the tile.
- **an injective output over other reductions** (softmax, norms): the output's outer axes run
  in parallel, its last axis is split for the vector unit; each remaining stage is computed
  either at the root or inside the output's parallel loop (a knob), while the data is in cache.
- **a purely injective output**: all axes fused, split in three (parallel / unrolled / vector).

Every choice is a knob of the task's space; measurement checks each candidate against the numpy
oracle, so a sketch that does not suit a program costs trials, never correctness.
"""
import hashlib
import math

from ..te.tensor import ComputeOp, PlaceholderOp, Tensor
from .space import SplitKnob, get_config
from .task import Task

#: Largest inner factor of a split (vector tiles of 64 float32 cover 8 AVX2 registers).
MAX_INNER = 64
#: Choices of the ``unroll`` knob: the most copies of the loop body that unrolling the
#: register tile's inner loops may make (0: none).
UNROLL_STEPS = [0, 16, 64, 512]


def auto_task(outputs, target="llvm", name=None, args=None):
    """A tuning task over the auto-template of ``outputs`` (a Tensor or a list of them).

    ``args``: the argument tensors in call order (default: the placeholders reached, in
    discovery order, then the outputs).
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if not outs or not all(isinstance(t, Tensor) and isinstance(t.op, ComputeOp) for t in outs):
        raise TypeError(f"auto_task: expected computed te.Tensors, got {outputs!r}")
    args = list(args) if args is not None else _placeholders(outs) + outs
    name = name or "auto_" + "_".join(t.name for t in outs)
    return AutoTask(name, outs, args, target)


class AutoTask(Task):
    """A task whose template is the auto-template of a TE program; its key is the program's
    text, so the same computation written twice tunes (and looks up records) as one task."""

    def __init__(self, name, outputs, args, target="llvm"):
        self._outs, self._args = list(outputs), list(args)
        digest = hashlib.sha1(program_text(self._args).encode()).hexdigest()[:16]
        super().__init__(name, (), target, func=self._template, key=f"{name}@{digest}",
                         module=None)

    def _template(self):
        return auto_schedule(self._outs), self._args

    def baseline_config(self):
        """A register-tiled point as the reference candidates are timed against: point 0
        leaves every loop untiled, which for a 512^3 matmul runs 160 ms a call, and pairing
        every candidate with that would cost more than measuring the candidate. Each
        three-way split gets an inner tile of 4 (16 for the last such axis: two vectors),
        each two-way split 16, every other knob its first choice."""
        space = self.config_space
        splits = [k for k in space.knobs.values() if isinstance(k, SplitKnob)]
        last3 = [k for k in splits if k.num_outputs == 3][-1:]
        choices = []
        for knob in space.knobs.values():
            if not isinstance(knob, SplitKnob):
                choices.append(0)
                continue
            want = [1, 16 if knob in last3 else 4] if knob.num_outputs == 3 else [16]
            choices.append(min(range(len(knob)), key=lambda k: sum(
                abs(math.log2(f) - math.log2(w))
                for f, w in zip(knob.entities[k].size[1:], want))))
        return space.get(space.index_from_choices(choices))

    def __reduce__(self):
        return (AutoTask, (self.name, self._outs, self._args, self.target))


def _placeholders(outs):
    found, stack, seen = [], [t.op for t in outs], set()
    while stack:
        op = stack.pop(0)
        if op in seen:
            continue
        seen.add(op)
        if isinstance(op, PlaceholderOp):
            found.append(op.output(0))
        else:
            stack.extend(t.op for t in op.input_tensors)
    return found


def program_text(tensors):
    """A canonical description of the program computing ``tensors``: every op's name, shape,
    dtype and body, in dependency order."""
    lines, seen = [], set()

    def visit(op):
        if op in seen:
            return
        seen.add(op)
        for t in getattr(op, "input_tensors", []):
            visit(t.op)
        body = getattr(op, "body", "input")
        lines.append(f"{op.name}{list(op.output(0).shape)}:{op.output(0).dtype}={body}")
    for t in tensors:
        visit(t.op)
    return "\n".join(lines)


# ------------------------------------------------------------------------------ the template


def auto_schedule(outputs):
    """The schedule of ``outputs`` for the active config (space-defining or a point)."""
    from ..te import create_schedule
    cfg = get_config()
    s = create_schedule([t.op for t in outputs])
    out = outputs[0]
    feeders = _reduction_inputs(s)
    for st in list(s.stages):
        if not st.is_placeholder and not st.is_output and not st.op.reduce_axis and \
                st not in feeders:
            st.compute_inline()
    if feeders:
        cfg.define_knob("inline_inputs", [True, False])
        for st in feeders:
            if cfg["inline_inputs"].val:
                st.compute_inline()
            else:
                _schedule_root_injective(st)
    red = _anchor_reduction(s, out)
    if red is not None:
        outer = _schedule_tiled(s, cfg, red, out)
    else:
        red = _heaviest_reduction(s)
        if red is not None:
            _schedule_tiled(s, cfg, red, red)
        outer = _schedule_injective(s, cfg, out)
    rest = [st for st in s.stages if not st.is_placeholder and not st.is_output and
            st.attach_type == "root" and not st.relations and not st.iter_var_attrs]
    movable = {id(st) for st in rest} | {id(s[out])}
    if rest and outer is not None and all(id(r) in movable for st in rest
                                          for r in _readers(s, st.op.output(0))):
        cfg.define_knob("inner_stages", ["root", "outer"])
        if cfg["inner_stages"].val == "outer":
            for st in rest:
                st.compute_at(s[out], outer)
    return s


def _reduction_inputs(s):
    """Injective stages read directly by a reduction (padding, layout packing): computing them
    once at the root can beat recomputing them inside the reduction's innermost loop."""
    found = []
    for st in s.stages:
        if st.is_placeholder or not st.op.reduce_axis:
            continue
        for t in st.op.input_tensors:
            f = s[t]
            if not f.is_placeholder and not f.is_output and not f.op.reduce_axis and \
                    f not in found:
                found.append(f)
    return found


def _schedule_root_injective(st):
    axes = list(st.op.axis)
    loop = axes[0]
    for iv in axes[1:-1]:
        loop = st.fuse(loop, iv)
    if len(axes) > 1:
        st.parallel(loop)
    last = axes[-1]
    if int(last.dom.extent.value) > MAX_INNER:
        _, last = st.split(last, factor=16)
    st.vectorize(last)


def _heaviest_reduction(s):
    """The non-output reduction stage with the most multiply-adds, if any."""
    best, work = None, 0
    for st in s.stages:
        if st.is_placeholder or st.is_output or not st.op.reduce_axis:
            continue
        n = 1
        for iv in st.op.axis + st.op.reduce_axis:
            n *= int(iv.dom.extent.value)
        if n > work:
            best, work = st.op.output(0), n
    return best


def _anchor_reduction(s, out):
    """The reduction whose points are the output's points (itself, or read by the inlined
    epilogue), if any."""
    if out.op.reduce_axis:
        return out
    candidates = [t for t in s[out].op.input_tensors
                  if isinstance(t.op, ComputeOp) and t.op.reduce_axis and t.shape == out.shape
                  and _readers(s, t) == [s[out]]]
    return candidates[0] if len(candidates) == 1 else None


def _readers(s, t):
    """The stages (not inlined) whose computation reads ``t``."""
    return [st for st in s.stages if not st.is_placeholder and st.attach_type != "inline"
            and t in st.op.input_tensors]


def _split3(cfg, name, iv):
    cfg.define_split(name, iv, num_outputs=3, policy="power2", max_factor=MAX_INNER)
    return cfg[name]


def _schedule_tiled(s, cfg, red, out):
    """SSRSRS tiling of the reduction ``red``; returns the output's outermost parallel loop."""
    spatial = list(red.op.axis)
    reduce_ = list(red.op.reduce_axis)
    tiles = [_split3(cfg, f"tile_{iv.var.name}", iv) for iv in spatial]
    rtiles = []
    for iv in reduce_:
        name = f"tile_{iv.var.name}"
        cfg.define_split(name, iv, num_outputs=2, policy="power2", max_factor=MAX_INNER)
        rtiles.append(cfg[name])
    cfg.define_knob("unroll", UNROLL_STEPS)
    if red is out:
        cfg.define_knob("cache_write", [True, False])
        acc = s.cache_write(out, "local") if cfg["cache_write"].val else None
    else:
        s[red].set_scope("local")
        acc = red
    cfg.define_knob("attach", [0, 1])
    st = s[out]
    levels = [t.apply(s, st, iv) for t, iv in zip(tiles, st.op.axis)]
    outer, middle, inner = ([lv[k] for lv in levels] for k in range(3))
    if acc is None:
        rlev = [t.apply(s, st, iv) for t, iv in zip(rtiles, reduce_)]
        st.reorder(*outer, *middle, *[r[0] for r in rlev], *inner[:-1],
                   *[r[1] for r in rlev], inner[-1])
        st.vectorize(inner[-1])
        _unroll(st, cfg, [(iv, t.size[2]) for iv, t in zip(inner[:-1], tiles)] +
                [(r[1], t.size[1]) for r, t in zip(rlev, rtiles)])
        return _parallel(st, outer)
    st.reorder(*outer, *middle, *inner)
    st.vectorize(inner[-1])
    par = _parallel(st, outer)
    ast = s[acc]
    if cfg["attach"].val == 0:
        ast.compute_at(st, outer[-1] if len(outer) > 2 else par)
        pairs = [ast.split(iv, factor=t.size[2]) for t, iv in zip(tiles, ast.op.axis)]
        rlev = [t.apply(s, ast, iv) for t, iv in zip(rtiles, ast.op.reduce_axis)]
        a_in = [p[1] for p in pairs]
        ast.reorder(*[r[0] for r in rlev], *[p[0] for p in pairs], *[r[1] for r in rlev], *a_in)
    else:
        ast.compute_at(st, middle[-1])
        rlev = [t.apply(s, ast, iv) for t, iv in zip(rtiles, ast.op.reduce_axis)]
        a_in = list(ast.op.axis)
        ast.reorder(*[r[0] for r in rlev], *[r[1] for r in rlev], *a_in)
    ast.vectorize(a_in[-1])
    _unroll(ast, cfg, [(iv, t.size[2]) for iv, t in zip(a_in[:-1], tiles)])
    return par


def _unroll(st, cfg, loops):
    """Unroll the innermost of ``loops`` ((axis, extent) pairs, outermost first, all inside
    the vector loop's parents) while the copies they make stay within the ``unroll`` knob's
    step: a bound on the unrolled body, not a yes/no over every register-tile loop, which on
    a 16x16 tile with a 32x2 reduction tile made 16384 copies and a build that outlasted the
    measurement timeout (Ansor's ``auto_unroll_max_step`` bounds it the same way)."""
    copies = 1
    for iv, extent in reversed(loops):
        copies *= extent
        if copies > cfg["unroll"].val:
            break
        st.unroll(iv)


def _parallel(st, outer):
    """Fuse the outer tiles of the first two axes and run them in parallel."""
    loop = st.fuse(outer[0], outer[1]) if len(outer) >= 2 else outer[0]
    st.parallel(loop)
    return loop


def _schedule_injective(s, cfg, out):
    st = s[out]
    axes = list(st.op.axis)
    others = [x for x in s.stages if not x.is_placeholder and not x.is_output and
              x.attach_type == "root"]
    if others and len(axes) >= 2:
        rows = axes[0]
        for iv in axes[1:-1]:
            rows = st.fuse(rows, iv)
        name = "tile_inner"
        cfg.define_split(name, axes[-1], num_outputs=2, policy="power2", max_factor=MAX_INNER)
        _, vec = cfg[name].apply(s, st, axes[-1])
        st.vectorize(vec)
        st.parallel(rows)
        return rows
    loop, extent = axes[0], 1
    for iv in axes[1:]:
        loop = st.fuse(loop, iv)
    for iv in axes:
        extent *= int(iv.dom.extent.value)
    cfg.define_split("tile_fused", extent, num_outputs=3, policy="power2", max_factor=MAX_INNER)
    par, mid, vec = cfg["tile_fused"].apply(s, st, loop)
    cfg.define_knob("unroll", [False, True])
    st.vectorize(vec)
    if cfg["unroll"].val:
        st.unroll(mid)
    st.parallel(par)
    return par
