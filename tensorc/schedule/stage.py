"""A stage: one operation's loop nest as the user shapes it with scheduling primitives.

Every primitive validates its arguments and raises a ScheduleError naming the stage and axis, so
an illegal request fails at the call that made it, not deep inside lowering. Every primitive is
also appended to the schedule's trace as a small record (see trace.py) so a schedule can be
printed, saved and replayed.
"""
from ..ir.expr import IterVar, Var
from .relations import Fuse, Split

ANNOTATIONS = ("vectorize", "unroll", "parallel", "bind")


class ScheduleError(ValueError):
    """An illegal scheduling request."""


class Stage:
    def __init__(self, op, schedule):
        self.op = op
        self.origin_op = op
        self.schedule = schedule
        self.relations = []
        self.all_iter_vars = list(op.axis) + list(op.reduce_axis)
        self.leaf_iter_vars = list(self.all_iter_vars)
        self.iter_var_attrs = {}      # IterVar -> (kind, thread IterVar or None)
        self.attach_type = "root"     # root | inline | scope
        self.attach_stage = None
        self.attach_ivar = None
        self.scope = "global"
        self.prefetches = []          # (tensor, IterVar, offset)
        self.is_output = False
        self.name = schedule.unique_name(op.name)

    @property
    def is_placeholder(self):
        return not hasattr(self.op, "body")

    def __repr__(self):
        return f"stage({self.name})"

    # -- helpers -------------------------------------------------------------------------------
    def _err(self, msg):
        return ScheduleError(f"stage {self.name!r}: {msg}")

    def _leaf(self, iv, what):
        if not isinstance(iv, IterVar):
            raise self._err(f"{what}: expected an axis (IterVar), got {type(iv).__name__} {iv!r}")
        if iv not in self.leaf_iter_vars:
            if iv in self.all_iter_vars:
                raise self._err(f"{what}: axis {iv.var.name!r} was already split or fused; "
                                "use the axes that split/fuse returned")
            raise self._err(f"{what}: axis {iv.var.name!r} does not belong to this stage")
        return self.leaf_iter_vars.index(iv)

    def _retarget_attached(self, old, new):
        """Stages computed at a loop that is now split or fused follow it to the loop that
        still runs once per iteration of the old one (the inner part, or the fused loop)."""
        for st in self.schedule.stages:
            if st.attach_stage is self and st.attach_ivar is old:
                st.attach_ivar = new

    def _record(self, *step):
        self.schedule.trace.append((step[0], self.name) + step[1:])

    def _check_compute(self, what):
        if self.is_placeholder:
            raise self._err(f"{what}: a placeholder has no loops to schedule")
        if self.attach_type == "inline":
            raise self._err(f"{what}: the stage is inlined and has no loops of its own")

    # -- loop structure ----------------------------------------------------------------------------
    def split(self, parent, factor=None, nparts=None):
        """Split ``parent`` into (outer, inner) with inner extent ``factor`` or ``nparts`` outer."""
        self._check_compute("split")
        pos = self._leaf(parent, "split")
        if (factor is None) == (nparts is None):
            raise self._err("split: give exactly one of factor= or nparts=")
        n = factor if factor is not None else nparts
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise self._err(f"split of {parent.var.name!r}: the factor/nparts must be a positive "
                            f"integer, got {n!r}")
        name = parent.var.name
        outer = IterVar(None, Var(f"{name}.outer"), parent.iter_type)
        inner = IterVar(None, Var(f"{name}.inner"), parent.iter_type)
        self.relations.append(Split(parent, outer, inner, factor, nparts))
        self._retarget_attached(parent, inner)
        self.all_iter_vars += [outer, inner]
        self.leaf_iter_vars[pos:pos + 1] = [outer, inner]
        self._record("split", name, factor, nparts)
        return outer, inner

    def tile(self, x_parent, y_parent, x_factor, y_factor):
        """Split two axes and reorder to (x.outer, y.outer, x.inner, y.inner)."""
        xo, xi = self.split(x_parent, factor=x_factor)
        yo, yi = self.split(y_parent, factor=y_factor)
        self.reorder(xo, yo, xi, yi)
        return xo, yo, xi, yi

    def fuse(self, *axes):
        """Fuse adjacent axes (outermost first) into one loop."""
        self._check_compute("fuse")
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = tuple(axes[0])
        if len(axes) < 2:
            if len(axes) == 1:
                self._leaf(axes[0], "fuse")
                return axes[0]
            raise self._err("fuse: needs at least one axis")
        fused = axes[0]
        for inner in axes[1:]:
            fused = self._fuse2(fused, inner)
        return fused

    def _fuse2(self, outer, inner):
        po, pi = self._leaf(outer, "fuse"), self._leaf(inner, "fuse")
        if pi != po + 1:
            raise self._err(f"fuse: axes {outer.var.name!r} and {inner.var.name!r} are not "
                            "adjacent loops (outer immediately followed by inner); reorder first")
        if outer.iter_type != inner.iter_type:
            raise self._err(f"fuse: cannot fuse {outer.iter_type} axis {outer.var.name!r} with "
                            f"{inner.iter_type} axis {inner.var.name!r}")
        fused = IterVar(None, Var(f"{outer.var.name}.{inner.var.name}.fused"), outer.iter_type)
        self.relations.append(Fuse(outer, inner, fused))
        self._retarget_attached(outer, fused)
        self._retarget_attached(inner, fused)
        self.all_iter_vars.append(fused)
        self.leaf_iter_vars[po:pi + 1] = [fused]
        self._record("fuse", outer.var.name, inner.var.name)
        return fused

    def reorder(self, *axes):
        """Put the given axes in this order, in the positions they occupy together."""
        self._check_compute("reorder")
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = tuple(axes[0])
        pos = [self._leaf(a, "reorder") for a in axes]
        if len(set(pos)) != len(pos):
            raise self._err("reorder: the same axis is given twice")
        for p, a in zip(sorted(pos), axes):
            self.leaf_iter_vars[p] = a
        self._record("reorder", *[a.var.name for a in axes])

    # -- annotations ---------------------------------------------------------------------------
    def _annotate(self, iv, kind, thread=None):
        self._check_compute(kind)
        self._leaf(iv, kind)
        if iv in self.iter_var_attrs:
            raise self._err(f"{kind}: axis {iv.var.name!r} is already marked "
                            f"{self.iter_var_attrs[iv][0]}")
        self.iter_var_attrs[iv] = (kind, thread)

    def vectorize(self, iv):
        """Run this loop as vector lanes (its extent becomes the vector width)."""
        if isinstance(iv, IterVar) and iv.iter_type == "reduce":
            raise self._err(f"vectorize: {iv.var.name!r} is a reduction axis; vectorize a "
                            "spatial axis (or rfactor the reduction first)")
        self._annotate(iv, "vectorize")
        self._record("vectorize", iv.var.name)

    def unroll(self, iv):
        """Replicate the loop body for every iteration (needs a constant, modest extent)."""
        self._annotate(iv, "unroll")
        self._record("unroll", iv.var.name)

    def parallel(self, iv):
        """Run the loop's iterations on the thread pool."""
        if isinstance(iv, IterVar) and iv.iter_type == "reduce":
            raise self._err(f"parallel: {iv.var.name!r} is a reduction axis; iterations would "
                            "race on the same output (rfactor the reduction first)")
        self._annotate(iv, "parallel")
        self._record("parallel", iv.var.name)

    def bind(self, iv, thread_iv):
        """Map the loop onto a GPU thread index made by te.thread_axis."""
        if not isinstance(thread_iv, IterVar) or thread_iv.iter_type != "thread":
            raise self._err("bind: the second argument must be te.thread_axis(...)")
        if isinstance(iv, IterVar) and iv.iter_type == "reduce" and \
                not thread_iv.thread_tag.startswith("threadIdx"):
            raise self._err(f"bind: {iv.var.name!r} is a reduction axis; bind it to a threadIdx "
                            "(a cross-thread reduction), blocks cannot combine their results")
        for other, (kind, t) in self.iter_var_attrs.items():
            if kind == "bind" and t.thread_tag == thread_iv.thread_tag:
                raise self._err(f"bind: {thread_iv.thread_tag} is already bound to "
                                f"{other.var.name!r}")
        self._annotate(iv, "bind", thread_iv)
        dom = thread_iv.dom
        extent = None if dom is None else int(dom.extent.value)
        self._record("bind", iv.var.name, thread_iv.thread_tag, extent)

    # -- placement -----------------------------------------------------------------------------
    def compute_at(self, parent, iv):
        """Compute this stage inside loop ``iv`` of stage ``parent``, just for what it needs."""
        self._check_compute("compute_at")
        if not isinstance(parent, Stage):
            raise self._err("compute_at: the first argument must be a stage, e.g. s[C]")
        if parent is self:
            raise self._err("compute_at: a stage cannot be computed at itself")
        if not isinstance(iv, IterVar) or iv not in parent.leaf_iter_vars:
            name = getattr(getattr(iv, "var", None), "name", iv)
            raise self._err(f"compute_at: axis {name!r} is not a loop of stage "
                            f"{parent.name!r} (not one of its current leaf axes)")
        if self.is_output:
            raise self._err("compute_at: an output cannot be computed inside another stage")
        self._check_no_cycle(parent)
        self.attach_type, self.attach_stage, self.attach_ivar = "scope", parent, iv
        self._record("compute_at", parent.name, iv.var.name)

    def _check_no_cycle(self, parent):
        p = parent
        while p is not None and p.attach_type == "scope":
            if p.attach_stage is self:
                raise self._err(f"compute_at: {parent.name!r} is itself computed inside this "
                                "stage")
            p = p.attach_stage

    def compute_inline(self):
        """Substitute this stage's expression into every consumer; it gets no buffer."""
        self._check_compute("compute_inline")
        if self.op.reduce_axis:
            raise self._err("compute_inline: a reduction cannot be inlined")
        if self.is_output:
            raise self._err("compute_inline: an output cannot be inlined")
        for s in self.schedule.stages:
            if s.attach_type == "scope" and s.attach_stage is self:
                raise self._err(f"compute_inline: stage {s.name!r} is computed at this stage")
        self.attach_type, self.attach_stage, self.attach_ivar = "inline", None, None
        self._record("compute_inline")

    def compute_root(self):
        """Compute the whole tensor at the top level, before its consumers (the default)."""
        self._check_compute("compute_root")
        self.attach_type, self.attach_stage, self.attach_ivar = "root", None, None
        self._record("compute_root")

    def set_scope(self, scope):
        """Where the stage's buffer lives: "global", or "local" / "shared" on a GPU (on the CPU
        "local" makes a stack buffer)."""
        self.scope = scope
        self._record("set_scope", scope)

    def prefetch(self, tensor, iv, offset=1):
        """At the top of each iteration of loop ``iv``, ask the cache for the part of
        ``tensor`` that the iteration ``offset`` ahead will read (in this stage or in stages
        computed inside the loop), so a stream from DRAM overlaps the arithmetic instead of
        stalling it. A hint: results never change (transform/inject_prefetch.py)."""
        from ..te.tensor import Tensor
        self._check_compute("prefetch")
        self._leaf(iv, "prefetch")
        if not isinstance(tensor, Tensor):
            raise self._err(f"prefetch: expected a tensor, got {type(tensor).__name__}")
        self.schedule[tensor]   # a tensor of this schedule, or a ScheduleError naming it
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 1:
            raise self._err(f"prefetch: offset must be a positive number of iterations of "
                            f"{iv.var.name!r}, got {offset!r}")
        self.prefetches.append((tensor, iv, offset))
        self._record("prefetch", self.schedule[tensor].name, iv.var.name, offset)
