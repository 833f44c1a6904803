"""CUDA C to a cubin with NVRTC or nvcc, and what ptxas says each kernel costs.

Neither compiler needs a GPU, so every kernel can be checked here: it compiles for the
architecture, and its registers, static shared memory and spills are known before it runs. Both
run ptxas with ``-v`` (nvcc prints the report, NVRTC writes it into its program log), so one
parser serves both.

The compiler is NVRTC (in-process, ``codegen.nvrtc``) when its library loads, else nvcc; the
``compiler`` argument or ``$TENSORC_CUDA_COMPILER`` ("nvrtc" / "nvcc") forces one. Cubins are
cached in the build cache directory under a hash of the source, the architecture and the
compiler's identity (name, version, headers), next to the ptxas report, so a cached build still
knows its resources.
"""
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..runtime.cache import cache_dir
from ..runtime.module import atomic_write

DEFAULT_ARCH = "sm_80"
COMPILERS = ("nvrtc", "nvcc")
COMPILER_ENV = "TENSORC_CUDA_COMPILER"
_ARCH = re.compile(r"sm_\d+[af]?$")


class CudaCompileError(RuntimeError):
    """No CUDA compiler is usable, or the compiler rejected the generated source."""


def check_arch(arch):
    if not _ARCH.match(arch):
        raise ValueError(f"target cuda: unknown architecture {arch!r}; expected sm_XX, "
                         "e.g. -arch=sm_90")
    return arch


def choose_compiler(compiler=None):
    """ "nvrtc" or "nvcc": ``compiler``, else ``$TENSORC_CUDA_COMPILER``, else NVRTC when its
    library loads and nvcc otherwise; raises CudaCompileError when the one asked for (or both)
    cannot be used."""
    from . import nvrtc
    asked = compiler or os.environ.get(COMPILER_ENV) or None
    if asked is not None and asked not in COMPILERS:
        source = "compiler" if compiler else f"${COMPILER_ENV}"
        raise ValueError(f"{source}: unknown CUDA compiler {asked!r}; expected one of "
                         f"{', '.join(map(repr, COMPILERS))}")
    if asked == "nvrtc":
        nvrtc.library()
        return "nvrtc"
    if asked == "nvcc":
        nvcc()
        return "nvcc"
    if nvrtc.available():
        return "nvrtc"
    if shutil.which("nvcc"):
        return "nvcc"
    raise CudaCompileError("target cuda: no CUDA compiler here: NVRTC is not installed "
                           "(pip install nvidia-cuda-nvrtc, part of the [cuda] extra) and nvcc "
                           "is not on PATH")


def compiler_available(compiler=None):
    """Whether ``choose_compiler(compiler)`` finds a usable CUDA compiler."""
    try:
        choose_compiler(compiler)
    except CudaCompileError:
        return False
    return True


def nvcc():
    path = shutil.which("nvcc")
    if path is None:
        raise CudaCompileError("target cuda: nvcc is not on PATH, so the kernels cannot be "
                               "compiled; install the CUDA toolkit or add its bin directory "
                               "to PATH")
    return path


@functools.lru_cache(maxsize=None)
def _nvcc_version(path):
    return subprocess.run([path, "--version"], capture_output=True, text=True).stdout


def compile_cubin(text, arch=DEFAULT_ARCH, compiler=None):
    """(cubin bytes, resource usage per kernel) of a CUDA translation unit, compiled by
    ``choose_compiler(compiler)``."""
    check_arch(arch)
    compiler = choose_compiler(compiler)
    if compiler == "nvrtc":
        from . import nvrtc
        identity, build = nvrtc.identity(), nvrtc.compile_cubin
    else:
        path = nvcc()
        identity, build = _nvcc_version(path), functools.partial(_run_nvcc, path)
    h = hashlib.sha256()
    for part in (text, arch, compiler, identity):
        h.update(part.encode())
        h.update(b"\0")
    directory = cache_dir()
    cubin, report = directory / f"cuda-{h.hexdigest()}.cubin", \
        directory / f"cuda-{h.hexdigest()}.ptxas.txt"
    if not (cubin.exists() and report.exists()):
        directory.mkdir(parents=True, exist_ok=True)
        data, log = build(text, arch)
        atomic_write(str(report), log.encode())
        atomic_write(str(cubin), data)
    return cubin.read_bytes(), parse_ptxas(report.read_text())


def _run_nvcc(path, text, arch):
    with tempfile.TemporaryDirectory(prefix="tensorc-cuda-") as tmp:
        src, out = Path(tmp) / "kernels.cu", Path(tmp) / "kernels.cubin"
        src.write_text(text)
        done = subprocess.run([path, "-cubin", f"-arch={arch}", "-Xptxas", "-v", "-o", str(out),
                               str(src)], capture_output=True, text=True, cwd=tmp)
        if done.returncode != 0:
            raise CudaCompileError(f"nvcc cannot compile the generated CUDA source for {arch} "
                                   f"(line numbers are those of get_source('cuda')):\n"
                                   f"{done.stderr.strip()}")
        return out.read_bytes(), done.stderr + done.stdout


_ENTRY = re.compile(r"(?:Compiling entry function|Function properties for) '?(\w+)'?")
_FIELDS = {"registers": re.compile(r"Used (\d+) registers"),
           "shared_bytes": re.compile(r"(\d+) bytes smem"),
           "spill_stores": re.compile(r"(\d+) bytes spill stores"),
           "spill_loads": re.compile(r"(\d+) bytes spill loads")}


def parse_ptxas(log):
    """{kernel: {"registers", "shared_bytes", "spill_stores", "spill_loads"}} from ptxas -v."""
    out, current = {}, None
    for line in log.splitlines():
        m = _ENTRY.search(line)
        if m:
            current = out.setdefault(m.group(1), dict.fromkeys(_FIELDS, 0))
            continue
        if current is None:
            continue
        for field, pattern in _FIELDS.items():
            m = pattern.search(line)
            if m:
                current[field] = int(m.group(1))
    return out
