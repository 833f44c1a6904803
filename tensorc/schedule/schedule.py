"""The schedule: the stages of a TE program, in dependency order, and the dataflow rewrites.

Tensors keep their identity through rewrites: a stage remembers every operation it has stood
for, so a consumer that still reads the original tensor reads whatever the stage now computes.
That keeps cache_write and rfactor from cascading new operations through the whole graph.
"""
import itertools

from ..arith import simplify
from ..ir.expr import IntImm, IterVar, ProducerLoad, Range, Reduce, Var
from ..ir.functor import IRMutator, substitute
from ..ir.op import const, logical_and
from ..te.tensor import ComputeOp, Tensor
from .relations import Split, pass_down_extents, pass_up_values
from .stage import ScheduleError, Stage


class Schedule:
    def __init__(self, outputs):
        self.outputs = list(outputs)
        self.stages = []
        self._stage_of = {}
        self.trace = []
        for op in _post_order(self.outputs):
            self._add_stage(Stage(op, self), len(self.stages))
        for op in self.outputs:
            self[op].is_output = True

    def unique_name(self, name):
        """Stage names are unique within a schedule so that a trace can name stages."""
        taken = {s.name for s in self.stages}
        if name not in taken:
            return name
        n = 1
        while f"{name}_{n}" in taken:
            n += 1
        return f"{name}_{n}"

    def _add_stage(self, stage, pos):
        self.stages.insert(pos, stage)
        self._stage_of[stage.op] = stage

    def __getitem__(self, x):
        op = x.op if isinstance(x, Tensor) else x
        stage = self._stage_of.get(op)
        if stage is None:
            raise ScheduleError(f"{getattr(op, 'name', op)!r} is not part of this schedule "
                                "(create_schedule only sees what the outputs depend on)")
        return stage

    def stage_of(self, tensor):
        return self[tensor]

    def _rebind(self, stage, new_op):
        stage.op = new_op
        self._stage_of[new_op] = stage

    def _readers(self, stage):
        return [s for s in self.stages if not s.is_placeholder and
                any(self[t] is stage for t in s.op.input_tensors)]

    def __str__(self):
        from .trace import format_trace
        return format_trace(self.trace)

    # -- dataflow rewrites ---------------------------------------------------------------------
    def cache_read(self, tensor, scope, readers):
        """A copy of ``tensor`` in ``scope`` that the given reader ops read instead.

        A reader may read ``tensor`` through stages already marked compute_inline: their
        bodies are then substituted into the reader first, so the copy has ``tensor``'s own
        layout (a GPU tile of A fetched as A's rows, though the product reads A through a
        CPU-oriented packing that is inlined)."""
        src = self[tensor]
        readers = readers if isinstance(readers, (list, tuple)) else [readers]
        reader_stages = [self[r] for r in readers]
        rebound = []
        for r in reader_stages:
            if src in [self[t] for t in r.op.input_tensors]:
                continue
            direct = _with_body(r.op, _InlineNow(self).visit(r.op.body))
            if src not in [self[t] for t in direct.input_tensors]:
                raise ScheduleError(f"cache_read: {r.name!r} does not read {src.name!r}")
            rebound.append((r, direct))
        for r, direct in rebound:
            self._rebind(r, direct)
        name = f"{src.name}.{scope}"
        cache = _copy_compute(name, src.op.output(0))
        for r in reader_stages:
            body = _ReplaceReads(self, src, cache).visit(r.op.body)
            self._rebind(r, _with_body(r.op, body))
        stage = Stage(cache.op, self)
        stage.scope = scope
        self._add_stage(stage, self.stages.index(src) + 1)
        self.trace.append(("cache_read", src.name, scope, tuple(r.name for r in reader_stages)))
        return cache

    def cache_write(self, tensor, scope):
        """Compute ``tensor`` into a ``scope`` buffer, then copy it out.

        The original stage keeps its axes (``C.op.axis`` still names its loops) and becomes the
        copy; the returned tensor's stage does the computation, typically placed with compute_at.
        """
        stage = self[tensor]
        if stage.is_placeholder:
            raise ScheduleError(f"cache_write: {stage.name!r} is a placeholder")
        if stage.relations or stage.iter_var_attrs:
            raise ScheduleError(f"cache_write: stage {stage.name!r} is already scheduled; call "
                                "cache_write before splitting or annotating its axes")
        op = stage.op
        name = f"{op.name}.{scope}"
        vmap = {iv.var: IterVar(iv.dom, Var(iv.var.name + ".c"), iv.iter_type) for iv in op.axis}
        rmap = {iv.var: IterVar(iv.dom, Var(iv.var.name + ".c"), "reduce")
                for iv in op.reduce_axis}
        body = _rename_axes(op.body, {**vmap, **rmap})
        cache_op = ComputeOp(name, op.tag, op.attrs, [vmap[iv.var] for iv in op.axis], body)
        cache = cache_op.output(0)
        copy = ComputeOp(op.name, op.tag, op.attrs, op.axis,
                         ProducerLoad(cache.dtype, cache, tuple(iv.var for iv in op.axis)))
        self._rebind(stage, copy)
        stage.all_iter_vars = list(copy.axis)
        stage.leaf_iter_vars = list(copy.axis)
        new = Stage(cache_op, self)
        new.scope = scope
        self._add_stage(new, self.stages.index(stage))
        self.trace.append(("cache_write", stage.name, scope))
        return cache

    def rfactor(self, tensor, axis, factor_axis=0):
        """Turn reduction loop ``axis`` into a spatial axis of a new partial-result tensor.

        Returns the partial tensor RF (shape: extent(axis) inserted at ``factor_axis`` into the
        output shape); the original stage then reduces RF over that axis. The original stage is
        reset to its plain axes.
        """
        stage = self[tensor]
        op = stage.op
        if not op.reduce_axis:
            raise ScheduleError(f"rfactor: {stage.name!r} is not a reduction")
        if not isinstance(axis, IterVar) or axis not in stage.leaf_iter_vars or \
                axis.iter_type != "reduce":
            raise ScheduleError(f"rfactor: {getattr(axis, 'var', axis)} is not a reduction loop "
                                f"of stage {stage.name!r}")
        if not 0 <= factor_axis <= len(op.axis):
            raise ScheduleError(f"rfactor: factor_axis {factor_axis} out of range")
        ext = pass_down_extents(stage.relations, {iv: int(iv.dom.extent.value)
                                                  for iv in stage.all_iter_vars[:len(op.axis) +
                                                                                len(op.reduce_axis)]})
        reduce_leaves = [iv for iv in stage.leaf_iter_vars if iv.iter_type == "reduce"]
        new_iv = {iv: IterVar(Range(const(0), const(ext[iv])), Var(iv.var.name), "reduce")
                  for iv in reduce_leaves if iv is not axis}
        fvar = IterVar(Range(const(0), const(ext[axis])), Var(axis.var.name + ".v"), "data_par")
        leaf_vals = {iv: new_iv[iv].var for iv in new_iv}
        leaf_vals[axis] = fvar.var
        if any(not isinstance(r, Split) and r.outer.iter_type == "reduce"
               for r in stage.relations):
            raise ScheduleError("rfactor: fused reduction axes are not supported; split only")
        reduce_rel = [r for r in stage.relations if isinstance(r, Split) and
                      r.parent.iter_type == "reduce"]
        vals, conds = pass_up_values(reduce_rel, leaf_vals, ext)
        red = op.body
        spatial = [IterVar(iv.dom, Var(iv.var.name), "data_par") for iv in op.axis]
        vmap = {iv.var: nv.var for iv, nv in zip(op.axis, spatial)}
        vmap.update({iv.var: iv.dom.min + vals[iv] for iv in op.reduce_axis})
        cond = substitute(red.condition, vmap)
        for c in conds:
            cond = logical_and(cond, c)
        rf_axes = spatial[:factor_axis] + [fvar] + spatial[factor_axis:]
        rf_body = Reduce(red.dtype, red.combiner, substitute(red.source, vmap),
                         tuple(new_iv.values()), cond) if new_iv else \
            _select_identity(red, substitute(red.source, vmap), cond)
        rf_op = ComputeOp(f"{op.name}.rf", op.tag, op.attrs, rf_axes, rf_body)
        rf = rf_op.output(0)
        k = IterVar(Range(const(0), const(ext[axis])), Var(axis.var.name + ".v"), "reduce")
        idx = [iv.var for iv in op.axis]
        idx.insert(factor_axis, k.var)
        body = Reduce(red.dtype, red.combiner, ProducerLoad(rf.dtype, rf, tuple(idx)), (k,),
                      const(True))
        new_op = ComputeOp(op.name, op.tag, op.attrs, op.axis, body)
        self._rebind(stage, new_op)
        stage.relations, stage.iter_var_attrs = [], {}
        stage.all_iter_vars = list(new_op.axis) + [k]
        stage.leaf_iter_vars = list(stage.all_iter_vars)
        self._add_stage(Stage(rf_op, self), self.stages.index(stage))
        self.trace.append(("rfactor", stage.name, axis.var.name, factor_axis))
        return rf


    def expand_reduction(self, tensor):
        """Rewrite a reduction over short constant axes as its terms combined explicitly.

        The stage becomes elementwise, so it can be inlined into every reader: a reduction is
        computed in one place only, and a GPU kernel that reads it in several places (the
        capsule prediction, read by every routing round) would otherwise need it stored.
        Terms run in the reduction's own order, innermost axis fastest.
        """
        stage = self[tensor]
        op = stage.op
        red = op.body
        if not isinstance(red, Reduce):
            raise ScheduleError(f"expand_reduction: {stage.name!r} is not a reduction")
        if stage.relations or stage.iter_var_attrs:
            raise ScheduleError(f"expand_reduction: stage {stage.name!r} is already scheduled")
        if not (isinstance(red.condition, IntImm) and red.condition.value):
            raise ScheduleError(f"expand_reduction: {stage.name!r} reduces under a condition")
        extents = []
        for iv in red.axis:
            if not (isinstance(iv.dom.extent, IntImm) and isinstance(iv.dom.min, IntImm)):
                raise ScheduleError(f"expand_reduction: axis {iv.var.name!r} of "
                                    f"{stage.name!r} has no constant extent")
            extents.append(range(iv.dom.min.value, iv.dom.min.value + iv.dom.extent.value))
        body = None
        for point in itertools.product(*extents):
            term = substitute(red.source, {iv.var: const(v) for iv, v in zip(red.axis, point)})
            body = term if body is None else red.combiner.combine(body, term)
        new_op = ComputeOp(op.name, op.tag, op.attrs, op.axis, body)
        self._rebind(stage, new_op)
        stage.all_iter_vars = list(new_op.axis)
        stage.leaf_iter_vars = list(new_op.axis)
        self.trace.append(("expand_reduction", stage.name))
        return new_op.output(0)


