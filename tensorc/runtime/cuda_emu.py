"""target="cuda-emu": the CUDA C a PrimFunc became, compiled by g++ and run on the CPU.

No GPU is needed to check a CUDA kernel: the same source text nvcc would compile is built against
an emulation header (cuda_emu/tensorc_cuda_emu.h, which says how blocks, threads and barriers
are emulated) and called through ctypes. Fibers of a block run in thread order or reversed
(``order="forward"`` / ``"reverse"``): a race-free kernel gives identical results in both (up to
the order of float atomics, whose blocks run on several OS threads), while a kernel that reads
another thread's shared-memory write without a barrier between them almost always does not, so
running both orders exposes a missing ``__syncthreads``. A barrier not every
thread of a block reaches raises CudaEmuError naming the kernel, block and threads.

Libraries are cached on disk next to the LLVM build cache, keyed by everything that decides
the machine code: the source, the emulation headers, the compiler and its flags.
"""
import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from . import threads
from .cache import cache_dir
from .module import Function, Param, atomic_write

HEADER_DIR = Path(__file__).with_name("cuda_emu")
HEADER = "tensorc_cuda_emu.h"
ORDERS = {"forward": 0, "reverse": 1}
FLAGS = ("-O2", "-std=c++17", "-shared", "-fPIC", "-pthread", "-fvisibility=hidden",
         # kernels reinterpret float arrays as float4; CUDA's math functions never set errno
         "-fno-strict-aliasing", "-fno-math-errno")
_ERROR_BYTES = 4096

_libraries = {}
_lock = threading.Lock()


class CudaEmuError(RuntimeError):
    """A CUDA source the emulator cannot compile, or a kernel that failed while running."""


def build_emu(cuda_source, output_params=()):
    """Compile a codegen.cuda_source.CudaSource for the CPU; returns an EmuModule.

    ``output_params`` (positions in ``cuda_source.params``) are the arrays the kernels write: a
    call refuses one that is read-only or overlaps another argument.
    """
    return _build(cuda_source, (), output_params)


def _build(cuda_source, extra_flags, output_params=()):
    """build_emu with additional compiler flags (the tests select the portable fiber switch)."""
    names = {p[0] for p in cuda_source.params}
    for k in cuda_source.kernels:
        unknown = [a for a in k.args if a not in names]
        if unknown:
            raise ValueError(f"{cuda_source.name}: kernel {k.name!r} is launched with "
                             f"{', '.join(map(repr, unknown))}, which are not parameters of the "
                             f"function ({', '.join(sorted(names)) or 'none'})")
    main = _main_source(cuda_source)
    flags = FLAGS + tuple(extra_flags)
    key = _key(cuda_source.text, main, flags)
    with _lock:
        library = _libraries.get(key)
    if library is None:
        so = cache_dir() / f"emu-{key}.so"
        if not so.exists():
            _compile(cuda_source, main, flags, so)
        with _lock:
            library = _libraries.setdefault(key, ctypes.CDLL(str(so)))
    return EmuModule(cuda_source, library, output_params)


def _main_source(cuda_source):
    """The translation unit g++ compiles: the kernel file verbatim, then one launcher per kernel.

    Each launcher hands its kernel to tc_emu::launch, which takes the parameter types from the
    kernel itself, so nothing about them is restated here.
    """
    lines = ['#include "kernel.cu"', ""]
    for name in dict.fromkeys(k.name for k in cuda_source.kernels):
        lines += ['extern "C" __attribute__((visibility("default")))',
                  f"int tensorc_emu_launch_{name}(",
                  "    const unsigned* grid, const unsigned* block, void** args, int nargs,",
                  "    int order, int num_threads, char* err, int errlen) {",
                  f'  return tc_emu::launch({name}, "{name}", grid, block, args, nargs, order,',
                  "                         num_threads, err, errlen);", "}", ""]
    return "\n".join(lines)


def _key(text, main, flags):
    h = hashlib.sha256()
    parts = [text, main, " ".join(flags), _compiler_version()]
    parts += [p.read_text() for p in sorted(HEADER_DIR.glob("*.h"))]
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def _compiler():
    cxx = os.environ.get("CXX", "g++")
    path = shutil.which(cxx)
    if path is None:
        raise CudaEmuError(f"target 'cuda-emu' compiles with a C++17 compiler, but {cxx!r} is not "
                           "on PATH (install g++ or set CXX)")
    return path


