"""Build the loop program of a schedule: one loop nest per stage, attached where scheduled.

The result still speaks of tensors (ProducerRealize / ProducerStore / ProducerLoad with absolute
indices); storage flattening turns it into flat buffers afterwards.

A reduction with reduce loops bound to threadIdx (TVM's rfactor + bind pattern) becomes a
cross-thread reduction: a ThreadAllReduce statement that the GPU lowering expands.
"""
from ..ir import stmt as S
from ..ir.expr import IntImm, Load, ProducerLoad, Range, Var
from ..ir.functor import IRMutator, free_vars, substitute
from ..ir.op import const, logical_and, select
from ..ir.stmt import seq
from .bound import infer_bounds, storage_scope
from .stage import ScheduleError

_KIND = {"vectorize": "vectorized", "unroll": "unrolled", "parallel": "parallel",
         "bind": "thread_binding"}


class _Inline(IRMutator):
    """Replace reads of inlined stages by their bodies, and every tensor by its stage's tensor."""

    def __init__(self, sch, bodies):
        self.sch, self.bodies = sch, bodies

    def visit_ProducerLoad(self, ld):
        ld = self.generic(ld)
        st = self.sch[ld.producer]
        if st.attach_type == "inline":
            vmap = {iv.var: i for iv, i in zip(st.op.axis, ld.indices)}
            return substitute(self.bodies[st], vmap)
        out = st.op.output(0)
        return ld if ld.producer is out else ProducerLoad(ld.dtype, out, ld.indices)


def inline_bodies(sch):
    """Each computed stage's body with inlined producers substituted in (in dependency order)."""
    bodies = {}
    for st in sch.stages:
        if not st.is_placeholder:
            bodies[st] = _Inline(sch, bodies).visit(st.op.body)
    return bodies


def schedule_ops(sch):
    """The whole program as one statement, plus the stage bounds used to build it."""
    _check_prefetches(sch)
    bodies = inline_bodies(sch)
    bounds = infer_bounds(sch, bodies)
    attached = {}
    for st in sch.stages:
        if st.attach_type == "scope":
            attached.setdefault((st.attach_stage, st.attach_ivar), []).append(st)
    builder = _NestBuilder(sch, bodies, bounds, attached)
    roots = [st for st in sch.stages if not st.is_placeholder and st.attach_type == "root"]
    body = seq(*[builder.stage_nest(st) for st in roots])
    for st in reversed(roots):
        if not st.is_output:
            body = _realize(st, bounds[st], body)
    return body, bounds


def _check_prefetches(sch):
    for st in sch.stages:
        for tensor, iv, _ in st.prefetches:
            if iv not in st.leaf_iter_vars:
                raise ScheduleError(f"stage {st.name!r}: prefetch of {tensor.name!r} at axis "
                                    f"{iv.var.name!r}, which was split or fused afterwards; "
                                    "prefetch at the axes that split/fuse returned")


def _realize(st, b, body):
    out = st.op.output(0)
    rng = tuple(Range(b.root_min[iv], const(b.ext[iv])) for iv in st.op.axis)
    return S.ProducerRealize(out, rng, body, st.scope)


