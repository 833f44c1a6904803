"""LLVM IR text to a shared object: O3 with the new pass manager, object emission, ``cc`` link.

``assemble`` turns an assembler file into an object with the same driver: graph modules use it
for their weights, which are ``.incbin``-ed from a binary file rather than written as IR text.

The link goes through the system C compiler driver because it knows where libc and libm live
and how to make a shared object on this platform; LLVM itself has no linker here. Every library
also gets tensorc's C runtime (``runtime_objects``: the thread pool, tensorc/runtime/threadpool.c,
and the workspace cache, tensorc/runtime/workspace.c), compiled once per compiler and kept in the
build cache, so it depends on nothing but libc and libm.
"""
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import llvmlite.binding as llvm

from .target import target_machine


def compile_ir(ir_text, target):
    """Optimize ``ir_text`` for target; returns (optimized IR text, object bytes).

    No assembly: emitting it is a second code generation, about a quarter of LLVM's time per
    build, and almost no build is ever read as assembly. ``assembly`` makes it on demand from
    the optimized IR (``Module.get_source("asm")``)."""
    tm = target_machine(target)
    module = llvm.parse_assembly(ir_text)
    module.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    tuning.loop_unrolling = True
    passes = llvm.create_pass_builder(tm, tuning)
    passes.getModulePassManager().run(module, passes)
    return str(module), tm.emit_object(module)


def assembly(optimized_ir, target):
    """The assembly of already optimized IR for ``target`` (a target string, as the build
    cache keeps it): the code generation ``compile_ir`` ran for the object, so it shows the
    same machine code."""
    from .target import parse
    module = llvm.parse_assembly(optimized_ir)
    module.verify()
    return target_machine(parse(target)).emit_assembly(module)


def linker():
    """The C compiler driver used to link ($CC, else cc)."""
    cc = os.environ.get("CC", "cc")
    path = shutil.which(cc)
    if path is None:
        raise RuntimeError(f"cannot link the compiled module: the C compiler driver {cc!r} "
                           "(from $CC, default 'cc') is not on PATH; install gcc or clang, or set "
                           "CC to one")
    return path


POOL_FLAGS = ("-O2", "-fPIC", "-fvisibility=hidden", "-pthread", "-std=gnu11")


@functools.lru_cache(maxsize=None)
def _compiler_identity(cc):
    """What decides the pool object's code besides its source: the driver and its version."""
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True,
                                 timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    return f"{os.path.realpath(cc)}\0{version}"


#: tensorc's C runtime, linked into every library: the thread pool and the workspace cache.
RUNTIME_SOURCES = tuple(Path(__file__).resolve().parents[1] / "runtime" / name
                        for name in ("threadpool.c", "workspace.c"))


@functools.lru_cache(maxsize=None)
def runtime_digest():
    """SHA-256 over the runtime's sources. Generated IR that calls into the runtime carries it
    in a comment, so it is part of the build-cache key: a changed runtime never reuses a
    library linked with the old one."""
    h = hashlib.sha256()
    for path in RUNTIME_SOURCES:
        h.update(path.read_bytes())
    return h.hexdigest()


def runtime_objects():
    """Paths of the runtime's object files (``runtime_object`` of each source)."""
    return [runtime_object(path) for path in RUNTIME_SOURCES]


def runtime_object(source=RUNTIME_SOURCES[0]):
    """Path of one runtime source's object file (default: the thread pool's), compiled on first
    use into the build cache.

    The name hashes the source, the compiler (path and ``--version``) and the flags, so a changed
    source or compiler gets a fresh object. It is compiled to a temporary name and renamed into
    place: concurrent processes each may compile it, and readers only ever see a complete file.
    """
    from ..runtime.cache import cache_dir  # the cache imports the runtime, not codegen

    cc = linker()
    text = source.read_bytes()
    h = hashlib.sha256()
    for part in (text, _compiler_identity(cc).encode(), " ".join(POOL_FLAGS).encode()):
        h.update(part)
        h.update(b"\0")
    directory = cache_dir()
    path = directory / f"{source.stem}-{h.hexdigest()[:24]}.o"
    if path.exists():
        return str(path)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".o")
    os.close(fd)
    try:
        # Compile the very bytes hashed above, not the file, which an editor may change meanwhile.
        src = tmp[:-2] + ".c"
        with open(src, "wb") as f:
            f.write(text)
        try:
            done = subprocess.run([cc, *POOL_FLAGS, "-c", "-o", tmp, src], capture_output=True,
                                  text=True)
        finally:
            os.unlink(src)
        if done.returncode != 0:
            raise RuntimeError(f"compiling tensorc's runtime ({source}) with {cc} "
                               f"failed:\n{done.stderr}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(path)


def link_shared(obj, so_path, extra_objects=(), extra_flags=()):
    """Link object bytes (plus the object files ``extra_objects`` and the runtime) into the
    shared library ``so_path`` against libm; ``extra_flags`` go to the driver before the
    libraries."""
    cc = linker()
    runtime = runtime_objects()
    with tempfile.TemporaryDirectory(prefix="tensorc-link-") as tmp:
        obj_path = os.path.join(tmp, "module.o")
        with open(obj_path, "wb") as f:
            f.write(obj)
        done = subprocess.run([cc, "-shared", "-o", so_path, obj_path, *extra_objects, *runtime,
                               *extra_flags, "-pthread", "-lm"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"linking {so_path} with {cc} failed:\n{done.stderr}")


def assemble(source_path, obj_path):
    """Assemble the file ``source_path`` into the object ``obj_path`` with the C compiler driver.

    It runs in the source's directory, so the source may ``.incbin`` files next to it by name.
    """
    cc = linker()
    done = subprocess.run([cc, "-c", "-o", os.path.abspath(obj_path),
                           os.path.basename(source_path)],
                          cwd=os.path.dirname(os.path.abspath(source_path)),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"assembling {source_path} with {cc} failed:\n{done.stderr}")
