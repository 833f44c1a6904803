"""LLVM IR text to a shared object: O3 with the new pass manager, object emission, ``cc`` link.

``assemble`` turns an assembler file into an object with the same driver: graph modules use it
for their weights, which are ``.incbin``-ed from a binary file rather than written as IR text.

The link goes through the system C compiler driver because it knows where libc and libm live
and how to make a shared object on this platform; LLVM itself has no linker here. Every library
also gets tensorc's thread pool (``runtime_object``), compiled from tensorc/runtime/threadpool.c
once per compiler and kept in the build cache, so it depends on nothing but libc and libm.
"""
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile

import llvmlite.binding as llvm

from .target import target_machine


def compile_ir(ir_text, target):
    """Optimize ``ir_text`` for target; returns (optimized IR text, assembly text, object bytes)."""
    tm = target_machine(target)
    module = llvm.parse_assembly(ir_text)
    module.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    tuning.loop_unrolling = True
    passes = llvm.create_pass_builder(tm, tuning)
    passes.getModulePassManager().run(module, passes)
    return str(module), tm.emit_assembly(module), tm.emit_object(module)


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


def runtime_object():
    """Path of the thread pool's object file, compiled on first use into the build cache.

    The name hashes the source, the compiler (path and ``--version``) and the flags, so a changed
    pool or compiler gets a fresh object. It is compiled to a temporary name and renamed into
    place: concurrent processes each may compile it, and readers only ever see a complete file.
    """
    from ..runtime.cache import cache_dir  # the cache imports the runtime, not codegen
    from .llvm_parallel import POOL_SOURCE

    cc = linker()
    source = POOL_SOURCE.read_bytes()
    h = hashlib.sha256()
    for part in (source, _compiler_identity(cc).encode(), " ".join(POOL_FLAGS).encode()):
        h.update(part)
        h.update(b"\0")
    directory = cache_dir()
    path = directory / f"threadpool-{h.hexdigest()[:24]}.o"
    if path.exists():
        return str(path)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".o")
    os.close(fd)
    try:
        # Compile the very bytes hashed above, not the file, which an editor may change meanwhile.
        src = tmp[:-2] + ".c"
        with open(src, "wb") as f:
            f.write(source)
        try:
            done = subprocess.run([cc, *POOL_FLAGS, "-c", "-o", tmp, src], capture_output=True,
                                  text=True)
        finally:
            os.unlink(src)
        if done.returncode != 0:
            raise RuntimeError(f"compiling tensorc's thread pool ({POOL_SOURCE}) with {cc} "
                               f"failed:\n{done.stderr}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(path)


def link_shared(obj, so_path, extra_objects=(), extra_flags=()):
    """Link object bytes (plus the object files ``extra_objects`` and the thread pool) into the
    shared library ``so_path`` against libm; ``extra_flags`` go to the driver before the
    libraries."""
    cc = linker()
    pool = runtime_object()
    with tempfile.TemporaryDirectory(prefix="tensorc-link-") as tmp:
        obj_path = os.path.join(tmp, "module.o")
        with open(obj_path, "wb") as f:
            f.write(obj)
        done = subprocess.run([cc, "-shared", "-o", so_path, obj_path, *extra_objects, pool,
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
