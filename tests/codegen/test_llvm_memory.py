"""Loads, stores, buffers and lazy selects of the LLVM backend, on PrimFuncs built by hand."""
import ctypes
import mmap

import numpy as np
import pytest

from tensorc.codegen import build_module, host
from tensorc.ir import expr as E
from tensorc.ir import stmt as S
from tensorc.ir.op import const

HUGE = 10 ** 12  # elements: an address this far out faults if it is ever touched


def buf(name, shape, dtype):
    return S.BufferDecl(name, tuple(shape), dtype, E.Var(name, "handle"))


def func(name, params, body, outputs):
    return S.PrimFunc(name, tuple(params), body, (("output_params", tuple(outputs)),))


def ramp(base, lanes, stride=1, dtype="int32"):
    return E.Ramp(f"{dtype}x{lanes}", base, const(stride, dtype), lanes)


def loop(var, extent, body, kind="serial"):
    return S.For(var, const(0, var.dtype), const(extent, var.dtype), kind, body)


def test_vector_add_uses_contiguous_vector_loads():
    n = 1024
    a, b, c = buf("A", (n,), "float32"), buf("B", (n,), "float32"), buf("C", (n,), "float32")
    i = E.Var("i")
    idx = ramp(i * 8, 8)
    body = loop(i, n // 8, S.Store(c.data, E.Load("float32x8", a.data, idx)
                                   + E.Load("float32x8", b.data, idx), idx))
    mod = build_module([func("vadd", [a, b, c], body, [2])], "vadd")
    x, y = np.random.rand(n).astype("float32"), np.random.rand(n).astype("float32")
    z = np.full(n, np.nan, "float32")
    mod(x, y, z)
    np.testing.assert_array_equal(z, x + y)
    ir = mod.get_source("ll-unoptimized")
    assert "load <8 x float>" in ir and "store <8 x float>" in ir and "gather" not in ir
    if host().has_feature("avx"):
        assert "ymm" in mod.get_source("asm")


def test_strided_gather_and_scatter():
    n = 64
    a, g, s = buf("A", (9 * n,), "float32"), buf("G", (n,), "float32"), buf("S", (2 * n,),
                                                                            "float32")
    i = E.Var("i")
    body = loop(i, n // 8, S.SeqStmt((
        S.Store(g.data, E.Load("float32x8", a.data, ramp(i * 72, 8, stride=9)), ramp(i * 8, 8)),
        S.Store(s.data, E.Load("float32x8", a.data, ramp(i * 8, 8)), ramp(i * 16, 8, stride=2)),
    )))
    mod = build_module([func("strided", [a, g, s], body, [1, 2])], "strided")
    x = np.random.rand(9 * n).astype("float32")
    out_g, out_s = np.empty(n, "float32"), np.full(2 * n, np.nan, "float32")
    mod(x, out_g, out_s)
    np.testing.assert_array_equal(out_g, x[::9])
    np.testing.assert_array_equal(out_s[::2], x[:n])
    assert np.isnan(out_s[1::2]).all()
    ir = mod.get_source("ll-unoptimized")
    assert "llvm.masked.gather" in ir and "llvm.masked.scatter" in ir


@pytest.mark.parametrize("stride", [2, 3, 4, 7, 8])
def test_small_stride_load_is_a_span_and_a_shuffle(stride):
    """The span ends at the last lane's element: the input below ends exactly there, in an
    mmap'd page followed by an unmapped one, so a wider load would fault."""
    lanes, groups = 8, 5
    n = groups * lanes * stride - (stride - 1)
    a, g = buf("A", (n,), "float32"), buf("G", (groups * lanes,), "float32")
    i = E.Var("i")
    body = loop(i, groups, S.Store(g.data, E.Load(f"float32x{lanes}", a.data,
                                                  ramp(i * lanes * stride, lanes, stride)),
                                   ramp(i * lanes, lanes)))
    mod = build_module([func("span", [a, g], body, [1])], "span")
    page = mmap.PAGESIZE
    region = mmap.mmap(-1, 2 * page)
    base = np.frombuffer(region, np.uint8)
    libc = ctypes.CDLL(None)
    addr = base.ctypes.data
    assert libc.mprotect(ctypes.c_void_p(addr + page), page, 0) == 0  # PROT_NONE
    try:
        x = base[page - 4 * n:page].view("float32")
        x[:] = np.random.rand(n).astype("float32")
        out = np.full(groups * lanes, np.nan, "float32")
        mod(x, out)
        np.testing.assert_array_equal(out, x[::stride])
    finally:
        libc.mprotect(ctypes.c_void_p(addr + page), page, 3)  # PROT_READ | PROT_WRITE
    ir = mod.get_source("ll-unoptimized")
    assert "shufflevector" in ir and "gather" not in ir


