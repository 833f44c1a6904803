"""Whole-model libraries: kernels chained through reused storage, weights, the plan's checks."""
import time

import numpy as np
import pytest

from tensorc.codegen import build_graph_module, llvm_compile
from tensorc.graph.plan import BufferRef as R
from tensorc.graph.plan import ExecutionPlan
from tensorc.graph.plan import KernelCall as K
from tensorc.ir import expr as E
from tensorc.ir import stmt as S
from tensorc.ir.op import const

N = 1000


def elementwise(name, op, n=N, dtype="float32", kind="serial", outputs=(2,)):
    """C[i] = op(A[i], B[i]) over n elements; kind="parallel" splits it into 10 parallel rows."""
    a, b, c = (S.BufferDecl(k, (n,), dtype, E.Var(k, "handle")) for k in ("A", "B", "C"))
    if kind == "parallel":
        r, j = E.Var("r"), E.Var("j")
        i = r * (n // 10) + j
        store = S.Store(c.data, op(E.Load(dtype, a.data, i), E.Load(dtype, b.data, i)), i)
        body = S.For(r, const(0), const(10), "parallel",
                     S.For(j, const(0), const(n // 10), "serial", store))
    else:
        i = E.Var("i")
        body = S.For(i, const(0), const(n), "serial",
                     S.Store(c.data, op(E.Load(dtype, a.data, i), E.Load(dtype, b.data, i)), i))
    attrs = (("output_params", tuple(outputs)),) if outputs is not None else ()
    return S.PrimFunc(name, (a, b, c), body, attrs)


SCALE = elementwise("scale", lambda x, y: x * y)
ADD = elementwise("add", lambda x, y: x + y)
W = np.random.default_rng(1).random(N, dtype=np.float32) + 0.5


def chain_plan(name="chain", w=W):
    """y = t1 * w + t1 with t1 = x * w + b, through two storage tokens (the first reused); the
    second output is the weight itself, reshaped."""
    return ExecutionPlan(
        name, inputs=[("x", (N,), "float32"), ("b", (N,), "float32")],
        outputs=[("y", (N,), "float32"), ("w_copy", (10, 100), "float32")],
        constants=[("w", w)], storage=[4 * N, 4 * N],
        calls=[K("scale", (R("input", 0), R("const", 0), R("storage", 0))),
               K("add", (R("storage", 0), R("input", 1), R("storage", 1))),
               K("scale", (R("storage", 1), R("const", 0), R("storage", 0))),
               K("add", (R("storage", 0), R("storage", 1), R("output", 0)))],
        output_sources=[None, R("const", 0)])


def chain_reference(x, b, w=W):
    t1 = x * w + b
    return t1 * w + t1


def rand(seed, n=N):
    return np.random.default_rng(seed).random(n, dtype=np.float32)


@pytest.fixture(scope="module")
def chain():
    return build_graph_module([SCALE, ADD], chain_plan())


def test_chain_through_reused_storage_with_a_constant(chain):
    x, b = rand(2), rand(3)
    y, w_copy = chain(x, b)
    np.testing.assert_allclose(y, chain_reference(x, b), rtol=1e-6)
    np.testing.assert_array_equal(w_copy, W.reshape(10, 100))
    assert chain.kernel_names == ("scale", "add")
    assert chain.entry_name == "chain"


def test_metadata_describes_the_model(chain):
    meta = chain.metadata
    assert meta["entry"] == "chain"
    graph = meta["graph"]
    assert graph["inputs"] == [{"name": "x", "shape": [N], "dtype": "float32"},
                               {"name": "b", "shape": [N], "dtype": "float32"}]
    assert graph["outputs"][1] == {"name": "w_copy", "shape": [10, 100], "dtype": "float32"}
    assert graph["kernels"] == ["scale", "add"]
    assert [c["func"] for c in graph["calls"]] == ["scale", "add", "scale", "add"]
    assert graph["constants"] == [{"name": "w", "shape": [N], "dtype": "float32", "offset": 0,
                                   "nbytes": 4 * N}]
    assert graph["storage_offsets"] == [0, 4032] and graph["workspace_nbytes"] == 8064
    entry = [f for f in meta["functions"] if f["name"] == "chain"][0]
    assert [(p["name"], p["output"]) for p in entry["params"]] == [
        ("x", False), ("b", False), ("y", True), ("w_copy", True)]


def test_weights_are_not_in_the_ir(chain):
    ir = chain.get_source("ll-unoptimized")
    assert "@__tensorc_weights_local = external hidden constant [4032 x i8], align 64" in ir
    assert "define i32 @chain(" in ir and len(ir) < 100_000
    assert "call ptr @tensorc_workspace_alloc(i64 8064)" in ir


def test_input_straight_to_a_kernel_and_outputs_copied_from_an_input():
    plan = ExecutionPlan(
        "passthrough", inputs=[("x", (N,), "float32"), ("b", (N,), "float32")],
        outputs=[("sum", (N,), "float32"), ("x_again", (N,), "float32"),
                 ("b_tail", (N // 2,), "float32"), ("sum_again", (N,), "float32")],
        constants=[], storage=[],
        calls=[K("add", (R("input", 0), R("input", 1), R("output", 0)))],
        output_sources=[None, R("input", 0), R("input", 1, offset=2 * N), R("output", 0)])
    mod = build_graph_module([ADD], plan)
    x, b = rand(4), rand(5)
    total, x_again, b_tail, total_again = mod(x, b)
    np.testing.assert_array_equal(total, x + b)
    np.testing.assert_array_equal(x_again, x)
    np.testing.assert_array_equal(b_tail, b[N // 2:])
    np.testing.assert_array_equal(total_again, x + b)
    assert "__tensorc_weights" not in mod.get_source("ll-unoptimized")
    assert "tensorc_workspace_alloc" not in mod.get_source("ll-unoptimized")


def test_packed_storage_offsets_and_a_parallel_kernel():
    """Two tensors packed into one storage token; the second kernel runs on libgomp threads."""
    padd = elementwise("padd", lambda x, y: x + y, kind="parallel")
    plan = ExecutionPlan(
        "packed", inputs=[("x", (N,), "float32")], outputs=[("y", (N,), "float32")],
        constants=[("w", W), ("v", np.arange(N, dtype=np.float32))], storage=[8 * N + 64],
        calls=[K("scale", (R("input", 0), R("const", 0), R("storage", 0, offset=0))),
               K("padd", (R("storage", 0), R("const", 1), R("storage", 0, offset=4 * N + 64))),
               K("scale", (R("storage", 0, offset=4 * N + 64), R("storage", 0), R("output", 0)))],
        output_sources=[None])
    mod = build_graph_module([SCALE, padd], plan)
    x = rand(6)
    t = x * W
    np.testing.assert_allclose(mod(x)[0], (t + np.arange(N)) * t, rtol=1e-6)
    assert mod.metadata["graph"]["constants"][1]["offset"] == 4032


def test_fifty_megabyte_constant_builds_in_seconds():
    big = np.random.default_rng(7).random(50 * 2**20 // 4, dtype=np.float32)
    plan = ExecutionPlan(
        "big_weights", inputs=[("x", (N,), "float32")], outputs=[("y", (N,), "float32")],
        constants=[("odd", np.ones(3, np.int8)), ("big", big)], storage=[],
        calls=[K("scale", (R("input", 0), R("const", 1, offset=big.nbytes - 4 * N),
                           R("output", 0)))],
        output_sources=[None])
    start = time.perf_counter()
    mod = build_graph_module([SCALE], plan)
    elapsed = time.perf_counter() - start
    assert elapsed < 30, f"a 50 MB constant took {elapsed:.1f} s to build"
    x = rand(8)
    np.testing.assert_array_equal(mod(x)[0], x * big[-N:])
    assert mod.metadata["graph"]["constants"][1]["offset"] == 64
    assert len(mod.get_source("ll-unoptimized")) < 100_000


def test_weights_are_part_of_the_cache_key(monkeypatch):
    w2 = W + 1
    first = build_graph_module([SCALE, ADD], chain_plan("keyed", w2))
    compiled = []
    real = llvm_compile.compile_ir
    monkeypatch.setattr(llvm_compile, "compile_ir", lambda *a: compiled.append(1) or real(*a))
    again = build_graph_module([SCALE, ADD], chain_plan("keyed", w2.copy()))
    assert compiled == [] and again.path == first.path
    other = build_graph_module([SCALE, ADD], chain_plan("keyed", W))
    assert compiled == [1] and other.path != first.path
    x, b = rand(9), rand(10)
    np.testing.assert_allclose(first(x, b)[0], chain_reference(x, b, w2), rtol=1e-6)
    np.testing.assert_allclose(other(x, b)[0], chain_reference(x, b, W), rtol=1e-6)


def hog_kernel():
    """Y[0] = tmp[X[1]] after tmp[X[0]] = 7, with tmp a 2**62-byte heap buffer: malloc fails."""
    x = S.BufferDecl("X", (2,), "int32", E.Var("X", "handle"))
    y = S.BufferDecl("Y", (1,), "int32", E.Var("Y", "handle"))
    tmp = E.Var("tmp", "handle")
    body = S.Allocate(tmp, "int32", 2**60, S.seq(
        S.Store(tmp, const(7), E.Load("int32", x.data, const(0))),
        S.Store(y.data, E.Load("int32", tmp, E.Load("int32", x.data, const(1))), const(0))))
    return S.PrimFunc("hog", (x, y), body, (("output_params", (1,)),))


def test_a_failing_kernel_stops_the_model_and_releases_the_workspace():
    plan = ExecutionPlan(
        "hungry", inputs=[("x", (2,), "int32")], outputs=[("y", (1,), "int32")],
        constants=[], storage=[4], calls=[K("hog", (R("input", 0), R("storage", 0)))],
        output_sources=[R("storage", 0)])
    mod = build_graph_module([hog_kernel()], plan)
    for _ in range(2):
        with pytest.raises(MemoryError):
            mod(np.zeros(2, np.int32))


def bad_plans():
    def plan(**kw):
        base = dict(name="bad", inputs=[("x", (N,), "float32")],
                    outputs=[("y", (N,), "float32")], constants=[("w", W)], storage=[4 * N],
                    calls=[K("scale", (R("input", 0), R("const", 0), R("output", 0)))],
                    output_sources=[None])
        base.update(kw)
        return ExecutionPlan(**base)

    def call(*refs, func="scale"):
        return [K(func, tuple(refs))]

    x, w, y, s = R("input", 0), R("const", 0), R("output", 0), R("storage", 0)
    return [
        (plan(name="2bad"), "not a usable C symbol"),
        (plan(name="scale"), "has the name of a kernel"),
        (plan(calls=call(x, w, y, func="mul")), "'mul', which is not among"),
        (plan(calls=call(x, w)), "passes 2 buffers"),
        (plan(calls=call(x, R("const", 1), y)), "const #1 does not exist"),
        (plan(calls=call(x, R("blob", 0), y)), "unknown buffer kind 'blob'"),
        (plan(calls=call(x, w, y), storage=[4 * N - 4]), None),  # unused token: fine
        (plan(calls=call(x, w, s), storage=[4 * N - 4], output_sources=[R("storage", 0)]),
         "do not fit in storage #0"),
        (plan(calls=call(x, R("const", 0, offset=4), y)), "do not fit in const #0"),
        (plan(calls=call(x, w, R("storage", 0, offset=2)), storage=[8 * N],
              output_sources=[s]), "misaligned"),
        (plan(calls=call(x, y, w)), "writes this parameter, but it is const #0"),
        (plan(calls=call(y, w, x)), "writes this parameter, but it is input #0"),
        (plan(calls=call(s, w, R("storage", 0, offset=64)), storage=[8 * N],
              output_sources=[s]), "overlaps parameter 'A'"),
        (plan(calls=call(x, w, s)), "no kernel writes it"),
        (plan(output_sources=[]), "1 outputs but 0 output_sources"),
        (plan(outputs=[("y", (N,), "float32"), ("z", (N,), "float32")],
              output_sources=[None, R("output", 1)]), "is itself a copy"),
        (plan(inputs=[("x", (N,), "float32"), ("x", (1,), "float32")]),
         "two model inputs are named 'x'"),
    ]


@pytest.mark.parametrize("plan,message", bad_plans())
def test_inconsistent_plans_are_refused_before_compiling(monkeypatch, plan, message):
    def no_llvm(*_):
        raise AssertionError("compiled an invalid plan")
    kernels = [SCALE, ADD]
    if message is None:
        plan.validate(kernels)
        return
    monkeypatch.setattr(llvm_compile, "compile_ir", no_llvm)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        build_graph_module(kernels, plan)


def test_kernels_must_say_what_they_write():
    blind = elementwise("blind", lambda x, y: x + y, outputs=None)
    plan = ExecutionPlan("m", inputs=[("x", (N,), "float32")], outputs=[("y", (N,), "float32")],
                         constants=[], storage=[],
                         calls=[K("blind", (R("input", 0), R("input", 0), R("output", 0)))],
                         output_sources=[None])
    with pytest.raises(ValueError, match="no 'output_params'"):
        build_graph_module([blind], plan)
