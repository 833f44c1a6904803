"""Simplification: identity-like nodes removed, reshape-like ops canonicalised and collapsed.

- removed (their output replaced by their input): reshape / flatten / squeeze / unsqueeze /
  expand / broadcast_to to the same shape, a transpose by the identity permutation, a cast to
  the same dtype, a slice or pad that keeps everything, a one-input concat, tile by ones;
- ``flatten``, ``squeeze`` and ``unsqueeze`` become ``reshape`` to their output shape (all four
  only reinterpret row-major data), and a reshape of a reshape reads the first one's input;
- a transpose of a transpose becomes one transpose by the composed permutation.

An identity whose output is a graph output and whose input is a graph input or another graph
output stays (the model's outputs keep their own buffers).
"""
from .common import Rewrite

RESHAPES = ("reshape", "flatten", "squeeze", "unsqueeze")


def _perm(node):
    nd = len(node.inputs[0].shape)
    perm = node.attrs.get("perm")
    return list(range(nd - 1, -1, -1)) if perm is None else [p % nd if nd else p for p in perm]


def _is_identity(n):
    if len(n.inputs) < 1 or len(n.outputs) != 1:
        return False
    x, y = n.inputs[0], n.outputs[0]
    same = tuple(x.shape) == tuple(y.shape) and x.dtype == y.dtype
    if not same:
        return False
    op, a = n.op, n.attrs
    if op in RESHAPES + ("expand", "broadcast_to"):
        return len(n.inputs) == 1
    if op == "transpose":
        return _perm(n) == list(range(len(x.shape)))
    if op == "cast":
        return True
    if op == "slice":
        steps = a.get("steps")
        return len(n.inputs) == 1 and (steps is None or all(s == 1 for s in steps))
    if op == "pad":
        mode = a.get("mode", "constant")
        pw = a.get("pad_width")
        try:
            flat = [int(p) for pair in pw for p in pair]
        except TypeError:
            return False
        return mode == "constant" and not any(flat)
    if op == "concat":
        return len(n.inputs) == 1
    if op == "tile":
        return len(n.inputs) == 1
    return False


def simplify(graph):
    rw = Rewrite(graph)
    g = rw.graph
    outs = {id(v) for v in g.outputs}
    ins = {id(v) for v in g.inputs}
    producer = {}
    kept = []
    for n in g.nodes:
        rw.remap(n)
        if _is_identity(n):
            x, y = n.inputs[0], n.outputs[0]
            if not (id(y) in outs and (id(x) in ins or id(x) in outs)):
                rw.replace(y, x)
                continue
        if n.op in RESHAPES and len(n.inputs) == 1:
            n.op, n.attrs = "reshape", {"newshape": list(n.outputs[0].shape)}
            src = producer.get(id(n.inputs[0]))
            if src is not None and src.op == "reshape" and len(src.inputs) == 1:
                n.inputs = [src.inputs[0]]
                if tuple(n.inputs[0].shape) == tuple(n.outputs[0].shape) and \
                        not (id(n.outputs[0]) in outs and
                             (id(n.inputs[0]) in ins or id(n.inputs[0]) in outs)):
                    rw.replace(n.outputs[0], n.inputs[0])
                    continue
        elif n.op == "transpose" and len(n.inputs) == 1:
            src = producer.get(id(n.inputs[0]))
            if src is not None and src.op == "transpose" and len(src.inputs) == 1:
                inner, outer = _perm(src), _perm(n)
                perm = [inner[p] for p in outer]
                n.inputs = [src.inputs[0]]
                n.attrs = dict(n.attrs, perm=perm)
                if perm == list(range(len(perm))) and \
                        not (id(n.outputs[0]) in outs and
                             (id(n.inputs[0]) in ins or id(n.inputs[0]) in outs)):
                    rw.replace(n.outputs[0], n.inputs[0])
                    continue
        for v in n.outputs:
            producer[id(v)] = n
        kept.append(n)
    return rw.finish(kept)
