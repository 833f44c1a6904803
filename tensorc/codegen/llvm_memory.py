"""Loads and stores on flat buffers: scalar, contiguous vector, strided, gather/scatter, masked.

A vector access is one contiguous load or store only when its index is ``Ramp(base, 1, lanes)``.
An unmasked load with a small constant stride (a stride-2 pooling window, a stride-2 convolution's
input columns, a column of a small matrix) loads the span it covers and picks every stride-th
lane: x86 has no strided load, and the gather LLVM makes of it otherwise is scalar loads and
inserts on AVX2, while the spans of neighbouring columns (an unrolled loop transposing 8 x 8
blocks, say) become one set of vector loads and shuffles. The span
ends at the last lane's element, so it reads nothing the gather would not. Any other vector
index becomes a gather or scatter of per-lane addresses. Alignment is the
element's: numpy guarantees it (the runtime rejects unaligned arrays) and nothing proves more.
Index arithmetic is done in 64 bits (see llvm_index for why).
Under a lazy vector Select the emitter carries a lane mask and loads use LLVM's masked forms, so
lanes the condition excludes never touch memory (padding reads out of bounds rely on this).
"""
from ..ir import dtype as dt
from ..ir import expr as E
from .llvm_arith import call_intrinsic, to_i64
from .llvm_builder import const, mem_type, vector_type, with_element, zero
from .llvm_index import widen_index


def _contiguous(index):
    return isinstance(index, E.Ramp) and isinstance(index.stride, E.IntImm) \
        and index.stride.value == 1


def _address(em, buffer, dtype, index, inbounds=True):
    """Address of element ``index`` (a pointer, or a vector of pointers for a vector index)."""
    fb = em.fb
    index = widen_index(index, em.twins)
    idx = to_i64(fb, em.expr(index), index.dtype)
    base = em.expr(buffer)
    # Masked-off lanes may compute addresses outside the buffer; keep those GEPs plain.
    return fb.gep(mem_type(dt.element_of(dtype)), base, idx,
                  inbounds=inbounds and em.mask is None)


#: the largest constant stride loaded as a span and shuffled
MAX_SPAN_STRIDE = 8


def _span_stride(index):
    """The stride of a Ramp index with a small constant stride > 1, else None."""
    if isinstance(index, E.Ramp) and isinstance(index.stride, E.IntImm) and \
            1 < index.stride.value <= MAX_SPAN_STRIDE:
        return index.stride.value
    return None


def _strided_load(em, e, stride, align):
    fb = em.fb
    lanes = dt.lanes(e.dtype)
    elem = mem_type(dt.element_of(e.dtype))
    span_ty = vector_type(elem, (lanes - 1) * stride + 1)
    span = fb.load(span_ty, _address(em, e.buffer, e.dtype, e.index.base), align)
    picks = ", ".join(f"i32 {k * stride}" for k in range(lanes))
    return fb.inst(mem_type(e.dtype),
                   f"shufflevector {span}, {span_ty} poison, <{lanes} x i32> <{picks}>")


def _all_lanes(lanes):
    return const(vector_type("i1", lanes), 1)


def emit_load(em, e):
    fb = em.fb
    ty = mem_type(e.dtype)
    align = dt.itemsize(e.dtype)
    lanes = dt.lanes(e.dtype)
    if lanes == 1:
        value = fb.load(ty, _address(em, e.buffer, e.dtype, e.index), align)
    elif isinstance(e.index, E.Broadcast):
        scalar = em.expr(E.Load(dt.element_of(e.dtype), e.buffer, e.index.value))
        return fb.splat(scalar, lanes)
    elif _contiguous(e.index):
        ptr = _address(em, e.buffer, e.dtype, e.index.base)
        if em.mask is None:
            value = fb.load(ty, ptr, align)
        else:
            value = call_intrinsic(fb, "masked.load", [ptr, const("i32", align), em.mask, zero(ty)],
                                   ret=ty, overloads=[ty, "ptr"])
    elif em.mask is None and _span_stride(e.index):
        value = _strided_load(em, e, _span_stride(e.index), align)
    else:
        ptrs = _address(em, e.buffer, e.dtype, e.index)
        mask = em.mask if em.mask is not None else _all_lanes(lanes)
        value = call_intrinsic(fb, "masked.gather", [ptrs, const("i32", align), mask, zero(ty)],
                               ret=ty, overloads=[ty, ptrs.ty])
    if dt.is_bool(e.dtype):
        # Any nonzero byte reads as True, so a bool array written by other code is safe too.
        return fb.icmp("ne", value, zero(value.ty))
    return value


def emit_prefetch(em, s):
    """llvm.prefetch for reading, kept in all cache levels (locality 3), data cache. The
    address may lie past the buffer (the last iterations prefetch ahead of it): its GEP is
    not inbounds, and x86 prefetches do not fault."""
    fb = em.fb
    ptr = _address(em, s.buffer, s.dtype, s.index, inbounds=False)
    fb.module.declare("llvm.prefetch.p0", "void", ["ptr", "i32", "i32", "i32"])
    fb.call("void", "llvm.prefetch.p0",
            [ptr, const("i32", 0), const("i32", 3), const("i32", 1)])


def emit_store(em, s):
    fb = em.fb
    dtype = s.value.dtype
    value = em.expr(s.value)
    if dt.is_bool(dtype):
        value = fb.convert("zext", value, with_element(value.ty, "i8"))
    align = dt.itemsize(dtype)
    lanes = dt.lanes(dtype)
    if lanes == 1:
        fb.store(value, _address(em, s.buffer, dtype, s.index), align)
    elif _contiguous(s.index):
        fb.store(value, _address(em, s.buffer, dtype, s.index.base), align)
    else:
        # Lanes are written in order, so with repeated addresses the last lane wins, as in a loop.
        ptrs = _address(em, s.buffer, dtype, s.index)
        call_intrinsic(fb, "masked.scatter", [value, ptrs, const("i32", align), _all_lanes(lanes)],
                       ret="void", overloads=[value.ty, ptrs.ty])
