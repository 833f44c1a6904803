"""The build cache: a repeated build skips LLVM, in this process and in another one."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tensorc.codegen import build_module, llvm_compile
from tensorc.ir import expr as E
from tensorc.ir import stmt as S
from tensorc.ir.op import const
from tensorc.runtime import cache

ROOT = Path(__file__).resolve().parents[2]


def fill_func(value, name="fill"):
    o = S.BufferDecl("O", (16,), "float32", E.Var("O", "handle"))
    i = E.Var("i")
    body = S.For(i, const(0), const(16), "serial", S.Store(o.data, const(float(value)), i))
    return S.PrimFunc(name, (o,), body, (("output_params", (0,)),))


def _no_llvm(*_):
    raise AssertionError("LLVM ran although the module is cached")


def test_second_build_is_a_cache_hit(monkeypatch):
    first = build_module([fill_func(1.5)], "fill")
    monkeypatch.setattr(llvm_compile, "compile_ir", _no_llvm)
    monkeypatch.setattr(llvm_compile, "link_shared", _no_llvm)
    again = build_module([fill_func(1.5)], "fill")
    assert again is first
    out = np.zeros(16, "float32")
    again(out)
    assert (out == 1.5).all()


def test_different_code_or_target_misses(monkeypatch):
    build_module([fill_func(2.5)], "fill")
    calls = []
    real = llvm_compile.compile_ir
    monkeypatch.setattr(llvm_compile, "compile_ir", lambda *a: calls.append(1) or real(*a))
    build_module([fill_func(3.5)], "fill")
    build_module([fill_func(2.5)], "fill", target="llvm -fast-math")
    assert len(calls) == 2


def test_entry_is_written_atomically_with_its_sources():
    mod = build_module([fill_func(4.5)], "fill")
    directory = cache.cache_dir()
    key = Path(mod.path).name[:-len(".so")]
    names = sorted(p.name for p in directory.iterdir() if p.name.startswith(key))
    assert names == sorted(f"{key}{s}" for s in (".so", ".ll", ".unopt.ll", ".target"))
    assert not [p for p in directory.iterdir() if p.name.startswith(".tmp-")]


def test_assembly_is_made_when_first_asked_for_and_kept():
    """A build emits no assembly; get_source("asm") generates it from the optimized IR and the
    target (the same code generation as the object's), writes it beside the entry and reads it
    from there afterwards, in this process or a later one."""
    mod = build_module([fill_func(6.5)], "fill")
    asm_path = Path(mod.path[:-len(".so")] + ".s")
    assert not asm_path.exists()
    text = mod.get_source("asm")
    assert "fill:" in text and asm_path.read_text() == text
    again = cache.lookup(Path(mod.path).name[:-len(".so")])
    assert again.get_source("asm") == text


DISK_PROBE = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_cache import fill_func, _no_llvm
    from tensorc.codegen import build_module, llvm_compile
    llvm_compile.compile_ir = _no_llvm
    llvm_compile.link_shared = _no_llvm
    mod = build_module([fill_func(5.5)], "fill")
    out = np.zeros(16, "float32")
    mod(out)
    assert (out == 5.5).all()
    assert "@fill(" in mod.get_source("llvm")
    print("ok")
""")


def test_another_process_reuses_the_disk_cache():
    build_module([fill_func(5.5)], "fill")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                                     os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", DISK_PROBE.format(tests=str(Path(__file__).parent))],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_missing_linker_is_named(monkeypatch):
    monkeypatch.setenv("CC", "no-such-cc-tensorc")
    with pytest.raises(RuntimeError, match="no-such-cc-tensorc"):
        llvm_compile.linker()
