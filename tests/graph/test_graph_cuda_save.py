"""Saving and loading CUDA models (tc.compile(graph, target="cuda" | "cuda-emu").save): a
cuda-emu file runs in a fresh process and matches numpy; a cuda file holds its source, plan,
constants and per-architecture cubins with their ptxas reports, loads without a GPU or a
compiler, and runs through a stand-in driver; damaged files are refused by name."""
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import tensorc as tc
from graph_helpers import mlp, mlp_ref, residual_block, residual_ref, rnd
from tensorc.codegen import cuda_compile
from tensorc.runtime import cuda_graph_module
from tensorc.runtime.cuda_graph_module import CudaGraphModule
from tensorc.runtime.cuda_module import cuda_status
from test_graph_cuda import MODELS, install_host_driver

needs_compiler = pytest.mark.skipif(not cuda_compile.compiler_available(),
                                    reason="neither NVRTC nor nvcc is available")


def _run_in_fresh_process(script, tmp_path):
    """Run ``script`` in a new interpreter with an empty build cache (nothing is reused from
    this process or its cache); returns its stdout."""
    env_cache = tmp_path / "fresh-cache"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "TENSORC_CACHE_DIR": str(env_cache)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def _same_plan(a, b):
    assert (a.name, a.inputs, a.outputs, a.storage, a.calls, a.output_sources) == \
        (b.name, b.inputs, b.outputs, b.storage, b.calls, b.output_sources)
    assert [n for n, _ in a.constants] == [n for n, _ in b.constants]
    for (_, x), (_, y) in zip(a.constants, b.constants):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


# -- cuda-emu ----------------------------------------------------------------------------------

def test_emu_model_round_trip_in_a_fresh_process(tmp_path):
    rng = np.random.default_rng(21)
    g, weights = mlp(rng, batch=17, dims=(32, 48, 19))
    gr, params = residual_block(rng, c=8, hw=6)
    x, xr = rnd(rng, 17, 32), rnd(rng, 1, 8, 6, 6)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "xr.npy", xr)
    mod = tc.compile(g, target="cuda-emu")
    assert mod.save(tmp_path / "mlp.tcm") == str(tmp_path / "mlp.tcm")
    tc.compile(gr, target="cuda-emu").save(str(tmp_path / "res.tcm"))
    out = _run_in_fresh_process("""
        import numpy as np, tensorc as tc
        mod, res = tc.load("mlp.tcm"), tc.load("res.tcm")
        print(type(mod).__name__, mod.target, mod.kernel_names)
        np.save("y.npy", mod(np.load("x.npy"))[0])
        res.order = "reverse"
        np.save("yr.npy", res.run({"x": np.load("xr.npy")})[0])
        """, tmp_path)
    assert out.split()[:2] == ["CudaGraphModule", "cuda-emu"]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), mlp_ref(x, *weights),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), mod(x)[0])
    np.testing.assert_allclose(np.load(tmp_path / "yr.npy"), residual_ref(xr, *params),
                               rtol=1e-4, atol=1e-5)


def test_emu_file_keeps_every_output_kind(tmp_path):
    """Outputs copied from the input, a constant and another output survive the round trip."""
    g = MODELS["share"](np.random.default_rng(3))
    mod, cpu = tc.compile(g, target="cuda-emu"), tc.compile(g)
    loaded = tc.load(mod.save(tmp_path / "share.tcm"))
    _same_plan(loaded.plan, mod.plan)
    assert loaded.sources == mod.sources and loaded.get_source() == mod.get_source()
    assert loaded.path == str(tmp_path / "share.tcm") and mod.path is None
    x = rnd(np.random.default_rng(22), 1, 8, 6, 6)
    loaded.poison_storage = True
    for out, a, b in zip(loaded.outputs, loaded(x), cpu(x)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=out.name)


def test_emu_library_that_cannot_load_is_built_again_from_the_source(tmp_path):
    g, weights = mlp(np.random.default_rng(23), batch=5, dims=(12, 9, 7))
    path = tc.compile(g, target="cuda-emu").save(tmp_path / "mlp.tcm")
    damaged = tmp_path / "damaged.tcm"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(damaged, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, b"not a shared object" if name == "emu/model.so" else data)
    x = rnd(np.random.default_rng(24), 5, 12)
    np.testing.assert_allclose(tc.load(damaged)(x)[0], mlp_ref(x, *weights), rtol=1e-4,
                               atol=1e-6)


def test_emu_model_has_no_cubins_to_save(tmp_path):
    mod = tc.compile(mlp(np.random.default_rng(0))[0], target="cuda-emu")
    with pytest.raises(ValueError, match="a cuda-emu model holds no cubins"):
        mod.save(tmp_path / "m.tcm", archs=["sm_90"])


# -- cuda ----------------------------------------------------------------------------------------

