"""The reference interpreter: run a graph node by node with the numpy oracle ``te.evaluate``.

``run_graph(graph, inputs)`` builds each node's TE on placeholders (exactly what the node
means: ``ops.<op>(*inputs, **attrs)``) and evaluates it with ``tensorc.te.evaluate``, which
follows docs/semantics.md and depends on no schedule, lowering or code generation. It is the
oracle graph tests compare compiled modules with, and what constant folding uses to evaluate
nodes ahead of time.

    outs = run_graph(g, [x])            # inputs in graph order ...
    outs = run_graph(g, {"x": x})       # ... or by name; returns a list of numpy arrays
"""
import numpy as np

from ..ir import dtype as dt
from .infer import (GraphError, build_node, check_structure, const_array, describe_node,
                    placeholders)


def _as_array(v, arr, what):
    a = np.asarray(arr)
    want = np.dtype(dt.to_numpy(v.dtype))
    if a.dtype != want:
        raise TypeError(f"{what} %{v.name} expects dtype {v.dtype}, got {a.dtype}")
    if tuple(a.shape) != tuple(v.shape):
        raise ValueError(f"{what} %{v.name} expects shape {tuple(v.shape)}, got {a.shape}")
    return a


def eval_node(node, arrays, known=None):
    """The node's outputs (a list of arrays) given one array per input."""
    from .. import te
    phs = placeholders(node.inputs)
    if known is None:  # static operands computed in the graph: their values are at hand
        known = {id(v): a for v, a in zip(node.inputs, arrays)}
    outs = build_node(node, phs, known)
    feed = dict(zip(phs, arrays))
    try:
        res = te.evaluate(outs, feed)
    except (ValueError, TypeError, ZeroDivisionError, FloatingPointError, IndexError) as e:
        raise GraphError(f"{describe_node(node)}: evaluation failed: {type(e).__name__}: "
                         f"{e}") from e
    return [np.asarray(r) for r in res]


def run_graph(graph, inputs):
    """Outputs of ``graph`` (a list of numpy arrays, graph output order) for ``inputs`` (a list
    in graph input order, or a dict by input name)."""
    check_structure(graph)
    if isinstance(inputs, dict):
        names = [v.name for v in graph.inputs]
        unknown = [k for k in inputs if k not in names]
        if unknown:
            raise KeyError(f"run_graph: no input named {unknown[0]!r}; the inputs are "
                           f"{', '.join(map(repr, names))}")
        missing = [n for n in names if n not in inputs]
        if missing:
            raise KeyError(f"run_graph: input {missing[0]!r} is missing")
        inputs = [inputs[n] for n in names]
    inputs = list(inputs)
    if len(inputs) != len(graph.inputs):
        raise TypeError(f"run_graph: graph {graph.name!r} takes {len(graph.inputs)} inputs, "
                        f"got {len(inputs)}")
    values = {id(v): _as_array(v, a, "input") for v, a in zip(graph.inputs, inputs)}

    def get(v):
        if id(v) not in values:
            values[id(v)] = const_array(v)  # check_structure: only constants are missing
        return values[id(v)]

    # free each value after its last reader, so a long graph keeps few arrays alive
    last = {}
    for k, n in enumerate(graph.nodes):
        for v in n.inputs:
            last[id(v)] = k
    keep = {id(v) for v in graph.outputs}
    for k, n in enumerate(graph.nodes):
        outs = eval_node(n, [get(v) for v in n.inputs])
        for v, a in zip(n.outputs, outs):
            values[id(v)] = a
        for v in n.inputs:
            if last.get(id(v)) == k and id(v) not in keep and not v.is_const:
                values.pop(id(v), None)
    return [get(v).copy() for v in graph.outputs]
