"""Value semantics of the LLVM backend (docs/semantics.md) against numpy, scalar and vector."""
import math

import numpy as np
import pytest

from tensorc.codegen import build_module
from tensorc.ir import dtype as dt
from tensorc.ir import expr as E
from tensorc.ir import stmt as S
from tensorc.ir.op import const

N = 64
RNG = np.random.default_rng(0)


def elementwise(name, fn, in_dtypes, out_dtype, lanes=1, n=N):
    """out[i] = fn(in0[i], in1[i], ...), vectorized ``lanes`` wide."""
    params = [S.BufferDecl(f"in{k}", (n,), d, E.Var(f"in{k}", "handle"))
              for k, d in enumerate(in_dtypes)]
    params.append(S.BufferDecl("out", (n,), out_dtype, E.Var("out", "handle")))
    i = E.Var("i")
    idx = i if lanes == 1 else E.Ramp(f"int32x{lanes}", i * lanes, const(1), lanes)
    loads = [E.Load(dt.with_lanes(d, lanes), p.data, idx) for d, p in zip(in_dtypes, params)]
    body = S.For(i, const(0), const(n // lanes), "serial", S.Store(params[-1].data, fn(*loads), idx))
    return S.PrimFunc(name, tuple(params), body, (("output_params", (len(in_dtypes),)),))


def call(name):
    return lambda *xs: E.Call(xs[0].dtype, name, xs)


def _halves(lo, hi):
    """Random values plus exact halves, where rounding modes differ."""
    x = RNG.uniform(lo, hi, N)
    x[: N // 2] = np.round(x[: N // 2] * 2) / 2
    return x


def _erf(x):
    return np.vectorize(math.erf)(x)


# name -> (input generators, float64 reference, exact?)
UNARY_DOMAIN = (-5, 5)
INTRINSICS = {
    "exp": ([UNARY_DOMAIN], np.exp, False),
    "exp2": ([UNARY_DOMAIN], np.exp2, False),
    "expm1": ([UNARY_DOMAIN], np.expm1, False),
    "log": ([(0.01, 20)], np.log, False),
    "log2": ([(0.01, 20)], np.log2, False),
    "log1p": ([(-0.9, 20)], np.log1p, False),
    "sqrt": ([(0, 20)], np.sqrt, False),
    "rsqrt": ([(0.01, 20)], lambda x: 1 / np.sqrt(x), False),
    "tanh": ([UNARY_DOMAIN], np.tanh, False),
    "sigmoid": ([(-10, 10)], lambda x: 1 / (1 + np.exp(-x)), False),
    "erf": ([(-3, 3)], _erf, False),
    "sin": ([(-10, 10)], np.sin, False),
    "cos": ([(-10, 10)], np.cos, False),
    "pow": ([(0.1, 4), (-3, 3)], np.power, False),
    "floor": (["halves"], np.floor, True),
    "ceil": (["halves"], np.ceil, True),
    "round": (["halves"], np.round, True),
    "trunc": (["halves"], np.trunc, True),
    "fabs": (["halves"], np.abs, True),
    "fmod": (["halves", "divisor"], np.fmod, True),
    "fmod_floor": (["halves", "divisor"], np.remainder, True),
}
CONFIGS = [("float32", 1), ("float32", 8), ("float64", 1), ("float64", 4), ("float16", 8)]


def _inputs(name, dtype):
    out = []
    for spec in INTRINSICS[name][0]:
        if spec == "halves":
            x = _halves(-10, 10)
        elif spec == "divisor":
            x = RNG.choice([-2.5, -2.0, -0.5, 0.5, 1.5, 2.0, 3.0], N)
        else:
            x = RNG.uniform(*spec, N)
        out.append(x.astype(dtype))
    if name.startswith("fmod"):
        out[0][:4] = [4.0, -4.0, 6.0, -0.0]  # exact multiples: the sign of a zero result
        out[1][:4] = [2.0, 2.0, -2.0, 2.0]
    return out


@pytest.fixture(scope="module")
def intrinsic_module():
    funcs = [elementwise(f"{name}_{dtype}_{lanes}", call(name), [dtype] * len(spec[0]), dtype,
                         lanes)
             for name, spec in INTRINSICS.items() for dtype, lanes in CONFIGS]
    return build_module(funcs, funcs[0].name)


@pytest.mark.parametrize("dtype,lanes", CONFIGS)
@pytest.mark.parametrize("name", list(INTRINSICS))
def test_intrinsic_matches_numpy(intrinsic_module, name, dtype, lanes):
    args = _inputs(name, dtype)
    out = np.empty(N, dtype)
    intrinsic_module.get_function(f"{name}_{dtype}_{lanes}")(*args, out)
    _, ref, exact = INTRINSICS[name]
    if exact:
        # numpy computes float16 through float32 too, so the results agree bit for bit.
        expected = ref(*args)
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(np.signbit(out), np.signbit(expected))
        return
    expected = ref(*(a.astype("float64") for a in args))
    tol = {"float16": 2e-3, "float32": 2e-6, "float64": 1e-13}[dtype]
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


INT_TYPES = ["int8", "int32", "int64", "uint8", "uint32"]


def _int_operands(dtype):
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -1000), min(info.max, 1000)
    a = RNG.integers(lo, hi, N, endpoint=True).astype(dtype)
    b = RNG.integers(lo, hi, N, endpoint=True).astype(dtype)
    b[b == 0] = 7
    if info.min < 0:
        a[:6] = [-7, 7, -7, 7, info.min, info.min]
        b[:6] = [2, -2, -2, 2, -1, 1]
    return a, b


@pytest.mark.parametrize("lanes", [1, 8])
@pytest.mark.parametrize("dtype", INT_TYPES)
def test_integer_floordiv_floormod(dtype, lanes):
    vt = dt.with_lanes(dtype, lanes)
    funcs = [elementwise("div", lambda a, b: E.FloorDiv(vt, a, b), [dtype] * 2, dtype, lanes),
             elementwise("mod", lambda a, b: E.FloorMod(vt, a, b), [dtype] * 2, dtype, lanes)]
    mod = build_module(funcs, "div")
    a, b = _int_operands(dtype)
    q, r = np.empty(N, dtype), np.empty(N, dtype)
    mod.get_function("div")(a, b, q)
    mod.get_function("mod")(a, b, r)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(q, np.floor_divide(a, b))
        np.testing.assert_array_equal(r, np.remainder(a, b))


@pytest.mark.parametrize("divisor", [3, -3, 1, -1, 8, -8])
def test_floordiv_by_constant(divisor):
    def by_const(cls):
        return lambda a: cls("int32x8", a, E.Broadcast("int32x8", const(divisor), 8))

    funcs = [elementwise("div", by_const(E.FloorDiv), ["int32"], "int32", 8),
             elementwise("mod", by_const(E.FloorMod), ["int32"], "int32", 8)]
    mod = build_module(funcs, "div")
    a = RNG.integers(-1000, 1000, N).astype("int32")
    a[0] = np.iinfo("int32").min
    q, r = np.empty(N, "int32"), np.empty(N, "int32")
    mod.get_function("div")(a, q)
    mod.get_function("mod")(a, r)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(q, a // np.int32(divisor))
        np.testing.assert_array_equal(r, a % np.int32(divisor))


def test_integer_division_by_zero_does_not_trap():
    mod = build_module([elementwise("div", lambda a, b: E.FloorDiv("int32", a, b),
                                    ["int32"] * 2, "int32")], "div")
    out = np.empty(N, "int32")
    mod(np.arange(N, dtype="int32"), np.zeros(N, "int32"), out)  # undefined value, no SIGFPE


SAT_VALUES = [-1e30, -1e10, -300.0, -129.5, -1.7, -0.5, 0.0, 0.5, 1.7, 127.9, 255.5, 300.0,
              65535.9, 1e10, 1e30, np.inf, -np.inf]


@pytest.mark.parametrize("dst", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64"])
@pytest.mark.parametrize("lanes", [1, 8])
def test_float_to_int_casts_saturate(dst, lanes):
    n = 24
    mod = build_module([elementwise("cast", lambda x: E.Cast(dt.with_lanes(dst, lanes), x),
                                    ["float32"], dst, lanes, n=n)], "cast")
    values = np.array((SAT_VALUES + [np.nan] * n)[:n], "float32")
    out = np.empty(n, dst)
    mod(values, out)
    info = np.iinfo(dst)
    expected = [0 if math.isnan(v) else
                info.max if v >= info.max else info.min if v <= info.min else int(v)
                for v in values.tolist()]
    assert out.tolist() == expected


@pytest.mark.parametrize("src,dst", [("int32", "int8"), ("int8", "int32"), ("uint8", "int32"),
                                     ("int32", "uint16"), ("int64", "float32"),
                                     ("uint32", "float64"), ("float64", "float16"),
                                     ("float16", "float64"), ("float32", "bool"),
                                     ("int32", "bool"), ("bool", "float32"), ("bool", "int32")])
def test_casts_match_numpy(src, dst):
    mod = build_module([elementwise("cast", lambda x: E.Cast(dt.with_lanes(dst, 8), x), [src], dst,
                                    8)], "cast")
    if dt.is_float(src):
        x = RNG.uniform(-1000, 1000, N).astype(src)
        x[:4] = [0.0, -0.0, np.nan, 0.25]
    elif src == "bool":
        x = RNG.random(N) > 0.5
    else:
        info = np.iinfo(src)
        x = RNG.integers(info.min, info.max, N, endpoint=True).astype(src)
        x[:2] = 0
    out = np.empty(N, dst)
    mod(x, out)
    np.testing.assert_array_equal(out, x.astype(dst))


@pytest.mark.parametrize("lanes", [1, 8])
def test_float_min_max_propagate_nan(lanes):
    vt = dt.with_lanes("float32", lanes)
    funcs = [elementwise("mn", lambda a, b: E.Min(vt, a, b), ["float32"] * 2, "float32", lanes),
             elementwise("mx", lambda a, b: E.Max(vt, a, b), ["float32"] * 2, "float32", lanes)]
    mod = build_module(funcs, "mn")
    a = RNG.standard_normal(N).astype("float32")
    b = RNG.standard_normal(N).astype("float32")
    a[::5], b[::7] = np.nan, np.nan
    lo, hi = np.empty(N, "float32"), np.empty(N, "float32")
    mod.get_function("mn")(a, b, lo)
    mod.get_function("mx")(a, b, hi)
    np.testing.assert_array_equal(lo, np.minimum(a, b))
    np.testing.assert_array_equal(hi, np.maximum(a, b))


@pytest.mark.parametrize("dtype", ["int32", "uint8"])
def test_integer_min_max_use_the_signedness(dtype):
    funcs = [elementwise("mn", lambda a, b: E.Min(dtype, a, b), [dtype] * 2, dtype),
             elementwise("mx", lambda a, b: E.Max(dtype, a, b), [dtype] * 2, dtype)]
    mod = build_module(funcs, "mn")
    a, b = _int_operands(dtype)
    lo, hi = np.empty(N, dtype), np.empty(N, dtype)
    mod.get_function("mn")(a, b, lo)
    mod.get_function("mx")(a, b, hi)
    np.testing.assert_array_equal(lo, np.minimum(a, b))
    np.testing.assert_array_equal(hi, np.maximum(a, b))


CMPS = {E.EQ: np.equal, E.NE: np.not_equal, E.LT: np.less, E.LE: np.less_equal,
        E.GT: np.greater, E.GE: np.greater_equal}


@pytest.mark.parametrize("dtype", ["float32", "int16", "uint32"])
def test_comparisons(dtype):
    funcs = [elementwise(cls.__name__, lambda a, b, cls=cls: cls("boolx8", a, b), [dtype] * 2,
                         "bool", 8) for cls in CMPS]
    mod = build_module(funcs, "EQ")
    if dtype == "float32":
        a = RNG.integers(-3, 3, N).astype(dtype)
        b = RNG.integers(-3, 3, N).astype(dtype)
        a[::6] = np.nan
    else:
        a, b = (RNG.integers(0, 5, N).astype(dtype) for _ in range(2))
    for cls, ref in CMPS.items():
        out = np.empty(N, bool)
        mod.get_function(cls.__name__)(a, b, out)
        np.testing.assert_array_equal(out, ref(a, b), err_msg=cls.__name__)


def test_let_and_ramp_with_a_variable_stride():
    """out[i] = let s = in[i] in s * s + ramp-derived lane numbers (runtime stride)."""
    def fn(x):
        s = E.Var("s", "float32x8")
        stride = E.Cast("int32", E.Load("float32", x.buffer, const(0)))
        lanes = E.Ramp("int32x8", const(0), stride, 8)
        return E.Let("float32x8", s, x, s * s + E.Cast("float32x8", lanes))

    f = elementwise("let", fn, ["float32"], "float32", 8)
    mod = build_module([f], "let")
    x = RNG.uniform(1, 3, N).astype("float32")
    x[0] = 2.0
    out = np.empty(N, "float32")
    mod(x, out)
    np.testing.assert_allclose(out, x * x + np.tile(np.arange(8) * 2, N // 8), rtol=1e-6)


def test_fast_math_target_relaxes_float_flags():
    f = elementwise("axpy", lambda a, b: a * b + b, ["float32"] * 2, "float32", 8)
    strict = build_module([f], "axpy")
    fast = build_module([f], "axpy", target="llvm -fast-math")
    assert "fmul contract" in strict.get_source("ll-unoptimized")
    assert "fmul fast" in fast.get_source("ll-unoptimized")
    a, b = RNG.random(N).astype("float32"), RNG.random(N).astype("float32")
    out = np.empty(N, "float32")
    fast(a, b, out)
    np.testing.assert_allclose(out, a * b + b, rtol=1e-6)
