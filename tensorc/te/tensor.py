"""Tensors and the operations that produce them (placeholder and compute)."""
from ..ir import dtype as dt
from ..ir.expr import ExprOp, IterVar, ProducerLoad, Reduce
from ..ir.functor import post_order_visit
from ..ir.op import convert


class Tensor:
    """Output ``value_index`` of ``op``: a static shape and a dtype; indexing it builds a read."""

    def __init__(self, op, shape, dtype, value_index=0):
        self.op = op
        self.shape = tuple(shape)
        self.dtype = dtype
        self.value_index = value_index

    @property
    def name(self):
        return self.op.name

    @property
    def ndim(self):
        return len(self.shape)

    def __getitem__(self, indices):
        if not isinstance(indices, tuple):
            indices = (indices,)
        if len(indices) != self.ndim:
            raise IndexError(f"tensor {self.name!r} has {self.ndim} dimensions, "
                             f"indexed with {len(indices)}")
        idx = []
        for n, i in enumerate(indices):
            if isinstance(i, slice):
                raise IndexError(f"tensor {self.name!r}: slices are not expressions; "
                                 f"index dimension {n} with an expression")
            e = convert(i)
            if not dt.is_integral(e.dtype) or dt.lanes(e.dtype) != 1:
                raise TypeError(f"tensor {self.name!r}: index {n} is {e} of type {e.dtype}; "
                                "indices must be scalar integers")
            idx.append(e)
        return ProducerLoad(self.dtype, self, tuple(idx))

    def __call__(self, *indices):
        return self[indices]

    def __iter__(self):
        # Without this, Python iterates by indexing t[0], t[1], ...: every index is a valid
        # expression, so tuple(t) or a loop over t would never end.
        raise TypeError(f"tensor {self.name!r} is not iterable; index it with expressions, "
                        "t[i, j]")

    def __hash__(self):
        return hash((self.op, self.value_index))

    def __eq__(self, other):
        return isinstance(other, Tensor) and other.op is self.op and \
            other.value_index == self.value_index

    def __repr__(self):
        return f"Tensor(name={self.name}, shape={list(self.shape)}, dtype={self.dtype})"


class Operation:
    """Base of operations; ``output(i)`` gives its tensors."""

    num_outputs = 1

    def output(self, i=0):
        return self._outputs[i]

    @property
    def input_tensors(self):
        return []

    def __repr__(self):
        return f"{type(self).__name__}({self.name})"


class PlaceholderOp(Operation):
    """An input: data supplied by the caller."""

    def __init__(self, name, shape, dtype):
        self.name = name
        self.shape = tuple(shape)
        self.dtype = dtype
        self.axis = ()
        self.reduce_axis = ()
        self._outputs = [Tensor(self, shape, dtype)]


class ComputeOp(Operation):
    """out[axis] = body, where body may be a single Reduce at the top.

    ``axis`` are the spatial IterVars (one per output dimension), ``reduce_axis`` those of the
    reduction, if any.
    """

    def __init__(self, name, tag, attrs, axis, body):
        self.name = name
        self.tag = tag
        self.attrs = dict(attrs or {})
        self.axis = tuple(axis)
        self.body = body
        self.reduce_axis = tuple(body.axis) if isinstance(body, Reduce) else ()
        shape = tuple(int(iv.dom.extent.value) for iv in self.axis)
        self._outputs = [Tensor(self, shape, body.dtype)]

    @property
    def shape(self):
        return self._outputs[0].shape

    @property
    def input_tensors(self):
        return tensors_read(self.body)


def tensors_read(node):
    """Distinct tensors read under an expression, in first-use order."""
    seen = []

    def f(n):
        if isinstance(n, ProducerLoad) and n.producer not in seen:
            seen.append(n.producer)
    post_order_visit(node, f)
    return seen


def is_itervar(x):
    return isinstance(x, IterVar)


__all__ = ["Tensor", "Operation", "PlaceholderOp", "ComputeOp", "tensors_read", "ExprOp"]
