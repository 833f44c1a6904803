"""Lowered PrimFuncs to CUDA C: every outermost thread-bound loop nest becomes one kernel.

A loop bound to a thread index is not a loop on the GPU: its variable is declared equal to the
hardware index and its extent is a launch dimension (the widest loop bound to that index in the
kernel; a narrower one keeps its iterations behind a guard). Code outside any kernel would run
on the host, which this backend does not generate, so a loop around a kernel or a stage with no
bound loop is an error that says what to bind. Shared buffers are declared at the top of their
kernel, local ones where they are allocated.

A vectorized float32 access of 2 or 4 contiguous lanes of an argument buffer at an index the
simplifier proves a multiple of the lane count becomes one float2/float4 load or store
(argument buffers are cudaMalloc-aligned); every other vector access is written lane by lane.
"""
import re

from ..arith import simplify
from ..ir import dtype as dt
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.functor import post_order_visit
from ..transform.thread_sync import buffer_scope, is_barrier, launch_extents
from .cuda_expr import ExprPrinter, lane
from .cuda_source import CudaSource, KernelLaunch, c_type

MAX_THREADS = 1024
MAX_SHARED_BYTES = 48 * 1024  # static __shared__ per block
_DIM_LIMITS = {"threadIdx.x": 1024, "threadIdx.y": 1024, "threadIdx.z": 64,
               "blockIdx.x": 2 ** 31 - 1, "blockIdx.y": 65535, "blockIdx.z": 65535}
_RESERVED = frozenset(
    "auto bool break case char class const continue default delete do double else enum extern "
    "false float for goto if inline int long namespace new operator private protected public "
    "register return short signed sizeof static struct switch template this true typedef union "
    "unsigned using virtual void volatile while main min max threadIdx blockIdx blockDim gridDim "
    "warpSize float2 float4 half".split())


class SharedMemoryError(ValueError):
    """A kernel declares more static shared memory than any block may have: the schedule's
    tiles are too large (the autotuner files such a candidate as a resource error)."""


class Names:
    """Unique C identifiers for IR names ("i.outer" -> "i_outer", then "i_outer_1", ...)."""

    def __init__(self):
        self.taken = set()

    def fresh(self, name):
        base = re.sub(r"\W", "_", name) or "v"
        if base[0].isdigit() or base in _RESERVED or base.startswith("__"):
            base = "v_" + base
        out, n = base, 0
        while out in self.taken:
            n += 1
            out = f"{base}_{n}"
        self.taken.add(out)
        return out


def _int_type(dtype):
    return "int" if dtype == "int32" else c_type(dtype)


def _has_thread_loop(s):
    found = []
    post_order_visit(s, lambda n: found.append(n) if isinstance(n, S.For) and
                     n.kind == "thread_binding" else None)
    return bool(found)


def split_kernels(func):
    """[(stage name, kernel loop)] of func in launch order; anything else at the top level is an
    error naming what to bind."""
    out = []

    def walk(s, stage):
        if isinstance(s, S.AttrStmt):
            walk(s.body, s.node if s.key == "produce" else stage)
        elif isinstance(s, S.SeqStmt):
            for x in s.seq:
                walk(x, stage)
        elif isinstance(s, S.For) and s.kind == "thread_binding":
            out.append((stage, s))
        elif isinstance(s, S.Allocate):
            raise ValueError(f"target cuda: {s.buffer.name!r} is an intermediate buffer in "
                             "global memory between kernels; pass it to build as an argument, "
                             "or compute it inside the kernel that reads it (compute_at)")
        elif isinstance(s, S.For) and _has_thread_loop(s.body):
            raise ValueError(f"target cuda: loop {s.loop_var.name!r} of stage {stage!r} runs "
                             "around a kernel on the host, which is not supported; bind it to "
                             "blockIdx/threadIdx or move the bound loops outside it")
        elif not (isinstance(s, S.Evaluate) and not is_barrier(s)):
            raise ValueError(f"stage {stage!r}: no loop is bound to blockIdx/threadIdx; bind "
                             "the outer loops for target cuda")
    walk(func.body, func.name)
    return out


