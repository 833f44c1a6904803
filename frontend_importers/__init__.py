"""Model importers: other frameworks' formats -> the tensorc graph IR (``tensorc.graph``).

    from frontend_importers import from_onnx
    graph = from_onnx("model.onnx", shape_overrides={"input": (1, 3, 224, 224)})

- ``from_onnx`` (``onnx_importer``): ONNX models, opset 13 and newer. Needs the ``onnx``
  package: ``pip install 'tensorc[onnx]'``.
- ``from_torchscript`` (``torchscript_importer``, when present): TorchScript modules. Needs
  ``pip install 'tensorc[torch]'``.

The framework packages are imported only when an importer runs, so this package imports
without them; a missing one raises ``MissingDependencyError`` (an ``ImportError``) naming the
extra to install. The exception types live in ``errors``.
"""
import importlib

from .errors import (DynamicShapeError, ImporterError, MissingDependencyError, ModelParseError,
                     NonConstantInputError, OpsetError, UnsupportedDtypeError,
                     UnsupportedFeatureError, UnsupportedOpsError)


def from_onnx(model, shape_overrides=None, name=None):
    """Import an ONNX model (path, bytes or ``onnx.ModelProto``) as a ``tensorc.graph.Graph``;
    see ``frontend_importers.onnx_importer``."""
    from .onnx_importer import from_onnx as _from_onnx
    return _from_onnx(model, shape_overrides=shape_overrides, name=name)


#: Importers defined in modules of this package that may not exist yet: name -> module.
_LAZY_IMPORTERS = {"from_torchscript": "torchscript_importer"}


def __getattr__(name):
    if name in _LAZY_IMPORTERS:
        mod = _LAZY_IMPORTERS[name]
        try:
            module = importlib.import_module(f".{mod}", __name__)
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{mod}":
                raise AttributeError(f"{name} is not available: frontend_importers.{mod} is not "
                                     "part of this tensorc build yet") from None
            raise
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["from_onnx", "from_torchscript", "ImporterError", "UnsupportedOpsError",
           "DynamicShapeError", "ModelParseError", "NonConstantInputError", "OpsetError",
           "UnsupportedDtypeError", "UnsupportedFeatureError", "MissingDependencyError"]
