"""Dtype translation between torch and tensorc, and the one way the importer reaches torch.

torch is an optional extra, so every module of the TorchScript importer imports it through
``_torch()``, which turns its absence into a ``MissingDependencyError`` naming the extra.
TorchScript passes dtypes as ScalarType codes, which is why ``torch_dtype`` takes those too.
"""
import numpy as np

from .errors import MissingDependencyError, UnsupportedDtypeError


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError("torch", "torch") from e
    return torch


_TC_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32",
              "float64")

#: TorchScript passes dtypes as ScalarType codes (ints).
_SCALAR_TYPE_CODES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16",
                      6: "float32", 7: "float64", 8: "complex32", 9: "complex64",
                      10: "complex128", 11: "bool", 15: "bfloat16"}


def torch_dtype(d):
    """A ``torch.dtype`` from a torch dtype, a ScalarType code, a tensorc/numpy dtype name."""
    torch = _torch()
    if isinstance(d, torch.dtype):
        return d
    if isinstance(d, bool):
        raise TypeError(f"not a dtype: {d!r}")
    if isinstance(d, int):
        name = _SCALAR_TYPE_CODES.get(d)
        if name is None:
            raise UnsupportedDtypeError(f"unknown TorchScript ScalarType code {d}")
        return getattr(torch, name)
    name = np.dtype(d).name if not isinstance(d, str) else d
    name = {"bool_": "bool"}.get(name, name)
    t = getattr(torch, name, None)
    if not isinstance(t, torch.dtype):
        raise TypeError(f"not a dtype: {d!r}")
    return t


def tc_dtype(d, what="tensor"):
    """The tensorc dtype name of a torch dtype (or anything ``torch_dtype`` takes)."""
    t = torch_dtype(d)
    name = str(t).replace("torch.", "")
    if name not in _TC_DTYPES:
        raise UnsupportedDtypeError(f"{what} has dtype {t}, which tensorc does not support "
                                    "(supported: bool, uint8, int8-64, float16, float32, "
                                    "float64)")
    return name
