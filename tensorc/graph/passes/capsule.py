"""Capsule routing: the unrolled routing loop of an imported CapsNet becomes one node.

Traced (or scripted, or exported to ONNX), the DigitCaps layer of Sabour et al. arrives as
elementwise and reduction nodes, a dozen per round, each a kernel that reads or writes the
(B, I, J, D) prediction vectors. This pass finds that structure and replaces it with one
``capsule_routing`` node, which builds ``capsule.predict`` + ``capsule.dynamic_routing`` and
compiles with their fused schedule (one pass over u_hat per round, from cache).

What is recognized, after constant folding and simplification (``a * b`` and ``a + b`` in
either operand order):

    u_hat = reshape(matmul(W, reshape(u, [B, I, 1, Din, 1])), [B, I, J, D])   (optional)
    round 0:  s = sum(c0 * u_hat, axis=1, keepdims)       c0 a constant, every entry 1/J
    round r:  b = b_prev + sum(u_hat * v_prev, axis=3, keepdims)   b_prev of round 1: zeros
              s = sum(softmax(b, axis=2) * u_hat, axis=1, keepdims)
    v = squash(s) = (n2 / (n2 + 1)) * s / (n + e),  n = l2(s, axis=3, keepdims),
                                                    n2 = square(n) or n * n

The matmul form becomes part of the node only when u_hat feeds nothing but the routing;
otherwise the node reads u_hat. The squash's ``s / (n + e)`` is computed as
``s / sqrt(n2 + e^2)`` (``capsule.squash``): the two differ by less than e relative to n, so
only e <= MAX_EPS is accepted. Anything else -- another axis, a different squash, a coupling
that is not uniform, an intermediate read elsewhere -- leaves the graph as it is.
"""
import numpy as np

from ..infer import const_array
from .common import Rewrite, consumers, new_const, new_node, new_value

#: The largest squash epsilon e (in ``s / (|s| + e)``) matched.
MAX_EPS = 1e-6


def _axes(node):
    a = node.attrs.get("axis")
    return None if a is None else [int(x) for x in ([a] if isinstance(a, int) else a)]


def _is_axis(node, axis, rank=4):
    axes = _axes(node)
    return axes is not None and len(axes) == 1 and axes[0] % rank == axis


def _scalar(v):
    """The value of a constant with one element, else None."""
    if not v.is_const or int(np.prod(v.shape)) != 1:
        return None
    return float(const_array(v).reshape(-1)[0])


def _other(node, v):
    """The input of a two-input node that is not ``v`` (None when ``v`` is not one of them)."""
    if len(node.inputs) != 2:
        return None
    a, b = node.inputs
    return b if a is v else a if b is v else None


