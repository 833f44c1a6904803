"""Target strings and the host description."""
import numpy as np
import pytest

from tensorc.codegen import build_module, host, parse
from tensorc.ir import expr as E
from tensorc.ir import stmt as S
from tensorc.ir.op import const


def test_host_is_detected_not_assumed():
    h = host()
    assert h.cpu and h.triple and h.features
    expected = 512 if h.has_feature("avx512f") else 256 if h.has_feature("avx") else 128
    assert h.vector_bits == expected
    assert h.vector_lanes_float32 == expected // 32
    assert parse("llvm") == h
    assert parse(str(h)) == h


def test_explicit_cpu_and_features():
    t = parse("llvm -mcpu=skylake-avx512 -mattr=+avx512f,+avx2 -fast-math")
    assert (t.cpu, t.features, t.fast_math) == ("skylake-avx512", ("+avx512f", "+avx2"), True)
    assert t.vector_bits == 512 and t.vector_registers == 32
    assert parse("llvm -mcpu=znver3 -mattr=+avx2").vector_registers == 16
    assert str(t) == "llvm -mcpu=skylake-avx512 -mattr=+avx512f,+avx2 -fast-math"
    assert parse("llvm -mcpu=x86-64").features == ()


@pytest.mark.parametrize("bad", ["cuda", "llvm -O3", "llvm -mattr=avx2", ""])
def test_bad_target_strings(bad):
    with pytest.raises(ValueError):
        parse(bad)


def test_baseline_target_runs_without_wide_vectors():
    if not host().triple.startswith("x86_64"):
        pytest.skip("x86-64 specific")
    o = S.BufferDecl("O", (64,), "float32", E.Var("O", "handle"))
    i = E.Var("i")
    idx = E.Ramp("int32x8", i * 8, const(1), 8)
    body = S.For(i, const(0), const(8), "serial",
                 S.Store(o.data, E.Cast("float32x8", idx) * 0.5, idx))
    f = S.PrimFunc("half", (o,), body, (("output_params", (0,)),))
    mod = build_module([f], "half", target="llvm -mcpu=x86-64")
    assert "ymm" not in mod.get_source("asm")
    out = np.empty(64, "float32")
    mod(out)
    np.testing.assert_array_equal(out, np.arange(64, dtype="float32") * 0.5)
