"""Barrier placement for GPU kernels: ``__syncthreads()`` wherever the threads of a block could
see each other's shared-memory accesses out of order.

A thread may read a shared element that another thread writes only once both have passed a
barrier in between, and may overwrite an element others read only once they all have. The
planner walks each kernel in program order, keeping the shared accesses made since the last
barrier; a statement whose reads follow a pending write, or whose writes follow a pending read,
of the same buffer gets a barrier before it. A loop whose end conflicts with its own start (a
tile the next iteration overwrites while other threads still read it) gets one at the start of
its body, which gives the classic pair around a tile load in the k loop of a matrix product.
Two accesses at the same index expression are the same thread's (TVM's rule: loops bound to the
same thread index are one variable), so a thread reading back its own element needs none.

Every thread of the block must reach a barrier, so none can go inside a branch on a thread index
or inside a thread loop narrower than the launch; a conflict there is reported as an error.
"""
from ..arith.structural import KeyCache
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.functor import IRMutator, free_vars, post_order_visit, substitute

SYNC = "__syncthreads"


def barrier():
    return S.Evaluate(E.Call("int32", SYNC, ()))


def is_barrier(s):
    return isinstance(s, S.Evaluate) and isinstance(s.value, E.Call) and s.value.name == SYNC


def buffer_scope(scope, under_thread):
    """The memory an allocation inside a kernel lives in: a "global" one takes the innermost
    thread level's (bound.storage_scope decides the region it covers by the same rule)."""
    if scope != "global":
        return scope
    return "local" if under_thread else "shared"


def launch_extents(kernel):
    """{thread tag: launch extent} of a kernel: the widest loop bound to each tag."""
    out = {}

    def visit(n):
        if isinstance(n, S.For) and n.kind == "thread_binding":
            out[n.thread_tag] = max(out.get(n.thread_tag, 0), int(n.extent.value))
    post_order_visit(kernel, visit)
    return out