@functools.lru_cache(maxsize=None)
def _compiler_version():
    return subprocess.run([_compiler(), "--version"], capture_output=True, text=True).stdout


def _compile(cuda_source, main, flags, so):
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".emu-") as tmp:
        tmp = Path(tmp)
        (tmp / "kernel.cu").write_text(cuda_source.text)
        (tmp / "main.cu").write_text(main)
        out = tmp / "module.so"
        cmd = [_compiler(), *flags, "-I", str(HEADER_DIR), "-include", HEADER, "-x", "c++",
               str(tmp / "main.cu"), "-o", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        if done.returncode != 0:
            raise CudaEmuError(f"{cuda_source.name}: g++ cannot compile the CUDA source for "
                               "cuda-emu (kernel.cu line numbers are those of get_source('cuda')):"
                               f"\n{done.stderr.strip()}")
        atomic_write(str(so), out.read_bytes())


class EmuModule:
    """A CUDA source compiled for the CPU: ``m(*arrays)`` checks the arrays and runs every kernel.

    ``order`` ("forward" or "reverse") is the order in which the threads of a block run between
    barriers; a call may override it with ``order=``. ``library`` is the loaded ctypes library
    (a saved cuda-emu model stores its file).
    """

    def __init__(self, cuda_source, library, output_params=()):
        self.library = library
        self.source = cuda_source
        self.name = cuda_source.name
        self.kernels = tuple(cuda_source.kernels)
        self.order = "forward"
        params = tuple(Param(name, tuple(shape), dtype, k in output_params)
                       for k, (name, shape, dtype) in enumerate(cuda_source.params))
        self._checker = Function(self.name, params, None)
        self._index = {p.name: k for k, p in enumerate(params)}
        self._launchers = {}
        for k in self.kernels:
            fn = getattr(library, f"tensorc_emu_launch_{k.name}")
            fn.argtypes = [ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint),
                           ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int,
                           ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            fn.restype = ctypes.c_int
            self._launchers[k.name] = fn

    @property
    def params(self):
        return self._checker.params

    def __repr__(self):
        return f"<tensorc.EmuModule {self.name}({self._checker.signature()}), " \
               f"{len(self.kernels)} kernel(s)>"

    def __call__(self, *args, order=None):
        order = self.order if order is None else order
        if order not in ORDERS:
            raise ValueError(f"{self.name}(): order must be one of {', '.join(ORDERS)}, "
                             f"got {order!r}")
        addresses = list(self._checker.check(args))
        # cudaMalloc'd memory is 256-byte aligned and kernels may read it as float4: give a
        # misaligned view (a slice of a bigger array) an aligned stand-in, copied back after
        stand_ins = []
        for k, (a, addr) in enumerate(zip(args, addresses)):
            if addr % 16:
                copy = _aligned_copy(np.asarray(a))
                stand_ins.append((a, copy))
                addresses[k] = copy.ctypes.data
        err = ctypes.create_string_buffer(_ERROR_BYTES)
        for k in self.kernels:
            argv = (ctypes.c_void_p * max(len(k.args), 1))(
                *(addresses[self._index[a]] for a in k.args))
            grid = (ctypes.c_uint * 3)(*_dims(k.grid))
            block = (ctypes.c_uint * 3)(*_dims(k.block))
            if self._launchers[k.name](grid, block, argv, len(k.args), ORDERS[order],
                                       threads.get_num_threads(), err, _ERROR_BYTES):
                raise CudaEmuError(f"{self.name}(): {err.value.decode(errors='replace')}")
        for a, copy in stand_ins:
            if a.flags.writeable:
                a[...] = copy

    def get_source(self, fmt="cuda"):
        """The CUDA C text the module was compiled from (the only format it has)."""
        if fmt != "cuda":
            raise ValueError(f"a cuda-emu module has only 'cuda' source, not {fmt!r}")
        return self.source.text


def _aligned_copy(a):
    """A C-contiguous copy of ``a`` starting at a 64-byte boundary."""
    raw = np.empty(a.nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    out = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def _dims(dims):
    """A launch dimension tuple padded to (x, y, z)."""
    dims = tuple(int(d) for d in dims)
    if not 1 <= len(dims) <= 3:
        raise ValueError(f"a grid or block has 1 to 3 dimensions, got {dims}")
    return dims + (1,) * (3 - len(dims))
