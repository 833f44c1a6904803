"""CUDA compilers: NVRTC in-process (the [cuda] extra's nvidia-cuda-nvrtc) and nvcc, chosen by
argument, $TENSORC_CUDA_COMPILER or availability; both give a cubin for the architecture asked
for and ptxas's resource report, and agree on the generated kernels; cubins are cached per
compiler."""
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tensorc as tc  # noqa: E402
from cuda_helpers import bind, needs_nvcc  # noqa: E402, I001
from tensorc import te  # noqa: E402
from tensorc.codegen import cuda_compile, nvrtc  # noqa: E402
from tensorc.codegen.cuda import emit_cuda  # noqa: E402
from tensorc.codegen.cuda_compile import CudaCompileError, choose_compiler, compile_cubin  # noqa: E402
from test_cuda_codegen import SCHEDULES  # noqa: E402

needs_nvrtc = pytest.mark.skipif(not nvrtc.available(), reason="NVRTC is not installed (an "
                                 "optional extra: pip install nvidia-cuda-nvrtc)")


def cubin_sm(data):
    """The SM number an ELF ABI v8 cubin (CUDA 12 and later) is for: bits 8-15 of e_flags."""
    assert data[:4] == b"\x7fELF" and int.from_bytes(data[18:20], "little") == 190  # EM_CUDA
    assert data[8] >= 8, "older cubin ABI: the SM number is elsewhere in e_flags"
    return (int.from_bytes(data[48:52], "little") >> 8) & 0xFF


def mixed_types(n=777):
    """float16 and int64 inputs (<cuda_fp16.h>, int64_t) and a NaN-propagating max."""
    A = te.placeholder((n,), name="A", dtype="float16")
    Q = te.placeholder((n,), name="Q", dtype="int64")
    C = te.compute((n,), lambda i: te.max(A[i].astype("float32") * 2.0, Q[i].astype("float32")),
                   name="C")
    s = te.create_schedule(C.op)
    bx, tx = s[C].split(C.op.axis[0], factor=128)
    bind(s, C, bx, "blockIdx.x")
    bind(s, C, tx, "threadIdx.x")
    return s, [A, Q, C]


def _text(name):
    if name == "mixed_types":
        s, args = mixed_types()
    else:
        s, args, _ = SCHEDULES[name]()
    return emit_cuda(tc.lower(s, args, target="cuda"))


KERNELS = sorted(SCHEDULES) + ["mixed_types"]


# -- choosing a compiler -----------------------------------------------------------------------

@pytest.fixture
def no_nvrtc(monkeypatch):
    """NVRTC as on a machine without the wheel or a toolkit's libnvrtc."""
    monkeypatch.setattr(nvrtc, "_candidates", lambda: [])
    nvrtc._load.cache_clear()
    yield
    nvrtc._load.cache_clear()


def test_argument_then_environment_then_availability(monkeypatch):
    monkeypatch.delenv(cuda_compile.COMPILER_ENV, raising=False)
    auto = choose_compiler()
    assert auto == ("nvrtc" if nvrtc.available() else "nvcc")
    if shutil.which("nvcc"):
        monkeypatch.setenv(cuda_compile.COMPILER_ENV, "nvcc")
        assert choose_compiler() == "nvcc"
        if nvrtc.available():
            assert choose_compiler("nvrtc") == "nvrtc"
    monkeypatch.setenv(cuda_compile.COMPILER_ENV, "clang")
    with pytest.raises(ValueError, match=r"\$TENSORC_CUDA_COMPILER: unknown CUDA compiler "
                                         r"'clang'; expected one of 'nvrtc', 'nvcc'"):
        choose_compiler()
    with pytest.raises(ValueError, match="compiler: unknown CUDA compiler 'gcc'"):
        choose_compiler("gcc")


def test_without_nvrtc_nvcc_compiles_and_forcing_nvrtc_says_what_to_install(no_nvrtc,
                                                                           monkeypatch):
    monkeypatch.delenv(cuda_compile.COMPILER_ENV, raising=False)
    assert not nvrtc.available()
    with pytest.raises(nvrtc.NvrtcUnavailable, match="pip install nvidia-cuda-nvrtc"):
        choose_compiler("nvrtc")
    if shutil.which("nvcc"):
        assert choose_compiler() == "nvcc"
        f = tc.build(*SCHEDULES["elementwise"]()[:2], target="cuda")
        (usage,) = f.resource_usage.values()
        assert usage["registers"] > 0 and usage["spill_stores"] == 0
    monkeypatch.setenv("PATH", "")
    with pytest.raises(CudaCompileError, match="NVRTC is not installed .* nvcc is not on PATH"):
        choose_compiler()
    assert not cuda_compile.compiler_available()


