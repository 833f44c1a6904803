"""Compiled modules: calling generated functions from Python safely, timing, exporting, loading.

Generated code trusts its arguments completely (it indexes raw pointers with the shapes it was
compiled for), so every argument is checked before each call: a wrong array is an exception that
names the parameter, never a crash or silent memory corruption.
"""
import ctypes
import functools
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import NamedTuple, Tuple

import llvmlite.binding as llvm
import numpy as np

from .. import __version__
from . import threads

METADATA_GLOBAL = "__tensorc_metadata"
SOURCE_FORMATS = ("llvm", "asm", "ll-unoptimized")
VERSION = __version__  # recorded in every module's metadata and in the build-cache key


class Param(NamedTuple):
    name: str
    shape: Tuple[int, ...]
    dtype: str
    output: bool


class Function:
    """One compiled function: ``f(*arrays)`` checks the arrays, then calls the machine code."""

    def __init__(self, name, params, cfunc, unrunnable=""):
        self.name = name
        self.params = params
        self._cfunc = cfunc
        self._unrunnable = unrunnable
        self._dtypes = [np.dtype(p.dtype) for p in params]

    def __call__(self, *args):
        self.call_checked(self.check(args))

    def __repr__(self):
        return f"<tensorc.Function {self.name}({self.signature()})>"

    def signature(self):
        return ", ".join(f"{p.name}: {p.dtype}{list(p.shape)}{' (out)' if p.output else ''}"
                         for p in self.params)

    def check(self, args):
        """Validate the arguments; returns their data addresses in call order."""
        if self._unrunnable:
            raise RuntimeError(self._unrunnable)
        if len(args) != len(self.params):
            raise TypeError(f"{self.name}() takes {len(self.params)} arguments "
                            f"({self.signature()}), got {len(args)}")
        for k, (p, a, want) in enumerate(zip(self.params, args, self._dtypes)):
            what = f"{self.name}(): argument {p.name!r} (#{k})"
            if not isinstance(a, np.ndarray):
                raise TypeError(f"{what} must be a numpy.ndarray of {p.dtype}{list(p.shape)}, "
                                f"got {type(a).__name__}")
            if a.dtype != want:
                raise TypeError(f"{what}: expected dtype {p.dtype}, got {a.dtype}")
            if a.shape != p.shape:
                raise ValueError(f"{what}: expected shape {p.shape}, got {a.shape}")
            if not a.flags.c_contiguous:
                raise ValueError(f"{what}: expected a C-contiguous array, got strides {a.strides}"
                                 " (use np.ascontiguousarray)")
            if not a.flags.aligned:
                raise ValueError(f"{what}: expected data aligned to {a.itemsize} bytes")
            if p.output and not a.flags.writeable:
                raise ValueError(f"{what} is an output but the array is read-only")
        for k, (p, a) in enumerate(zip(self.params, args)):
            if not p.output:
                continue
            for j, other in enumerate(args):
                if j != k and np.shares_memory(a, other):
                    raise ValueError(f"{self.name}(): output argument {p.name!r} (#{k}) overlaps "
                                     f"argument {self.params[j].name!r} (#{j}); pass a separate "
                                     "array")
        return [a.ctypes.data for a in args]

    def call_checked(self, addresses):
        """Call with addresses from ``check`` (the timing loop skips re-checking)."""
        if self._cfunc(*addresses) != 0:
            raise MemoryError(f"{self.name}(): out of memory allocating a temporary buffer")


class TimingResult:
    """Seconds per call: one entry of ``results`` for each repeat."""

    def __init__(self, results):
        self.results = tuple(results)

    @property
    def mean(self):
        return statistics.fmean(self.results)

    @property
    def median(self):
        return statistics.median(self.results)

    @property
    def std(self):
        return statistics.pstdev(self.results)

    def __repr__(self):
        return (f"TimingResult(mean={self.mean * 1e3:.4f} ms, median={self.median * 1e3:.4f} ms, "
                f"std={self.std * 1e3:.4f} ms, repeats={len(self.results)})")


