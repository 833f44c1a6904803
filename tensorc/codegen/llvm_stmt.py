"""Statements to LLVM control flow: loops, branches, buffers, stores.

Every generated function returns an i32 status (0, or OUT_OF_MEMORY when a heap buffer could not
be allocated). A failure returns at once, giving back the heap buffers live at that point, so a
failed call leaks nothing and the runtime can raise MemoryError.
"""
from ..ir import dtype as dt
from ..ir import expr as E
from ..ir import stmt as S
from .llvm_arith import cast
from .llvm_builder import const, zero
from .llvm_compile import runtime_digest
from .llvm_expr import ExprEmitter
from .llvm_memory import emit_prefetch, emit_store
from .llvm_parallel import emit_parallel_for

OUT_OF_MEMORY = 1
STACK_LIMIT = 64 * 1024  # bytes; larger buffers go to the heap (thread stacks are small)
_ALIGN = 64  # a cache line, and enough for any vector register
#: Heap buffers come from the runtime's per-thread workspace cache (tensorc/runtime/workspace.c),
#: 64-byte aligned, so a kernel called again reuses them instead of faulting fresh pages in.
WORKSPACE_ALLOC, WORKSPACE_FREE = "tensorc_workspace_alloc", "tensorc_workspace_free"


def declare_workspace(module):
    """Declare the workspace cache's alloc and free in ``module``: hidden, since the runtime
    is linked into the same library; its digest in the comment keys the build cache."""
    comment = f"nounwind ; runtime sha256 {runtime_digest()}"
    module.declare(WORKSPACE_ALLOC, "hidden ptr", ["i64"], comment)
    module.declare(WORKSPACE_FREE, "hidden void", ["ptr", "i64"], comment)


_LOOP_HINTS = {"unrolled": ['!"llvm.loop.unroll.enable"'],
               "vectorized": ['!"llvm.loop.vectorize.enable", i1 true']}


class FunctionEmitter(ExprEmitter):
    """Emits one function body. ``in_parallel`` is set inside an outlined parallel loop, where a
    nested parallel loop runs serially (its thread already belongs to the team)."""

    def __init__(self, fb, target, in_parallel=False):
        super().__init__(fb, target.fast_math)
        self.target = target
        self.in_parallel = in_parallel
        self.heap = []

    def child(self, fb):
        """An emitter for a function outlined from this one, as a parallel loop's body is."""
        return FunctionEmitter(fb, self.target, in_parallel=True)

    def stmt(self, s):
        method = _DISPATCH.get(type(s))
        if method is None:
            raise TypeError(f"LLVM codegen cannot emit {type(s).__name__}; lowering should have "
                            "removed it")
        method(self, s)

    def typed(self, e, dtype):
        """Emit e converted to dtype (loop bounds may be narrower than the loop variable)."""
        return cast(self.fb, self.expr(e), e.dtype, dtype)

    def return_if(self, failed):
        """Return OUT_OF_MEMORY, after freeing live heap buffers, when ``failed`` (i1) holds."""
        fb = self.fb
        bad, ok = fb.label("fail"), fb.label("ok")
        fb.cbr(failed, bad, ok)
        fb.start_block(bad)
        for ptr, size in reversed(self.heap):
            fb.call("void", WORKSPACE_FREE, [ptr, size])
        fb.ret(const("i32", OUT_OF_MEMORY))
        fb.start_block(ok)

    def loop(self, var, lo, hi, body, kind="serial"):
        """for var in [lo, hi): body, with lo and hi already emitted."""
        fb = self.fb
        signed = not dt.is_uint(var.dtype)
        before = fb.block
        head, inside, latch, done = (fb.label(f"{var.name}.{part}")
                                     for part in ("head", "body", "latch", "done"))
        following = fb.fresh(f"{var.name}.next")
        fb.br(head)
        fb.start_block(head)
        i = fb.phi(lo.ty, [(lo.ref, before), (following, latch)], name=fb.fresh(var.name))
        fb.cbr(fb.icmp("slt" if signed else "ult", i, hi), inside, done)
        fb.start_block(inside)
        with self.bound(var, i):
            self.stmt(body)
        fb.br(latch)
        fb.start_block(latch)
        # The increment cannot wrap: i < hi, so i + 1 <= hi.
        fb.inst(lo.ty, f"add {'nsw' if signed else 'nuw'} {i}, 1", name=following)
        hints = _LOOP_HINTS.get(kind)
        fb.br(head, loop_md=fb.module.loop_metadata(hints) if hints else None)
        fb.start_block(done)

    def _for(self, s):
        if s.kind == "thread_binding":
            raise TypeError(f"LLVM codegen: loop {s.loop_var.name!r} is bound to "
                            f"{s.thread_tag!r}; GPU-bound loops need a GPU backend")
        if s.kind == "parallel" and not self.in_parallel:
            emit_parallel_for(self, s)
            return
        lo = self.typed(s.min, s.loop_var.dtype)
        hi = self.fb.binop("add", lo, self.typed(s.extent, s.loop_var.dtype))
        self.loop(s.loop_var, lo, hi, s.body, s.kind)

    def _if(self, s):
        fb = self.fb
        cond = self.typed(s.cond, "bool")
        then, done = fb.label("then"), fb.label("endif")
        otherwise = fb.label("else") if s.else_case is not None else done
        fb.cbr(cond, then, otherwise)
        for label, branch in ((then, s.then_case), (otherwise, s.else_case)):
            if branch is not None:
                fb.start_block(label)
                self.stmt(branch)
                fb.br(done)
        fb.start_block(done)

    def _allocate(self, s):
        fb = self.fb
        extent = s.extent.value if isinstance(s.extent, E.IntImm) else int(s.extent)
        nbytes = extent * dt.itemsize(s.dtype) * dt.lanes(s.dtype)
        if nbytes <= STACK_LIMIT:
            ptr = fb.alloca(f"[{nbytes} x i8]", _ALIGN, hint=s.buffer.name)
            with self.bound(s.buffer, ptr):
                self.stmt(s.body)
            return
        declare_workspace(fb.module)
        size = const("i64", nbytes)
        ptr = fb.call("ptr", WORKSPACE_ALLOC, [size])
        self.return_if(fb.icmp("eq", ptr, zero("ptr")))
        self.heap.append((ptr, size))
        with self.bound(s.buffer, ptr):
            self.stmt(s.body)
        self.heap.pop()
        fb.call("void", WORKSPACE_FREE, [ptr, size])

    def _seq(self, s):
        for x in s.seq:
            self.stmt(x)

    def _let(self, s):
        with self.let(s.var, s.value):
            self.stmt(s.body)

    def _evaluate(self, s):
        self.expr(s.value)

    def _attr(self, s):
        self.stmt(s.body)

    def _store(self, s):
        emit_store(self, s)

    def _prefetch(self, s):
        emit_prefetch(self, s)


_DISPATCH = {S.For: FunctionEmitter._for, S.IfThenElse: FunctionEmitter._if,
             S.Allocate: FunctionEmitter._allocate, S.SeqStmt: FunctionEmitter._seq,
             S.LetStmt: FunctionEmitter._let, S.Evaluate: FunctionEmitter._evaluate,
             S.AttrStmt: FunctionEmitter._attr, S.Store: FunctionEmitter._store,
             S.Prefetch: FunctionEmitter._prefetch}


def emit_body(fb, target, bindings, body):
    """Emit ``body`` into fb with IR variables bound to LLVM values, then ``return 0``."""
    em = FunctionEmitter(fb, target)
    em.env.update(bindings)
    em.stmt(body)
    fb.ret(const("i32", 0))
