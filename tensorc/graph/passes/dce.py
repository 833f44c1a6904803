"""Dead-code elimination: drop the nodes no graph output depends on."""
from ..infer import clone
from ..ir import Graph


def eliminate_dead_code(graph):
    g, _ = clone(graph)
    live = {id(v) for v in g.outputs}
    kept = []
    for n in reversed(g.nodes):
        if any(id(v) in live for v in n.outputs):
            kept.append(n)
            live.update(id(v) for v in n.inputs)
    kept.reverse()
    return Graph(g.inputs, kept, g.outputs, g.name)
