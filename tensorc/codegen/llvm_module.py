"""One LLVM module from a list of PrimFuncs: C entry points and the globals the runtime reads.

Each PrimFunc becomes ``int32_t name(void *p0, void *p1, ...)``. Its pointer parameters are
``noalias`` (the runtime refuses an output overlapping any other argument), aligned to their element
and dereferenceable for the whole buffer, which lets LLVM hoist loads out of branches.
``__tensorc_metadata`` is NUL-terminated JSON describing the functions, so an exported .so
describes itself; ``__tensorc_num_threads`` is the thread count parallel loops use (0: the pool's default).
"""
import json
import math

from ..ir import dtype as dt
from ..ir import expr as E
from ..runtime.module import METADATA_GLOBAL, VERSION
from .llvm_builder import ModuleBuilder
from .llvm_parallel import NUM_THREADS_GLOBAL
from .llvm_stmt import emit_body
from .target import target_machine


def _shape(decl):
    return [int(s.value) if isinstance(s, E.IntImm) else int(s) for s in decl.shape]


def describe(funcs, entry, target):
    """The metadata embedded in the module: enough to check arguments and write a C header."""
    functions = []
    for f in funcs:
        outputs = set(dict(f.attrs).get("output_params", ()))
        functions.append({"name": f.name, "params": [
            {"name": p.name, "shape": _shape(p), "dtype": p.dtype, "output": k in outputs}
            for k, p in enumerate(f.params)]})
    return {"entry": entry, "target": str(target), "tensorc_version": VERSION,
            "functions": functions}


def _check(funcs, entry):
    check_functions(funcs)
    names = [f.name for f in funcs]
    if entry not in names:
        raise ValueError(f"entry function {entry!r} is not among {names}")


def check_functions(funcs):
    """Each PrimFunc must be a usable C symbol, uniquely named, with well-formed parameters."""
    names = [f.name for f in funcs]
    for f in funcs:
        if not f.name.isidentifier() or f.name.startswith("__tensorc"):
            raise ValueError(f"function name {f.name!r} is not a usable C symbol")
        if names.count(f.name) > 1:
            raise ValueError(f"two functions are named {f.name!r}")
        for k in dict(f.attrs).get("output_params", ()):
            if not 0 <= k < len(f.params):
                raise ValueError(f"{f.name}: output_params names parameter #{k}, but the "
                                 f"function has {len(f.params)} parameters")
        for p in f.params:
            if p.data.dtype != "handle" or dt.lanes(p.dtype) != 1:
                raise ValueError(f"{f.name}: parameter {p.name!r} must be a scalar-element buffer "
                                 f"behind a handle variable (got {p.dtype} via {p.data.dtype})")


def _c_string(data):
    return "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:02X}" for b in data)


def _param_attrs(decl):
    size = dt.itemsize(decl.dtype)
    attrs = f"noalias nocapture align {size}"
    nbytes = math.prod(_shape(decl)) * size
    return f"{attrs} dereferenceable({nbytes})" if nbytes else attrs


def emit_module(funcs, entry, target):
    """The unoptimized LLVM IR text of the module."""
    funcs = list(funcs)
    _check(funcs, entry)
    return finish_module(begin_module(funcs, target, describe(funcs, entry, target)), target)


def begin_module(funcs, target, metadata, reserved=()):
    """A ModuleBuilder holding the runtime globals, ``metadata`` (embedded as JSON) and every
    function of funcs; ``reserved`` names functions the caller adds itself afterwards."""
    mb = ModuleBuilder()
    mb.add_global(f"@{NUM_THREADS_GLOBAL} = global i32 0, align 4")
    blob = json.dumps(metadata, sort_keys=True).encode() + b"\0"
    mb.add_global(f'@{METADATA_GLOBAL} = constant [{len(blob)} x i8] c"{_c_string(blob)}", '
                  'align 1')
    for name in [f.name for f in funcs] + list(reserved):
        mb.unique_name(name)  # reserve user names before outlined functions pick theirs
    for f in funcs:
        fb = mb.function(f.name, "i32", [("ptr", p.name, _param_attrs(p)) for p in f.params])
        emit_body(fb, target, {p.data: arg for p, arg in zip(f.params, fb.args)}, f.body)
    return mb


def finish_module(mb, target):
    """The module's IR text, with the target's triple, data layout and function attributes."""
    fn_attrs = f'nounwind "target-cpu"="{target.cpu}"'
    if target.features:
        fn_attrs += f' "target-features"="{target.feature_string}"'
    datalayout = str(target_machine(target).target_data)
    return mb.text(target.triple, datalayout, fn_attrs)
