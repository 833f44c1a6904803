"""Per-operator converters: ONNX node -> graph nodes naming ``tensorc.ops`` operators.

``CONVERTERS`` maps each ONNX op type the importer converts to its converter (the contract is
in ``onnx_registry``). The converters are grouped by operator family, one module each;
importing this module imports them all, which registers them:

- ``onnx_ops_elementwise``: unary math, activations, arithmetic, comparisons, casts;
- ``onnx_ops_constants``: Constant, Shape, Size, Range and other import-time values;
- ``onnx_ops_reduce``: reductions, softmaxes, normalisations;
- ``onnx_ops_linalg``: MatMul, Gemm, Einsum;
- ``onnx_ops_nn``: convolutions, pools, Resize;
- ``onnx_ops_movement``: reshapes, transposes, concat/split/slice, padding;
- ``onnx_ops_index``: gathers, TopK, OneHot, masks.

Where ONNX and tensorc conventions differ the converter translates: pads lists
([x1_begin, x2_begin, ..., x1_end, ...]) become per-axis pairs, auto_pad is resolved against
the static input shape, integer Div truncates (ONNX) where tensorc floors, Pow takes the
base's type, opset-dependent operand forms (axes as attribute or input, Split's num_outputs,
GroupNormalization's per-group scale in opset 18) are normalised.
"""
from . import (onnx_ops_constants, onnx_ops_elementwise, onnx_ops_index,  # noqa: F401
               onnx_ops_linalg, onnx_ops_movement, onnx_ops_nn, onnx_ops_reduce)
from .onnx_ops_elementwise import trunc_divide
from .onnx_ops_linalg import expand_ellipsis
from .onnx_ops_nn import pool_nd, resolve_pads
from .onnx_registry import CONVERTERS, converter

__all__ = ["CONVERTERS", "converter", "expand_ellipsis", "pool_nd", "resolve_pads",
           "trunc_divide"]