class _KernelWriter:
    def __init__(self, kernel, params):
        self.extents = launch_extents(kernel)
        self.names = {}
        self.ids = Names()
        self.ranges = {}
        self.lane_vars = {}
        self.expr = ExprPrinter(self.names, self.ranges)
        self.params = params
        self.globals = set()
        for p in params:
            self.names[p.data] = self.ids.fresh(p.name)
            self.globals.add(p.data)
        self.shared, self.lines = [], []
        self.shared_extent = {}
        self.shared_bytes = 0
        self.depth = 1
        self.under_thread = 0

    def emit(self, line):
        self.lines.append("  " * self.depth + line)

    def block(self, head, body):
        self.emit(head + " {")
        self.depth += 1
        self.stmt(body)
        self.depth -= 1
        self.emit("}")

    def bind(self, var, lo, hi):
        name = self.names[var] = self.ids.fresh(var.name)
        self.ranges[var] = (lo, hi)
        return name

    def stmt(self, s):
        method = getattr(self, "_" + type(s).__name__, None)
        if method is None:
            raise TypeError(f"CUDA codegen cannot emit {type(s).__name__}")
        method(s)

    def _SeqStmt(self, s):
        for x in s.seq:
            self.stmt(x)

    def _AttrStmt(self, s):
        if s.key == "produce":
            self.emit(f"// produce {s.node}")
        self.stmt(s.body)

    def _For(self, f):
        if f.kind == "thread_binding":
            return self._thread_loop(f)
        if f.kind == "parallel":
            raise ValueError(f"target cuda: loop {f.loop_var.name!r} is marked parallel inside "
                             "a kernel; bind it to a thread index instead")
        lo, n = f.min, f.extent
        bounds = [x.value if isinstance(x, E.IntImm) else None for x in (lo, n)]
        hi = (None if None in bounds else bounds[0] + bounds[1] - 1)
        name = self.bind(f.loop_var, bounds[0] if bounds[0] is not None else -2 ** 31,
                         hi if hi is not None else 2 ** 31 - 1)
        end = self.expr(simplify(lo + n))
        if f.kind == "unrolled":
            self.emit("#pragma unroll")
        self.block(f"for ({_int_type(f.loop_var.dtype)} {name} = {self.expr(lo)}; "
                   f"{name} < {end}; ++{name})", f.body)

    def _thread_loop(self, f):
        tag, n = f.thread_tag, int(f.extent.value)
        if tag not in _DIM_LIMITS:
            raise ValueError(f"target cuda: loop {f.loop_var.name!r} is bound to {tag}, which "
                             "this backend does not support; bind it to blockIdx/threadIdx")
        name = self.bind(f.loop_var, 0, n - 1)
        self.emit(f"{_int_type(f.loop_var.dtype)} {name} = {tag};")
        is_thread = tag.startswith("threadIdx")
        self.under_thread += is_thread
        if n < self.extents[tag]:
            self.block(f"if ({name} < {n})", f.body)
        else:
            self.stmt(f.body)
        self.under_thread -= is_thread

    def _IfThenElse(self, s):
        self.block(f"if ({self.expr(s.cond)})", s.then_case)
        if s.else_case is not None:
            self.lines[-1] += " else {"
            self.depth += 1
            self.stmt(s.else_case)
            self.depth -= 1
            self.emit("}")

    def _LetStmt(self, s):
        n = dt.lanes(s.var.dtype)
        ctype = _int_type(dt.element_of(s.var.dtype))
        if n == 1:
            self.emit(f"{ctype} {self.bind(s.var, -2 ** 63, 2 ** 63)} = {self.expr(s.value)};")
        else:
            lanes = [E.Var(f"{s.var.name}.{k}", dt.element_of(s.var.dtype)) for k in range(n)]
            for k, v in enumerate(lanes):
                value = lane(s.value, k, self.lane_vars)
                self.emit(f"{ctype} {self.bind(v, -2 ** 63, 2 ** 63)} = {self.expr(value)};")
            self.lane_vars[s.var] = lanes
        self.stmt(s.body)

    def _Allocate(self, s):
        scope = buffer_scope(s.scope, self.under_thread)
        if scope not in ("shared", "local"):
            raise ValueError(f"target cuda: buffer {s.buffer.name!r} in scope {s.scope!r} "
                             "cannot be allocated inside a kernel; use 'shared' or 'local'")
        extent = int(getattr(s.extent, "value", s.extent))
        if scope == "shared" and self.shared_extent.get(s.buffer) == extent:
            # a copy of the same allocation (a partitioned loop's peeled iteration)
            return self.stmt(s.body)
        name = self.names[s.buffer] = self.ids.fresh(s.buffer.name)
        decl = f"{c_type(s.dtype)} {name}[{extent}];"
        if scope == "shared":
            self.shared_extent[s.buffer] = extent
            self.shared.append(f"__shared__ {decl}")
            self.shared_bytes += extent * dt.itemsize(s.dtype) * dt.lanes(s.dtype)
        else:
            self.emit(decl)
        self.stmt(s.body)

    def _Evaluate(self, s):
        if is_barrier(s):
            self.emit("__syncthreads();")

    def _Store(self, s):
        if dt.lanes(s.value.dtype) > 1:
            return self._vector_store(s)
        self.emit(f"{self.names[s.buffer]}[{self.expr(s.index)}] = {self.expr(s.value)};")

    # -- vectors -------------------------------------------------------------------------------
    def _packed(self, buffer, index, dtype):
        """The base index when buffer[index] can move as one float2/float4, else None."""
        n = dt.lanes(dtype)
        if dt.element_of(dtype) != "float32" or n not in (2, 4) or buffer not in self.globals \
                or not isinstance(index, E.Ramp) or not _is_const(index.stride, 1):
            return None
        ranges = {v: r for v, r in self.ranges.items() if isinstance(r[0], int)}
        aligned = simplify(E.FloorMod(index.base.dtype, index.base, E.IntImm(index.base.dtype, n)),
                           ranges)
        return index.base if _is_const(aligned, 0) else None

    def _vector_store(self, s):
        n = dt.lanes(s.value.dtype)
        lane_vars = dict(self.lane_vars)
        for ld in _eager_vector_loads(s.value):
            base = self._packed(ld.buffer, ld.index, ld.dtype)
            if base is None or ld in lane_vars:
                continue
            buf = self.names[ld.buffer]
            v = self.ids.fresh(f"{buf}_v")
            self.emit(f"float{n} {v} = *(float{n}*)({buf} + {self.expr(base)});")
            parts = [E.Var(f"{v}.{c}", "float32") for c in "xyzw"[:n]]
            for p in parts:
                self.names[p] = p.name
            lane_vars[ld] = parts
        values = [self.expr(lane(s.value, k, lane_vars)) for k in range(n)]
        buf = self.names[s.buffer]
        base = self._packed(s.buffer, s.index, s.value.dtype)
        if base is not None:
            self.emit(f"*(float{n}*)({buf} + {self.expr(base)}) = "
                      f"make_float{n}({', '.join(values)});")
            return
        for k, value in enumerate(values):
            self.emit(f"{buf}[{self.expr(lane(s.index, k, lane_vars))}] = {value};")


