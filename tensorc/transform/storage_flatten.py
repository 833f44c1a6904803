"""Storage flattening: multi-dimensional tensors become flat buffers addressed by one index.

A realized region [min, min + extent) per dimension becomes a row-major Allocate of
prod(extent) elements; every access subtracts the region's min. Function arguments are the
tensors the user passed, stored whole.
"""
from ..ir import stmt as S
from ..ir.expr import Load, Var
from ..ir.functor import IRMutator
from ..ir.op import const


class _Buffer:
    def __init__(self, data, dtype, mins, extents):
        self.data, self.dtype, self.mins, self.extents = data, dtype, mins, extents

    def index(self, indices):
        flat = None
        for i, m, n in zip(indices, self.mins, self.extents):
            off = i - m
            flat = off if flat is None else flat * n + off
        return flat if flat is not None else const(0)


class _Flatten(IRMutator):
    def __init__(self, buffers):
        self.buffers = buffers

    def _buf(self, tensor):
        b = self.buffers.get(tensor)
        if b is None:
            raise ValueError(f"tensor {tensor.name!r} is read but neither an argument nor "
                             "computed by this schedule; add it to the argument list")
        return b

    def visit_ProducerRealize(self, r):
        if r.producer in self.buffers:
            return self.visit(r.body)
        extents = [int(x.extent.value) for x in r.bounds]
        data = Var(r.producer.name, "handle")
        self.buffers[r.producer] = _Buffer(data, r.producer.dtype, [x.min for x in r.bounds],
                                           extents)
        body = self.visit(r.body)
        del self.buffers[r.producer]   # live only inside the realization
        size = 1
        for n in extents:
            size *= n
        return S.Allocate(data, r.producer.dtype, size, body, r.scope)

    def visit_ProducerStore(self, st):
        b = self._buf(st.producer)
        idx = [self.visit(i) for i in st.indices]
        return S.Store(b.data, self.visit(st.value), b.index(idx))

    def visit_ProducerLoad(self, ld):
        b = self._buf(ld.producer)
        idx = [self.visit(i) for i in ld.indices]
        return Load(ld.dtype, b.data, b.index(idx))

    def visit_AttrStmt(self, a):
        if a.key == "prefetch":
            # looked up before the body, whose realizations are not live outside it
            b = self.buffers.get(a.node)
            if b is None:
                raise ValueError(f"prefetch: tensor {a.node.name!r} is computed inside the loop "
                                 "that prefetches it; prefetch it at a loop outside the one it "
                                 "is computed at")
            return S.AttrStmt(b.data, a.key, a.value, self.visit(a.body))
        body = self.visit(a.body)
        node = getattr(a.node, "name", a.node)
        return S.AttrStmt(node, a.key, a.value, body)


def storage_flatten(body, args, name, outputs):
    """PrimFunc over flat buffers; ``args`` are the argument tensors in call order."""
    params, buffers = [], {}
    for t in args:
        data = Var(t.name, "handle")
        params.append(S.BufferDecl(t.name, t.shape, t.dtype, data))
        buffers[t] = _Buffer(data, t.dtype, [const(0)] * len(t.shape), list(t.shape))
    body = _Flatten(buffers).visit(body)
    out_idx = tuple(i for i, t in enumerate(args) if t in outputs)
    return S.PrimFunc(name, tuple(params), body, (("output_params", out_idx),))
