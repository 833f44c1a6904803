"""Data types as plain strings ("float32", "int8", "bool", "float32x8").

A string is printable, hashable and already what users write, so no wrapper class is needed;
this module is the one place that knows how to take them apart.
"""
import numpy as np

SCALAR_TYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                "float16", "float32", "float64", "handle")


def split_lanes(dtype):
    """("float32x8") -> ("float32", 8); scalars have one lane."""
    if "x" in dtype:
        base, lanes = dtype.rsplit("x", 1)
        return base, int(lanes)
    return dtype, 1


def lanes(dtype):
    return split_lanes(dtype)[1]


def element_of(dtype):
    return split_lanes(dtype)[0]


def with_lanes(dtype, n):
    base = element_of(dtype)
    return base if n == 1 else f"{base}x{n}"


def check(dtype):
    """Normalise a user-given dtype (str, numpy dtype, python type) to our string form."""
    if not isinstance(dtype, str):
        dtype = np.dtype(dtype).name
    base, _ = split_lanes(dtype)
    if base not in SCALAR_TYPES:
        raise TypeError(f"unsupported dtype {dtype!r}; expected one of {', '.join(SCALAR_TYPES)}")
    return dtype


def is_float(dtype):
    return element_of(dtype).startswith("float")


def is_int(dtype):
    return element_of(dtype).startswith("int")


def is_uint(dtype):
    return element_of(dtype).startswith("uint")


def is_integral(dtype):
    """Integer or unsigned integer (not bool)."""
    return is_int(dtype) or is_uint(dtype)


def is_bool(dtype):
    return element_of(dtype) == "bool"


def bits(dtype):
    base = element_of(dtype)
    if base == "bool":
        return 1
    if base == "handle":
        return 64
    return int(base.lstrip("uintfloat"))  # noqa: B005 - strips the type letters


def itemsize(dtype):
    """Bytes one scalar element occupies in memory (bool is stored as a byte)."""
    return max(1, bits(dtype) // 8)


def to_numpy(dtype):
    return np.dtype(element_of(dtype))


def promote(a, b):
    """Result type of a binary arithmetic op, following numpy's rules for scalars of these types.

    Python literals never widen a typed operand (see ``const_like``), so promotion only happens
    between two typed expressions, where numpy's table is what users expect.
    """
    if a == b:
        return a
    la, lb = lanes(a), lanes(b)
    res = np.promote_types(to_numpy(a), to_numpy(b)).name
    return with_lanes(res, max(la, lb))