def _is_const(e, value):
    return isinstance(e, E.IntImm) and e.value == value


def _eager_vector_loads(e):
    """Vector loads evaluated whatever the lanes hold: not under a Select branch, which may
    index out of bounds where its condition is false."""
    out = []

    def walk(x):
        if isinstance(x, E.Load) and dt.lanes(x.dtype) > 1:
            out.append(x)
        if isinstance(x, E.Select):
            walk(x.cond)
            return
        for child in _children(x):
            walk(child)
    walk(e)
    return out


def _children(e):
    if isinstance(e, E.BinaryOp):
        return (e.a, e.b)
    if isinstance(e, E.Not):
        return (e.a,)
    if isinstance(e, E.Cast):
        return (e.value,)
    if isinstance(e, E.Call):
        return e.args
    if isinstance(e, E.Broadcast):
        return (e.value,)
    if isinstance(e, E.Ramp):
        return (e.base, e.stride)
    if isinstance(e, E.Load):
        return (e.index,)
    if isinstance(e, E.Let):
        return (e.value, e.body)
    return ()


def _used_buffers(s):
    used = set()

    def visit(n):
        if isinstance(n, (E.Load, S.Store)):
            used.add(n.buffer)
    post_order_visit(s, visit)
    return used


def _launch_dims(name, stage, extents):
    grid = tuple(extents.get(f"blockIdx.{c}", 1) for c in "xyz")
    block = tuple(extents.get(f"threadIdx.{c}", 1) for c in "xyz")
    for tag, n in extents.items():
        if n > _DIM_LIMITS.get(tag, n):
            raise ValueError(f"kernel {name} (stage {stage!r}): {tag} extent {n} exceeds the "
                             f"CUDA limit {_DIM_LIMITS[tag]}")
    if block[0] * block[1] * block[2] > MAX_THREADS:
        raise ValueError(f"kernel {name} (stage {stage!r}): {block[0]}x{block[1]}x{block[2]} "
                         f"threads per block exceed the CUDA limit of {MAX_THREADS}; split the "
                         "threadIdx loops smaller")
    return grid, block


