"""What the graph passes share: the pass wrapper, op-count lines, and value substitution."""
import math

import numpy as np

from ..infer import clone
from ..ir import Graph, Node, Value


class GraphPass:
    """A named pure function Graph -> Graph."""

    def __init__(self, fn, name=None):
        self.fn = fn
        self.name = name or fn.__name__

    def __call__(self, graph):
        return self.fn(graph)

    def __repr__(self):
        return f"GraphPass({self.name})"


def op_count_line(graph):
    counts = graph.op_counts()
    body = ", ".join(f"{op} x{n}" for op, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])))
    return f"{len(graph.nodes)} nodes" + (f": {body}" if body else "")


def nbytes(v):
    return math.prod(int(d) for d in v.shape) * np.dtype(v.dtype).itemsize


class Rewrite:
    """A copy of a graph being rewritten: ``subst`` maps id(old value) to its replacement;
    ``finish(nodes)`` applies it to the kept nodes and the outputs and returns the new graph."""

    def __init__(self, graph):
        self.graph, _ = clone(graph)
        self.subst = {}

    def get(self, v):
        seen = 0
        while id(v) in self.subst:
            v = self.subst[id(v)]
            seen += 1
            if seen > 10000:  # pragma: no cover - a substitution cycle is a pass bug
                raise RuntimeError("substitution cycle in a graph pass")
        return v

    def replace(self, old, new):
        if old is not new:
            self.subst[id(old)] = new

    def remap(self, node):
        """The node with its inputs substituted (the same object, updated)."""
        node.inputs = [self.get(v) for v in node.inputs]
        return node

    def finish(self, nodes):
        for n in nodes:
            self.remap(n)
        outputs = [self.get(v) for v in self.graph.outputs]
        return Graph(list(self.graph.inputs), list(nodes), outputs, self.graph.name)


def consumers(graph):
    """id(value) -> list of distinct consumer nodes (None for a graph output)."""
    users = {}
    for n in graph.nodes:
        for v in n.inputs:
            lst = users.setdefault(id(v), [])
            if not any(u is n for u in lst):
                lst.append(n)
    for v in graph.outputs:
        users.setdefault(id(v), []).append(None)
    return users


def new_const(name, array, dtype=None):
    # np.require keeps 0-d arrays 0-d (ascontiguousarray would make them shape (1,))
    a = np.require(array if dtype is None else np.asarray(array).astype(dtype),
                   requirements="C")
    a.setflags(write=False)
    return Value(name, tuple(a.shape), a.dtype.name, a)


def new_value(name, shape, dtype):
    return Value(name, tuple(int(d) for d in shape), dtype)


def new_node(op, inputs, outputs, attrs=None, name=""):
    return Node(op, list(inputs), list(outputs), dict(attrs or {}), name)
