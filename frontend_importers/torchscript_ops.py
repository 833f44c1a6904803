"""Per-kind converters of the TorchScript importer: ``aten::*`` nodes on graph tensors ->
graph nodes naming ``tensorc.ops`` operators, plus the Python builtins that evaluate static
values (sizes, ints, lists, tuples) and the shape queries on graph tensors.

A converter is ``f(ctx, c) -> value`` (a list of values for nodes with several outputs),
registered in ``CONVERTERS`` under the node kind (``aten::relu``; the in-place ``aten::relu_``
finds it too). ``c`` is a ``torchscript_nodes.Call``: ``c[k]`` is the k-th input, resolved
(a graph ``Value``, a constant ``torch.Tensor``, or a Python value), ``c.arg(name)`` the input
named ``name`` in the node's schema, ``c.overload`` the schema's overload name. ``ctx.emit``
adds ``ops.<op>(*inputs, **attrs)``, ``ctx.tensor(x, dtype)`` makes a graph value of an
operand (a constant for static ones).

Where torch and tensorc conventions differ the converter translates: type promotion follows
``torch.result_type`` (Python scalars and 0-dim tensors do not widen a tensor's dtype; integer
``/`` is true division), ``alpha`` of add/sub, ``rounding_mode`` of div, ``squeeze(dim)`` of an
extent other than 1 is a no-op, ``chunk``/``split`` sizes, ``end`` of ``slice`` past the axis,
``adaptive_avg_pool2d`` to a global pool or a pool with the computed kernel, conv bias as a
broadcast add, ``norm``'s ``p``, ``var``'s ``correction``, ``scaled_dot_product_attention``'s
mask and scale.

The converters are grouped by family, one module each: ``torchscript_ops_static`` (Python
builtins on static values, shape queries), ``torchscript_ops_elementwise`` (arithmetic,
comparisons, unary math, casts, identities), ``torchscript_ops_activations``,
``torchscript_ops_nn`` (linear, convolution, normalisation, pooling, resizing, attention),
``torchscript_ops_shape`` (views, concatenation, padding, fills), ``torchscript_ops_index``
(slicing, splitting, gathering) and ``torchscript_ops_reduce``. They register into the tables
of ``torchscript_registry`` and share the helpers of ``torchscript_ops_common``. Importing
this module imports every family, so the tables it exports are complete.
"""
# Importing the families is what registers their converters.
from . import (torchscript_ops_activations, torchscript_ops_elementwise,  # noqa: F401
               torchscript_ops_index, torchscript_ops_nn, torchscript_ops_reduce,
               torchscript_ops_shape, torchscript_ops_static)
from .torchscript_ops_common import result_dtype
from .torchscript_registry import (CONVERTERS, DETERMINISTIC_OK, NEVER_FOLD, SHAPE_QUERIES,
                                   STATIC_OPS, STATIC_TENSOR_OK, VALUES_OK, converter,
                                   shape_query, static_op)

__all__ = ["CONVERTERS", "STATIC_OPS", "SHAPE_QUERIES", "converter", "static_op",
           "shape_query", "result_dtype", "STATIC_TENSOR_OK", "VALUES_OK", "NEVER_FOLD",
           "DETERMINISTIC_OK"]