class _Matcher:
    def __init__(self, graph):
        self.users = consumers(graph)
        self.prod = graph.producers()

    def readers(self, v):
        return self.users.get(id(v), [])

    def only(self, v, op):
        """The one node reading ``v`` when it is an ``op`` node with one output and ``v``
        is no graph output; else None."""
        rs = self.readers(v)
        if len(rs) != 1 or rs[0] is None or rs[0].op != op or len(rs[0].outputs) != 1:
            return None
        return rs[0]

    def squash(self, s):
        """(v, nodes, e) when ``s`` feeds exactly a squash along its last axis, else None."""
        rs = self.readers(s)
        if len(rs) != 2 or None in rs:
            return None
        l2 = next((n for n in rs if n.op == "l2"), None)
        mul = next((n for n in rs if n.op == "multiply"), None)
        if l2 is None or mul is None or len(l2.inputs) != 1 or not _is_axis(l2, 3) or \
                not l2.attrs.get("keepdims", False):
            return None
        n = l2.outputs[0]
        rn = self.readers(n)
        if len(rn) != 2 or None in rn:
            return None
        sq = next((x for x in rn if x.op == "square" and x.inputs == [n] or
                   x.op == "multiply" and x.inputs == [n, n]), None)
        add_e = next((x for x in rn if x.op == "add" and x is not sq), None)
        if sq is None or add_e is None:
            return None
        e = _scalar(_other(add_e, n) or n)
        n2 = sq.outputs[0]
        rn2 = self.readers(n2)
        if e is None or not 0 <= e <= MAX_EPS or len(rn2) != 2 or None in rn2:
            return None
        add_1 = next((x for x in rn2 if x.op == "add"), None)
        div = next((x for x in rn2 if x.op == "divide"), None)
        if add_1 is None or div is None or _scalar(_other(add_1, n2) or n2) != 1.0 or \
                div.inputs != [n2, add_1.outputs[0]] or self.only(add_1.outputs[0], "divide") \
                is not div or self.only(div.outputs[0], "multiply") is not mul or \
                _other(mul, div.outputs[0]) is not s:
            return None
        out = self.only(mul.outputs[0], "divide")
        if out is None or out.inputs != [mul.outputs[0], add_e.outputs[0]] or \
                self.only(add_e.outputs[0], "divide") is not out:
            return None
        return out.outputs[0], [l2, sq, add_e, add_1, div, mul, out], e

    def weighted_sum(self, mul, u_hat):
        """(s, sum node) when ``mul`` (coupling * u_hat) is summed over the input capsules."""
        B, _, J, D = u_hat.shape
        red = self.only(mul.outputs[0], "sum")
        if red is None or not _is_axis(red, 1) or not red.attrs.get("keepdims", False) or \
                tuple(red.outputs[0].shape) != (B, 1, J, D):
            return None
        return red.outputs[0], red

    def agreement(self, v, u_hat, b_prev):
        """(b, softmax node, nodes) of the update b = b_prev + sum(u_hat * v, axis=3) and its
        softmax over J, when ``v`` feeds exactly that; b_prev None: a constant zero."""
        B, I, J, _ = u_hat.shape
        mul = self.only(v, "multiply")
        if mul is None or _other(mul, v) is not u_hat:
            return None
        red = self.only(mul.outputs[0], "sum")
        if red is None or not _is_axis(red, 3) or not red.attrs.get("keepdims", False):
            return None
        a = red.outputs[0]
        add = self.only(a, "add")
        prev = None if add is None else _other(add, a)
        if prev is None or tuple(add.outputs[0].shape) != (B, I, J, 1):
            return None
        if b_prev is None:
            if not prev.is_const or np.any(const_array(prev) != 0):
                return None
        elif prev is not b_prev:
            return None
        b = add.outputs[0]
        rb = self.readers(b)
        soft = next((x for x in rb if x is not None and x.op == "softmax"), None)
        if soft is None or not _is_axis(soft, 2) or any(
                x is None or x is not soft and x.op != "add" for x in rb) or len(rb) > 2:
            return None
        return b, soft, [mul, red, add, soft]

    def routing(self, mul0):
        """The routing that starts with ``mul0`` = c0 * u_hat: (u_hat, iterations, e, nodes,
        final v) or None."""
        u_hat = next((x for x in mul0.inputs if not x.is_const), None)
        c0 = _other(mul0, u_hat) if u_hat is not None else None
        if c0 is None or not c0.is_const or u_hat.shape is None or len(u_hat.shape) != 4:
            return None
        B, I, J, D = u_hat.shape
        if len(c0.shape) != 4 or tuple(c0.shape[2:]) != (J, 1) or \
                any(d not in (1, full) for d, full in zip(c0.shape[:2], (B, I))) or \
                not np.allclose(const_array(c0), 1.0 / J, rtol=1e-6, atol=0):
            return None
        nodes, mul, b, eps, rounds = [], mul0, None, None, 0
        while True:
            found = self.weighted_sum(mul, u_hat)
            sq = found and self.squash(found[0])
            if not sq or eps is not None and sq[2] != eps:
                return None
            v, sq_nodes, eps = sq
            nodes += [mul, found[1]] + sq_nodes
            rounds += 1
            upd = self.agreement(v, u_hat, b)
            if upd is None:
                break
            b, soft, upd_nodes = upd
            nodes += upd_nodes
            mul = self.only(soft.outputs[0], "multiply")
            if mul is None or _other(mul, soft.outputs[0]) is not u_hat:
                return None
        if b is not None and len(self.readers(b)) != 1:   # the last logits feed a later add
            return None
        return u_hat, rounds, eps, nodes, v

    def prediction(self, u_hat, routing_nodes):
        """(u, W constant (I, J, D, Din), nodes) when u_hat = reshape(matmul(W, reshape(u)))
        and feeds only the routing, else None."""
        ids = {id(n) for n in routing_nodes}
        if any(r is None or id(r) not in ids for r in self.readers(u_hat)):
            return None
        B, I, J, D = u_hat.shape
        sq = self.prod.get(id(u_hat))
        mm = sq and self.prod.get(id(sq.inputs[0]))
        if sq is None or sq.op != "reshape" or len(sq.inputs) != 1 or mm is None or \
                mm.op != "matmul" or len(mm.inputs) != 2 or \
                tuple(mm.outputs[0].shape) != (B, I, J, D, 1) or \
                self.only(mm.outputs[0], "reshape") is not sq:
            return None
        W, x = mm.inputs
        ux = self.prod.get(id(x))
        if not W.is_const or ux is None or ux.op != "reshape" or len(ux.inputs) != 1 or \
                self.only(x, "matmul") is not mm:
            return None
        u = ux.inputs[0]
        Din = x.shape[3]
        if tuple(x.shape) != (B, I, 1, Din, 1) or tuple(u.shape) != (B, I, Din) or \
                tuple(W.shape[-4:]) != (I, J, D, Din) or any(d != 1 for d in W.shape[:-4]):
            return None
        return u, W, [ux, mm, sq]


