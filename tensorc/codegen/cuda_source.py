"""The CUDA C translation unit a PrimFunc becomes, with what it takes to launch it.

This is the contract between the CUDA code generator and everything that runs its output
(pycuda on a GPU, the g++ emulation on the CPU): both read only these fields, so the source text
and its launch configuration travel together and cannot drift apart.
"""
from dataclasses import dataclass

from ..ir import dtype as dt

_C_TYPES = {
    "float32": "float", "float16": "__half", "float64": "double",
    "int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
    "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t", "uint64": "uint64_t",
    "bool": "bool",
}


def c_type(dtype):
    """The C spelling of a scalar tensorc dtype (fixed-width ``<stdint.h>`` names for integers)."""
    base = dt.element_of(dtype)
    if base not in _C_TYPES:
        raise TypeError(f"dtype {dtype!r} has no CUDA C type; expected one of "
                        f"{', '.join(_C_TYPES)}")
    return _C_TYPES[base]


@dataclass(frozen=True)
class KernelLaunch:
    """One ``extern "C" __global__`` function and the launch configuration it was written for."""

    name: str
    grid: tuple
    block: tuple
    args: tuple
    shared_bytes: int = 0


@dataclass(frozen=True)
class CudaSource:
    """A complete kernel-only translation unit; ``kernels`` run in order, ``params`` in call order."""

    name: str
    text: str
    kernels: tuple
    params: tuple
