"""What tensorc sees on this machine: versions, host CPU, threads, cache and optional backends.

Used by ``tensorc info`` (see :mod:`tensorc.cli`). This module imports nothing from the rest of
tensorc, and probes the optional backends with :func:`importlib.util.find_spec`,
:func:`shutil.which` and package metadata, so it stays fast and works while the compiler
itself is broken or half-written. Only pycuda is imported (when present) to ask the CUDA driver
for devices.

:func:`num_threads`, :func:`cache_dir` and the toolchain probe mirror what the runtime does
(``tensorc.runtime.threads``, ``tensorc.runtime.cache``, ``tensorc.codegen.llvm_compile``)
without importing it; tests/test_cli.py checks that the two agree.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
from typing import Any

__all__ = [
    "tensorc_version",
    "cores_usable",
    "num_threads",
    "cache_dir",
    "host_cpu",
    "backends",
    "cuda_status",
    "collect",
    "format_text",
]

#: CPU features worth reporting for code generation, in display order (LLVM's names).
INTERESTING_FEATURES = (
    # x86
    "sse2", "sse4.1", "sse4.2", "avx", "avx2", "fma", "f16c",
    "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512vnni",
    "avx512bf16", "avx512fp16", "avxvnni", "amx-tile", "amx-int8", "amx-bf16",
    # AArch64
    "neon", "fp-armv8", "fullfp16", "dotprod", "i8mm", "bf16", "sve", "sve2", "sme",
    # POWER / RISC-V
    "altivec", "vsx", "v",
)


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def tensorc_version() -> str:
    """The installed distribution's version, else ``__version__`` of an imported tensorc."""
    version = _dist_version("tensorc")
    if version:
        return version
    pkg = sys.modules.get("tensorc")
    return getattr(pkg, "__version__", None) or "unknown (not installed)"


def cores_usable() -> int:
    """CPU cores this process may run on (its affinity mask), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _threads_from_env() -> tuple[int | None, str, str | None]:
    """(threads or None when the setting is unusable, where it came from, error or None)."""
    raw = os.environ.get("TENSORC_NUM_THREADS", "").strip()
    if not raw:
        return cores_usable(), "cores", None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value >= 1:
        return value, "TENSORC_NUM_THREADS", None
    return None, "TENSORC_NUM_THREADS", (
        f"TENSORC_NUM_THREADS={raw!r} is not a positive integer; the runtime will refuse it")


def num_threads() -> int | None:
    """Threads the runtime uses: ``$TENSORC_NUM_THREADS`` if set, else the cores usable by this
    process; None when the variable is set to something other than a positive integer."""
    return _threads_from_env()[0]


def cache_dir() -> str:
    """Where compiled modules are cached: ``$TENSORC_CACHE_DIR``, else ``~/.cache/tensorc``."""
    return os.environ.get("TENSORC_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "tensorc")


def _f32_lanes(features: set[str], triple: str) -> int:
    """float32 lanes in the widest vector register the enabled features give."""
    arch = triple.split("-", 1)[0]
    if arch in ("x86_64", "i386", "i686", "x86"):
        if "avx512f" in features:
            return 16
        if "avx" in features:
            return 8
        return 4 if ("sse" in features or "sse2" in features or arch == "x86_64") else 1
    if arch in ("aarch64", "arm64", "arm64e"):
        return 4  # NEON is 128-bit; SVE length is only known at run time
    if arch.startswith("arm"):
        return 4 if "neon" in features else 1
    if arch.startswith(("powerpc", "ppc")):
        return 4 if ("altivec" in features or "vsx" in features) else 1
    return 1


def host_cpu() -> dict[str, Any]:
    """Host CPU as LLVM sees it (llvmlite): name, triple, interesting features, f32 lanes."""
    import llvmlite
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    triple = llvm.get_process_triple()
    name = llvm.get_host_cpu_name()
    enabled: set[str] = set()
    try:
        enabled = {feat for feat, on in llvm.get_host_cpu_features().items() if on}
    except RuntimeError:  # LLVM cannot read the features on this host
        pass
    return {
        "llvmlite_version": llvmlite.__version__,
        "llvm_version": ".".join(str(v) for v in llvm.llvm_version_info),
        "host_triple": triple,
        "cpu_name": name,
        "cpu_features": [f for f in INTERESTING_FEATURES if f in enabled],
        "float32_vector_width": _f32_lanes(enabled, triple),
    }


def _module(name: str, dist: str | None = None) -> dict[str, Any]:
    found = importlib.util.find_spec(name) is not None
    return {"available": found, "version": _dist_version(dist or name) if found else None}


def _pycuda() -> dict[str, Any]:
    """pycuda's version and devices; ``status`` is what target="cuda" can do here: "pycuda
    missing", "no driver", "no device" or "ready"."""
    info = _module("pycuda")
    if not info["available"]:
        info["cuda"] = info["status"] = "pycuda missing"
        return info
    info["status"] = "no driver"
    try:
        import pycuda.driver as drv

        drv.init()
        count = drv.Device.count()
        if count == 0:
            info["cuda"], info["status"] = "driver found, no device", "no device"
        else:
            dev = drv.Device(0)
            major, minor = dev.compute_capability()
            info["cuda"] = f"{count} device(s); 0: {dev.name()} (sm_{major}{minor})"
            info["devices"], info["status"] = count, "ready"
        info["driver_version"] = drv.get_driver_version()
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable CUDA here"
        info["cuda"] = f"no CUDA driver/device ({type(exc).__name__}: {exc})".strip()
    return info


