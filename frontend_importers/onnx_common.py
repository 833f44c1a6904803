"""What every part of the ONNX importer shares: the onnx package (imported on first use, so
``frontend_importers`` imports without it), the element types tensorc has a dtype for, the
default domain and the oldest opset the converters implement."""
import numpy as np

from .errors import MissingDependencyError, UnsupportedDtypeError

#: The oldest default-domain opset the converters implement.
MIN_OPSET = 13

DEFAULT_DOMAINS = ("", "ai.onnx")

#: ONNX TensorProto element types tensorc has a dtype for.
ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
               7: "int64", 9: "bool", 10: "float16", 11: "float64", 12: "uint32",
               13: "uint64"}
TO_ONNX_DTYPE = {v: k for k, v in ONNX_DTYPES.items()}


def import_onnx():
    """The onnx package, or MissingDependencyError naming the extra that installs it."""
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError("onnx", "onnx") from e
    return onnx


def onnx_dtype_name(elem_type):
    """'BFLOAT16' for 16, etc. (for messages)."""
    try:
        return import_onnx().TensorProto.DataType.Name(int(elem_type))
    except ValueError:
        return f"type {elem_type}"


def to_tensorc_dtype(elem_type, what="tensor"):
    """The tensorc dtype of an ONNX element type, or UnsupportedDtypeError."""
    d = ONNX_DTYPES.get(int(elem_type))
    if d is None:
        raise UnsupportedDtypeError(f"{what} has element type {onnx_dtype_name(elem_type)}, "
                                    "which tensorc does not support (supported: bool, "
                                    "(u)int8-64, float16, float32, float64)")
    return d


def array_dtype(a, what="tensor"):
    """The tensorc dtype of a numpy array."""
    a = np.asarray(a)
    if a.dtype == np.bool_:
        return "bool"
    name = a.dtype.name
    if name not in ONNX_DTYPES.values():
        raise UnsupportedDtypeError(f"{what} has numpy dtype {a.dtype}, which tensorc does not "
                                    "support")
    return name


def op_key(node):
    """The converter key of a node: its op type, ``domain::type`` outside the default
    domain."""
    return node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}::{node.op_type}"
