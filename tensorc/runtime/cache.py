"""Build cache: identical generated code is optimized and linked once, per process and per disk.

The key hashes the unoptimized LLVM IR together with everything else that decides the machine code
(target string, CPU features, tensorc and llvmlite versions), so a hit can skip LLVM entirely.
Entries live in ``$TENSORC_CACHE_DIR`` (default ``~/.cache/tensorc``) as ``<key>.so`` plus its
sources; every file is written to a temporary name and renamed into place, the .so last, so a
concurrent process sees either a complete entry or none.
"""
import hashlib
import os
import tempfile
import threading
from pathlib import Path

import llvmlite

from .module import VERSION, Module, atomic_write

#: The files kept beside a cached .so; the assembly is written the first time it is asked for
#: (``Module.get_source``), from the optimized IR and the target string.
SOURCE_SUFFIXES = {"llvm": ".ll", "asm": ".s", "ll-unoptimized": ".unopt.ll", "target": ".target"}

_memory = {}
_lock = threading.Lock()


def cache_dir():
    return Path(os.environ.get("TENSORC_CACHE_DIR") or Path.home() / ".cache" / "tensorc")


def key_for(ir_text, target, features):
    h = hashlib.sha256()
    for part in (ir_text, target, features, VERSION, llvmlite.__version__):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _sources(directory, key):
    return {fmt: directory / f"{key}{suffix}" for fmt, suffix in SOURCE_SUFFIXES.items()}


def lookup(key):
    """The module cached under key (memory first, then disk), or None."""
    with _lock:
        module = _memory.get(key)
    if module is not None:
        return module
    directory = cache_dir()
    so = directory / f"{key}.so"
    if not so.exists():
        return None
    module = Module.from_library(so, _sources(directory, key))
    with _lock:
        return _memory.setdefault(key, module)


def store(key, link, sources):
    """Cache a freshly compiled module: ``link(path)`` writes its .so; sources maps format->text."""
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    paths = _sources(directory, key)
    for fmt, text in sources.items():
        atomic_write(str(paths[fmt]), text.encode())
    so = directory / f"{key}.so"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".so")
    os.close(fd)
    try:
        link(tmp)
        os.replace(tmp, so)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    module = Module.from_library(so, paths)
    with _lock:
        return _memory.setdefault(key, module)