class _Planner:
    """Plans one kernel. ``plan`` returns (stmt, head, tail, synced): the shared accesses before
    the statement's first barrier, those after its last, and whether it has one; without a
    barrier head and tail are both every access it makes. Accesses are dicts keyed by
    (buffer, is_write, structural key of the index or None for "some element")."""

    def __init__(self, kernel):
        self.extents = launch_extents(kernel)
        self.keys = KeyCache()
        self.shared = set()
        self.canon = {}
        self.tag_vars = {}
        self.thread_vars = set()
        self.under_thread = 0
        self.divergent = None

    def plan(self, s):
        method = getattr(self, "_" + type(s).__name__)
        return method(s)

    # -- accesses ------------------------------------------------------------------------------
    def _access(self, out, buf, write, index):
        index = substitute(index, self.canon) if self.canon else index
        out[(buf, write, self.keys.key(index))] = index

    def _reads(self, *exprs):
        out = {}

        def visit(n):
            if isinstance(n, E.Load) and n.buffer in self.shared:
                self._access(out, n.buffer, False, n.index)
        for e in exprs:
            post_order_visit(e, visit)
        return out

    @staticmethod
    def _conflict(earlier, later):
        """(buffer, later access is a write) of the first read-after-write or write-after-read
        on the same buffer at possibly different elements, else None."""
        for b1, w1, k1 in earlier:
            for b2, w2, k2 in later:
                if b1 is b2 and w1 != w2 and (k1 is None or k1 is not k2):
                    return b2, w2
        return None

    @staticmethod
    def _lift(acc, var):
        """Accesses as seen from outside the scope of ``var``: an index using it is no longer
        one element."""
        out = {}
        for (b, w, k), index in acc.items():
            if index is not None and var in free_vars(index):
                k = index = None
            out[(b, w, k)] = index
        return out

    def _barrier(self, hit):
        buf, write = hit
        if self.divergent is not None:
            what = "overwritten after other threads read it" if write else \
                "read after other threads write it"
            raise ValueError(f"shared buffer {buf.name!r} is {what} inside {self.divergent}, "
                             "where a barrier cannot go (not every thread of the block reaches "
                             "it); move the conflicting accesses out of it")
        return barrier()

    # -- statements ----------------------------------------------------------------------------
    def _SeqStmt(self, s):
        out, pending, head, synced = [], {}, {}, False
        for x in s.seq:
            x, h, t, has = self.plan(x)
            hit = self._conflict(pending, h)
            if hit:
                out.append(self._barrier(hit))
                synced, pending = True, {}
            if not synced:
                head.update(h)
            if has:
                synced, pending = True, dict(t)
            else:
                pending.update(t)
            out.append(x)
        return S.seq(*out), head, pending, synced

    def _For(self, f):
        if f.kind == "thread_binding":
            return self._thread_loop(f)
        divergent = self.divergent
        if free_vars(f.extent) & self.thread_vars:
            self.divergent = f"loop {f.loop_var.name!r}, whose extent depends on the thread"
        try:
            body, h, t, has = self.plan(f.body)
            h, t = self._lift(h, f.loop_var), self._lift(t, f.loop_var)
            hit = self._conflict(t, h)
            if hit and not (isinstance(f.extent, E.IntImm) and f.extent.value <= 1):
                body = S.seq(self._barrier(hit), body)
                h, has = {}, True
        finally:
            self.divergent = divergent
        new = S.For(f.loop_var, f.min, f.extent, f.kind, body, f.thread_tag)
        return new, h, t, has

    def _thread_loop(self, f):
        tag = f.thread_tag
        canon = self.tag_vars.setdefault(tag, E.Var(tag, f.loop_var.dtype))
        self.canon[f.loop_var] = canon
        is_thread = tag.startswith("threadIdx")
        if is_thread:
            self.thread_vars |= {f.loop_var, canon}
        divergent = self.divergent
        if int(f.extent.value) < self.extents[tag] and divergent is None:
            self.divergent = (f"loop {f.loop_var.name!r} bound to {tag} (extent "
                              f"{f.extent.value} of {self.extents[tag]} launched)")
        self.under_thread += is_thread
        try:
            body, h, t, has = self.plan(f.body)
        finally:
            self.under_thread -= is_thread
            self.divergent = divergent
        return S.For(f.loop_var, f.min, f.extent, f.kind, body, tag), h, t, has

    def _IfThenElse(self, s):
        cond = self._reads(s.cond)
        divergent = self.divergent
        loads = []
        post_order_visit(s.cond, lambda n: loads.append(n) if isinstance(n, E.Load) else None)
        if divergent is None and (free_vars(s.cond) & self.thread_vars or loads):
            self.divergent = f"the branch 'if {s.cond}'"
        try:
            then, h1, t1, s1 = self.plan(s.then_case)
            other, h2, t2, s2 = (self.plan(s.else_case) if s.else_case is not None
                                 else (None, {}, {}, False))
        finally:
            self.divergent = divergent
        new = S.IfThenElse(s.cond, then, other)
        if s1 and s2:
            return new, {**cond, **h1, **h2}, {**t1, **t2}, True
        every = {**cond, **h1, **t1, **h2, **t2}
        return new, every, every, False

    def _LetStmt(self, s):
        value = self._reads(s.value)
        if free_vars(s.value) & self.thread_vars:
            self.thread_vars.add(s.var)
        body, h, t, has = self.plan(s.body)
        new = S.LetStmt(s.var, s.value, body)
        return new, {**value, **h}, (t if has else {**value, **t}), has

    def _Allocate(self, s):
        if buffer_scope(s.scope, self.under_thread) == "shared":
            self.shared.add(s.buffer)
        body, h, t, has = self.plan(s.body)
        return S.Allocate(s.buffer, s.dtype, s.extent, body, s.scope), h, t, has

    def _AttrStmt(self, s):
        body, h, t, has = self.plan(s.body)
        return S.AttrStmt(s.node, s.key, s.value, body), h, t, has

    def _Store(self, s):
        acc = self._reads(s.value, s.index)
        if s.buffer in self.shared:
            self._access(acc, s.buffer, True, s.index)
        return s, acc, acc, False

    def _Evaluate(self, s):
        if is_barrier(s):
            return s, {}, {}, True
        acc = self._reads(s.value)
        return s, acc, acc, False


class _Kernels(IRMutator):
    def visit_For(self, f):
        if f.kind != "thread_binding":
            return self.generic(f)
        return _Planner(f).plan(f)[0]


def thread_sync(func):
    """Insert the barriers every kernel (outermost thread-bound loop) of func needs."""
    return func.with_body(_Kernels().visit(func.body))