@needs_compiler
def test_cuda_file_holds_cubins_per_arch_and_loads_without_gpu_or_compiler(tmp_path,
                                                                           monkeypatch):
    g = MODELS["lngelu"](np.random.default_rng(3))
    mod = tc.compile(g, target="cuda -arch=sm_80")
    path = mod.save(tmp_path / "lngelu.tcm", archs=["sm_90"])
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("model.json"))
        names = set(z.namelist())
    assert {"model.json", "kernels.cu", "cubin/sm_80.cubin", "cubin/sm_90.cubin"} <= names
    assert "emu/model.so" not in names and len(meta["constants"]) == len(mod.plan.constants)
    assert (meta["target"], meta["arch"], sorted(meta["cubins"])) == \
        ("cuda", "sm_80", ["sm_80", "sm_90"])

    def no_compiler(*args):
        raise AssertionError("loading compiled something")

    monkeypatch.setattr(cuda_compile, "compile_cubin", no_compiler)
    loaded = tc.load(path)
    assert isinstance(loaded, CudaGraphModule) and loaded.arch == "sm_80"
    assert loaded.cubins == mod.cubins
    assert loaded.resource_usage == mod.resource_usage
    for arch, cubin in loaded.cubins.items():
        assert int.from_bytes(cubin.data[48:52], "little") >> 8 & 0xFF == int(arch[3:])
        assert cubin.compiler in cuda_compile.COMPILERS
    _same_plan(loaded.plan, mod.plan)
    assert loaded.sources == mod.sources and loaded.get_source() == mod.get_source()
    assert (loaded.inputs, loaded.outputs) == (mod.inputs, mod.outputs)
    if cuda_status() != "ready":
        with pytest.raises(RuntimeError, match=r"cannot run CUDA kernels here .*target='cuda-emu'"):
            loaded(*[rnd(np.random.default_rng(0), *t.shape) for t in loaded.inputs])


@needs_compiler
def test_loaded_cuda_model_runs_through_a_host_driver(tmp_path, monkeypatch):
    """The loaded cubin, launch list, buffers and output copies, run by _HostDriver (each
    launch on cuda-emu) in place of pycuda; checks the launches against the CPU build."""
    g = MODELS["share"](np.random.default_rng(3))
    cpu = tc.compile(g)
    loaded = tc.load(tc.compile(g, target="cuda -arch=sm_80").save(tmp_path / "share.tcm"))
    driver = install_host_driver(monkeypatch, loaded)
    monkeypatch.setattr("tensorc.driver._default_arch", lambda: "sm_86")  # runs sm_80 SASS
    loaded.poison_storage = True
    x = rnd(np.random.default_rng(25), 1, 8, 6, 6)
    for out, a, b in zip(loaded.outputs, loaded(x), cpu(x)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=out.name)
    assert driver.launched == [k.name for c in loaded.plan.calls
                               for k in loaded.sources[c.func].kernels]
    assert set(loaded.cubins) == {"sm_80"}  # nothing compiled for the sm_86 device


@needs_compiler
def test_cuda_file_in_a_fresh_process_without_gpu(tmp_path):
    mod = tc.compile(MODELS["mlp"](np.random.default_rng(3)), target="cuda -arch=sm_80")
    mod.save(tmp_path / "mlp.tcm")
    out = _run_in_fresh_process("""
        import json, numpy as np, tensorc as tc
        from tensorc.runtime.cuda_module import cuda_status
        mod = tc.load("mlp.tcm")
        print(json.dumps(mod.resource_usage, sort_keys=True))
        if cuda_status() != "ready":
            try:
                mod(np.ones((17, 32), "float32"))
            except RuntimeError as e:
                print("refused:", "target='cuda-emu'" in str(e))
        """, tmp_path)
    lines = out.splitlines()
    assert json.loads(lines[0]) == mod.resource_usage
    if cuda_status() != "ready":
        assert lines[1] == "refused: True"


def test_which_cubin_a_gpu_runs():
    runs = cuda_graph_module._runs_on
    assert runs("sm_80", "sm_80") and runs("sm_80", "sm_86") and runs("sm_120", "sm_121")
    assert not runs("sm_86", "sm_80") and not runs("sm_80", "sm_90")
    # an architecture-specific cubin runs on exactly its GPU (which reports plain sm_XX)
    assert runs("sm_90a", "sm_90") and not runs("sm_100a", "sm_103")


# -- damaged files -------------------------------------------------------------------------------

def _rewrite(src_path, dst_path, change):
    with zipfile.ZipFile(src_path) as src, zipfile.ZipFile(dst_path, "w") as dst:
        for name in src.namelist():
            data = change(name, src.read(name))
            if data is not None:
                dst.writestr(name, data)
    return dst_path


def test_damaged_or_foreign_files_are_refused_by_name(tmp_path):
    path = tc.compile(mlp(np.random.default_rng(0))[0], target="cuda-emu").save(
        tmp_path / "m.tcm")
    with pytest.raises(FileNotFoundError, match="no model file"):
        tc.load(tmp_path / "missing.tcm")
    no_meta = _rewrite(path, tmp_path / "a.tcm", lambda n, d: None if n == "model.json" else d)
    with pytest.raises(ValueError, match="not a saved tensorc CUDA model"):
        tc.load(no_meta)

    def bump(name, data):
        if name != "model.json":
            return data
        meta = json.loads(data)
        meta["format_version"] = 99
        return json.dumps(meta)

    with pytest.raises(ValueError, match="version 99 is not 'tensorc-cuda-model' version 1"):
        tc.load(_rewrite(path, tmp_path / "b.tcm", bump))
    wrong_const = _rewrite(path, tmp_path / "c.tcm", lambda n, d: _npy(np.ones(3, "float64"))
                           if n == "const/0.npy" else d)
    with pytest.raises(ValueError, match=r"constant '.*' is float64\[3\] in const/0.npy"):
        tc.load(wrong_const)


@needs_compiler
def test_a_cubin_that_is_not_one_is_refused(tmp_path):
    path = tc.compile(mlp(np.random.default_rng(0))[0], target="cuda -arch=sm_80").save(
        tmp_path / "m.tcm")
    bad = _rewrite(path, tmp_path / "bad.tcm",
                   lambda n, d: b"\x7fELF\x02" + bytes(64) if n.endswith(".cubin") else d)
    with pytest.raises(ValueError, match=r"cubin/sm_80.cubin \(the sm_80 kernels\) is not a "
                                         "CUDA cubin"):
        tc.load(bad)


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()
