"""The numpy oracle against hand-written numpy, on random data and odd sizes: elementwise
computes, reductions, selects and padding, graphs of computes, and the errors it raises. Its
numerics (intrinsics, integer semantics, casts, float16) are in ``test_oracle_numerics``.

Every other test trusts ``evaluate``, so these compare it with independent formulations
(numpy expressions, Python scalar loops) rather than with anything in tensorc.
"""
import importlib
import time
import tracemalloc

import numpy as np
import pytest
from oracle_helpers import rand

from tensorc.ir import expr as E
from tensorc.ir.op import const
from tensorc.te import intrin as ti
from tensorc.te import operation as te
from tensorc.te.oracle import evaluate

# The module, not the function that tensorc.te re-exports under the same name.
ev_mod = importlib.import_module("tensorc.te.oracle")

SIZES = (1, 7, 33, 127)


@pytest.fixture
def small_chunks(monkeypatch):
    """Forces every compute through many tiny blocks, exercising the chunking paths."""
    monkeypatch.setattr(ev_mod, "CHUNK_ELEMS", 5)


# ---------------------------------------------------------------- elementwise

@pytest.mark.parametrize("m", SIZES)
@pytest.mark.parametrize("n", (1, 7, 33))
def test_elementwise_broadcasting(m, n):
    A = te.placeholder((m, n), name="A")
    b = te.placeholder((n,), name="b")
    c = te.placeholder((m, 1), name="c")
    C = te.compute((m, n), lambda i, j: A[i, j] * b[j] - c[i, 0] / 3 + 1, name="C")
    av, bv, cv = rand((m, n)), rand((n,), seed=1), rand((m, 1), seed=2)
    out = evaluate(C, {A: av, "b": bv, c: cv})
    assert out.dtype == np.float32 and out.shape == (m, n)
    ref = av * bv - cv / np.float32(3) + np.float32(1)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


def test_elementwise_chunked_equals_unchunked(monkeypatch):
    A = te.placeholder((33, 7, 5), name="A")
    C = te.compute((33, 7, 5), lambda i, j, k: A[i, j, k] * (i - j + k).astype("float32"))
    av = rand((33, 7, 5))
    whole = evaluate(C, {A: av})
    monkeypatch.setattr(ev_mod, "CHUNK_ELEMS", 3)
    np.testing.assert_array_equal(evaluate(C, {A: av}), whole)
    i, j, k = np.indices((33, 7, 5))
    np.testing.assert_array_equal(whole, av * (i - j + k).astype(np.float32))


def test_scalar_output_and_scalar_placeholder():
    s = te.placeholder((), name="s")
    A = te.placeholder((7,), name="A")
    k = te.reduce_axis(7, "k")
    total = te.compute((), lambda: te.sum(A[k] * s[()], axis=k), name="total")
    av, sv = rand((7,)), np.array(1.5, np.float32)
    out = evaluate(total, {A: av, s: sv})
    assert out.shape == () and out.dtype == np.float32
    np.testing.assert_allclose(out, (av * sv).sum(), rtol=1e-6)


def test_shared_subexpression_under_different_masks():
    """One node used inside and outside a lazy branch: memoisation must not mix the two."""
    A = te.placeholder((33,), name="A")

    def body(i):
        x = A[i - 1]  # out of bounds at i == 0, so only the guarded use may see it there
        for _ in range(8):
            x = x * 0.5 + x * 0.5
        return ti.if_then_else(i >= 1, x, 0.0) + ti.if_then_else(i >= 5, x * 2, 1.0)
    C = te.compute((33,), body)
    av = rand((33,))
    prev = np.concatenate([[0], av[:-1]])
    i = np.arange(33)
    ref = np.where(i >= 1, prev, 0) + np.where(i >= 5, prev * 2, 1)
    np.testing.assert_array_equal(evaluate(C, {A: av}), ref.astype(np.float32))


def test_let_binding():
    A = te.placeholder((33,), name="A")
    v = E.Var("v", "float32")
    C = te.compute((33,), lambda i: E.Let("float32", v, A[i] * 2, v * v + v))
    av = rand((33,))
    np.testing.assert_allclose(evaluate(C, {A: av}), (2 * av) ** 2 + 2 * av, rtol=1e-6)


