"""CUDA C to a cubin in-process with NVRTC, called through ctypes.

NVRTC comes with the ``[cuda]`` extra (the ``nvidia-cuda-nvrtc`` wheel puts ``libnvrtc.so`` under
``site-packages/nvidia/*/lib``) or with a CUDA toolkit; it is loaded on first use, never at import,
and without it ``nvcc`` does the work (``cuda_compile.choose_compiler``). Compiling in-process
saves nvcc's process start-ups and temporary files, and asking ptxas for ``-v`` puts the same
resource report nvcc prints into the program log, so ``cuda_compile.parse_ptxas`` reads both.

Unlike nvcc, NVRTC includes no host header by itself: the names the generated code takes from
them -- the fixed-width integers (``int32_t`` ...) and ``<math.h>``'s ``INFINITY`` and ``NAN`` --
come from a small header pre-included from memory, and ``<cuda_fp16.h>`` (float16 kernels) from
a CUDA toolkit's include directory, found through ``CUDA_HOME`` / ``CUDA_PATH``, nvcc's
installation or ``/usr/local/cuda`` (or a wheel's ``nvidia/*/include``).
"""
import ctypes
import ctypes.util
import functools
import importlib.util
import os
import re
import shutil
from pathlib import Path

from .cuda_compile import CudaCompileError

_LIBRARY = re.compile(r"libnvrtc\.so(\.\d+)*$")
_PRELUDE_NAME = "tensorc_nvrtc_prelude.h"
# The types as glibc's <stdint.h> spells them (LP64), which nvcc gives the same source; the
# constants bit for bit as <math.h>'s (NVRTC has no __builtin_inff, so from device intrinsics).
_PRELUDE = "\n".join(
    [f"typedef {c} {name};" for name, c in (
        ("int8_t", "signed char"), ("int16_t", "short"), ("int32_t", "int"),
        ("int64_t", "long"), ("uint8_t", "unsigned char"), ("uint16_t", "unsigned short"),
        ("uint32_t", "unsigned int"), ("uint64_t", "unsigned long"))] +
    ["#ifndef INFINITY", "#define INFINITY (__int_as_float(0x7f800000U))", "#endif",
     "#ifndef NAN", '#define NAN (__int_as_float(0x7fc00000U))', "#endif", ""])


class NvrtcUnavailable(CudaCompileError):
    """libnvrtc cannot be found or loaded here."""


def _candidates():
    """Paths libnvrtc may be loaded from, most specific first: the pip wheels, then toolkits."""
    found = []
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        found += sorted((p for p in Path(root).glob("*/lib/libnvrtc.so*")
                         if _LIBRARY.match(p.name)), reverse=True)
    for home in _toolkit_homes():
        found += sorted((p for p in (home / "lib64").glob("libnvrtc.so*")
                         if _LIBRARY.match(p.name)), reverse=True)
    system = ctypes.util.find_library("nvrtc")
    return [str(p) for p in found] + ([system] if system else [])


def _toolkit_homes():
    homes = [os.environ.get(v) for v in ("CUDA_HOME", "CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        homes.append(str(Path(os.path.realpath(nvcc)).parent.parent))
    homes.append("/usr/local/cuda")
    return [Path(h) for h in dict.fromkeys(h for h in homes if h) if Path(h).is_dir()]


@functools.lru_cache(maxsize=None)
def include_dir():
    """The toolkit include directory holding ``cuda_fp16.h``, or None."""
    spec = importlib.util.find_spec("nvidia")
    roots = [Path(r) for r in (spec.submodule_search_locations or [])] if spec else []
    dirs = [h / "include" for h in _toolkit_homes()] + [d for r in roots for d in
                                                        sorted(r.glob("*/include"))]
    return next((str(d) for d in dirs if (d / "cuda_fp16.h").is_file()), None)


def library():
    """The loaded libnvrtc (ctypes), with the prototypes used here declared."""
    return _load()[0]


def library_path():
    """The file the loaded libnvrtc came from."""
    return _load()[1]


@functools.lru_cache(maxsize=None)
def _load():
    errors = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"{path}: {e}")
            continue
        return _declare(lib), path
    tried = "; ".join(errors) or "no libnvrtc.so found"
    raise NvrtcUnavailable(f"NVRTC is not available ({tried}); pip install nvidia-cuda-nvrtc "
                           "(part of the [cuda] extra) or compile with nvcc "
                           "(TENSORC_CUDA_COMPILER=nvcc)")


def _declare(lib):
    p, i, s = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_size_t)
    strings = ctypes.POINTER(ctypes.c_char_p)
    for name, args in (("nvrtcVersion", [i, i]), ("nvrtcGetNumSupportedArchs", [i]),
                       ("nvrtcGetSupportedArchs", [i]),
                       ("nvrtcCreateProgram", [ctypes.POINTER(p), ctypes.c_char_p,
                                               ctypes.c_char_p, ctypes.c_int, strings, strings]),
                       ("nvrtcCompileProgram", [p, ctypes.c_int, strings]),
                       ("nvrtcGetProgramLogSize", [p, s]), ("nvrtcGetProgramLog", [p, ctypes.c_char_p]),
                       ("nvrtcGetCUBINSize", [p, s]), ("nvrtcGetCUBIN", [p, ctypes.c_char_p]),
                       ("nvrtcDestroyProgram", [ctypes.POINTER(p)])):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, ctypes.c_int
    lib.nvrtcGetErrorString.argtypes, lib.nvrtcGetErrorString.restype = [ctypes.c_int], \
        ctypes.c_char_p
    return lib