def fuse_capsule_routing(graph):
    rw = Rewrite(graph)
    m = _Matcher(rw.graph)
    replaced, inserted = set(), {}
    for node in rw.graph.nodes:
        if node.op != "multiply" or id(node) in replaced:
            continue
        found = m.routing(node)
        if found is None or any(id(n) in replaced for n in found[3]):
            continue
        u_hat, rounds, eps, nodes, v = found
        pred = m.prediction(u_hat, nodes)
        if pred is not None:
            u, W, pred_nodes = pred
            Wc = new_const(f"{W.name}.caps", const_array(W).reshape(W.shape[-4:]))
            ins, nodes = [u, Wc], nodes + pred_nodes
        else:
            ins = [u_hat]
        B, _, J, D = u_hat.shape
        out = new_value(f"{v.name}.routed", (B, J, D), v.dtype)
        last = max(nodes, key=rw.graph.nodes.index)
        inserted[id(last)] = [
            new_node("capsule_routing", ins, [out], {"iterations": rounds, "eps": eps * eps},
                     f"{v.name}/capsule_routing"),
            new_node("reshape", [out], [v], {"newshape": [B, 1, J, D]}, f"{v.name}/reshape")]
        replaced.update(id(n) for n in nodes)
    kept = []
    for n in rw.graph.nodes:
        if id(n) in inserted:
            kept += inserted[id(n)]
        elif id(n) not in replaced:
            kept.append(n)
    return rw.finish(kept)


def choose_capsule_layout(graph):
    """CPU only: every ``capsule_routing`` node with W and a batch of at least 4 gets ``lanes``
    (``ops.capsule_schedule.cpu_lanes``), so it builds the batch-in-lanes layout
    (``capsule.predict_and_route_lanes``); below that, a constant W is packed here, once
    (``capsule.pack_weight``, ``weight_layout="packed"``), instead of transposed by every
    call. The result is the same."""
    from ...ops.capsule import pack_weight
    from ...ops.capsule_schedule import cpu_lanes
    rw = Rewrite(graph)
    packed = {}  # id(W) -> its packed constant (a W shared by two nodes packs once)
    for n in rw.graph.nodes:
        if n.op != "capsule_routing" or len(n.inputs) != 2 or "lanes" in n.attrs:
            continue
        x, w = n.inputs
        lanes = cpu_lanes(int(x.shape[0]), x.dtype)
        if lanes:
            n.attrs = dict(n.attrs, lanes=lanes)
        elif w.is_const and n.attrs.get("weight_layout", "IJDK") == "IJDK":
            if id(w) not in packed:
                packed[id(w)] = new_const(f"{w.name}.packed", pack_weight(const_array(w)))
            n.inputs = [x, packed[id(w)]]
            n.attrs = dict(n.attrs, weight_layout="packed")
    return rw.finish(list(rw.graph.nodes))
