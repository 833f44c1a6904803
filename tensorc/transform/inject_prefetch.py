"""Software prefetch: ``Stage.prefetch(tensor, axis, offset)`` becomes, at the top of each
iteration of that loop, one prefetch per cache line of the part of ``tensor`` that the iteration
``offset`` ahead will read.

Why: a kernel that reads a large operand once from DRAM -- a convolution's weights in a whole
model, where the model's weights do not fit the last-level cache -- computes on one block of it
and then stalls on the next, because the hardware prefetcher runs only a few lines ahead of a
stream that is consumed at FMA speed. Asking for the next block one iteration early overlaps
the transfer with the arithmetic.

The region comes from the flat indices of the buffer's loads in the loop body: each index minus
its value with the body's loop variables at zero must have constant bounds over those loops
(it is affine in them, as the indices of tiled loops are). A load whose index is not (a
data-dependent gather, a division of an inner variable) gets no prefetch. Loads whose bases
differ by a constant share one region. A region is covered in line steps from its first
element; when that element does not start a line, the region's last line may be left out,
but in a stream it is the first line of the next iteration's region, so one prefetch per line
suffices (an inner loop's one-line region costs one instruction, not two). Regions beyond
MAX_LINES cache lines are left to the hardware: one iteration cannot use that much ahead of
time.
"""
from ..arith import const_int_bound, simplify
from ..ir import dtype as dt
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.functor import IRMutator, free_vars, substitute
from ..ir.op import const

#: bytes per cache line: one prefetch per this many bytes of the region
CACHE_LINE = 64
#: the largest region, in cache lines, prefetched per iteration (256 KB)
MAX_LINES = 4096


class _Loads(IRMutator):
    """The (dtype, index) of every load of ``buffer`` in a statement, with the constant
    ranges of the loops around each inside it."""

    def __init__(self, buffer):
        self.buffer, self.ranges, self.found = buffer, {}, []

    def visit_For(self, f):
        if isinstance(f.min, E.IntImm) and isinstance(f.extent, E.IntImm) and f.extent.value > 0:
            self.ranges[f.loop_var] = (f.min.value, f.min.value + f.extent.value - 1)
        self.generic(f)
        self.ranges.pop(f.loop_var, None)
        return f

    def visit_Load(self, ld):
        self.generic(ld)
        if ld.buffer is self.buffer:
            self.found.append((ld.dtype, ld.index, dict(self.ranges)))
        return ld


def _region(index, ranges):
    """(base, lo, hi): index = base + delta with base free of the inner loop variables and
    delta in [lo, hi]; None when delta's bounds are not constant."""
    inner = {v: const(0, v.dtype) for v in free_vars(index) if v in ranges}
    base = simplify(substitute(index, inner))
    lo, hi = const_int_bound(simplify(index - base), ranges)
    if lo == float("-inf") or hi == float("inf"):
        return None
    return base, int(lo), int(hi)


def _regions(loads):
    """Regions [base + lo, base + hi] per dtype, merged when their bases differ by a constant."""
    groups = []
    for dtype, index, ranges in loads:
        r = _region(index, ranges)
        if r is None:
            continue
        base, lo, hi = r
        for g in groups:
            d = simplify(base - g[1])
            if g[0] == dtype and isinstance(d, E.IntImm):
                g[2], g[3] = min(g[2], lo + d.value), max(g[3], hi + d.value)
                break
        else:
            groups.append([dtype, base, lo, hi])
    return groups


def _prefetches(buffer, groups, var, offset):
    """Statements prefetching each region of the iteration ``offset`` ahead."""
    stmts = []
    for dtype, base, lo, hi in groups:
        elem = dt.element_of(dtype)
        step = max(1, CACHE_LINE // dt.itemsize(elem))
        lines = -(-(hi - lo + 1) // step)
        if lines > MAX_LINES:
            continue
        start = simplify(substitute(base, {var: var + offset}) + lo)
        if lines == 1:
            stmts.append(S.Prefetch(buffer, elem, start))
            continue
        k = E.Var(f"{buffer.name}.prefetch", start.dtype)
        stmts.append(S.For(k, const(0, k.dtype), const(lines, k.dtype), "serial",
                           S.Prefetch(buffer, elem, start + k * step)))
    return stmts


class _Inject(IRMutator):
    def visit_AttrStmt(self, a):
        body = self.visit(a.body)
        if a.key != "prefetch":
            return a if body is a.body else S.AttrStmt(a.node, a.key, a.value, body)
        var, offset = a.value
        finder = _Loads(a.node)
        finder.visit(body)
        if not finder.found:
            raise ValueError(f"prefetch: loop {var.name!r} reads nothing of "
                             f"{a.node.name!r}; prefetch a tensor the loop reads (after "
                             "inlining and cache_read)")
        return S.seq(*_prefetches(a.node, _regions(finder.found), var, offset), body)


class _Drop(IRMutator):
    def visit_AttrStmt(self, a):
        body = self.visit(a.body)
        if a.key == "prefetch":
            return body
        return a if body is a.body else S.AttrStmt(a.node, a.key, a.value, body)


def inject_prefetch(func):
    return func.with_body(_Inject().visit(func.body))


def drop_prefetch(func):
    """For targets without a prefetch instruction in tensorc's backend (the GPU): the hints
    go, nothing else changes."""
    return func.with_body(_Drop().visit(func.body))
