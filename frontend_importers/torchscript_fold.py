"""Evaluating TorchScript nodes whose operands are all static.

The exact ``torch.ops`` overload is called so the static parts of a model compute exactly
what torch would; the Python results of builtins are coerced to the node's declared output
type (``int`` where a ``bool`` came back), which the nodes reading them rely on.
"""
import numpy as np

from .torchscript_dtypes import _torch


def _constant(node):
    torch = _torch()
    out = node.output()
    t = out.type()
    if isinstance(t, torch._C.NoneType):
        return None
    try:
        v = out.toIValue()
    except Exception:
        if node.hasAttribute("value"):
            kind = node.kindOf("value")
            v = getattr(node, kind)("value")
        else:
            return None
    if isinstance(v, torch.device):
        return v
    if isinstance(t, torch._C.DeviceObjType):
        return torch.device(v)
    return v


def _coerce_outputs(call, res):
    """Python results of static builtins, coerced to the TorchScript output types."""
    torch = _torch()
    n = call.n_outputs
    vals = [res] if n == 1 else list(res) if n > 1 else []
    outs = list(call.node.outputs())
    fixed = []
    for o, v in zip(outs, vals):
        t = o.type()
        if isinstance(t, torch._C.IntType) and isinstance(v, (bool, float, np.integer)):
            v = int(v)
        elif isinstance(t, torch._C.FloatType) and isinstance(v, (int, np.floating)) and \
                not isinstance(v, bool):
            v = float(v)
        elif isinstance(t, torch._C.BoolType) and not isinstance(v, bool) and \
                isinstance(v, (int, np.bool_)):
            v = bool(v)
        fixed.append(v)
    return fixed[0] if n == 1 else fixed


def _call_torch(call):
    """Evaluate a node on static operands with the exact ``torch.ops`` overload."""
    torch = _torch()
    s = call.schema
    ns, name = s.name.split("::", 1)
    packet = getattr(getattr(torch.ops, ns), name)
    op = getattr(packet, s.overload_name or "default")
    pos, kw = [], {}
    for a, v in zip(s.arguments, call.args):
        if a.kwarg_only:
            kw[a.name] = v
        else:
            pos.append(v)
    with torch.no_grad():
        res = op(*pos, **kw)
    if call.n_outputs == 1:
        return res
    return list(res)