class _NestBuilder:
    def __init__(self, sch, bodies, bounds, attached):
        self.sch, self.bodies, self.bounds, self.attached = sch, bodies, bounds, attached

    def stage_nest(self, st):
        b = self.bounds[st]
        op = st.op
        leaves = st.leaf_iter_vars
        out = op.output(0)
        vals = {iv.var: b.root_value[iv] for iv in b.root_value}
        idx = tuple(b.root_value[iv] for iv in op.axis)
        conds = list(b.split_conds) + self._domain_conds(st, b)
        body = self.bodies[st]
        reduce_pos = next((k for k, iv in enumerate(leaves) if iv.iter_type == "reduce"), None)
        if op.reduce_axis and self._thread_bound_reduce(st, leaves):
            nest = self._cross_thread_nest(st, leaves, substitute(body, vals), idx, conds)
            return S.AttrStmt(out, "produce", None, nest)
        if op.reduce_axis:
            red = substitute(body, vals)
            update = S.ProducerStore(out, red.combiner.combine(ProducerLoad(out.dtype, out, idx),
                                                               red.source), idx)
            if not _is_true(red.condition):
                update = S.IfThenElse(red.condition, update)
            init = S.ProducerStore(out, red.combiner.identity(out.dtype), idx)
        else:
            update, init = S.ProducerStore(out, substitute(body, vals), idx), None
        reduce_vars = {iv.var for iv in leaves if iv.iter_type == "reduce"}
        spatial_conds = [c for c in conds if not (free_vars(c) & reduce_vars)]
        nest = self._loops(st, leaves, update, conds)
        if init is not None:
            init_nest = self._init_nest(st, leaves[reduce_pos:], init, spatial_conds)
            nest = self._insert_init(st, leaves, reduce_pos, nest, init_nest)
        return S.AttrStmt(out, "produce", None, nest)

    @staticmethod
    def _thread_bound_reduce(st, leaves):
        """The reduce leaves bound to a thread index, outermost first."""
        return [iv for iv in leaves if iv.iter_type == "reduce" and
                st.iter_var_attrs.get(iv, ("serial", None))[0] == "bind"]

    def _cross_thread_nest(self, st, leaves, red, idx, conds):
        """Each thread reduces its share over the serial reduce loops (inside the bound ones),
        a ThreadAllReduce combines the shares of the bound loops' threads, and the thread at
        index 0 of those loops stores the result. Every thread of the block must reach the
        all-reduce (it has barriers), so the guards of points past a split or outside the
        tensor select the identity as the value and guard the store, not the loops."""
        out = st.op.output(0)
        bound = self._thread_bound_reduce(st, leaves)
        first = next(k for k, iv in enumerate(leaves) if iv.iter_type == "reduce")
        spatial, reduce = leaves[:first], leaves[first:]
        if any(iv.iter_type != "reduce" for iv in reduce):
            raise ScheduleError(f"stage {st.name!r}: a reduction bound to threadIdx needs its "
                                "spatial loops outside its reduce loops; reorder them")
        if reduce[:len(bound)] != bound:
            raise ScheduleError(f"stage {st.name!r}: reduce loop {reduce[0].var.name!r} runs "
                                "outside the reduce loops bound to threadIdx; reorder the bound "
                                "loops outermost among the reduce loops")
        for iv in bound:
            tag = st.iter_var_attrs[iv][1].thread_tag
            if not tag.startswith("threadIdx"):
                raise ScheduleError(f"stage {st.name!r}: reduce axis {iv.var.name!r} is bound to "
                                    f"{tag}; blocks cannot combine their results, bind it to a "
                                    "threadIdx")
        reduce_vars = {iv.var for iv in reduce}
        spatial_conds = [c for c in conds if not free_vars(c) & reduce_vars]
        cond = red.condition
        for c in conds:
            cond = logical_and(c, cond)
        comb, dtype, zero = red.combiner, out.dtype, const(0)
        identity = comb.identity(dtype)
        result = Var(f"{out.name}.red", "handle")
        serial = reduce[len(bound):]
        acc = Var(f"{out.name}.acc", "handle") if serial else None
        if serial:
            update = S.Store(acc, comb.combine(Load(dtype, acc, zero), red.source), zero)
            if not _is_true(cond):
                update = S.IfThenElse(cond, update)
            pre = seq(S.Store(acc, identity, zero), self._loops(st, serial, update, []))
            value = Load(dtype, acc, zero)
        else:
            pre, value = None, red.source if _is_true(cond) else select(cond, red.source,
                                                                         identity)
        # Every thread holds the result. Into global memory one of them stores it; into a
        # block's shared buffer all do (the same value), so each may read it back at once.
        first = [iv.var == 0 for iv in bound] if storage_scope(st) == "global" else []
        guard = None
        for c in first + spatial_conds:
            guard = c if guard is None else logical_and(guard, c)
        store = S.ProducerStore(out, Load(dtype, result, zero), idx)
        store = store if guard is None else S.IfThenElse(guard, store)
        body = seq(pre, S.ThreadAllReduce(comb, value, result, tuple(iv.var for iv in bound)),
                   store)
        body = S.Allocate(result, dtype, 1, body, "local")
        if serial:
            body = S.Allocate(acc, dtype, 1, body, "local")
        for iv in reversed(bound):
            body = self._for(st, iv, self._attach(st, iv, body))
        return self._loops(st, spatial, body, [])

    def _domain_conds(self, st, b):
        """Points outside the tensor, computed only because a consumer's region overhangs."""
        if st.attach_type != "scope":
            return []
        conds = []
        for iv, n in zip(st.op.axis, st.op.shape):
            v = b.root_value[iv]
            conds += [v >= 0, v < n]
        return conds

    def _loops(self, st, leaves, body, conds, attach=True):
        """Wrap body in the stage's loops (innermost first), guards at their innermost depth."""
        depth = {iv.var: k for k, iv in enumerate(leaves)}
        by_depth = {}
        for c in conds:
            d = max((depth[v] for v in free_vars(c) if v in depth), default=-1)
            by_depth.setdefault(d, []).append(c)
        for k in range(len(leaves) - 1, -2, -1):
            for c in by_depth.get(k, ()):
                body = S.IfThenElse(c, body)
            if k < 0:
                break
            iv = leaves[k]
            if attach:
                body = self._attach(st, iv, body)
                body = self._prefetch(st, iv, body)
            body = self._for(st, iv, body)
        return body

    def _for(self, st, iv, body, var=None):
        kind, thread = st.iter_var_attrs.get(iv, ("serial", None))
        n = self.bounds[st].ext[iv]
        if kind == "bind" and thread.dom is not None and int(thread.dom.extent.value) != n:
            raise ScheduleError(f"stage {st.name!r}: axis {iv.var.name!r} has extent {n} but "
                                f"is bound to {thread.thread_tag} of extent "
                                f"{thread.dom.extent}")
        return S.For(iv.var if var is None else var, const(0), const(n), _KIND.get(kind, kind), body,
                     thread.thread_tag if thread is not None else "")

    def _attach(self, st, iv, body):
        stages = self.attached.get((st, iv), [])
        if not stages:
            return body
        body = seq(*[self.stage_nest(p) for p in stages], body)
        for p in reversed(stages):
            body = _realize(p, self.bounds[p], body)
        return body

    def _prefetch(self, st, iv, body):
        """Mark the body of loop ``iv`` with the prefetches asked for at it (their regions are
        found after flattening, by transform/inject_prefetch.py)."""
        for tensor, at, offset in st.prefetches:
            if at.var is iv.var:
                out = self.sch[tensor].op.output(0)
                body = S.AttrStmt(out, "prefetch", (iv.var, offset), body)
        return body

    def _init_nest(self, st, inner, init, spatial_conds):
        """Loops over the spatial axes that lie inside the first reduction loop, around init."""
        loops = [iv for iv in inner if iv.iter_type != "reduce"]
        fresh = {iv.var: Var(iv.var.name + ".init") for iv in loops}
        depth = {fresh[iv.var]: k for k, iv in enumerate(loops)}
        by_depth = {}
        for c in spatial_conds:
            c = substitute(c, fresh)
            used = [depth[v] for v in free_vars(c) if v in depth]
            if used:
                by_depth.setdefault(max(used), []).append(c)
        body = substitute(init, fresh)
        for k in range(len(loops) - 1, -1, -1):
            for c in by_depth.get(k, ()):
                body = S.IfThenElse(c, body)
            body = self._for(st, loops[k], body, var=fresh[loops[k].var])
        return body

    def _insert_init(self, st, leaves, reduce_pos, nest, init_nest):
        """Place init just before the loop of the first reduction axis."""
        target = leaves[reduce_pos].var

        class Put(IRMutator):
            def visit_For(self, f):
                if f.loop_var is target:
                    return seq(init_nest, f)
                return self.generic(f)
        return Put().visit(nest)


def _is_true(c):
    return isinstance(c, IntImm) and c.value == 1