class Module:
    """A loaded shared library of compiled functions; calling it calls the entry function.

    ``sources`` maps a format of SOURCE_FORMATS to the file holding it; a module loaded from a
    bare .so has none.
    """

    def __init__(self, path, library, metadata, sources=None):
        self.path = str(path)
        self.metadata = metadata
        self.entry_name = metadata["entry"]
        self._library = library
        self._sources = dict(sources or {})
        self._functions = {}
        missing = _missing_cpu_features(metadata["target"])
        # Loading runs no generated code, so a module built for another CPU can still be exported.
        unrunnable = (f"{self.path} was compiled for {metadata['target']!r}; this CPU lacks "
                      f"{', '.join(missing)}, so calling it would crash") if missing else ""
        for f in metadata["functions"]:
            cfunc = getattr(library, f["name"])
            cfunc.argtypes = [ctypes.c_void_p] * len(f["params"])
            cfunc.restype = ctypes.c_int32
            params = tuple(Param(p["name"], tuple(p["shape"]), p["dtype"], p["output"])
                           for p in f["params"])
            self._functions[f["name"]] = Function(f["name"], params, cfunc, unrunnable)

    @classmethod
    def from_library(cls, path, sources=None, library=None):
        """Load the library at ``path`` (or wrap ``library``, already loaded from it)."""
        path = os.path.abspath(path)
        if library is None:
            library = ctypes.CDLL(path)
        try:
            raw = ctypes.c_char.in_dll(library, METADATA_GLOBAL)
        except ValueError:
            raise ValueError(f"{path} is not a tensorc module (it has no {METADATA_GLOBAL} "
                             "symbol)") from None
        metadata = json.loads(ctypes.string_at(ctypes.addressof(raw)).decode())
        threads.attach(library)
        return cls(path, library, metadata, sources)

    def __call__(self, *args):
        self._functions[self.entry_name](*args)

    def __repr__(self):
        return f"<tensorc.Module {self.entry_name} ({len(self._functions)} functions) {self.path}>"

    @property
    def function_names(self):
        return tuple(self._functions)

    def get_function(self, name):
        try:
            return self._functions[name]
        except KeyError:
            raise KeyError(f"module has no function {name!r}; it has "
                           f"{', '.join(self._functions)}") from None

    def get_source(self, fmt="llvm"):
        """"llvm" (optimized IR), "asm" or "ll-unoptimized" text of the module."""
        if fmt not in SOURCE_FORMATS:
            raise ValueError(f"unknown source format {fmt!r}; expected one of {SOURCE_FORMATS}")
        if fmt not in self._sources:
            raise RuntimeError(f"the module loaded from {self.path} carries no {fmt!r} source: "
                               "sources exist only for modules from build_module (or its cache)")
        path = Path(self._sources[fmt])
        if fmt == "asm" and not path.exists() and "target" in self._sources:
            from ..codegen.llvm_compile import assembly   # codegen imports runtime: not at the top
            text = assembly(Path(self._sources["llvm"]).read_text(),
                            Path(self._sources["target"]).read_text())
            atomic_write(str(path), text.encode())
        return path.read_text()

    def time_evaluator(self, number=10, repeat=3, min_repeat_ms=0, func_name=None):
        """A callable timing ``func_name`` (default: the entry) on given arrays.

        After one warm-up call, each of ``repeat`` runs makes ``number`` back-to-back calls, with
        ``number`` doubled until a run lasts at least ``min_repeat_ms``. Arguments are checked once,
        outside the timed loop.
        """
        fn = self.get_function(func_name or self.entry_name)
        if number < 1 or repeat < 1:
            raise ValueError(f"time_evaluator needs number >= 1 and repeat >= 1, got "
                             f"number={number}, repeat={repeat}")

        def evaluate(*args):
            addresses = fn.check(args)
            fn.call_checked(addresses)
            n, results = number, []
            for _ in range(repeat):
                while True:
                    start = time.perf_counter()
                    for _ in range(n):
                        fn.call_checked(addresses)
                    elapsed = time.perf_counter() - start
                    if elapsed * 1e3 >= min_repeat_ms:
                        break
                    n *= 2
                results.append(elapsed / n)
            return TimingResult(results)

        return evaluate

    def export_library(self, path):
        """Write the shared library to ``path`` and a C header next to it (same name, ``.h``)."""
        return export_shared_library(self.path, path,
                                     lambda lib, hdr: c_header(self.metadata, lib, hdr))