def available():
    """Whether libnvrtc loads here."""
    try:
        library()
    except NvrtcUnavailable:
        return False
    return True


def _check(lib, status, what):
    if status != 0:
        raise CudaCompileError(f"NVRTC: {what} failed: "
                               f"{lib.nvrtcGetErrorString(status).decode()}")


@functools.lru_cache(maxsize=None)
def version():
    """(major, minor) of the loaded NVRTC."""
    lib = library()
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(lib, lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


@functools.lru_cache(maxsize=None)
def supported_archs():
    """The sm_XX numbers (e.g. 80) this NVRTC can compile for."""
    lib = library()
    n = ctypes.c_int()
    _check(lib, lib.nvrtcGetNumSupportedArchs(ctypes.byref(n)), "nvrtcGetNumSupportedArchs")
    archs = (ctypes.c_int * n.value)()
    _check(lib, lib.nvrtcGetSupportedArchs(archs), "nvrtcGetSupportedArchs")
    return tuple(archs)


def identity():
    """What decides NVRTC's output besides the source: its version and the headers it sees."""
    major, minor = version()
    return f"nvrtc {major}.{minor} {library_path()} include={include_dir()}"


def _strings(items):
    return (ctypes.c_char_p * max(len(items), 1))(*(x.encode() for x in items))


def compile_cubin(text, arch, name="kernels.cu"):
    """(cubin bytes, program log with ptxas's ``-v`` report) of a CUDA translation unit."""
    lib = library()
    number = int(re.match(r"sm_(\d+)", arch).group(1))
    if number not in supported_archs():
        major, minor = version()
        raise CudaCompileError(f"NVRTC {major}.{minor} cannot compile for {arch}; it supports "
                               f"{', '.join(f'sm_{a}' for a in supported_archs())} (compile "
                               "with an nvcc that does: TENSORC_CUDA_COMPILER=nvcc)")
    options = [f"--gpu-architecture={arch}", "--ptxas-options=-v",
               f"--pre-include={_PRELUDE_NAME}"]
    if include_dir():
        options.append(f"--include-path={include_dir()}")
    prog = ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), text.encode(), name.encode(), 1,
                                       _strings([_PRELUDE]), _strings([_PRELUDE_NAME])),
           "nvrtcCreateProgram")
    try:
        status = lib.nvrtcCompileProgram(prog, len(options), _strings(options))
        log = _read(lib, prog, lib.nvrtcGetProgramLogSize, lib.nvrtcGetProgramLog).decode(
            errors="replace").rstrip("\0")
        if status != 0:
            hint = ""
            if "cuda_fp16.h" in log and include_dir() is None:
                hint = ("\nNVRTC has no built-in <cuda_fp16.h>: set CUDA_HOME to a CUDA toolkit "
                        "whose include/ holds it, or compile with nvcc "
                        "(TENSORC_CUDA_COMPILER=nvcc)")
            raise CudaCompileError(f"NVRTC cannot compile the generated CUDA source for {arch} "
                                   f"(line numbers are those of get_source('cuda')):\n"
                                   f"{log.strip()}{hint}")
        return _read(lib, prog, lib.nvrtcGetCUBINSize, lib.nvrtcGetCUBIN), log
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def _read(lib, prog, size_fn, get_fn):
    size = ctypes.c_size_t()
    _check(lib, size_fn(prog, ctypes.byref(size)), size_fn.__name__)
    buf = ctypes.create_string_buffer(size.value)
    _check(lib, get_fn(prog, buf), get_fn.__name__)
    return buf.raw[:size.value]
