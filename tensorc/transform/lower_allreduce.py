"""Cross-thread reductions for GPU targets: every ThreadAllReduce becomes warp shuffles and, when
its threads span several warps, a shared-memory tree with barriers.

A group of at most 32 threads along threadIdx.x (a power of two, the whole launch extent) lies
inside one warp, aligned, so a butterfly of ``__shfl_xor_sync`` leaves the combined value in
every lane without touching memory (IEEE addition and multiplication are commutative, so all
lanes get bit-identical results). Any other group goes through shared memory, one slot per
thread: a fold to a power of two, then halving steps separated by barriers; when the group is
a whole number of warps along threadIdx.x the last 32 values are combined by the first warp
with ``__shfl_down_sync`` instead of five more barriers. Threads of the other thread indices
(rows of a block, say) reduce their own groups side by side.

Barriers and full-warp shuffles need every thread of the block, so an all-reduce under a branch
on a thread index, or under a thread loop narrower than the launch, is an error.
"""
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.functor import IRMutator, free_vars
from ..ir.op import const
from .thread_sync import barrier, launch_extents

SHFL_XOR, SHFL_DOWN = "tc.shfl_xor", "tc.shfl_down"
WARP = 32
_TAGS = ("threadIdx.x", "threadIdx.y", "threadIdx.z")


def shuffle(kind, value, offset, width):
    """The intrinsic for ``__shfl_<kind>_sync(0xffffffff, value, offset, width)``."""
    return E.Call(value.dtype, kind, (value, const(offset), const(width)))


class _Lower(IRMutator):
    def __init__(self, kernel):
        self.extents = launch_extents(kernel)
        self.loops = {}          # thread loop var -> (tag, extent)
        self.divergent = None

    def visit_For(self, f):
        if f.kind != "thread_binding":
            return self._scoped(f, f"loop {f.loop_var.name!r}, whose extent depends on the "
                                   "thread" if self._on_thread(f.extent) else None)
        n = int(f.extent.value)
        self.loops[f.loop_var] = (f.thread_tag, n)
        narrow = f.thread_tag.startswith("threadIdx") and n < self.extents[f.thread_tag]
        why = f"loop {f.loop_var.name!r} bound to {f.thread_tag} (extent {n} of " \
              f"{self.extents[f.thread_tag]} launched)" if narrow else None
        try:
            return self._scoped(f, why)
        finally:
            del self.loops[f.loop_var]

    def visit_IfThenElse(self, s):
        return self._scoped(s, f"the branch 'if {s.cond}'" if self._on_thread(s.cond) else None)

    def _on_thread(self, e):
        return any(self.loops.get(v, ("",))[0].startswith("threadIdx") for v in free_vars(e))

    def _scoped(self, s, why):
        old = self.divergent
        if old is None and why is not None:
            self.divergent = why
        try:
            return self.generic(s)
        finally:
            self.divergent = old

    def visit_ThreadAllReduce(self, s):
        tags = []
        for v in s.threads:
            tag, n = self.loops.get(v, (None, 0))
            if tag is None:
                raise ValueError(f"all-reduce into {s.buffer.name!r}: {v.name!r} is not the "
                                 "variable of an enclosing loop bound to threadIdx")
            if n != self.extents[tag]:
                raise ValueError(f"all-reduce into {s.buffer.name!r}: its loop {v.name!r} has "
                                 f"extent {n} but {tag} is launched with "
                                 f"{self.extents[tag]}; every thread of the block must take "
                                 "part, so bind loops of the same extent to it")
            tags.append(tag)
        if self.divergent is not None:
            raise ValueError(f"all-reduce into {s.buffer.name!r} is inside {self.divergent}, "
                             "which not every thread of the block enters; its barriers and "
                             "warp shuffles need them all")
        n = 1
        for v in s.threads:
            n *= self.loops[v][1]
        if tags == ["threadIdx.x"] and n <= WARP and n & (n - 1) == 0:
            return self._butterfly(s, n)
        return self._tree(s, n, tags)

    def _butterfly(self, s, n):
        out = [S.Store(s.buffer, s.value, const(0))]
        cur = E.Load(s.value.dtype, s.buffer, const(0))
        off = n // 2
        while off:
            other = E.Var(f"{s.buffer.name}.x{off}", s.value.dtype)
            out.append(S.LetStmt(other, shuffle(SHFL_XOR, cur, off, n),
                                 S.Store(s.buffer, s.combiner.combine(cur, other), const(0))))
            off //= 2
        return S.seq(*out)

    def _linear(self, tags, inside):
        """(index, size) of the thread among the enclosing thread loops whose tags are (or,
        with ``inside`` False, are not) in ``tags``, x fastest."""
        index, size = const(0), 1
        for tag in reversed(_TAGS):
            v = next((v for v, (t, _) in self.loops.items() if t == tag), None)
            if v is None or (tag in tags) != inside:
                continue
            index, size = index * self.extents[tag] + v, size * self.extents[tag]
        return index, size

    def _tree(self, s, n, tags):
        dtype = s.value.dtype
        buf = E.Var(f"{s.buffer.name}.shared", "handle")
        r, _ = self._linear(tags, True)
        g, groups = self._linear(tags, False)
        base = g * n
        i = base + r

        def at(k):
            return E.Load(dtype, buf, k)

        def fold(off, cond):
            return S.seq(S.IfThenElse(cond, S.Store(buf, s.combiner.combine(at(i), at(i + off)),
                                                     i)), barrier())
        out = [S.Store(buf, s.value, i), barrier()]
        p = 1
        while p * 2 <= n:
            p *= 2
        if p < n:
            out.append(fold(p, r < n - p))
        warp_finish = tags == ["threadIdx.x"] and n % WARP == 0
        off = p // 2
        while off >= (WARP if warp_finish else 1):
            out.append(fold(off, r < off))
            off //= 2
        if warp_finish:
            out += [S.IfThenElse(r < WARP, self._warp_sum(s, at(i), i, buf, r)), barrier()]
        out.append(S.Store(s.buffer, at(base), const(0)))
        return S.Allocate(buf, dtype, groups * n, S.seq(*out), "shared")

    @staticmethod
    def _warp_sum(s, first, i, buf, r):
        """In the first warp of a group: the 32 values left in shared memory combined with
        shuffles down, the total stored by lane 0."""
        cur = E.Var(f"{s.buffer.name}.w", first.dtype)
        lets = [(cur, first)]
        for off in (16, 8, 4, 2, 1):
            other = E.Var(f"{s.buffer.name}.d{off}", first.dtype)
            nxt = E.Var(f"{s.buffer.name}.w{off}", first.dtype)
            lets += [(other, shuffle(SHFL_DOWN, cur, off, WARP)),
                     (nxt, s.combiner.combine(cur, other))]
            cur = nxt
        body = S.IfThenElse(r == 0, S.Store(buf, cur, i))
        for var, value in reversed(lets):
            body = S.LetStmt(var, value, body)
        return body


class _Kernels(IRMutator):
    def visit_For(self, f):
        if f.kind != "thread_binding":
            return self.generic(f)
        return _Lower(f).visit(f)


def lower_allreduce(func):
    """Expand every ThreadAllReduce of func's kernels."""
    return func.with_body(_Kernels().visit(func.body))
