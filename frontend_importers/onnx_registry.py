"""The converter table of the ONNX importer and what converters share.

A converter is ``f(ctx, n) -> output Values`` (one per ONNX output, None for unrequested
optional ones), registered in ``CONVERTERS`` under the ONNX op type by ``@converter``. ``n`` is
an ``onnx_context.NodeView`` (inputs as graph Values, attributes as Python values, the opset);
``ctx.emit(op, inputs, **attrs)`` adds ``ops.<op>(*inputs, **attrs)`` (or folds it when every
input is a constant), ``ctx.static(v, what)`` reads an operand that must be a constant. The
converters live in the ``onnx_ops_*`` modules, one per operator family; ``onnx_ops`` imports
them all, which fills the table.
"""
from tensorc.ir import dtype as dt

from .errors import UnsupportedDtypeError, UnsupportedFeatureError

#: ONNX op type (``domain::Type`` outside the default domain) -> converter.
CONVERTERS = {}


def converter(*op_types):
    """Register the decorated function as the converter of ``op_types``."""
    def deco(fn):
        for t in op_types:
            CONVERTERS[t] = fn
        return fn
    return deco


def unsupported(n, what):
    """Raise UnsupportedFeatureError naming the node."""
    raise UnsupportedFeatureError(f"{n}: {what}")


def rank_of(v):
    return len(v.shape)


def norm_axis(n, axis, rank, what="axis"):
    """``axis`` in [0, rank), or ValueError naming the node."""
    if not -rank <= axis < rank:
        raise ValueError(f"{n}: {what} {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def float_only(n, v, what="input"):
    if not dt.is_float(v.dtype):
        raise UnsupportedDtypeError(f"{n}: {what} %{v.name} has dtype {v.dtype}; this operator "
                                    "needs a floating-point tensor")


def same_dtype(ctx, v, dtype):
    return v if v.dtype == dtype else ctx.emit("cast", [v], dtype=dtype)