def cuda_status() -> str:
    """Whether compiled CUDA kernels can run here (see ``_pycuda``)."""
    return _pycuda()["status"]


def _nvcc() -> dict[str, Any]:
    path = shutil.which("nvcc")
    info: dict[str, Any] = {"available": path is not None, "path": path, "version": None}
    if path:
        try:
            out = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=20, check=False
            ).stdout
            match = re.search(r"release ([0-9.]+)", out)
            info["version"] = match.group(1) if match else None
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def _nvrtc() -> dict[str, Any]:
    """NVRTC, the in-process CUDA compiler (``codegen.nvrtc``): a ctypes load of libnvrtc, so
    probing it is cheap; ``archs`` are the sm_XX it compiles for."""
    from .codegen import nvrtc
    info: dict[str, Any] = {"available": False, "path": None, "version": None, "archs": [],
                            "error": None}
    try:
        info["path"] = nvrtc.library_path()
        info["version"] = "%d.%d" % nvrtc.version()
        info["archs"] = [f"sm_{a}" for a in nvrtc.supported_archs()]
        info["available"] = True
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable NVRTC here"
        info["error"] = str(exc)
    return info


def backends() -> dict[str, dict[str, Any]]:
    """Optional backends and tools, probed without importing heavy modules."""
    return {
        "onnx": _module("onnx"),
        "onnxruntime": _module("onnxruntime"),
        "torch": _module("torch"),
        "pycuda": _pycuda(),
        "nvcc": _nvcc(),
        "nvrtc": _nvrtc(),
        "xgboost": _module("xgboost"),
    }


def _toolchain() -> dict[str, Any]:
    """The C compiler driver that links generated code ($CC, else cc) and the source of the thread
    pool it compiles into every library (parallel loops need no libgomp or other library)."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    pool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runtime", "threadpool.c")
    return {"cc": cc, "threadpool": pool if os.path.exists(pool) else None}


def collect() -> dict[str, Any]:
    """Everything ``tensorc info`` reports, as a JSON-serialisable dict."""
    threads, threads_source, threads_error = _threads_from_env()
    data: dict[str, Any] = {
        "tensorc_version": tensorc_version(),
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "numpy_version": _dist_version("numpy"),
    }
    try:
        data.update(host_cpu())
    except Exception as exc:  # noqa: BLE001 - report, don't crash, when llvmlite is unusable
        data.update(
            llvmlite_version=_dist_version("llvmlite"),
            llvm_version=None,
            host_triple=None,
            cpu_name=None,
            cpu_features=[],
            float32_vector_width=None,
            llvm_error=f"{type(exc).__name__}: {exc}",
        )
    data.update(
        cores_usable=cores_usable(),
        cores_total=os.cpu_count(),
        num_threads=threads,
        num_threads_source=threads_source,
        num_threads_error=threads_error,
        cache_dir=cache_dir(),
        **_toolchain(),
        backends=backends(),
    )
    return data


def _backend_line(name: str, info: dict[str, Any]) -> str:
    if name == "nvrtc":
        if not info["available"]:
            return f"missing ({info['error']})"
        archs = info["archs"]
        span = f"; {archs[0]}..{archs[-1]}" if archs else ""
        return f"{info['version']} ({info['path']}{span})"
    if name == "nvcc":
        if not info["available"]:
            return "not on PATH"
        return f"{info['path']}" + (f" (release {info['version']})" if info["version"] else "")
    if not info["available"]:
        return "missing" if name != "pycuda" else info["cuda"]
    text = f"yes ({info['version']})" if info["version"] else "yes"
    if name == "pycuda":
        text += f"; {info['cuda']}"
    return text


def format_text(data: dict[str, Any]) -> str:
    """Human-readable rendering of :func:`collect`'s dict."""
    lanes = data["float32_vector_width"]
    rows = [
        ("tensorc", data["tensorc_version"]),
        ("python", f"{data['python_version']} ({data['python_implementation']}, "
                   f"{data['python_executable']})"),
        ("platform", data["platform"]),
        ("numpy", data["numpy_version"] or "missing"),
        ("llvmlite", f"{data['llvmlite_version'] or 'missing'} (LLVM {data['llvm_version']})"),
        ("host triple", data["host_triple"]),
        ("cpu", data["cpu_name"]),
        ("cpu features", " ".join(data["cpu_features"]) or "(none of interest)"),
        ("f32 vector width", f"{lanes} lanes ({lanes * 32}-bit)" if lanes else "unknown"),
        ("cores usable", f"{data['cores_usable']} (of {data['cores_total']})"),
        ("threads", f"{data['num_threads']} (from {data['num_threads_source']})"
         if data["num_threads"] is not None else f"INVALID: {data['num_threads_error']}"),
        ("cache dir", data["cache_dir"]),
        ("cc", data["cc"] or "NOT FOUND (needed to link generated code)"),
        ("thread pool", f"built in, compiled with cc from {data['threadpool']}"
         if data["threadpool"] else "SOURCE MISSING (tensorc/runtime/threadpool.c)"),
    ]
    if data.get("llvm_error"):
        rows.append(("llvm error", data["llvm_error"]))
    rows.append(("cuda", data["backends"]["pycuda"]["status"]))
    rows.append(("backends", ""))
    rows += [(f"  {name}", _backend_line(name, info)) for name, info in data["backends"].items()]
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key + ':':<{width + 1}} {value}".rstrip() for key, value in rows)