def test_broadcast_and_computed_vector_indices():
    n = 32
    a, idx, out1, out2 = (buf("A", (n,), "float32"), buf("IDX", (n,), "int32"),
                          buf("O1", (n,), "float32"), buf("O2", (n,), "float32"))
    i = E.Var("i")
    body = loop(i, n // 8, S.SeqStmt((
        S.Store(out1.data, E.Load("float32x8", a.data, E.Broadcast("int32x8", i, 8)),
                ramp(i * 8, 8)),
        S.Store(out2.data, E.Load("float32x8", a.data, E.Load("int32x8", idx.data,
                                                             ramp(i * 8, 8))), ramp(i * 8, 8)),
    )))
    mod = build_module([func("index", [a, idx, out1, out2], body, [2, 3])], "index")
    x = np.random.rand(n).astype("float32")
    perm = np.random.permutation(n).astype("int32")
    o1, o2 = np.empty(n, "float32"), np.empty(n, "float32")
    mod(x, perm, o1, o2)
    np.testing.assert_array_equal(o1, np.repeat(x[:n // 8], 8))
    np.testing.assert_array_equal(o2, x[perm])


@pytest.mark.parametrize("lanes", [1, 8])
def test_bool_is_stored_as_a_byte(lanes):
    n = 64
    a, b, m, out = (buf("A", (n,), "float32"), buf("B", (n,), "float32"), buf("M", (n,), "bool"),
                    buf("O", (n,), "bool"))
    i = E.Var("i")
    idx = i if lanes == 1 else ramp(i * lanes, lanes)
    vt = "float32" if lanes == 1 else f"float32x{lanes}"
    bt = "bool" if lanes == 1 else f"boolx{lanes}"
    gt = E.GT(bt, E.Load(vt, a.data, idx), E.Load(vt, b.data, idx))
    value = E.Or(bt, E.And(bt, gt, E.Not(bt, E.Load(bt, m.data, idx))),
                 E.EQ(bt, E.Load(bt, m.data, idx), gt))
    body = loop(i, n // lanes, S.Store(out.data, value, idx))
    mod = build_module([func("flags", [a, b, m, out], body, [3])], "flags")
    x, y = np.random.rand(n).astype("float32"), np.random.rand(n).astype("float32")
    mask = np.random.rand(n) > 0.5
    res = np.empty(n, bool)
    mod(x, y, mask, res)
    np.testing.assert_array_equal(res, ((x > y) & ~mask) | (mask == (x > y)))
    assert set(np.unique(res.view(np.uint8))) <= {0, 1}


def test_bool_load_and_not():
    n = 64
    m, out = buf("M", (n,), "bool"), buf("O", (n,), "bool")
    i = E.Var("i")
    idx = ramp(i * 8, 8)
    body = loop(i, n // 8, S.Store(out.data, E.Not("boolx8", E.Load("boolx8", m.data, idx)), idx))
    mod = build_module([func("negate", [m, out], body, [1])], "negate")
    mask = np.random.rand(n) > 0.5
    res = np.empty(n, bool)
    mod(mask, res)
    np.testing.assert_array_equal(res, ~mask)


def test_float16_storage_rounds_per_operation():
    n = 256
    a, b, c, out = (buf("A", (n,), "float16"), buf("B", (n,), "float16"), buf("C", (n,), "float16"),
                    buf("O", (n,), "float16"))
    i = E.Var("i")
    idx = ramp(i * 8, 8)
    ld = [E.Load("float16x8", p.data, idx) for p in (a, b, c)]
    body = loop(i, n // 8, S.Store(out.data, ld[0] * ld[1] + ld[2], idx))
    mod = build_module([func("f16", [a, b, c, out], body, [3])], "f16")
    x, y, z = (np.random.uniform(-100, 100, n).astype("float16") for _ in range(3))
    res = np.empty(n, "float16")
    mod(x, y, z, res)
    np.testing.assert_array_equal(res, x * y + z)


@pytest.mark.parametrize("lanes", [1, 16])
def test_int8_wraps_around(lanes):
    n = 128
    a, b, s, p = (buf(k, (n,), "int8") for k in "ABSP")
    i = E.Var("i")
    idx = i if lanes == 1 else ramp(i * lanes, lanes)
    vt = "int8" if lanes == 1 else f"int8x{lanes}"
    x, y = E.Load(vt, a.data, idx), E.Load(vt, b.data, idx)
    body = loop(i, n // lanes, S.SeqStmt((S.Store(s.data, x + y, idx),
                                          S.Store(p.data, x * y, idx))))
    mod = build_module([func("wrap", [a, b, s, p], body, [2, 3])], "wrap")
    xs = np.random.randint(-128, 128, n).astype("int8")
    ys = np.random.randint(-128, 128, n).astype("int8")
    xs[:2], ys[:2] = 100, 100
    out_s, out_p = np.empty(n, "int8"), np.empty(n, "int8")
    mod(xs, ys, out_s, out_p)
    np.testing.assert_array_equal(out_s, xs + ys)
    np.testing.assert_array_equal(out_p, xs * ys)
    assert out_s[0] == -56


def _scratch_reverse(extent_elems, n):
    """out = reverse(2 * A) through a scratch buffer of extent_elems float32."""
    a, out = buf("A", (n,), "float32"), buf("O", (n,), "float32")
    tmp = E.Var("tmp", "handle")
    i, j = E.Var("i"), E.Var("j")
    body = S.Allocate(tmp, "float32", extent_elems, S.SeqStmt((
        loop(i, n, S.Store(tmp, E.Load("float32", a.data, i) * 2.0, i)),
        loop(j, n, S.Store(out.data, E.Load("float32", tmp, (n - 1) - j), j)),
    )))
    return func("scratch", [a, out], body, [1])


@pytest.mark.parametrize("elems", [1024, 40000])
def test_allocate_small_on_stack_large_on_heap(elems):
    n = 1024
    mod = build_module([_scratch_reverse(elems, n)], "scratch")
    x = np.random.rand(n).astype("float32")
    res = np.full(n, np.nan, "float32")
    mod(x, res)
    np.testing.assert_array_equal(res, (x * 2)[::-1])
    ir = mod.get_source("ll-unoptimized")
    on_heap = elems * 4 > 64 * 1024
    assert ("tensorc_workspace_alloc" in ir) == on_heap
    assert ("alloca [" in ir) == (not on_heap)


def test_failed_heap_allocation_raises_memory_error():
    n = 4
    a, out = buf("A", (n,), "int32"), buf("O", (n,), "float32")
    tmp = E.Var("tmp", "handle")
    i = E.Var("i")
    # Data-dependent indices keep LLVM from proving the buffer unused and eliding it.
    body = S.Allocate(tmp, "float32", 2 ** 58, S.SeqStmt((
        S.Store(tmp, const(1.0), E.Load("int32", a.data, const(0))),
        loop(i, n, S.Store(out.data, E.Load("float32", tmp, E.Load("int32", a.data, i)), i)),
    )))
    mod = build_module([func("greedy", [a, out], body, [1])], "greedy")
    with pytest.raises(MemoryError, match="greedy"):
        mod(np.zeros(n, "int32"), np.empty(n, "float32"))


def _padded_copy(lanes, index_dtype="int64"):
    """O[j] = j < n ? A[j] : B[(j - n) * HUGE], for j in [0, n + 1): B has one element.

    The false branch reads wildly out of bounds for every j < n, so it must never be evaluated
    there; j == n reads B[0].
    """
    n = 15
    a, b, out = buf("A", (n,), "float32"), buf("B", (1,), "float32"), buf("O", (n + 1,), "float32")
    i = E.Var("i", index_dtype)
    if lanes == 1:
        j = i
    else:
        j = E.Ramp(f"{index_dtype}x{lanes}", i * lanes, const(1, index_dtype), lanes)
    ft = "float32" if lanes == 1 else f"float32x{lanes}"
    value = E.Select(ft, j < n, E.Load(ft, a.data, j), E.Load(ft, b.data, (j - n) * HUGE))
    body = S.For(i, const(0, index_dtype), const((n + 1) // lanes, index_dtype), "serial",
                 S.Store(out.data, value, j))
    return func("pad", [a, b, out], body, [2]), n


@pytest.mark.parametrize("lanes", [1, 8])
def test_select_never_evaluates_the_branch_not_taken(lanes):
    f, n = _padded_copy(lanes)
    mod = build_module([f], "pad")
    x, y = np.random.rand(n).astype("float32"), np.array([7.0], "float32")
    res = np.full(n + 1, np.nan, "float32")
    mod(x, y, res)
    np.testing.assert_array_equal(res, np.append(x, 7.0))
    if lanes > 1:
        assert "llvm.masked" in mod.get_source("ll-unoptimized")


def test_scalar_load_under_a_vector_mask_runs_only_for_live_lanes():
    """O[j] = j < 15 ? A[j] : broadcast(B[(i - 1) * HUGE]); for i == 0 every lane takes A."""
    a, b, out = buf("A", (16,), "float32"), buf("B", (1,), "float32"), buf("O", (16,), "float32")
    i = E.Var("i", "int64")
    j = E.Ramp("int64x8", i * 8, const(1, "int64"), 8)
    far = E.Broadcast("float32x8", E.Load("float32", b.data, (i - 1) * HUGE), 8)
    value = E.Select("float32x8", j < 15, E.Load("float32x8", a.data, j), far)
    body = S.For(i, const(0, "int64"), const(2, "int64"), "serial", S.Store(out.data, value, j))
    mod = build_module([func("guard", [a, b, out], body, [2])], "guard")
    x = np.random.rand(16).astype("float32")
    res = np.empty(16, "float32")
    mod(x, np.array([3.0], "float32"), res)
    np.testing.assert_array_equal(res, np.append(x[:15], 3.0))


def test_select_without_loads_is_a_plain_select():
    n = 16
    a, out = buf("A", (n,), "float32"), buf("O", (n,), "float32")
    i = E.Var("i")
    idx = ramp(i * 8, 8)
    x = E.Var("x", "float32x8")
    zero = E.Broadcast("float32x8", const(0.0), 8)
    relu = E.Let("float32x8", x, E.Load("float32x8", a.data, idx),
                 E.Select("float32x8", x > zero, x, zero))
    body = loop(i, n // 8, S.Store(out.data, relu, idx))
    mod = build_module([func("relu", [a, out], body, [1])], "relu")
    v = np.random.randn(n).astype("float32")
    res = np.empty(n, "float32")
    mod(v, res)
    np.testing.assert_array_equal(res, np.maximum(v, 0))
    assert "llvm.masked" not in mod.get_source("ll-unoptimized")


@pytest.mark.parametrize("through_let", [False, True])
def test_fused_axis_modulo_index_vectorizes_correctly(through_let):
    """A split-k matmul over a fused (i, j) axis f, two k steps per outer iteration:
    O[f] += A[f // 16 * 21 + k] * B[f % 16 + 16 k]. LLVM 22.1's loop vectorizer miscompiles
    these loops when the index arithmetic is 32-bit, so indices are computed in 64 bits
    (llvm_index), including through a let."""
    m, n, k = 14, 16, 20
    a, b, o = buf("A", (m, k + 1), "float32"), buf("B", (k, n), "float32"), buf("O", (m, n),
                                                                              "float32")
    ko = E.Var("ko")

    def update(kk):
        f, xa, xb = E.Var("f"), E.Var("xa"), E.Var("xb")
        a_index, b_index = f // n * (k + 1) + kk, f % n + kk * n
        prod = E.Load("float32", a.data, xa if through_let else a_index) * \
            E.Load("float32", b.data, xb if through_let else b_index)
        store = S.Store(o.data, E.Load("float32", o.data, f) + prod, f)
        if through_let:
            store = S.LetStmt(xa, a_index, S.LetStmt(xb, b_index, store))
        return loop(f, m * n, store)

    body = loop(ko, k // 2, S.SeqStmt((update(ko * 2), update(ko * 2 + 1))))
    mod = build_module([func("mm", [a, b, o], body, [2])], "mm")
    x = np.random.rand(m, k + 1).astype("float32")
    y = np.random.rand(k, n).astype("float32")
    out = np.zeros((m, n), "float32")
    mod(x, y, out)
    np.testing.assert_allclose(out, x[:, :k] @ y, rtol=1e-5)
