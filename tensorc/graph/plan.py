"""The execution plan of a compiled graph: which kernel runs when, on which buffers.

The graph compiler turns a model into kernels (lowered ``PrimFunc``s, one per fused group) and an
``ExecutionPlan``; ``tensorc.codegen.build_graph_module`` turns both into one shared object whose
entry function runs the plan. Every kernel argument is a ``BufferRef`` into one of four pools:

- ``"input"`` / ``"output"``: the model's inputs and outputs, passed by the caller;
- ``"const"``: weights and folded constants, stored inside the shared object (read-only memory);
- ``"storage"``: intermediate storage tokens, reused across kernels, allocated by the entry.

A kernel parameter may view any part of a buffer: ``offset`` is a byte offset, and the parameter's
shape and dtype need not match the buffer's (a reshape is free), as long as its bytes fit inside and
the offset is a multiple of its element size. ``ExecutionPlan.validate`` checks all of this, plus
what the generated code relies on: kernels write only outputs and storage, and a buffer a kernel
writes overlaps no other argument of the same call (kernel parameters are ``noalias``).
"""
import math
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

import numpy as np

KINDS = ("input", "output", "const", "storage")


@dataclass(frozen=True)
class BufferRef:
    """Where a kernel argument lives."""
    kind: str    # "input" | "output" | "const" | "storage"
    index: int   # into ExecutionPlan.inputs/.outputs/.constants/.storage
    offset: int = 0  # byte offset inside the buffer (for planners that pack)


@dataclass(frozen=True)
class KernelCall:
    """One kernel launch: ``func(*args)``, args in the kernel's parameter order."""
    func: str
    args: Tuple[BufferRef, ...]


@dataclass
class ExecutionPlan:
    """How the entry function ``name`` runs the kernels on the model's buffers."""
    name: str                      # entry symbol name (a valid C identifier)
    inputs: List[Tuple[str, Tuple[int, ...], str]] = field(default_factory=list)
    outputs: List[Tuple[str, Tuple[int, ...], str]] = field(default_factory=list)
    constants: List[Tuple[str, Any]] = field(default_factory=list)  # (name, numpy array)
    storage: List[int] = field(default_factory=list)  # byte sizes of the storage tokens
    calls: List[KernelCall] = field(default_factory=list)  # in execution order
    # Per output: None if some kernel writes it, else a BufferRef whose bytes are copied to it.
    output_sources: List[Optional[BufferRef]] = field(default_factory=list)

    def validate(self, kernels):
        """Raise ValueError naming the first inconsistency between the plan and the kernels."""
        validate(kernels, self)


def _nbytes(shape, dtype):
    return math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize


def _param_shape(decl):
    return tuple(int(getattr(s, "value", s)) for s in decl.shape)


def buffer_bytes(plan, kind, index):
    """(size in bytes, element size) of buffer ``index`` of pool ``kind``."""
    if kind in ("input", "output"):
        _, shape, dtype = (plan.inputs if kind == "input" else plan.outputs)[index]
        return _nbytes(shape, dtype), np.dtype(dtype).itemsize
    if kind == "const":
        arr = np.asarray(plan.constants[index][1])
        return arr.nbytes, arr.itemsize
    return int(plan.storage[index]), 64  # storage tokens start 64-byte aligned


def written_params(func):
    """Indices of the parameters ``func`` writes (its ``output_params`` attribute)."""
    attrs = dict(func.attrs)
    if "output_params" not in attrs:
        raise ValueError(f"kernel {func.name!r} has no 'output_params' attribute: the graph "
                         "module must know which parameters a kernel writes")
    return frozenset(attrs["output_params"])


def _check_ref(plan, ref, what):
    if not isinstance(ref, BufferRef):
        raise ValueError(f"{what}: expected a BufferRef, got {ref!r}")
    if ref.kind not in KINDS:
        raise ValueError(f"{what}: unknown buffer kind {ref.kind!r}; expected one of {KINDS}")
    pool = {"input": plan.inputs, "output": plan.outputs, "const": plan.constants,
            "storage": plan.storage}[ref.kind]
    if not isinstance(ref.index, (int, np.integer)) or not 0 <= ref.index < len(pool):
        raise ValueError(f"{what}: {ref.kind} #{ref.index} does not exist (the plan has "
                         f"{len(pool)} {ref.kind} buffers)")
    if not isinstance(ref.offset, (int, np.integer)) or ref.offset < 0:
        raise ValueError(f"{what}: offset {ref.offset!r} must be a non-negative integer")
    return buffer_bytes(plan, ref.kind, ref.index)


