"""Reading an ONNX model: a path, bytes or an ``onnx.ModelProto``, with external data; a file
that does not parse is a ``ModelParseError`` naming it, never a protobuf traceback."""
import os

from .errors import ModelParseError
from .onnx_common import import_onnx


def load_model(model):
    """An ``onnx.ModelProto`` from a path, bytes or a ModelProto (external data loaded)."""
    return read_model(model)[0]


def read_model(model):
    """(ModelProto, label for messages)."""
    onnx = import_onnx()
    if isinstance(model, onnx.ModelProto):
        return model, None
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, label, base = bytes(model), "<bytes>", None
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.exists(path):
            raise FileNotFoundError(f"ONNX model {path!r} does not exist")
        with open(path, "rb") as f:
            data = f.read()
        label, base = path, os.path.dirname(os.path.abspath(path))
    else:
        raise TypeError(f"from_onnx: model must be a path, bytes or onnx.ModelProto, got "
                        f"{type(model).__name__}")
    m = onnx.ModelProto()
    try:
        m.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise ModelParseError(f"cannot parse ONNX model {label!r}: {type(e).__name__}: {e} "
                              f"(the file is {len(data)} bytes; truncated or not an ONNX "
                              "model?)") from None
    if not m.HasField("graph") or (not m.graph.node and not m.graph.output):
        raise ModelParseError(f"cannot parse ONNX model {label!r}: it has no graph (the file "
                              f"is {len(data)} bytes; truncated or not an ONNX model?)")
    if base is not None and _uses_external_data(m):
        from onnx.external_data_helper import load_external_data_for_model
        try:
            load_external_data_for_model(m, base)
        except Exception as e:
            raise ModelParseError(f"cannot load the external data of ONNX model {label!r}: "
                                  f"{type(e).__name__}: {e}") from None
    return m, label


def _uses_external_data(m):
    return any(t.data_location == 1 for t in m.graph.initializer)