# ---------------------------------------------------------------- reductions

@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (7, 33, 1), (1, 127, 7), (33, 7, 127),
                                   (7, 1, 33)])
def test_matmul(m, n, k):
    A = te.placeholder((m, k), name="A")
    B = te.placeholder((k, n), name="B")
    r = te.reduce_axis(k, "r")
    C = te.compute((m, n), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    av, bv = rand((m, k)), rand((k, n), seed=3)
    out = evaluate(C, {A: av, B: bv})
    assert out.dtype == np.float32 and out.shape == (m, n)
    ref = av.astype(np.float64) @ bv.astype(np.float64)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_matmul_chunked(small_chunks):
    A = te.placeholder((7, 33), name="A")
    B = te.placeholder((33, 5), name="B")
    r = te.reduce_axis(33, "r")
    C = te.compute((7, 5), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    av, bv = rand((7, 33)), rand((33, 5), seed=3)
    np.testing.assert_allclose(evaluate(C, {A: av, B: bv}),
                               av.astype(np.float64) @ bv, rtol=1e-5, atol=1e-5)


def test_large_matmul_is_fast_and_memory_bounded():
    n = 1024
    A = te.placeholder((n, n), name="A")
    B = te.placeholder((n, n), name="B")
    r = te.reduce_axis(n, "r")
    C = te.compute((n, n), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    rng = np.random.default_rng(5)
    av = rng.random((n, n), dtype=np.float32) + np.float32(0.01)
    bv = rng.random((n, n), dtype=np.float32) + np.float32(0.01)
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        out = evaluate(C, {A: av, B: bv})
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 15, f"1024^3 matmul took {elapsed:.1f}s"
    assert peak < 160 * 2**20, f"peak numpy memory {peak / 2**20:.0f} MiB"
    ref = av.astype(np.float64) @ bv.astype(np.float64)
    np.testing.assert_allclose(out, ref, rtol=1e-5)


@pytest.mark.parametrize("n", SIZES)
def test_max_min_prod_with_where(n):
    A = te.placeholder((7, n), name="A")
    k = te.reduce_axis(n, "k")
    # Row i only looks at columns k <= i: row 0 of an n=1 case still has one point.
    Mx = te.compute((7,), lambda i: te.max(A[i, k], axis=k, where=k <= i), name="Mx")
    k2 = te.reduce_axis(n, "k2")
    Mn = te.compute((7,), lambda i: te.min(A[i, k2], axis=k2, where=k2 % 2 == 0), name="Mn")
    k3 = te.reduce_axis(n, "k3")
    Pr = te.compute((7,), lambda i: te.prod(A[i, k3], axis=k3, where=k3 >= i), name="Pr")
    av = rand((7, n), lo=0.8, hi=1.2)
    mx, mn, pr = evaluate([Mx, Mn, Pr], {A: av})
    cols = np.arange(n)
    for i in range(7):
        sel = av[i, cols <= i]
        assert mx[i] == (sel.max() if sel.size else -np.inf)
        assert mn[i] == av[i, cols % 2 == 0].min()
        sel = av[i, cols >= i].astype(np.float64)
        np.testing.assert_allclose(pr[i], sel.prod() if sel.size else 1.0, rtol=1e-5)


def test_integer_reductions_wrap_in_their_dtype():
    A = te.placeholder((5, 33), "int8", name="A")
    k = te.reduce_axis(33, "k")
    S = te.compute((5,), lambda i: te.sum(A[i, k], axis=k), name="S")
    P = te.compute((5,), lambda i: te.prod(A[i, k], axis=k), name="P")
    Mx = te.compute((5,), lambda i: te.max(A[i, k], axis=k, where=A[i, k] < 0), name="Mx")
    av = rand((5, 33), "int8", -120, 120)
    s, p, mx = evaluate([S, P, Mx], {A: av})
    assert s.dtype == p.dtype == mx.dtype == np.int8
    for i in range(5):
        assert s[i] == np.int8(((int(av[i].astype(np.int64).sum()) + 128) % 256) - 128)
        prod = 1
        for x in av[i]:
            prod = ((prod * int(x) + 128) % 256) - 128
        assert p[i] == prod
        neg = av[i][av[i] < 0]
        assert mx[i] == (neg.max() if neg.size else -128)


def test_nan_propagates_through_max_min():
    A = te.placeholder((3, 7), name="A")
    k = te.reduce_axis(7, "k")
    Mx = te.compute((3,), lambda i: te.max(A[i, k], axis=k), name="Mx")
    Mn = te.compute((3,), lambda i: te.min(A[i, k], axis=k), name="Mn")
    El = te.compute((3, 7), lambda i, j: ti.maximum(A[i, j], 0.0), name="El")
    av = rand((3, 7))
    av[1, 4] = np.nan
    mx, mn, el = evaluate([Mx, Mn, El], {A: av})
    assert np.isnan(mx[1]) and np.isnan(mn[1]) and np.isnan(el[1, 4])
    assert mx[0] == av[0].max() and mn[2] == av[2].min()


def test_multi_axis_reduction_with_offset_domain():
    """2-D convolution; the rows of the kernel run over a domain that does not start at 0."""
    H, W = 33, 7
    A = te.placeholder((H + 4, W + 2), name="A")
    K = te.placeholder((5, 3), name="K")
    ry = te.reduce_axis((2, 5), "ry")
    rx = te.reduce_axis(3, "rx")
    C = te.compute((H, W), lambda y, x: te.sum(A[y + ry, x + rx] * K[ry, rx], axis=[ry, rx]),
                   name="C")
    av, kv = rand((H + 4, W + 2)), rand((5, 3), seed=4)
    out = evaluate(C, {A: av, K: kv})
    ref = np.zeros((H, W))
    for dy in range(2, 5):
        for dx in range(3):
            ref += av[dy:dy + H, dx:dx + W].astype(np.float64) * kv[dy, dx]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def _mod_sum():
    return te.comm_reducer(lambda x, y: (x + y) % 1000, lambda t: const(0, t), name="mod_sum")


def _absmax():
    return te.comm_reducer(lambda x, y: ti.maximum(ti.abs(x), ti.abs(y)),
                           lambda t: const(0, t), name="absmax")


@pytest.mark.parametrize("n", SIZES)
def test_custom_comm_reducer(n):
    A = te.placeholder((7, n), "int32", name="A")
    F = te.placeholder((7, n), name="F")
    mod_sum, absmax = _mod_sum(), _absmax()
    k = te.reduce_axis(n, "k")
    S = te.compute((7,), lambda i: mod_sum(A[i, k], axis=k, where=k != 3), name="S")
    k2 = te.reduce_axis(n, "k2")
    M = te.compute((7,), lambda i: absmax(F[i, k2], axis=k2), name="M")
    av, fv = rand((7, n), "int32", 0, 10**6), rand((7, n), seed=9)
    s, m = evaluate([S, M], {A: av, F: fv})
    keep = np.arange(n) != 3
    np.testing.assert_array_equal(s, av[:, keep].astype(np.int64).sum(axis=1) % 1000)
    np.testing.assert_array_equal(m, np.abs(fv).max(axis=1))


def test_custom_reducer_chunked_and_to_scalar(small_chunks):
    A = te.placeholder((127, 3), "int32", name="A")
    mod_sum = _mod_sum()
    k, l = te.reduce_axis(127, "k"), te.reduce_axis(3, "l")
    S = te.compute((), lambda: mod_sum(A[k, l] * 3, axis=[k, l]), name="S")
    av = rand((127, 3), "int32", 0, 10**5)
    assert evaluate(S, {A: av}) == (av.astype(np.int64) * 3).sum() % 1000


# ---------------------------------------------------------------- select / padding

@pytest.mark.parametrize("n", (1, 7, 33))
def test_padding_reads_out_of_bounds_only_in_untaken_branch(n):
    A = te.placeholder((n, n + 2), name="A")
    P = te.compute((n + 2, n + 4), lambda i, j: ti.if_then_else(
        ti.all(i >= 1, i < n + 1, j >= 1, j < n + 3), A[i - 1, j - 1], -7.0), name="P")
    av = rand((n, n + 2))
    ref = np.full((n + 2, n + 4), -7.0, np.float32)
    ref[1:-1, 1:-1] = av
    np.testing.assert_array_equal(evaluate(P, {A: av}), ref)


def test_padded_convolution_via_where_reads_out_of_bounds_lazily(small_chunks):
    A = te.placeholder((33,), name="A")
    k = te.reduce_axis(3, "k")
    C = te.compute((33,), lambda i: te.sum(A[i + k - 1], axis=k,
                                           where=ti.all(i + k >= 1, i + k <= 33)), name="C")
    av = rand((33,))
    padded = np.concatenate([[0], av, [0]]).astype(np.float64)
    np.testing.assert_allclose(evaluate(C, {A: av}), padded[:-2] + padded[1:-1] + padded[2:],
                               rtol=1e-6, atol=1e-6)


def test_nested_select_and_lazy_division():
    A = te.placeholder((33,), "int32", name="A")
    C = te.compute((33,), lambda i: ti.if_then_else(
        i < 10, A[i] // (i - 10),                                 # never divides by zero
        ti.if_then_else(i < 32, A[i + 1] % (i - 40), A[i] // 2)), name="C")
    av = rand((33,), "int32", -1000, 1000)
    ref = [av[i] // (i - 10) if i < 10 else av[i + 1] % (i - 40) if i < 32 else av[i] // 2
           for i in range(33)]
    np.testing.assert_array_equal(evaluate(C, {A: av}), ref)


def test_bool_conditions_and_bool_tensors():
    A = te.placeholder((7, 33), name="A")
    M = te.placeholder((7, 33), "bool", name="M")
    Cond = te.compute((7, 33), lambda i, j: ti.any(A[i, j] > 0.5, ~M[i, j]) & (j % 3 != 0),
                      name="Cond")
    Out = te.compute((7, 33), lambda i, j: ti.if_then_else(Cond[i, j], A[i, j], -A[i, j]),
                     name="Out")
    av = rand((7, 33))
    mv = np.random.default_rng(1).random((7, 33)) < 0.5
    cond, out = evaluate([Cond, Out], {A: av, M: mv})
    ref = ((av > 0.5) | ~mv) & (np.arange(33) % 3 != 0)
    assert cond.dtype == np.bool_
    np.testing.assert_array_equal(cond, ref)
    np.testing.assert_array_equal(out, np.where(ref, av, -av))


# ---------------------------------------------------------------- graphs

def test_chained_and_diamond_graph():
    A = te.placeholder((33, 7), name="A")
    B = te.compute((33, 7), lambda i, j: A[i, j] * 2, name="B")
    C = te.compute((7, 33), lambda i, j: B[j, i] + 1, name="C")
    k = te.reduce_axis(33, "k")
    D = te.compute((7,), lambda i: te.sum(C[i, k] * B[k, i], axis=k), name="D")
    E_ = te.compute((7,), lambda i: D[i] - B[0, i], name="E")
    av = rand((33, 7))
    b, d, e = evaluate([B, D, E_], {"A": av})
    bref = av * 2
    dref = ((bref.T + 1).astype(np.float64) * bref.T).sum(axis=1)
    np.testing.assert_array_equal(b, bref)
    np.testing.assert_allclose(d, dref, rtol=1e-5)
    np.testing.assert_allclose(e, dref - bref[0], rtol=1e-5, atol=1e-5)


def test_long_chain_needs_no_deep_recursion():
    A = te.placeholder((7,), name="A")
    def step(prev):
        return te.compute((7,), lambda i: prev[i] + 1.0, name="step")
    t = A
    for _ in range(1500):
        t = step(t)
    av = rand((7,))
    np.testing.assert_allclose(evaluate(t, {A: av}), av + 1500, rtol=1e-5)


def test_results_are_fresh_copies():
    A = te.placeholder((7,), name="A")
    av = rand((7,))
    out = evaluate(A, {A: av})
    out[:] = 0
    assert (av != 0).all()


# ---------------------------------------------------------------- errors

def test_missing_placeholder():
    A = te.placeholder((7,), name="A")
    B = te.placeholder((7,), name="Bmissing")
    C = te.compute((7,), lambda i: A[i] + B[i])
    with pytest.raises(ValueError, match=r"Bmissing.*\(7,\).*float32"):
        evaluate(C, {A: rand((7,))})


def test_wrong_shape_and_dtype():
    A = te.placeholder((7, 33), name="Ashape")
    C = te.compute((7, 33), lambda i, j: A[i, j] + 1)
    with pytest.raises(ValueError, match=r"Ashape.*\(7, 33\).*\(33, 7\)"):
        evaluate(C, {A: rand((33, 7))})
    with pytest.raises(TypeError, match=r"Ashape.*float32.*float64"):
        evaluate(C, {A: rand((7, 33), "float64")})
    with pytest.raises(TypeError, match=r"Ashape.*list"):
        evaluate(C, {A: [[1.0] * 33] * 7})


def test_ambiguous_name_in_feed():
    A1 = te.placeholder((7,), name="X")
    A2 = te.placeholder((7,), name="X")
    C = te.compute((7,), lambda i: A1[i] + A2[i])
    with pytest.raises(ValueError, match="named 'X'"):
        evaluate(C, {"X": rand((7,))})
    np.testing.assert_array_equal(evaluate(C, {A1: rand((7,)), A2: rand((7,))}),
                                  rand((7,)) * 2)


def test_out_of_bounds_read_in_taken_branch():
    A = te.placeholder((7, 33), name="Asrc")
    C = te.compute((7, 33), lambda i, j: ti.if_then_else(j > 3, A[i, j + 2], A[i, j]),
                   name="Cdst")
    with pytest.raises(IndexError, match=r"Cdst.*Asrc.*dimension 1.*\[6, 34\].*\[0, 32\]"):
        evaluate(C, {A: rand((7, 33))})


def test_out_of_bounds_gather():
    """A data-dependent index cannot be checked when the compute is built, only here."""
    A = te.placeholder((7, 33), name="Asrc")
    idx = te.placeholder((5,), "int32", name="idx")
    D = te.compute((5,), lambda i: A[idx[i], i], name="Ddst")
    with pytest.raises(IndexError, match=r"Ddst.*Asrc.*dimension 0.*\[-1, 9\]"):
        evaluate(D, {A: rand((7, 33)), idx: np.array([0, 9, 3, -1, 6], np.int32)})
    iv = np.array([6, 0, 3, 1, 2], np.int32)
    np.testing.assert_array_equal(evaluate(D, {A: (av := rand((7, 33))), idx: iv}),
                                  av[iv, np.arange(5)])


def test_out_of_bounds_read_in_reduction():
    A = te.placeholder((7,), name="Asrc")
    k = te.reduce_axis(3, "k")
    # The condition does not guard the read (so te.compute cannot reject it statically).
    C = te.compute((7,), lambda i: te.sum(A[i + k], axis=k, where=i + k >= 0), name="Csum")
    with pytest.raises(IndexError, match=r"Csum.*Asrc.*dimension 0"):
        evaluate(C, {A: rand((7,))})


def test_division_by_zero_names_the_tensor():
    A = te.placeholder((7,), "int32", name="A")
    C = te.compute((7,), lambda i: A[i] // (i - 3), name="Cdiv")
    with pytest.raises(ZeroDivisionError, match="Cdiv"):
        evaluate(C, {A: rand((7,), "int32", -9, 9)})
    F = te.placeholder((7,), name="F")
    G = te.compute((7,), lambda i: F[i] / (F[i] - F[i]), name="G")  # IEEE: no error
    assert np.isinf(evaluate(G, {F: rand((7,))})).all()


def test_unbound_variable():
    n = te.var("n")
    A = te.placeholder((7,), "int32", name="A")
    C = te.compute((7,), lambda i: A[i] + n, name="Cvar")
    with pytest.raises(ValueError, match=r"Cvar.*'n'"):
        evaluate(C, {A: rand((7,), "int32", 1, 5)})