def _write_kernel(name, stage, kernel, func):
    used = _used_buffers(kernel)
    params = [p for p in func.params if p.data in used]
    w = _KernelWriter(kernel, params)
    w.stmt(kernel)
    if w.shared_bytes > MAX_SHARED_BYTES:
        raise SharedMemoryError(f"kernel {name} (stage {stage!r}) declares {w.shared_bytes} "
                                f"bytes of shared memory, over the {MAX_SHARED_BYTES} bytes a "
                                "block may have statically; use smaller tiles")
    grid, block = _launch_dims(name, stage, w.extents)
    sig = ", ".join(f"{c_type(p.dtype)}* __restrict__ {w.names[p.data]}" for p in params)
    text = "\n".join([f"// stage {stage}: grid {grid}, block {block}",
                      f'extern "C" __global__ void {name}({sig}) {{',
                      *("  " + d for d in w.shared), *w.lines, "}"])
    launch = KernelLaunch(name, grid, block, tuple(p.name for p in params), w.shared_bytes)
    return text, launch, w.expr.uses_half


def emit_cuda(func):
    """The CudaSource of a PrimFunc lowered for a GPU target."""
    names = [p.name for p in func.params]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise ValueError(f"target cuda: two arguments are named {dup!r}; give the tensors "
                         "distinct names")
    kernels = split_kernels(func)
    if not kernels:
        raise ValueError(f"target cuda: function {func.name!r} computes nothing on the GPU")
    texts, launches, half = [], [], False
    for k, (stage, kernel) in enumerate(kernels):
        name = Names().fresh(f"{func.name}_kernel{k}")
        text, launch, uses_half = _write_kernel(name, stage, kernel, func)
        texts.append(text)
        launches.append(launch)
        half = half or uses_half
    if any(p.dtype == "float16" for p in func.params):
        half = True
    head = ["#include <cuda_fp16.h>", ""] if half else []
    params = tuple((p.name, tuple(int(getattr(d, "value", d)) for d in p.shape), p.dtype)
                   for p in func.params)
    return CudaSource(func.name, "\n".join(head + ["\n\n".join(texts), ""]), tuple(launches),
                      params)
