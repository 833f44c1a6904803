"""GraphModule: calling a compiled model, its checks, save/load without compiling, the C header."""
import shutil
import subprocess
import textwrap
import threading

import numpy as np
import pytest

import tensorc.runtime as rt
from tensorc.codegen import build_graph_module, build_module, llvm_compile
from tensorc.graph.plan import BufferRef as R
from tensorc.graph.plan import ExecutionPlan
from tensorc.graph.plan import KernelCall as K
from tensorc.ir import expr as E
from tensorc.ir import stmt as S
from tensorc.ir.op import const
from tensorc.runtime import cache

N = 1000
ROWS = 8


def elementwise(name, op, n=N, rows=1):
    """C[i] = op(A[i], B[i]) over n float32 elements, its outer loop of ``rows`` parallel."""
    a, b, c = (S.BufferDecl(k, (n,), "float32", E.Var(k, "handle")) for k in ("A", "B", "C"))
    r, j = E.Var("r"), E.Var("j")
    i = r * (n // rows) + j
    store = S.Store(c.data, op(E.Load("float32", a.data, i), E.Load("float32", b.data, i)), i)
    body = S.For(r, const(0), const(rows), "parallel" if rows > 1 else "serial",
                 S.For(j, const(0), const(n // rows), "serial", store))
    return S.PrimFunc(name, (a, b, c), body, (("output_params", (2,)),))


def weights(seed=1, n=N):
    return np.random.default_rng(seed).random(n, dtype=np.float32) + 0.5


def model(name="tiny", w=None, n=N, scale_op=lambda x, y: x * y, rows=1):
    """Kernels and plan of y = t * w + t with t = x * w + b (``scale`` is x*w unless told),
    chained through two storage tokens; a second output is a copy of the weight."""
    w = weights() if w is None else w
    kernels = [elementwise("scale", scale_op, n, rows), elementwise("add", lambda x, y: x + y, n)]
    plan = ExecutionPlan(
        name, inputs=[("x", (n,), "float32"), ("b.in", (n,), "float32")],
        outputs=[("y", (n,), "float32"), ("w", (n,), "float32")],
        constants=[("w", w)], storage=[4 * n, 4 * n],
        calls=[K("scale", (R("input", 0), R("const", 0), R("storage", 0))),
               K("add", (R("storage", 0), R("input", 1), R("storage", 1))),
               K("scale", (R("storage", 1), R("const", 0), R("storage", 0))),
               K("add", (R("storage", 0), R("storage", 1), R("output", 0)))],
        output_sources=[None, R("const", 0)])
    return kernels, plan


def reference(x, b, w, scale=np.multiply):
    t = scale(x, w) + b
    return scale(t, w) + t


def rand(seed, n=N):
    return np.random.default_rng(seed).random(n, dtype=np.float32)


@pytest.fixture(scope="module")
def mod():
    return build_graph_module(*model())


def test_call_and_run_return_fresh_outputs(mod):
    x, b = rand(2), rand(3)
    y, w = mod(x, b)
    np.testing.assert_allclose(y, reference(x, b, weights()), rtol=1e-6)
    np.testing.assert_array_equal(w, weights())
    y2, w2 = mod.run({"b.in": b, "x": x})
    np.testing.assert_array_equal(y2, y)
    assert y2 is not y and not np.shares_memory(y2, y) and w2.flags.writeable
    assert mod.input_names == ("x", "b.in") and mod.output_names == ("y", "w")
    assert mod.inputs[0] == rt.TensorInfo("x", (N,), "float32")
    assert "tiny(x: float32[1000], b.in: float32[1000])" in repr(mod)


def test_non_contiguous_and_read_only_inputs_are_accepted(mod):
    wide = rand(4, 2 * N)
    b = rand(5)
    b.flags.writeable = False
    y, _ = mod(wide[::2], b)
    np.testing.assert_allclose(y, reference(wide[::2], b, weights()), rtol=1e-6)
    raw = np.zeros(4 * N + 1, np.uint8)
    raw[1:] = wide[:N].view(np.uint8)
    unaligned = raw[1:].view(np.float32)
    assert not unaligned.flags.aligned
    np.testing.assert_allclose(mod(unaligned, b)[0], reference(wide[:N], b, weights()), rtol=1e-6)


@pytest.mark.parametrize("args,exc,words", [
    (lambda x, b: (x,), TypeError, ["takes 2 inputs", "got 1"]),
    (lambda x, b: (x, b, b), TypeError, ["takes 2 inputs", "got 3"]),
    (lambda x, b: (x.astype("float64"), b), TypeError, ["'x'", "float32", "float64"]),
    (lambda x, b: (x, b[:-1]), ValueError, ["'b.in'", "(1000,)", "(999,)"]),
    (lambda x, b: (x.reshape(10, 100), b), ValueError, ["'x'", "(10, 100)"]),
    (lambda x, b: (list(x), b), TypeError, ["'x'", "ndarray", "list"]),
])
def test_bad_inputs_are_rejected_with_the_input_named(mod, args, exc, words):
    with pytest.raises(exc) as info:
        mod(*args(rand(6), rand(7)))
    for w in words:
        assert w in str(info.value)


def test_run_names_unknown_and_missing_inputs(mod):
    with pytest.raises(KeyError, match="no input named 'z'"):
        mod.run({"x": rand(1), "b.in": rand(2), "z": rand(3)})
    with pytest.raises(KeyError, match="'b.in' is missing"):
        mod.run({"x": rand(1)})


def test_time_evaluator_and_profile(mod):
    x, b = rand(8), rand(9)
    timing = mod.time_evaluator(number=3, repeat=2)(x, b)
    assert len(timing.results) == 2 and timing.median > 0
    profile = mod.profile(x, b, number=2, repeat=3)
    assert [(p.call, p.kernel) for p in profile] == [(0, "scale"), (1, "add"), (2, "scale"),
                                                     (3, "add")]
    assert all(p.median > 0 and len(p.results) == 3 for p in profile)
    with pytest.raises(TypeError, match="'x'"):
        mod.profile(x.astype("float64"), b)


def test_sources_of_an_in_process_build(mod):
    assert "i32 @tiny(ptr" in mod.get_source("llvm")
    assert "tiny:" in mod.get_source("asm")


def _no_compiling(*_):
    raise AssertionError("loading a saved model compiled something")


def test_save_and_load_without_compiling(mod, tmp_path, monkeypatch):
    path = mod.save(tmp_path / "tiny.tcm")
    assert list(tmp_path.iterdir()) == [tmp_path / "tiny.tcm"]
    for name in ("compile_ir", "link_shared", "assemble"):
        monkeypatch.setattr(llvm_compile, name, _no_compiling)
    monkeypatch.setattr(cache, "store", _no_compiling)
    loaded = rt.load_graph_module(path)
    x, b = rand(10), rand(11)
    for got, want in zip(loaded(x, b), mod(x, b)):
        np.testing.assert_array_equal(got, want)
    assert loaded.kernel_names == ("scale", "add") and loaded.entry_name == "tiny"
    assert loaded.metadata["graph"] == mod.metadata["graph"]
    assert [p.kernel for p in loaded.profile(x, b, number=1, repeat=1)] == [
        "scale", "add", "scale", "add"]
    with pytest.raises(RuntimeError, match="no 'llvm' source"):
        loaded.get_source("llvm")


def test_saving_over_a_loaded_path_loads_the_new_model(tmp_path):
    path = tmp_path / "m.tcm"
    x, b = rand(12), rand(13)
    first = build_graph_module(*model("reloaded", weights(1)))
    second = build_graph_module(*model("reloaded", weights(2)))
    first.save(path)
    old = rt.load_graph_module(path)
    second.save(path)
    new = rt.load_graph_module(path)
    np.testing.assert_allclose(old(x, b)[0], reference(x, b, weights(1)), rtol=1e-6)
    np.testing.assert_allclose(new(x, b)[0], reference(x, b, weights(2)), rtol=1e-6)


def test_loading_something_else_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        rt.load_graph_module(tmp_path / "missing.tcm")
    plain = build_module([elementwise("lonely", lambda x, y: x - y)], "lonely")
    path = plain.export_library(tmp_path / "plain.so")
    with pytest.raises(ValueError, match="not a graph module"):
        rt.load_graph_module(path)


def test_concurrent_calls_from_two_threads():
    n = 1 << 16
    big = build_graph_module(*model("threaded", weights(3, n), n=n, rows=ROWS))
    errors = []

    def worker(seed):
        try:
            x, b = rand(seed, n), rand(seed + 100, n)
            want = reference(x, b, weights(3, n))
            for _ in range(60):
                np.testing.assert_allclose(big(x, b)[0], want, rtol=1e-6)
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


C_MAIN = textwrap.dedent("""
    #include <stdio.h>
    #include "tiny.h"
    #include "other.h"
    static float x[1000], b[1000], y[1000], w[1000], y2[1000], w2[1000];
    int main(void) {
        for (int i = 0; i < 1000; i++) { x[i] = (float)i / 1000.0f; b[i] = 1.0f - x[i]; }
        if (tiny(x, b, y, w) != 0 || other(x, b, y2, w2) != 0) return 1;
        double s = 0, sw = 0, s2 = 0;
        for (int i = 0; i < 1000; i++) { s += y[i]; sw += w[i]; s2 += y2[i]; }
        printf("%.6f %.6f %.6f\\n", s, sw, s2);
        return 0;
    }
""")


def test_export_library_and_a_c_program(mod, tmp_path):
    """Two exported models with equally named kernels (one computing x + w in ``scale``), linked
    into one C program: each entry must call its own kernels."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    other = build_graph_module(*model("other", weights(5), scale_op=lambda x, y: x + y))
    mod.export_library(tmp_path / "tiny.so")
    other.export_library(tmp_path / "other.so")
    header = (tmp_path / "tiny.h").read_text()
    assert "int32_t tiny(const float *x, const float *b_in, float *y, float *w);" in header
    assert "input  1: b.in: float32[1000] (b_in)" in header
    assert "output 1: w: float32[1000] (w)" in header
    (tmp_path / "main.c").write_text(C_MAIN)
    exe = tmp_path / "main"
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-o", str(exe), str(tmp_path / "main.c"),
                    str(tmp_path / "tiny.so"), str(tmp_path / "other.so"),
                    f"-Wl,-rpath,{tmp_path}"], check=True)
    done = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    got = [float(v) for v in done.stdout.split()]
    x = np.arange(N, dtype=np.float32) / np.float32(1000)
    b = np.float32(1) - x
    want = [reference(x, b, weights()).astype(np.float64).sum(), weights().astype(np.float64).sum(),
            reference(x, b, weights(5), np.add).astype(np.float64).sum()]
    np.testing.assert_allclose(got, want, rtol=1e-5)
