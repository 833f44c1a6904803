"""A whole model as one shared object: its kernels, an entry function running the plan, its weights.

``build_graph_module(kernels, plan)`` emits one LLVM module holding every kernel (exported, so each
can be called and timed alone) and the entry

    int32_t <plan.name>(void *in0, ..., void *out0, ...)

which takes its workspace (one 64-byte aligned heap block holding every storage token at a
64-byte aligned offset), calls the kernels in plan order with pointers into the inputs, outputs,
weights and workspace, stops at the first kernel returning nonzero (returning that code), copies
the outputs that are plain copies of an input or a constant, gives the workspace back and
returns 0. The workspace comes from the runtime's per-thread cache (tensorc/runtime/workspace.c,
as the kernels' own heap buffers do), so a caller calling again never pays for allocation or page
faults, and concurrent calls from several threads each have their own.

Weights never pass through LLVM: they are written into one binary file (each constant 64-byte
aligned), assembled into ``.rodata`` with ``.incbin`` and linked into the same shared object. The
IR refers to them as an external hidden symbol plus byte offsets; a second, exported symbol
(``__tensorc_weights``) at the same address lets the Python runtime find them (for ``profile``).
The kernels' calls bind inside the library (``-Bsymbolic-functions``), so two models with equally
named kernels can be linked into one C program.

The weights' SHA-256 is part of the embedded metadata, hence of the IR text and the build-cache
key: the same code with different weights is a different module.
"""
import hashlib
import math
import os
import tempfile

import numpy as np

from ..graph.plan import validate
from ..ir import dtype as dt
from ..runtime import cache
from ..runtime.graph_module import WEIGHTS_SYMBOL, GraphModule
from . import llvm_compile
from .llvm_builder import Value, const, zero
from .llvm_module import begin_module, check_functions, describe, finish_module
from .llvm_stmt import OUT_OF_MEMORY, WORKSPACE_ALLOC, WORKSPACE_FREE, declare_workspace
from .target import parse

ALIGN = 64
_LOCAL_WEIGHTS = "__tensorc_weights_local"  # hidden: what the code refers to


