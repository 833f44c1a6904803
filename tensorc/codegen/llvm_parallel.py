"""Parallel loops on tensorc's own thread pool (tensorc/runtime/threadpool.c).

An outermost parallel loop becomes three pieces:

- ``<f>_parallelN_body(lo, hi, captured...)``: the loop over [lo, hi) as an ordinary function. The
  captured buffer pointers are real ``noalias`` arguments rather than loads from a struct, so
  the body keeps the alias facts that let LLVM vectorize it.
- ``<f>_parallelN(begin, end, closure)``: what the pool calls for each chunk [begin, end) of
  [0, extent): it unpacks the closure and runs the body over [min + begin, min + end).
- at the loop's place: the closure (the loop's min and every free variable the body uses) on the
  stack, and ``tensorc_parallel_for(trampoline, closure, extent, grain, threads)``, where
  ``threads`` is the module global the runtime sets (0: the pool's default) and ``grain`` the
  fewest iterations worth a chunk of their own (see ``grain_for``).

The pool returns the first nonzero status a chunk returned (a heap allocation failing in any
thread); the function then returns it, so the runtime raises MemoryError.
"""
import math

from ..ir import dtype as dt
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.functor import free_vars
from ..runtime.threads import NUM_THREADS_GLOBAL
from .llvm_builder import Value, const, llvm_type, zero
from .llvm_compile import RUNTIME_SOURCES, runtime_digest

POOL_SOURCE = RUNTIME_SOURCES[0]
PARALLEL_FOR = "tensorc_parallel_for"
# Roughly the element operations a chunk should have for the pool's hand-off (a few hundred
# nanoseconds, more when a worker must be woken) to be worth it: about 2-10 us of work.
MIN_CHUNK_WORK = 8192


def iteration_cost(stmt):
    """Element operations one run of ``stmt`` makes: stores (lane-weighted) times the constant
    extents of the loops around them. None when some loop's extent is not a constant."""
    if isinstance(stmt, S.For):
        inner = iteration_cost(stmt.body)
        if inner is None or not isinstance(stmt.extent, E.IntImm):
            return None
        return max(int(stmt.extent.value), 0) * inner
    if isinstance(stmt, S.Store):
        return dt.lanes(stmt.value.dtype)
    if isinstance(stmt, S.SeqStmt):
        costs = [iteration_cost(s) for s in stmt.seq]
        return None if None in costs else sum(costs)
    if isinstance(stmt, S.IfThenElse):
        costs = [iteration_cost(s) for s in (stmt.then_case, stmt.else_case) if s is not None]
        return None if None in costs else max(costs)
    if isinstance(stmt, (S.LetStmt, S.Allocate, S.AttrStmt)):
        return iteration_cost(stmt.body)
    return 1


def grain_for(loop):
    """Fewest iterations of ``loop`` per chunk: enough for MIN_CHUNK_WORK element operations, so
    a cheap loop runs on fewer threads (or just the caller) instead of paying for hand-offs. An
    unknown cost counts as expensive (grain 1): splitting too finely costs little, too coarsely
    loses the other threads."""
    cost = iteration_cost(loop.body)
    if not cost:
        return 1
    return max(1, math.ceil(MIN_CHUNK_WORK / cost))


def emit_parallel_for(em, loop):
    fb = em.fb
    mb = fb.module
    var = loop.loop_var
    ty = llvm_type(var.dtype)
    used = free_vars(loop.body)
    captured = [(v, value) for v, value in em.env.items() if v in used]
    name = mb.unique_name(f"{fb.name}_parallel")
    _emit_body(em, f"{name}_body", loop, captured)
    field_types = [ty] + [value.ty for _, value in captured]
    closure_ty = "{ " + ", ".join(field_types) + " }"
    _emit_trampoline(mb, name, closure_ty, field_types, var.dtype)

    lo = em.typed(loop.min, var.dtype)
    extent = em.typed(loop.extent, var.dtype)
    closure = fb.alloca(closure_ty, 8, hint="closure")
    for k, value in enumerate([lo] + [value for _, value in captured]):
        fb.store(value, fb.struct_gep(closure_ty, closure, k))

    # hidden: a direct call, and the symbol stays private to this library (each has its own pool)
    mb.declare(PARALLEL_FOR, "hidden i32", ["ptr", "ptr", "i64", "i64", "i32"],
               f"nounwind ; runtime sha256 {runtime_digest()}")
    run, done = fb.label("par.run"), fb.label("par.done")
    fb.cbr(fb.icmp("sgt" if dt.is_int(var.dtype) else "ugt", extent, zero(ty)), run, done)
    fb.start_block(run)
    threads = fb.load("i32", Value("ptr", f"@{NUM_THREADS_GLOBAL}"), 4)
    extent64 = fb.convert("sext" if dt.is_int(var.dtype) else "zext", extent, "i64")
    status = fb.call("i32", PARALLEL_FOR, [Value("ptr", f"@{name}"), closure, extent64,
                                           const("i64", grain_for(loop)), threads])
    em.return_if(fb.icmp("ne", status, zero("i32")))
    fb.br(done)
    fb.start_block(done)


def _emit_body(em, name, loop, captured):
    ty = llvm_type(loop.loop_var.dtype)
    params = [(ty, "lo", ""), (ty, "hi", "")]
    params += [(value.ty, v.name, "noalias nocapture" if value.ty == "ptr" else "")
               for v, value in captured]
    fb = em.fb.module.function(name, "i32", params, linkage="internal")
    child = em.child(fb)
    child.env.update((v, arg) for (v, _), arg in zip(captured, fb.args[2:]))
    child.loop(loop.loop_var, fb.args[0], fb.args[1], loop.body)
    fb.ret(const("i32", 0))


def _emit_trampoline(mb, name, closure_ty, field_types, dtype):
    """i32 name(i64 begin, i64 end, ptr closure): the body over [min + begin, min + end)."""
    fb = mb.function(name, "i32", [("i64", "begin", ""), ("i64", "end", ""),
                                   ("ptr", "closure", "nocapture readonly")],
                     linkage="internal")
    begin, end, closure = fb.args
    lo, *values = [fb.load(t, fb.struct_gep(closure_ty, closure, k))
                   for k, t in enumerate(field_types)]
    if lo.ty != "i64":  # chunk bounds lie in [0, extent), so they fit the loop variable's type
        begin, end = fb.convert("trunc", begin, lo.ty), fb.convert("trunc", end, lo.ty)
    fb.ret(fb.call("i32", f"{name}_body", [fb.binop("add", lo, begin),
                                           fb.binop("add", lo, end)] + values))
