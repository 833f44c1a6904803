"""Loading a TorchScript module and preparing its graph for the walk.

Freezing turns parameters into constants and inlines submodule calls, which is what lets the
walker treat weights as static tensors; when it fails the graph is inlined and
``prim::GetAttr`` is resolved against the module instead, so unusual modules still import.
The cleanup passes are optimisations only: one that refuses a graph is skipped.
"""
import os

from .errors import ModelParseError, UnsupportedFeatureError
from .torchscript_dtypes import _torch


def _load(module):
    """(script module or function, label, loaded_here)."""
    torch = _torch()
    if isinstance(module, (str, os.PathLike)):
        path = os.fspath(module)
        if not os.path.exists(path):
            raise FileNotFoundError(f"TorchScript model {path!r} does not exist")
        try:
            m = torch.jit.load(path, map_location="cpu")
        except Exception as e:
            raise ModelParseError(f"cannot load TorchScript model {path!r}: {type(e).__name__}: "
                                  f"{str(e).strip().splitlines()[0] if str(e).strip() else ''} "
                                  "(not a file saved by torch.jit.save?)") from None
        m.eval()
        return m, f"TorchScript model {os.path.basename(path)!r}", True
    if isinstance(module, torch.jit.ScriptModule):
        try:
            label = module.original_name
        except Exception:  # pragma: no cover
            label = type(module).__name__
        return module, f"TorchScript module {label!r}", False
    if isinstance(module, torch.jit.ScriptFunction):
        return module, f"TorchScript function {module.name!r}", False
    if isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torchscript: {type(module).__name__} is an eager nn.Module; "
                        "convert it first with torch.jit.trace(model.eval(), example_inputs) "
                        "or torch.jit.script(model.eval())")
    raise TypeError(f"from_torchscript: module must be a torch.jit.ScriptModule, a "
                    f"ScriptFunction or a path, got {type(module).__name__}")


def _is_module(m):
    return isinstance(m, _torch().jit.ScriptModule)


def _forward_graph(m):
    if _is_module(m):
        if not m._c._has_method("forward"):
            raise UnsupportedFeatureError("the TorchScript module has no forward method")
        return m.graph
    return m.graph


def _prepare(m, label):
    """(graph to walk, object bound to its ``self`` input or None): frozen when possible."""
    torch = _torch()
    if not _is_module(m):
        g = m.graph.copy()
        torch._C._jit_pass_inline(g)
        return _clean(g), None
    if m.training:
        raise UnsupportedFeatureError(
            f"{label} is in training mode; tensorc compiles inference (dropout off, batch norm "
            "with running statistics): call module.eval() before tracing/scripting or before "
            "importing")
    owner = m
    try:
        frozen = torch._C._freeze_module(m._c, [])
        g = frozen._get_method("forward").graph
        owner = frozen
    except Exception:
        g = m.graph.copy()
    torch._C._jit_pass_inline(g)
    return _clean(g), owner


def _clean(g):
    torch = _torch()
    for p in (torch._C._jit_pass_remove_mutation, torch._C._jit_pass_constant_propagation,
              torch._C._jit_pass_dce):
        try:
            p(g)
        except Exception:  # a pass that refuses a graph is only an optimisation lost
            pass
    return g
