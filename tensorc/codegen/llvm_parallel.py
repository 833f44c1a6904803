"""Parallel loops on libgomp's thread pool.

An outermost parallel loop becomes three pieces:

- ``<f>_parallelN_body(lo, hi, captured...)``: the loop over [lo, hi) as an ordinary function. The
  captured buffer pointers are real ``noalias`` arguments rather than loads from a struct, so
  the body keeps the alias facts that let LLVM vectorize it.
- ``<f>_parallelN(closure)``: what ``GOMP_parallel`` runs on every thread: it takes the thread's
  static contiguous chunk of the range and calls the body on it.
- at the loop's place: the closure (bounds, a status word, every free variable the body uses) on
  the stack, and ``GOMP_parallel`` with min(extent, threads) threads, where the thread count is the
  module global the runtime sets. One thread calls the trampoline directly, skipping libgomp.

A heap allocation failing in any thread sets the status word; the caller then returns it.
"""
from ..ir import dtype as dt
from ..ir.functor import free_vars
from ..runtime.threads import NUM_THREADS_GLOBAL
from .llvm_arith import call_intrinsic
from .llvm_builder import Value, const, llvm_type, zero


def emit_parallel_for(em, loop):
    fb = em.fb
    mb = fb.module
    var = loop.loop_var
    ty = llvm_type(var.dtype)
    used = free_vars(loop.body)
    captured = [(v, value) for v, value in em.env.items() if v in used]
    name = mb.unique_name(f"{fb.name}_parallel")
    _emit_body(em, f"{name}_body", loop, captured)
    field_types = [ty, ty, "ptr"] + [value.ty for _, value in captured]
    closure_ty = "{ " + ", ".join(field_types) + " }"
    _emit_trampoline(mb, name, closure_ty, field_types, var.dtype)

    lo = em.typed(loop.min, var.dtype)
    extent = em.typed(loop.extent, var.dtype)
    hi = fb.binop("add", lo, extent)
    closure = fb.alloca(closure_ty, 8, hint="closure")
    status = fb.alloca("i32", 4, hint="status")
    fb.store(const("i32", 0), status, 4)
    for k, value in enumerate([lo, hi, status] + [value for _, value in captured]):
        fb.store(value, fb.struct_gep(closure_ty, closure, k))

    mb.declare("omp_get_max_threads", "i32", [])
    mb.declare("GOMP_parallel", "void", ["ptr", "ptr", "i32", "i32"])
    run, team, alone, check, done = (fb.label(f"par.{part}")
                                     for part in ("run", "team", "alone", "check", "done"))
    fb.cbr(fb.icmp("sgt" if dt.is_int(var.dtype) else "ugt", extent, zero(ty)), run, done)
    fb.start_block(run)
    requested = fb.load("i32", Value("ptr", f"@{NUM_THREADS_GLOBAL}"), 4)
    nthreads = fb.select(fb.icmp("sgt", requested, zero("i32")), requested,
                         fb.call("i32", "omp_get_max_threads", []))
    extent64 = fb.convert("sext" if dt.is_int(var.dtype) else "zext", extent, "i64")
    used_threads = fb.convert("trunc", call_intrinsic(
        fb, "smin", [extent64, fb.convert("sext", nthreads, "i64")]), "i32")
    fb.cbr(fb.icmp("sgt", used_threads, const("i32", 1)), team, alone)
    fb.start_block(team)
    fb.call("void", "GOMP_parallel", [Value("ptr", f"@{name}"), closure, used_threads,
                                      const("i32", 0)])
    fb.br(check)
    fb.start_block(alone)
    fb.call("void", name, [closure])
    fb.br(check)
    fb.start_block(check)
    em.return_if(fb.icmp("ne", fb.load("i32", status, 4), zero("i32")))
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
    mb.declare("omp_get_thread_num", "i32", [])
    mb.declare("omp_get_num_threads", "i32", [])
    fb = mb.function(name, "void", [("ptr", "closure", "nocapture readonly")],
                     linkage="internal")
    closure = fb.args[0]
    lo, hi, status, *values = [fb.load(t, fb.struct_gep(closure_ty, closure, k))
                               for k, t in enumerate(field_types)]
    widen = "sext" if dt.is_int(dtype) else "zext"
    lo64, hi64 = fb.convert(widen, lo, "i64"), fb.convert(widen, hi, "i64")
    tid = fb.convert("sext", fb.call("i32", "omp_get_thread_num", []), "i64")
    nthreads = fb.convert("sext", fb.call("i32", "omp_get_num_threads", []), "i64")
    n = fb.binop("sub", hi64, lo64)
    one = const("i64", 1)
    chunk = fb.binop("sdiv", fb.binop("add", n, fb.binop("sub", nthreads, one)), nthreads)
    start = call_intrinsic(fb, "smin", [fb.binop("mul", tid, chunk), n])
    stop = call_intrinsic(fb, "smin", [fb.binop("add", start, chunk), n])
    begin = fb.convert("trunc", fb.binop("add", lo64, start), lo.ty)
    end = fb.convert("trunc", fb.binop("add", lo64, stop), lo.ty)
    rc = fb.call("i32", f"{name}_body", [begin, end] + values)
    failed, ok = fb.label("failed"), fb.label("ok")
    fb.cbr(fb.icmp("ne", rc, zero("i32")), failed, ok)
    fb.start_block(failed)
    # Any nonzero status tells the caller a thread failed; several threads may write it at once.
    fb.emit(f"store atomic i32 1, {status} monotonic, align 4")
    fb.ret()
    fb.start_block(ok)
    fb.ret()
