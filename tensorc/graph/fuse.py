"""Operator fusion: partition a graph's nodes into groups, each compiled as one kernel.

Every node is classified by the computes its TE builds (``classify``):

- ``anchor``: it reduces or reuses data (matmul, dense, gemm, conv, pool, reductions, softmax,
  norms: a compute that is not elementwise / broadcast / injective);
- ``elemwise``: every compute is tagged "elemwise" or "broadcast" (add, relu, gelu, a
  batch_norm in inference, ...);
- ``injective``: every compute maps elements one to one but some move data ("injective":
  reshape, transpose, pad, slice, concat, ...);
- ``opaque``: several outputs (split, topk): a group of its own, never fused.

Rules, in this order:

1. **Epilogue.** An anchor starts a group and takes the chain of its elementwise consumers while
   the group's result feeds exactly one node (and is no graph output), that node is
   ``elemwise`` and its result has the group result's shape: conv + bias + relu,
   conv + folded batch-norm shift + residual add + relu, dense + gelu, sum + divide.
2. **Prologue.** A non-anchor node whose only reader is a node of an anchor group joins that
   group: ``injective`` ones always (pad, transpose, reshape, ... read through by the anchor),
   ``elemwise`` ones unless the anchor is a matrix product, which would recompute them per
   column panel.
3. **Injective runs.** Any other non-anchor node whose only reader is in an injective group
   joins it; otherwise it starts one. So a chain like transpose -> add -> relu is one kernel.
4. A value read by two groups (or by a group and the graph's outputs) is materialized.
5. A group that is only a ``reshape`` of a materialized value is an ``alias``: no kernel, the
   result is the same bytes viewed with another shape. When the reshape is a graph output, the
   kernel making its input writes straight into the output buffer instead (if that input is no
   graph output itself); otherwise it stays a copy kernel.

Every value inside a group other than its outputs has exactly one reader, inside the group, so
groups are convex and ordering them by their last node is a valid execution order.
"""
from dataclasses import dataclass, field
from typing import List, Optional

from ..ops.util import INJECTIVE_TAGS
from .infer import build_node, placeholders
from .ir import Node, Value

ELEMWISE_TAGS = ("elemwise", "broadcast")
#: anchors whose inputs are read many times without a packed copy: no elementwise prologues
MATRIX_TAGS = ("matmul", "dense")


@dataclass(eq=False)
class Group:
    """Nodes compiled as one kernel (in graph order), its inputs and outputs."""
    nodes: List[Node]
    kind: str                       # "anchor" | "injective" | "opaque" | "alias"
    anchor: Optional[Node] = None
    inputs: List[Value] = field(default_factory=list)   # read from outside, first-use order
    outputs: List[Value] = field(default_factory=list)  # read outside or graph outputs

    @property
    def ops(self):
        return [n.op for n in self.nodes]

    def __repr__(self):
        ins = ", ".join(f"%{v.name}" for v in self.inputs)
        outs = ", ".join(f"%{v.name}" for v in self.outputs)
        return f"{self.kind}[{' + '.join(self.ops)}]({ins}) -> {outs}"


def _computes(outs):
    """Every compute op of a node's TE (up to its placeholders)."""
    from ..te.tensor import ComputeOp
    seen, stack, found = set(), [t.op for t in outs], []
    while stack:
        op = stack.pop()
        if id(op) in seen or not isinstance(op, ComputeOp):
            continue
        seen.add(id(op))
        found.append(op)
        stack.extend(t.op for t in op.input_tensors)
    return found


@dataclass
class NodeClass:
    kind: str        # "anchor" | "elemwise" | "injective" | "opaque"
    tags: tuple      # tags of the node's non-injective computes (anchors)


def classify(node):
    """The fusion class of a node, from the tags of the computes its TE builds."""
    outs = build_node(node, placeholders(node.inputs))
    if len(outs) != 1:
        return NodeClass("opaque", ())
    ops = _computes(outs)
    tags = [op.tag for op in ops]
    if not ops:
        return NodeClass("injective", ())
    heavy = tuple(sorted({t for op, t in zip(ops, tags)
                          if t not in INJECTIVE_TAGS or op.reduce_axis}))
    if heavy:
        return NodeClass("anchor", heavy)
    if all(t in ELEMWISE_TAGS for t in tags):
        return NodeClass("elemwise", ())
    return NodeClass("injective", ())


