"""The runtime Module: argument checks, sources, timing, export to .so + header, C callers."""
import shutil
import subprocess
import textwrap

import llvmlite.binding as llvm
import numpy as np
import pytest

import tensorc.runtime as rt
from tensorc.codegen import build_module
from tensorc.ir import expr as E
from tensorc.ir import stmt as S
from tensorc.ir.op import const

N = 256


def axpy_func(name="axpy"):
    """Y[i] = 2 * X[i] + Y0[i] (float32, vectorized by 8); a second function scales in place."""
    x, y0, y = (S.BufferDecl(k, (N,), "float32", E.Var(k, "handle")) for k in ("X", "Y0", "Y"))
    i = E.Var("i")
    idx = E.Ramp("int32x8", i * 8, const(1), 8)
    value = E.Load("float32x8", x.data, idx) * 2.0 + E.Load("float32x8", y0.data, idx)
    body = S.For(i, const(0), const(N // 8), "serial", S.Store(y.data, value, idx))
    return S.PrimFunc(name, (x, y0, y), body, (("output_params", (2,)),))


def scale_func():
    z = S.BufferDecl("Z", (4, 8), "int32", E.Var("Z", "handle"))
    i = E.Var("i")
    body = S.For(i, const(0), const(32), "serial",
                 S.Store(z.data, E.Load("int32", z.data, i) * 3, i))
    return S.PrimFunc("scale", (z,), body, (("output_params", (0,)),))


@pytest.fixture(scope="module")
def mod():
    return build_module([axpy_func(), scale_func()], "axpy")


def arrays():
    x, y0 = np.random.rand(N).astype("float32"), np.random.rand(N).astype("float32")
    return x, y0, np.full(N, np.nan, "float32")


def test_call_entry_and_other_functions(mod):
    x, y0, y = arrays()
    mod(x, y0, y)
    np.testing.assert_allclose(y, 2 * x + y0, rtol=1e-6)
    z = np.arange(32, dtype="int32").reshape(4, 8)
    mod.get_function("scale")(z)
    np.testing.assert_array_equal(z, np.arange(32).reshape(4, 8) * 3)
    assert mod.function_names == ("axpy", "scale")
    with pytest.raises(KeyError, match="nope"):
        mod.get_function("nope")


def _partly_overlapping():
    big = np.zeros(2 * N, "float32")
    return big[:N], np.zeros(N, "float32"), big[N // 2:N // 2 + N]


@pytest.mark.parametrize("mutate,exc,words", [
    (lambda a: a[:2], TypeError, ["takes 3 arguments", "got 2"]),
    (lambda a: (a[0].astype("float64"), a[1], a[2]), TypeError, ["'X'", "float32", "float64"]),
    (lambda a: (a[0], a[1][:-1], a[2]), ValueError, ["'Y0'", "(256,)", "(255,)"]),
    (lambda a: (a[0], list(a[1]), a[2]), TypeError, ["'Y0'", "ndarray", "list"]),
    (lambda a: (np.zeros(2 * N, "float32")[::2], a[1], a[2]), ValueError, ["'X'", "contiguous"]),
    (lambda a: (a[0], a[1], a[1]), ValueError, ["'Y'", "overlaps", "'Y0'"]),
    (lambda a: (a[0], a[1], a[0]), ValueError, ["'Y'", "overlaps", "'X'"]),
    (lambda a: _partly_overlapping(), ValueError, ["'Y'", "overlaps", "'X'"]),
    (lambda a: (a[0], a[1], a[2].reshape(16, 16)), ValueError, ["'Y'", "(256,)", "(16, 16)"]),
    (lambda a: (a[0], a[1], np.broadcast_to(np.float32(0), (N,))), ValueError, ["'Y'"]),
])
def test_bad_arguments_are_rejected_with_the_parameter_named(mod, mutate, exc, words):
    args = mutate(arrays())
    with pytest.raises(exc) as info:
        mod(*args)
    for w in words:
        assert w in str(info.value)


def test_read_only_output_and_unaligned_input_are_rejected(mod):
    x, y0, y = arrays()
    y.flags.writeable = False
    with pytest.raises(ValueError, match="'Y'.*read-only"):
        mod(x, y0, y)
    raw = np.zeros(N * 4 + 1, np.uint8)
    unaligned = raw[1:].view("float32")
    with pytest.raises(ValueError, match="'X'.*aligned"):
        mod(unaligned, y0, np.empty(N, "float32"))


def test_overlapping_inputs_are_allowed(mod):
    x, _, y = arrays()
    mod(x, x, y)
    np.testing.assert_allclose(y, 3 * x, rtol=1e-6)


def test_sources(mod):
    assert "@axpy(ptr noalias" in mod.get_source("llvm")
    assert "define i32 @axpy" in mod.get_source("ll-unoptimized")
    assert "axpy:" in mod.get_source("asm")
    with pytest.raises(ValueError, match="unknown source format"):
        mod.get_source("cuda")


def test_time_evaluator(mod):
    timer = mod.time_evaluator(number=5, repeat=4)
    result = timer(*arrays())
    assert len(result.results) == 4 and all(t > 0 for t in result.results)
    assert min(result.results) <= result.median <= max(result.results)
    assert result.mean > 0 and "ms" in repr(result)
    slow = mod.time_evaluator(number=1, repeat=1, min_repeat_ms=5)(*arrays())
    assert slow.results[0] > 0
    with pytest.raises(TypeError, match="'X'"):
        timer(np.zeros(3), *arrays()[1:])


def test_export_and_load_round_trip(mod, tmp_path):
    path = mod.export_library(tmp_path / "axpy.so")
    header = (tmp_path / "axpy.h").read_text()
    assert "int32_t axpy(const float *X, const float *Y0, float *Y);" in header
    assert "X: float32[256], input" in header and "Z: int32[4, 8], output" in header
    loaded = rt.load_module(path)
    x, y0, y = arrays()
    loaded(x, y0, y)
    np.testing.assert_allclose(y, 2 * x + y0, rtol=1e-6)
    assert loaded.metadata["functions"] == mod.metadata["functions"]
    assert loaded.entry_name == "axpy"
    with pytest.raises(RuntimeError, match="no 'asm' source"):
        loaded.get_source("asm")
    with pytest.raises(TypeError, match="dtype float32"):
        loaded(x.astype("float64"), y0, y)


def test_loading_a_foreign_library_is_refused(tmp_path):
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    (tmp_path / "x.c").write_text("int f(void) { return 1; }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(tmp_path / "x.so"), str(tmp_path / "x.c")],
                   check=True)
    with pytest.raises(ValueError, match="not a tensorc module"):
        rt.load_module(tmp_path / "x.so")


C_MAIN = textwrap.dedent("""
    #include <stdio.h>
    #include "axpy.h"
    int main(void) {
        float x[256], y0[256], y[256];
        int32_t z[32];
        for (int i = 0; i < 256; i++) { x[i] = (float)i; y0[i] = 1.0f; }
        for (int i = 0; i < 32; i++) z[i] = i;
        __tensorc_num_threads = 1;
        if (axpy(x, y0, y) != 0 || scale(z) != 0) return 1;
        printf("%g %g %d\\n", y[0], y[255], z[31]);
        return 0;
    }
""")


def test_c_program_calls_the_exported_library(mod, tmp_path):
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    mod.export_library(tmp_path / "axpy.so")
    (tmp_path / "main.c").write_text(C_MAIN)
    exe = tmp_path / "main"
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-o", str(exe), str(tmp_path / "main.c"),
                    str(tmp_path / "axpy.so"), f"-Wl,-rpath,{tmp_path}"], check=True)
    done = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "511", "93"]


def test_module_for_another_cpu_exports_but_refuses_to_run(tmp_path):
    host = llvm.get_host_cpu_features()
    lacking = [f for f in ("avx512f", "amx-tile", "avx512fp16") if not host.get(f, True)]
    if not lacking:
        pytest.skip("the host has every candidate feature")
    mod = build_module([axpy_func()], "axpy", target=f"llvm -mattr=+{lacking[0]}")
    with pytest.raises(RuntimeError, match=lacking[0]):
        mod(*arrays())
    path = mod.export_library(tmp_path / "foreign.so")
    with pytest.raises(RuntimeError, match="would crash"):
        rt.load_module(path)(*arrays())


def test_set_num_threads_validates():
    before = rt.get_num_threads()
    with pytest.raises(ValueError):
        rt.set_num_threads(0)
    with pytest.raises(ValueError):
        rt.set_num_threads(2.5)
    rt.set_num_threads(1)
    assert rt.get_num_threads() == 1
    rt.set_num_threads(before)