def validate(kernels, plan):
    """Check that ``plan`` can run ``kernels`` safely; see the module docstring for the rules."""
    by_name = {}
    for k in kernels:
        if k.name in by_name:
            raise ValueError(f"two kernels are named {k.name!r}")
        by_name[k.name] = k
    if not isinstance(plan.name, str) or not plan.name.isidentifier() or \
            plan.name.startswith("__tensorc"):
        raise ValueError(f"plan name {plan.name!r} is not a usable C symbol")
    if plan.name in by_name:
        raise ValueError(f"the entry {plan.name!r} has the name of a kernel")
    for pool, entries in (("input", plan.inputs), ("output", plan.outputs)):
        names = [e[0] for e in entries]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two model {pool}s are named {name!r}")
    for k, size in enumerate(plan.storage):
        if int(size) < 0:
            raise ValueError(f"storage token #{k} has negative size {size}")
    for k, (name, arr) in enumerate(plan.constants):
        if np.asarray(arr).dtype.hasobject:
            raise ValueError(f"constant {name!r} (#{k}) holds Python objects, not numbers")
    written = set()
    for c, call in enumerate(plan.calls):
        func = by_name.get(call.func)
        if func is None:
            raise ValueError(f"call #{c} names kernel {call.func!r}, which is not among "
                             f"{sorted(by_name)}")
        if len(call.args) != len(func.params):
            raise ValueError(f"call #{c} ({call.func}) passes {len(call.args)} buffers; the kernel "
                             f"has {len(func.params)} parameters")
        outs = written_params(func)
        spans = []
        for j, (ref, p) in enumerate(zip(call.args, func.params)):
            what = f"call #{c} ({call.func}), parameter {p.name!r}"
            size, base_align = _check_ref(plan, ref, what)
            item = np.dtype(p.dtype).itemsize
            need = _nbytes(_param_shape(p), p.dtype)
            if ref.offset + need > size:
                raise ValueError(f"{what}: {need} bytes at offset {ref.offset} do not fit in "
                                 f"{ref.kind} #{ref.index} of {size} bytes")
            if ref.offset % item or item > base_align:
                raise ValueError(f"{what}: {p.dtype} data at byte offset {ref.offset} of "
                                 f"{ref.kind} #{ref.index} would be misaligned")
            if j in outs:
                if ref.kind in ("input", "const"):
                    raise ValueError(f"{what}: the kernel writes this parameter, but it is "
                                     f"{ref.kind} #{ref.index}, which is read-only")
                if ref.kind == "output":
                    written.add(ref.index)
            spans.append((ref.kind, ref.index, ref.offset, ref.offset + need))
        for j in outs:
            kind, index, lo, hi = spans[j]
            for i, (k2, i2, lo2, hi2) in enumerate(spans):
                if i != j and (k2, i2) == (kind, index) and lo < hi2 and lo2 < hi and lo < hi:
                    raise ValueError(
                        f"call #{c} ({call.func}): written parameter {func.params[j].name!r} "
                        f"overlaps parameter {func.params[i].name!r} ({kind} #{index}, bytes "
                        f"[{lo}, {hi}) and [{lo2}, {hi2})); kernel parameters must not alias")
    if len(plan.output_sources) != len(plan.outputs):
        raise ValueError(f"the plan has {len(plan.outputs)} outputs but "
                         f"{len(plan.output_sources)} output_sources")
    for k, src in enumerate(plan.output_sources):
        name, shape, dtype = plan.outputs[k]
        if src is None:
            if k not in written and _nbytes(shape, dtype):
                raise ValueError(f"output {name!r} (#{k}): no kernel writes it and it has no "
                                 "output source")
            continue
        what = f"output {name!r} (#{k}) source"
        size, _ = _check_ref(plan, src, what)
        if src.kind == "output" and plan.output_sources[src.index] is not None:
            raise ValueError(f"{what}: output #{src.index} is itself a copy; copy from a buffer "
                             "a kernel writes, or from the original source")
        need = _nbytes(shape, dtype)
        if src.offset + need > size:
            raise ValueError(f"{what}: {need} bytes at offset {src.offset} do not fit in "
                             f"{src.kind} #{src.index} of {size} bytes")