def export_shared_library(so_path, path, make_header):
    """Copy the shared object ``so_path`` to ``path`` and write the header text
    ``make_header(library_name, header_name)`` next to it (same name, ``.h``)."""
    path = os.fspath(path)
    header = os.path.splitext(path)[0] + ".h"
    atomic_write(path, Path(so_path).read_bytes())
    atomic_write(header, make_header(os.path.basename(path), os.path.basename(header)).encode())
    return path


def _missing_cpu_features(target):
    """Features the target string requires (-mattr=+x) that the host CPU does not have."""
    wanted = [f[1:] for word in target.split() if word.startswith("-mattr=")
              for f in word[len("-mattr="):].split(",") if f.startswith("+")]
    have = _host_features()
    return [f for f in wanted if not have.get(f, False)]


@functools.lru_cache(maxsize=None)
def _host_features():
    return dict(llvm.get_host_cpu_features())


def load_module(path):
    """Load a library written by ``export_library`` (or from the build cache)."""
    return Module.from_library(path)


def atomic_write(path, data):
    """Write via a temporary file and rename, so no reader ever sees a half-written file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o755 if path.endswith(".so") else 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_C_TYPES = {"bool": "uint8_t", "float16": "uint16_t", "float32": "float", "float64": "double"}
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while bool".split())


def _c_type(dtype):
    return _C_TYPES.get(dtype) or f"{dtype}_t"


def _c_name(name, k):
    return name if name.isidentifier() and name not in _C_KEYWORDS else f"arg{k}"


def c_header(metadata, library_name, header_name):
    """A C header declaring every function of the module, with shapes and dtypes as comments."""
    guard = "TENSORC_" + "".join(c if c.isalnum() else "_" for c in header_name.upper())
    lines = [f"/* {header_name}: generated by tensorc {metadata['tensorc_version']} for target",
             f" *   \"{metadata['target']}\".",
             f" * Link with {library_name} (it needs only libc). Buffers are dense row-major (C order)",
             " * arrays aligned to their element size; an output must not overlap any other",
             " * argument. Each function returns 0 on success, nonzero if a temporary buffer could",
             " * not be allocated. float16 is passed as raw IEEE half bits (uint16_t).",
             " */", f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
             "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
             "/* Threads a parallel loop may use; 0 uses TENSORC_NUM_THREADS, else the usable cores. */",
             "extern int32_t __tensorc_num_threads;", ""]
    for f in metadata["functions"]:
        entry = " (entry)" if f["name"] == metadata["entry"] else ""
        lines.append(f"/* {f['name']}{entry}")
        for p in f["params"]:
            dims = ", ".join(map(str, p["shape"]))
            lines.append(f" *   {p['name']}: {p['dtype']}[{dims}], "
                         f"{'output' if p['output'] else 'input'}")
        lines.append(" */")
        args, names = [], set()
        for k, p in enumerate(f["params"]):
            name = _c_name(p["name"], k)
            name = f"arg{k}" if name in names else name
            names.add(name)
            args.append(f"{'' if p['output'] else 'const '}{_c_type(p['dtype'])} *{name}")
        lines += [f"int32_t {f['name']}({', '.join(args) or 'void'});", ""]
    lines += ["#ifdef __cplusplus", "}", "#endif", "", f"#endif  /* {guard} */", ""]
    return "\n".join(lines)