# -- NVRTC -------------------------------------------------------------------------------------

@needs_nvrtc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name", KERNELS)
def test_nvrtc_compiles_generated_kernels(name, arch):
    src = _text(name)
    data, usage = compile_cubin(src.text, arch, "nvrtc")
    assert cubin_sm(data) == int(arch[3:])
    assert set(usage) == {k.name for k in src.kernels}
    for kernel, res in usage.items():
        assert res["spill_stores"] == 0 and res["spill_loads"] == 0, (kernel, res)
        assert 0 < res["registers"] <= 255
    assert {k: r["shared_bytes"] for k, r in usage.items()} == \
        {k.name: k.shared_bytes for k in src.kernels}


@needs_nvrtc
def test_nvrtc_through_build_and_environment(monkeypatch):
    monkeypatch.setenv(cuda_compile.COMPILER_ENV, "nvrtc")
    s, args, _ = SCHEDULES["tiled_matmul"]()
    f = tc.build(s, args, target="cuda -arch=sm_90")
    (usage,) = f.resource_usage.values()
    assert usage["shared_bytes"] == 2048
    assert cubin_sm(f._compile()[0]) == 90


@needs_nvrtc
def test_nvrtc_errors_name_the_line_and_the_architecture():
    text = 'extern "C" __global__ void k(float* a) {\n  a[0] = undefined_name;\n}\n'
    with pytest.raises(CudaCompileError, match=r'(?s)kernels.cu\(2\): error: identifier '
                                               r'"undefined_name" is undefined'):
        nvrtc.compile_cubin(text, "sm_80")
    with pytest.raises(CudaCompileError, match=r"cannot compile for sm_50; it supports .*sm_80"):
        nvrtc.compile_cubin(text, "sm_50")


@needs_nvrtc
def test_nvrtc_without_cuda_fp16_header_says_where_to_find_it(monkeypatch):
    monkeypatch.setattr(nvrtc, "include_dir", lambda: None)
    with pytest.raises(CudaCompileError, match=r'(?s)"cuda_fp16.h".*set CUDA_HOME'):
        nvrtc.compile_cubin(_text("mixed_types").text, "sm_80")


@needs_nvrtc
def test_cubins_are_cached_per_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("TENSORC_CACHE_DIR", str(tmp_path))
    text = _text("row_sum_shared").text
    first = compile_cubin(text, "sm_80", "nvrtc")

    def refuse(*args):
        raise AssertionError("compiled again instead of using the cache")

    monkeypatch.setattr(nvrtc, "compile_cubin", refuse)
    assert compile_cubin(text, "sm_80", "nvrtc") == first
    assert len(list(tmp_path.glob("cuda-*.cubin"))) == 1
    if shutil.which("nvcc"):
        compile_cubin(text, "sm_80", "nvcc")
        assert len(list(tmp_path.glob("cuda-*.cubin"))) == 2


# -- NVRTC and nvcc agree ----------------------------------------------------------------------

@needs_nvrtc
@needs_nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name", KERNELS)
def test_nvrtc_and_nvcc_agree_on_resources(name, arch):
    """Same kernels, registers, shared memory and spills. Each compiler runs its own ptxas
    (NVRTC's is built into libnvrtc), so registers could differ between far-apart versions;
    NVRTC 13.5 and nvcc 13.0 agree on every kernel here."""
    text = _text(name).text
    by_nvrtc, by_nvcc = compile_cubin(text, arch, "nvrtc"), compile_cubin(text, arch, "nvcc")
    assert by_nvrtc[1] == by_nvcc[1]
    assert cubin_sm(by_nvrtc[0]) == cubin_sm(by_nvcc[0]) == int(arch[3:])


@needs_nvrtc
@needs_nvcc
def test_nvrtc_and_nvcc_agree_on_a_whole_model(monkeypatch):
    sys.path.insert(0, str(Path(__file__).parents[1] / "graph"))
    from graph_helpers import mlp, residual_block
    rng = np.random.default_rng(3)
    graphs = [mlp(rng, batch=17, dims=(32, 48, 19))[0], residual_block(rng, c=8, hw=6)[0]]
    usage = {"nvrtc": {}, "nvcc": {}}
    for compiler in usage:
        monkeypatch.setenv(cuda_compile.COMPILER_ENV, compiler)
        for g in graphs:
            mod = tc.compile(g, target="cuda -arch=sm_80")
            assert mod.cubins["sm_80"].compiler == compiler
            usage[compiler].update(mod.resource_usage)
    assert usage["nvrtc"] == usage["nvcc"] and len(usage["nvrtc"]) == 5
