"""The graph IR: a model as a list of operator nodes over named, statically shaped values.

Importers (ONNX, TorchScript) translate their formats into this one, so graph passes and the
graph compiler never see a frontend's quirks. A node names an operator of ``tensorc.ops`` and
carries that operator's keyword attributes, so a node's meaning is exactly
``getattr(tensorc.ops, op)(*inputs, **attrs)`` and shapes are inferred by building that TE.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np


@dataclass(eq=False)
class Value:
    """A tensor flowing through the graph: a name, a static shape and a dtype.

    ``data`` holds the array of a constant (a weight or a folded value); graph inputs and node
    outputs have none.
    """
    name: str
    shape: Tuple[int, ...]
    dtype: str
    data: Optional[np.ndarray] = None

    @property
    def is_const(self):
        return self.data is not None

    def __repr__(self):
        kind = "const " if self.is_const else ""
        return f"%{self.name}: {kind}{self.dtype}{list(self.shape)}"


@dataclass(eq=False)
class Node:
    """One operator application: ``outputs = ops.<op>(*inputs, **attrs)``."""
    op: str
    inputs: List[Value]
    outputs: List[Value]
    attrs: Dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __repr__(self):
        outs = ", ".join(f"%{v.name}" for v in self.outputs)
        ins = ", ".join(f"%{v.name}" for v in self.inputs)
        attrs = "".join(f", {k}={_short(v)}" for k, v in sorted(self.attrs.items()))
        return f"{outs} = {self.op}({ins}{attrs})"


def _short(v):
    if isinstance(v, np.ndarray):
        return f"array{list(v.shape)}"
    return repr(v)


@dataclass(eq=False)
class Graph:
    """Inputs, nodes in execution (topological) order, and outputs."""
    inputs: List[Value]
    nodes: List[Node]
    outputs: List[Value]
    name: str = "model"

    def constants(self):
        """Constant values used by nodes, each once, in first-use order."""
        seen, out = set(), []
        for n in self.nodes:
            for v in n.inputs:
                if v.is_const and id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    def producers(self):
        """Map value -> the node that produces it."""
        return {id(v): n for n in self.nodes for v in n.outputs}

    def consumers(self):
        """Map value id -> nodes that read it (graph outputs count as a reader None)."""
        users = {}
        for n in self.nodes:
            for v in n.inputs:
                users.setdefault(id(v), []).append(n)
        for v in self.outputs:
            users.setdefault(id(v), []).append(None)
        return users

    def __str__(self):
        lines = [f"graph {self.name}(" + ", ".join(repr(v) for v in self.inputs) + "):"]
        shapes = {id(v): v for n in self.nodes for v in n.outputs}
        for n in self.nodes:
            outs = ", ".join(f"{shapes[id(v)].dtype}{list(v.shape)}" for v in n.outputs)
            lines.append(f"  {n!r}    # {outs}")
        lines.append("  return " + ", ".join(f"%{v.name}" for v in self.outputs))
        return "\n".join(lines)

    def op_counts(self):
        counts = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return counts
