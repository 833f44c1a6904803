"""Dead-code elimination: drop the nodes no graph output depends on."""
from ..infer import clone
from ..ir import Graph


def live_nodes(nodes, outputs):
    """The nodes (in order) that ``outputs`` depend on; the importers use it on the node list
    they build, before a Graph exists."""
    live = {id(v) for v in outputs}
    kept = []
    for n in reversed(nodes):
        if any(id(v) in live for v in n.outputs):
            kept.append(n)
            live.update(id(v) for v in n.inputs)
    kept.reverse()
    return kept


def eliminate_dead_code(graph):
    g, _ = clone(graph)
    return Graph(g.inputs, live_nodes(g.nodes, g.outputs), g.outputs, g.name)
