"""How the TorchScript importer names a node in its errors, and ``Call``, the node as a
converter sees it: resolved arguments addressed by schema name, because positions differ
between the overloads of one op.
"""
import os
import re

from .torchscript_dtypes import _torch


def source_location(node):
    """'file.py:123' for a TorchScript node (trace: the innermost recorded frame; script: the
    source range), or '' when the node has none."""
    try:
        text = str(node.sourceRange())
    except Exception:  # pragma: no cover - defensive: binding differences
        return ""
    text = text.strip()
    if not text:
        return ""
    first = text.splitlines()[0].strip()
    if first.startswith("File "):                      # script: File "x.py", line 12
        m = re.match(r'File "([^"]+)", line (\d+)', first)
        if m:
            return f"{os.path.basename(m.group(1))}:{m.group(2)}"
    m = re.match(r"(.+)\((\d+)\): (\S+)", first)       # trace: x.py(12): forward
    if m:
        return f"{os.path.basename(m.group(1))}:{m.group(2)} ({m.group(3)})"
    return first[:80]


def describe_node(node):
    """'aten::foo -> %x.3 at model.py:12 in layer1.0' -- how errors name a TorchScript
    node (the scope is a traced module's submodule path)."""
    outs = ", ".join(f"%{o.debugName()}" for o in node.outputs())
    loc = source_location(node)
    scope = ""
    try:
        scope = node.scopeName()
    except Exception:  # pragma: no cover
        pass
    parts = [f"{node.kind()}" + (f" -> {outs}" if outs else "")]
    if loc:
        parts.append(f"at {loc}")
    if scope:
        parts.append(f"in {scope.split('/')[-1].replace('__module.', '')}")
    return " ".join(parts)


def _unsupported_entry(node):
    outs = ", ".join(f"%{o.debugName()}" for o in node.outputs()) or "(no output)"
    loc = source_location(node)
    return f"{outs} at {loc}" if loc else outs


_SCHEMAS = {}


def node_schema(node):
    """The parsed ``FunctionSchema`` of a node, or None (prim ops have none)."""
    torch = _torch()
    try:
        text = node.schema()
    except Exception:
        return None
    if not text or text == "(no schema)":
        return None
    s = _SCHEMAS.get(text)
    if s is None:
        try:
            s = torch._C.parse_schema(text)
        except Exception:
            return None
        _SCHEMAS[text] = s
    return s


class Call:
    """One TorchScript node as a converter sees it: ``args`` (resolved values: graph Values,
    static Python values or constant torch tensors, in schema order), ``arg(name, default)`` by
    schema argument name, ``kind``, ``node`` (the ``torch._C.Node``)."""

    def __init__(self, node, args):
        self.node = node
        self.kind = node.kind()
        self.args = list(args)
        self.schema = node_schema(node)
        self.names = [a.name for a in self.schema.arguments] if self.schema is not None else []
        self.overload = self.schema.overload_name if self.schema is not None else ""
        self.n_outputs = node.outputsSize()

    def has(self, name):
        return name in self.names and self.names.index(name) < len(self.args)

    def arg(self, name, default=None):
        """The argument called ``name`` in the node's schema (default when absent)."""
        if name in self.names:
            k = self.names.index(name)
            if k < len(self.args):
                return self.args[k]
        return default

    def __getitem__(self, k):
        return self.args[k] if k < len(self.args) else None

    def __repr__(self):
        return describe_node(self.node)