def _round_up(n, a=ALIGN):
    return -(-n // a) * a


def _layout(sizes):
    """64-byte aligned offsets of consecutive blocks of the given sizes, and the total size."""
    offsets, total = [], 0
    for size in sizes:
        offsets.append(total)
        total += _round_up(int(size))
    return offsets, total


def _constant_arrays(plan):
    """The constants as C-contiguous native-endian arrays."""
    out = []
    for name, arr in plan.constants:
        a = np.asarray(arr)
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        out.append((name, np.ascontiguousarray(a)))
    return out


def _flat_bytes(a):
    return a.reshape(-1).view(np.uint8)


def _weights_digest(arrays):
    h = hashlib.sha256()
    for _, a in arrays:
        h.update(str(a.nbytes).encode() + b"\0")
        h.update(_flat_bytes(a))
    return h.hexdigest()


def _tensor(name, shape, dtype):
    return {"name": str(name), "shape": [int(s) for s in shape], "dtype": dt.check(dtype)}


def graph_metadata(kernels, plan, target, arrays):
    """The JSON embedded in the library: the kernels' and the entry's signatures plus the plan."""
    meta = describe(kernels, plan.name, target)
    inputs = [_tensor(*t) for t in plan.inputs]
    outputs = [_tensor(*t) for t in plan.outputs]
    meta["functions"].append({"name": plan.name, "params": (
        [dict(t, output=False) for t in inputs] + [dict(t, output=True) for t in outputs])})
    const_offsets, weights_nbytes = _layout(a.nbytes for _, a in arrays)
    storage_offsets, workspace_nbytes = _layout(plan.storage)

    def ref(r):
        return None if r is None else [r.kind, int(r.index), int(r.offset)]

    meta["graph"] = {
        "inputs": inputs, "outputs": outputs,
        "kernels": [k.name for k in kernels],
        "constants": [dict(_tensor(name, a.shape, a.dtype.name), offset=off, nbytes=a.nbytes)
                      for (name, a), off in zip(arrays, const_offsets)],
        "weights_nbytes": weights_nbytes,
        "weights_sha256": _weights_digest(arrays),
        "weights_symbol": WEIGHTS_SYMBOL if weights_nbytes else None,
        "storage": [int(s) for s in plan.storage],
        "storage_offsets": storage_offsets,
        "workspace_nbytes": workspace_nbytes,
        "calls": [{"func": c.func, "args": [ref(r) for r in c.args]} for c in plan.calls],
        "output_sources": [ref(r) for r in plan.output_sources],
    }
    return meta


def _emit_entry(mb, kernels, plan, graph):
    n_in, n_out = len(plan.inputs), len(plan.outputs)
    params = [("ptr", f"in{k}", "nocapture readonly") for k in range(n_in)]
    params += [("ptr", f"out{k}", "noalias nocapture") for k in range(n_out)]
    fb = mb.function(plan.name, "i32", params)
    weights = Value("ptr", f"@{_LOCAL_WEIGHTS}")
    if graph["weights_nbytes"]:
        mb.add_global(f"@{_LOCAL_WEIGHTS} = external hidden constant "
                      f"[{graph['weights_nbytes']} x i8], align {ALIGN}")
    rc = fb.alloca("i32", 4, hint="rc")
    fb.store(const("i32", 0), rc, 4)

    total = graph["workspace_nbytes"]
    ws = None
    if total:
        declare_workspace(mb)
        ws = fb.call("ptr", WORKSPACE_ALLOC, [const("i64", total)])
        failed, have = fb.label("ws.failed"), fb.label("ws.have")
        fb.cbr(fb.icmp("eq", ws, zero("ptr")), failed, have)
        fb.start_block(failed)
        fb.ret(const("i32", OUT_OF_MEMORY))
        fb.start_block(have)

    def pointer(ref):
        kind, index, offset = ref
        if kind == "input":
            base = fb.args[index]
        elif kind == "output":
            base = fb.args[n_in + index]
        elif kind == "const":
            base, offset = weights, graph["constants"][index]["offset"] + offset
        else:  # no workspace when every token is empty: then nothing reads or writes them
            base = ws if ws is not None else zero("ptr")
            offset = graph["storage_offsets"][index] + offset
        return fb.gep("i8", base, const("i64", offset)) if offset else base

    done = fb.label("exit")
    for call in graph["calls"]:
        args = ", ".join(str(pointer(r)) for r in call["args"])
        # Not inlined: each kernel stays what profile() times, and the entry stays small.
        status = fb.inst("i32", f"call i32 @{call['func']}({args}) noinline", hint="status")
        bad, ok = fb.label(f"{call['func']}.failed"), fb.label(f"{call['func']}.ok")
        fb.cbr(fb.icmp("ne", status, zero("i32")), bad, ok)
        fb.start_block(bad)
        fb.store(status, rc, 4)
        fb.br(done)
        fb.start_block(ok)
    if any(src is not None for src in graph["output_sources"]):
        mb.declare("llvm.memcpy.p0.p0.i64", "void", ["ptr", "ptr", "i64", "i1"])
    for k, src in enumerate(graph["output_sources"]):
        out = graph["outputs"][k]
        nbytes = math.prod(out["shape"]) * np.dtype(out["dtype"]).itemsize
        if src is None or not nbytes:
            continue
        fb.call("void", "llvm.memcpy.p0.p0.i64", [fb.args[n_in + k], pointer(src),
                                                   const("i64", nbytes), const("i1", 0)])
    fb.br(done)
    fb.start_block(done)
    if ws is not None:
        fb.call("void", WORKSPACE_FREE, [ws, const("i64", total)])
    fb.ret(fb.load("i32", rc, 4))


def emit_graph_module(kernels, plan, target):
    """(unoptimized IR text, metadata, constant arrays) of the graph module."""
    kernels = list(kernels)
    check_functions(kernels)
    validate(kernels, plan)
    arrays = _constant_arrays(plan)
    meta = graph_metadata(kernels, plan, target, arrays)
    mb = begin_module(kernels, target, meta, reserved=(plan.name,))
    _emit_entry(mb, kernels, plan, meta["graph"])
    return finish_module(mb, target), meta, arrays


def _assembler_source(nbytes, blob_name):
    return "\n".join([
        '\t.section .rodata.tensorc_weights,"a",%progbits',
        f"\t.balign {ALIGN}",
        f"\t.globl {_LOCAL_WEIGHTS}",
        f"\t.hidden {_LOCAL_WEIGHTS}",
        f"\t.type {_LOCAL_WEIGHTS}, %object",
        f"\t.size {_LOCAL_WEIGHTS}, {nbytes}",
        f"\t.globl {WEIGHTS_SYMBOL}",
        f"\t.type {WEIGHTS_SYMBOL}, %object",
        f"\t.size {WEIGHTS_SYMBOL}, {nbytes}",
        f"{_LOCAL_WEIGHTS}:",
        f"{WEIGHTS_SYMBOL}:",
        f'\t.incbin "{blob_name}"',
        '\t.section .note.GNU-stack,"",%progbits',  # the weights need no executable stack
        ""])


def _write_blob(path, arrays):
    """The constants back to back, each starting at a multiple of ALIGN; returns the size."""
    pos = 0
    with open(path, "wb") as f:
        for _, a in arrays:
            pad = _round_up(pos) - pos
            f.write(b"\0" * pad)
            f.write(_flat_bytes(a).data)
            pos += pad + a.nbytes
        pad = _round_up(pos) - pos
        f.write(b"\0" * pad)
        return pos + pad


def link_graph(obj, so_path, arrays, weights_nbytes):
    """Link the module's object and (when there are any) the weights into ``so_path``."""
    with tempfile.TemporaryDirectory(prefix="tensorc-weights-") as tmp:
        objects = []
        if weights_nbytes:
            written = _write_blob(os.path.join(tmp, "weights.bin"), arrays)
            assert written == weights_nbytes, (written, weights_nbytes)
            source = os.path.join(tmp, "weights.s")
            with open(source, "w") as f:
                f.write(_assembler_source(weights_nbytes, "weights.bin"))
            llvm_compile.assemble(source, os.path.join(tmp, "weights.o"))
            os.unlink(os.path.join(tmp, "weights.bin"))
            objects.append(os.path.join(tmp, "weights.o"))
        llvm_compile.link_shared(obj, so_path, objects, ["-Wl,-Bsymbolic-functions"])


def build_graph_module(kernels, plan, target="llvm"):
    """Compile the kernels and the plan running them into one loaded ``GraphModule``.

    ``kernels`` are lowered PrimFuncs (each with its ``output_params`` attribute) and ``plan`` a
    ``tensorc.graph.plan.ExecutionPlan`` over them. As with ``build_module``, an identical build
    (same code, same weights, same target) is a cache hit that runs neither LLVM nor the linker.
    """
    target = parse(target)
    if any(word in target.triple for word in ("apple", "darwin", "windows", "mingw", "cygwin")):
        raise ValueError(f"graph modules need an ELF target (Linux, BSD); this one is "
                         f"{target.triple}")
    ir_text, meta, arrays = emit_graph_module(kernels, plan, target)
    # The weights' digest is inside ir_text (in the metadata); hashed again here for clarity.
    key = cache.key_for(ir_text + meta["graph"]["weights_sha256"], str(target),
                        target.feature_string)
    module = cache.lookup(key)
    if module is None:
        optimized, obj = llvm_compile.compile_ir(ir_text, target)
        nbytes = meta["graph"]["weights_nbytes"]
        module = cache.store(key, lambda path: link_graph(obj, path, arrays, nbytes),
                             {"llvm": optimized, "ll-unoptimized": ir_text, "target": str(target)})
    return GraphModule(module)
