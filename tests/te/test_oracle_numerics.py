"""The numpy oracle's numerics against hand-written numpy: float intrinsics, integer
wrap-around and floor division, casts (saturating float-to-int, the rest) and float16
rounding. Like ``test_oracle``, every expectation is an independent formulation (numpy, Python
scalars), never tensorc.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle_helpers import rand

from tensorc.te import intrin as ti
from tensorc.te import operation as te
from tensorc.te.oracle import evaluate

# ---------------------------------------------------------------- intrinsics

def _vec(f):
    return np.vectorize(f, otypes=[np.float64])


UNARY = {
    "exp": (np.exp, -5, 5), "log": (np.log, 0.1, 10), "sqrt": (np.sqrt, 0.1, 10),
    "rsqrt": (lambda x: 1 / np.sqrt(x), 0.1, 10), "tanh": (np.tanh, -5, 5),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), -10, 10), "erf": (_vec(math.erf), -3, 3),
    "floor": (np.floor, -10, 10), "ceil": (np.ceil, -10, 10), "round": (np.round, -10, 10),
    "trunc": (np.trunc, -10, 10), "sin": (np.sin, -10, 10), "cos": (np.cos, -10, 10),
    "exp2": (np.exp2, -5, 5), "log2": (np.log2, 0.1, 10), "log1p": (np.log1p, -0.5, 5),
    "expm1": (np.expm1, -5, 5),
}


@pytest.mark.parametrize("dtype", ("float32", "float64"))
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_intrinsics(name, dtype):
    ref_fn, lo, hi = UNARY[name]
    A = te.placeholder((7, 33), dtype, name="A")
    C = te.compute((7, 33), lambda i, j: getattr(ti, name)(A[i, j]), name=name)
    av = rand((7, 33), dtype, lo, hi)
    out = evaluate(C, {A: av})
    assert out.dtype == np.dtype(dtype)
    tol = 2e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(out, ref_fn(av.astype(np.float64)), rtol=tol, atol=tol)


def test_round_half_to_even_and_fabs():
    A = te.placeholder((8,), name="A")
    R = te.compute((8,), lambda i: ti.round(A[i]), name="R")
    F = te.compute((8,), lambda i: ti.abs(A[i]), name="F")
    av = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 3.5, -7.25, 4.5], np.float32)
    r, f = evaluate([R, F], {A: av})
    np.testing.assert_array_equal(r, [0, 2, 2, -0.0, -2, 4, -7, 4])
    np.testing.assert_array_equal(f, np.abs(av))


def test_binary_float_intrinsics():
    A = te.placeholder((127,), name="A")
    B = te.placeholder((127,), name="B")
    Pw = te.compute((127,), lambda i: ti.power(ti.abs(A[i]), B[i]), name="Pw")
    Fm = te.compute((127,), lambda i: ti.fmod(A[i] * 5, B[i]), name="Fm")
    Fl = te.compute((127,), lambda i: (A[i] * 5) % B[i], name="Fl")
    av, bv = rand((127,)), rand((127,), seed=8)
    pw, fm, fl = evaluate([Pw, Fm, Fl], {A: av, B: bv})
    a5, b64 = (av * np.float32(5)).astype(np.float64), bv.astype(np.float64)
    np.testing.assert_allclose(pw, np.abs(av.astype(np.float64)) ** b64, rtol=2e-6)
    np.testing.assert_allclose(fm, [math.fmod(x, y) for x, y in zip(a5, b64)], rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(fl, [x % y for x, y in zip(a5, b64)], rtol=1e-5, atol=1e-5)
    assert (np.sign(fm[fm != 0]) == np.sign(a5[fm != 0])).all()   # C: sign of dividend
    assert (np.sign(fl[fl != 0]) == np.sign(b64[fl != 0])).all()  # Python: sign of divisor


# ---------------------------------------------------------------- integer semantics

def test_int_overflow_wraps():
    A = te.placeholder((33,), "int8", name="A")
    B = te.placeholder((33,), "int32", name="B")
    C8 = te.compute((33,), lambda i: A[i] * A[i] + 100, name="C8")
    C32 = te.compute((33,), lambda i: B[i] * 65537 + (2**31 - 1), name="C32")
    U = te.compute((33,), lambda i: A[i].astype("uint8") - 200, name="U")
    with pytest.raises(OverflowError, match="300 does not fit int8"):
        te.compute((33,), lambda i: A[i] + 300, name="L")  # numpy refuses it too
    av, bv = rand((33,), "int8", -128, 127), rand((33,), "int32", -2**31, 2**31 - 1)
    c8, c32, u = evaluate([C8, C32, U], {A: av, B: bv})
    assert c8.dtype == np.int8 and c32.dtype == np.int32 and u.dtype == np.uint8

    def wrap(x, bits, signed=True):
        x &= (1 << bits) - 1
        return x - (1 << bits) if signed and x >= 1 << (bits - 1) else x
    assert c8.tolist() == [wrap(int(a) * int(a) + 100, 8) for a in av]
    assert c32.tolist() == [wrap(int(b) * 65537 + 2**31 - 1, 32) for b in bv]
    assert u.tolist() == [wrap(int(a) - 200, 8, signed=False) for a in av]


@pytest.mark.parametrize("dtype", ("int8", "int32", "int64"))
def test_negative_floordiv_floormod(dtype):
    A = te.placeholder((127,), dtype, name="A")
    B = te.placeholder((127,), dtype, name="B")
    D = te.compute((127,), lambda i: A[i] // B[i], name="D")
    M = te.compute((127,), lambda i: A[i] % B[i], name="M")
    T = te.compute((127,), lambda i: A[i] / B[i], name="T")  # integer / is //
    K = te.compute((127,), lambda i: A[i] // -3 + A[i] % -3, name="K")
    av, bv = rand((127,), dtype, -100, 100), rand((127,), dtype, -9, 9, seed=6)
    d, m, t, k = evaluate([D, M, T, K], {A: av, B: bv})
    pa, pb = av.tolist(), bv.tolist()
    assert d.tolist() == [x // y for x, y in zip(pa, pb)]
    assert t.tolist() == [x // y for x, y in zip(pa, pb)]
    assert m.tolist() == [x % y for x, y in zip(pa, pb)]
    assert k.tolist() == [x // -3 + x % -3 for x in pa]


# ---------------------------------------------------------------- casts and float16

def _saturating(x, bits, signed):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if math.isnan(x):
        return 0
    if math.isinf(x):
        return hi if x > 0 else lo
    return min(max(math.trunc(x), lo), hi)


SPECIAL = [np.nan, np.inf, -np.inf, 1e10, -1e10, 2.5, -2.5, 127.9, -128.9, 300.0, -0.7, 255.5,
           2147483520.0, 2.0**31, -2.0**31, 2.0**63, 1.8e19, -3e38, 65535.9, 0.0]


@pytest.mark.parametrize("target", ("int8", "uint8", "int16", "uint16", "int32", "uint32",
                                    "int64", "uint64"))
@pytest.mark.parametrize("src", ("float16", "float32", "float64"))
def test_float_to_int_casts_saturate(src, target):
    with np.errstate(over="ignore"):
        xv = np.array(SPECIAL, dtype=src)
    X = te.placeholder((len(SPECIAL),), src, name="X")
    C = te.compute(X.shape, lambda i: X[i].astype(target), name="C")
    out = evaluate(C, {X: xv})
    t = np.dtype(target)
    assert out.dtype == t
    assert out.tolist() == [_saturating(float(x), t.itemsize * 8, t.kind == "i") for x in xv]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1,
                max_size=33))
def test_float32_to_int32_cast_property(values):
    xv = np.array(values, np.float32)
    X = te.placeholder((len(values),), name="X")
    C = te.compute(X.shape, lambda i: X[i].astype("int32"), name="C")
    assert evaluate(C, {X: xv}).tolist() == [_saturating(float(x), 32, True) for x in xv]


def test_other_casts():
    X = te.placeholder((6,), name="X")
    I = te.placeholder((6,), "int32", name="I")
    ToBool = te.compute((6,), lambda i: X[i].astype("bool"), name="ToBool")
    IntBool = te.compute((6,), lambda i: I[i].astype("bool"), name="IntBool")
    Narrow = te.compute((6,), lambda i: I[i].astype("int8"), name="Narrow")
    Half = te.compute((6,), lambda i: (X[i] * 1e4).astype("float16"), name="Half")
    BoolF = te.compute((6,), lambda i: (X[i] > 0).astype("float32") + I[i].astype("float32"),
                       name="BoolF")
    xv = np.array([0.0, -0.0, np.nan, 0.25, -3.0, 7.5], np.float32)
    iv = np.array([0, 1, -1, 300, -129, 2**31 - 1], np.int32)
    tb, ib, nw, hf, bf = evaluate([ToBool, IntBool, Narrow, Half, BoolF], {X: xv, I: iv})
    assert tb.tolist() == [False, False, True, True, True, True]
    assert ib.tolist() == [False, True, True, True, True, True]
    assert nw.tolist() == [0, 1, -1, 44, 127, -1]
    with np.errstate(over="ignore", invalid="ignore"):
        np.testing.assert_array_equal(hf, (xv * np.float32(1e4)).astype(np.float16))
    np.testing.assert_array_equal(bf, (xv > 0).astype(np.float32) + iv.astype(np.float32))


def test_float16_rounds_every_operation():
    A = te.placeholder((7, 33), "float16", name="A")
    B = te.placeholder((7, 33), "float16", name="B")
    C = te.compute((7, 33), lambda i, j: (A[i, j] * B[i, j] + 2.1) / A[i, j] - ti.exp(B[i, j]),
                   name="C")
    k = te.reduce_axis(33, "k")
    S = te.compute((7,), lambda i: te.sum(A[i, k] * B[i, k], axis=k), name="S")
    av, bv = rand((7, 33), "float16"), rand((7, 33), "float16", seed=2)
    c, s = evaluate([C, S], {A: av, B: bv})
    assert c.dtype == s.dtype == np.float16
    ref = (av * bv + np.float16(2.1)) / av - np.exp(bv)
    np.testing.assert_array_equal(c, ref)
    acc = np.zeros(7, np.float16)
    for j in range(33):
        acc = acc + av[:, j] * bv[:, j]  # a float16 loop: rounds after each multiply and add
    np.testing.assert_allclose(s.astype(np.float64), acc, rtol=0, atol=0.05)
    exact = (av.astype(np.float64) * bv).sum(axis=1)
    np.testing.assert_allclose(s, exact, rtol=1e-2, atol=0.05)