def _select_identity(red, source, cond):
    from ..ir.op import select
    return select(cond, source, red.combiner.identity(red.dtype))


def _with_body(op, body):
    return ComputeOp(op.name, op.tag, op.attrs, op.axis, body)


def _copy_compute(name, tensor):
    axis = [IterVar(Range(const(0), const(n)), Var(f"ax{i}"), "data_par")
            for i, n in enumerate(tensor.shape)]
    body = ProducerLoad(tensor.dtype, tensor, tuple(iv.var for iv in axis))
    return ComputeOp(name, "", {}, axis, body).output(0)


def _rename_axes(body, ivmap):
    """Substitute axis variables, including the IterVars a Reduce node lists."""
    vmap = {v: iv.var for v, iv in ivmap.items()}
    body = substitute(body, vmap)
    if isinstance(body, Reduce):
        body = Reduce(body.dtype, body.combiner, body.source,
                      tuple(ivmap[iv.var] for iv in body.axis), body.condition)
    return body


class _ReplaceReads(IRMutator):
    def __init__(self, sched, stage, new):
        self.sched, self.stage, self.new = sched, stage, new

    def visit_ProducerLoad(self, ld):
        ld = self.generic(ld)
        if self.sched[ld.producer] is self.stage:
            return ProducerLoad(ld.dtype, self.new, ld.indices)
        return ld


