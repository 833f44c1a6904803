"""Constant folding: nodes whose inputs are all constants are evaluated ahead of time.

Each such node runs through the reference interpreter (``te.evaluate``: exactly the node's
meaning) and its outputs become constants. ``shape`` nodes fold from their input's static shape
whatever that input is, and static operands given as constant inputs (``reshape(x, s)``,
``slice(x, starts, ends)``, ...) move into attributes -- so a Shape -> Gather -> Concat ->
Reshape chain of an importer collapses into one ``reshape`` with a ``newshape`` attribute.

A fold that would blow a small constant up into a big one (``expand`` of a scalar to a large
tensor) is skipped: the node stays, and fuses into its consumer at no memory cost.
"""
import numpy as np

from ..infer import SHAPE_OPERANDS, const_array, shape_operands
from ..interpret import eval_node
from .common import Rewrite, nbytes, new_const

#: A fold may always produce this many bytes; beyond, at most GROWTH times its inputs' bytes.
SMALL = 1 << 20
GROWTH = 2


def _worth_folding(node):
    out = sum(nbytes(v) for v in node.outputs)
    ins = sum(nbytes(v) for v in node.inputs)
    return out <= max(SMALL, GROWTH * ins)


def fold_constants(graph):
    rw = Rewrite(graph)
    kept = []
    for n in rw.graph.nodes:
        rw.remap(n)
        if n.op == "shape" and len(n.inputs) == 1:
            v = n.outputs[0]
            rw.replace(v, new_const(v.name, np.array(n.inputs[0].shape, dtype=np.int64)))
            continue
        if all(v.is_const for v in n.inputs) and _worth_folding(n):
            results = eval_node(n, [const_array(v) for v in n.inputs])
            for v, a in zip(n.outputs, results):
                rw.replace(v, new_const(v.name, a, v.dtype))
            continue
        if n.op in SHAPE_OPERANDS and len(n.inputs) > 1 and \
                all(v.is_const for v in n.inputs[1:]):
            n.attrs.update(shape_operands(n))
            n.inputs = n.inputs[:1]
        kept.append(n)
    return rw.finish(kept)
