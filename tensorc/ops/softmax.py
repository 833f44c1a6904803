"""softmax and log_softmax along one axis, numerically stable.

    softmax(x)_i     = exp(x_i - m) / sum_j exp(x_j - m)
    log_softmax(x)_i = x_i - m - log(sum_j exp(x_j - m)),      m = max_j x_j

Subtracting the row maximum m changes nothing mathematically but keeps every exponent <= 0, so
no exp overflows (inputs of 1e4 give finite results) and the sum is at least 1. The stages
(max, exp, sum, output) are tagged "softmax"; the inner ones carry ``attrs["part"]`` and
``schedule_cpu.schedule_softmax`` computes them per row, inside the output's loops. float16
inputs are computed in float32 and rounded once at the end.
"""
from .. import te
from ..ir import dtype as dt
from .util import accumulation_dtype, check_tensor, normalize_axis


class _Rows:
    """Indexing of x by rows: a row is the line of elements along ``axis``; row tensors have
    x's shape without that axis."""

    def __init__(self, op, x, axis):
        check_tensor(op, x)
        if not dt.is_float(x.dtype):
            raise TypeError(f"{op}: tensor {x.name!r} has dtype {x.dtype}; {op} needs a "
                            "floating-point tensor")
        self.op, self.x = op, x
        self.axis = normalize_axis(op, x, axis)
        self.acc = accumulation_dtype(x.dtype)
        self.shape = x.shape[:self.axis] + x.shape[self.axis + 1:]

    def read(self, i):
        return self.x[i].astype(self.acc)

    def along(self, i, k):
        """Row index i with the position k along the axis put back: an index of x."""
        return tuple(i[:self.axis]) + (k,) + tuple(i[self.axis:])

    def row(self, i):
        """The row of x's index i."""
        return tuple(i[:self.axis]) + tuple(i[self.axis + 1:])

    def stage(self, shape, fn, part):
        return te.compute(shape, fn, name=f"{self.op}.{part}", tag="softmax",
                          attrs={"part": part})

    def reduce(self, part, fn):
        """A row tensor: fn(i, k) reduces over the row's positions k."""
        def body(*i):
            return fn(i, te.reduce_axis((0, self.x.shape[self.axis]), name="k"))
        return self.stage(self.shape, body, part)

    def output(self, fn):
        return te.compute(self.x.shape, lambda *i: fn(i).astype(self.x.dtype), name=self.op,
                          tag="softmax", attrs={"axis": self.axis})


def softmax(x, axis=-1):
    """exp(x - max) / sum(exp(x - max)) along ``axis``."""
    r = _Rows("softmax", x, axis)
    m = r.reduce("max", lambda i, k: te.max(r.read(r.along(i, k)), axis=k))
    e = r.stage(x.shape, lambda *i: te.exp(r.read(i) - m[r.row(i)]), "exp")
    s = r.reduce("sum", lambda i, k: te.sum(e[r.along(i, k)], axis=k))
    return r.output(lambda i: e[i] / s[r.row(i)])


def log_softmax(x, axis=-1):
    """x - max - log(sum(exp(x - max))) along ``axis``: exact where softmax underflows to 0."""
    r = _Rows("log_softmax", x, axis)
    m = r.reduce("max", lambda i, k: te.max(r.read(r.along(i, k)), axis=k))
    s = r.reduce("sum", lambda i, k: te.sum(te.exp(r.read(r.along(i, k)) - m[i]), axis=k))
    return r.output(lambda i: r.read(i) - m[r.row(i)] - te.log(s[r.row(i)]))