class _InlineNow(IRMutator):
    """Reads of stages marked compute_inline replaced by their bodies (recursively), the
    substituted expressions simplified so that index arithmetic a packing undoes (``(i //
    6) * 6 + i % 6``) folds back before bound inference sees it."""

    def __init__(self, sched):
        self.sched = sched

    def visit_ProducerLoad(self, ld):
        ld = self.generic(ld)
        st = self.sched[ld.producer]
        if st.attach_type != "inline":
            return ld
        vmap = {iv.var: i for iv, i in zip(st.op.axis, ld.indices)}
        return simplify(self.visit(substitute(st.op.body, vmap)))


def _post_order(outputs):
    order, seen = [], set()

    def visit(op):
        if op in seen:
            return
        seen.add(op)
        for t in op.input_tensors:
            visit(t.op)
        order.append(op)
    for op in outputs:
        visit(op)
    return order


def create_schedule(ops):
    """A default schedule (every stage computed at the root, loops in axis order)."""
    if not isinstance(ops, (list, tuple)):
        ops = [ops]
    ops = [o.op if isinstance(o, Tensor) else o for o in ops]
    for o in ops:
        if not hasattr(o, "body") and not hasattr(o, "shape"):
            raise TypeError(f"create_schedule: expected operations or tensors, got {o!r}")
    return Schedule(ops)
