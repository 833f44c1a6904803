"""Code generation: lowered PrimFuncs to native code through LLVM."""
from ..runtime import cache
from . import llvm_compile
from .llvm_graph import build_graph_module
from .llvm_module import emit_module
from .target import Target, host, parse


def build_module(funcs, entry, target="llvm"):
    """Compile PrimFuncs into one loaded ``tensorc.runtime.Module`` whose call runs ``entry``.

    Identical code for an identical target is compiled once: later builds, in this process or
    another sharing the cache directory, load the cached shared object without running LLVM.
    """
    target = parse(target)
    ir_text = emit_module(funcs, entry, target)
    key = cache.key_for(ir_text, str(target), target.feature_string)
    module = cache.lookup(key)
    if module is None:
        optimized, obj = llvm_compile.compile_ir(ir_text, target)
        module = cache.store(key, lambda path: llvm_compile.link_shared(obj, path),
                             {"llvm": optimized, "ll-unoptimized": ir_text, "target": str(target)})
    return module


__all__ = ["build_module", "build_graph_module", "Target", "host", "parse"]