def fuse(graph, classes=None):
    """The graph's nodes partitioned into groups, in execution order."""
    nodes = graph.nodes
    index = {id(n): k for k, n in enumerate(nodes)}
    if classes is None:
        classes = {}
    for n in nodes:
        if id(n) not in classes:
            classes[id(n)] = classify(n)
    readers = {}
    for n in nodes:
        for v in n.inputs:
            lst = readers.setdefault(id(v), [])
            if not any(r is n for r in lst):
                lst.append(n)
    graph_outs = {id(v) for v in graph.outputs}

    def sole_reader(n):
        """The one node reading n's (single) output, or None."""
        if len(n.outputs) != 1 or id(n.outputs[0]) in graph_outs:
            return None
        rs = readers.get(id(n.outputs[0]), [])
        return rs[0] if len(rs) == 1 else None

    group_of = {}
    groups = []

    def reader_group(n):
        """The group every reader of n's (single) output belongs to, if they share one: n
        then computes inside it (once per reader's use: cheaper than a round trip through
        memory for the elementwise and injective nodes that get here)."""
        if len(n.outputs) != 1 or id(n.outputs[0]) in graph_outs:
            return None
        rs = readers.get(id(n.outputs[0]), [])
        found = {id(group_of.get(id(r))) for r in rs}
        if len(rs) == 0 or len(found) != 1:
            return None
        return group_of.get(id(rs[0]))

    # 1. anchors and their elementwise epilogues
    for n in nodes:
        c = classes[id(n)]
        if c.kind != "anchor":
            continue
        g = Group([n], "anchor", anchor=n)
        group_of[id(n)] = g
        groups.append(g)
        tail = n
        while True:
            r = sole_reader(tail)
            if r is None or id(r) in group_of or classes[id(r)].kind != "elemwise" or \
                    len(r.outputs) != 1 or \
                    tuple(r.outputs[0].shape) != tuple(tail.outputs[0].shape):
                break
            g.nodes.append(r)
            group_of[id(r)] = g
            tail = r
    # 2./3. the others, consumers first: join the sole reader's group when allowed
    for n in reversed(nodes):
        if id(n) in group_of:
            continue
        c = classes[id(n)]
        if c.kind == "opaque":
            g = Group([n], "opaque")
        else:
            g = reader_group(n)
            if g is not None and g.kind == "anchor":
                matrix = any(t in MATRIX_TAGS for t in classes[id(g.anchor)].tags)
                if c.kind == "elemwise" and matrix:
                    g = None
            elif g is not None and g.kind != "injective":
                g = None
            if g is None:
                g = Group([], "injective")
            g.nodes.append(n)
        if g not in groups:
            groups.append(g)
        group_of[id(n)] = g
    for g in groups:
        g.nodes.sort(key=lambda n: index[id(n)])
        _boundary(g, readers, graph_outs, group_of)
    producer = {id(v): n for n in nodes for v in n.outputs}
    claimed = set()
    for g in groups:
        if g.kind != "injective" or len(g.nodes) != 1 or g.nodes[0].op != "reshape" or \
                len(g.nodes[0].inputs) != 1:
            continue
        src = g.inputs[0]
        if not any(id(v) in graph_outs for v in g.outputs):
            g.kind = "alias"
            continue
        # a reshape returned as a graph output: its input is written straight into the output
        # buffer, when a kernel makes it, nothing else returns it and no other reshape claims it
        p = producer.get(id(src))
        if p is not None and id(src) not in graph_outs and id(src) not in claimed and \
                group_of[id(p)].kind != "alias":
            claimed.add(id(src))
            g.kind = "alias"
    groups.sort(key=lambda g: index[id(g.nodes[-1])])
    return groups


def _boundary(g, readers, graph_outs, group_of):
    inside = {id(n) for n in g.nodes}
    made = {id(v) for n in g.nodes for v in n.outputs}
    seen = set()
    g.inputs, g.outputs = [], []
    for n in g.nodes:
        for v in n.inputs:
            if id(v) not in made and id(v) not in seen:
                seen.add(id(v))
                g.inputs.append(v)
    for n in g.nodes:
        for v in n.outputs:
            outside = any(id(r) not in inside for r in readers.get(id(v), []))
            if outside or id(v) in graph_outs:
                g.outputs.append(v)
    if g.kind == "opaque":  # every result of a multi-output node is written, read or not
        g.outputs = list(g.nodes[0].outputs)
