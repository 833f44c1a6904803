"""Parallel loops on tensorc's thread pool: coverage of the range, per-thread buffers, captures,
thread count, chunk grain. The pool itself is tested in tests/runtime/test_threadpool.py."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tensorc.runtime as rt
from tensorc.codegen import build_module
from tensorc.codegen.llvm_parallel import MIN_CHUNK_WORK, grain_for, iteration_cost
from tensorc.ir import expr as E
from tensorc.ir import stmt as S
from tensorc.ir.op import const

ROOT = Path(__file__).resolve().parents[2]


def buf(name, shape, dtype="float32"):
    return S.BufferDecl(name, tuple(shape), dtype, E.Var(name, "handle"))


def func(name, params, body, outputs):
    return S.PrimFunc(name, tuple(params), body, (("output_params", tuple(outputs)),))


def loop(var, extent, body, kind="serial"):
    return S.For(var, const(0, var.dtype), const(extent, var.dtype), kind, body)


def rows_kernel(rows, cols, kind="parallel", scratch_elems=None, index_dtype="int32"):
    """B[r, c] = 2 * A[r, cols - 1 - c] + r, through a per-row scratch buffer when asked."""
    a, b = buf("A", (rows, cols)), buf("B", (rows, cols))
    r, c = E.Var("r", index_dtype), E.Var("c", index_dtype)
    row = r * cols
    if scratch_elems is None:
        inner = loop(c, cols, S.Store(b.data, E.Load("float32", a.data, row + (cols - 1) - c) * 2.0
                                      + r.astype("float32"), row + c))
    else:
        tmp, c2 = E.Var("tmp", "handle"), E.Var("c2", index_dtype)
        inner = S.Allocate(tmp, "float32", scratch_elems, S.SeqStmt((
            loop(c, cols, S.Store(tmp, E.Load("float32", a.data, row + c) * 2.0, c)),
            loop(c2, cols, S.Store(b.data, E.Load("float32", tmp, (cols - 1) - c2)
                                   + r.astype("float32"), row + c2)),
        )))
    return func("rows", [a, b], loop(r, rows, inner, kind), [1])


def expected_rows(a):
    return a[:, ::-1] * 2 + np.arange(a.shape[0], dtype="float32")[:, None]


def run_rows(mod, rows, cols):
    a = np.random.rand(rows, cols).astype("float32")
    b = np.full((rows, cols), np.nan, "float32")
    mod(a, b)
    return a, b


@pytest.fixture
def threads():
    """Set the thread count for one test (more threads than cores is allowed)."""
    before = rt.get_num_threads()
    yield rt.set_num_threads
    rt.set_num_threads(before)


@pytest.mark.parametrize("rows", [0, 1, 2, 37])
@pytest.mark.parametrize("index_dtype", ["int32", "int64"])
@pytest.mark.parametrize("cols", [64, MIN_CHUNK_WORK])  # one chunk (caller alone), or a row each
def test_parallel_loop_writes_every_row(rows, index_dtype, cols, threads):
    mod = build_module([rows_kernel(rows, cols, index_dtype=index_dtype)], "rows")
    assert "call i32 @tensorc_parallel_for" in mod.get_source("ll-unoptimized")
    for n in (1, 2, 3):
        threads(n)
        a, b = run_rows(mod, rows, cols)
        np.testing.assert_array_equal(b, expected_rows(a))


@pytest.mark.parametrize("scratch", [4096, 20000])  # stack, then heap (80 KB)
def test_scratch_buffer_inside_parallel_loop_is_per_thread(scratch, threads):
    threads(3)
    mod = build_module([rows_kernel(64, 4096, scratch_elems=scratch)], "rows")
    for _ in range(5):
        a, b = run_rows(mod, 64, 4096)
        np.testing.assert_array_equal(b, expected_rows(a))


def test_parallel_result_identical_to_serial(threads):
    threads(2)
    par = build_module([rows_kernel(50, 960, "parallel", scratch_elems=960)], "rows")
    ser = build_module([rows_kernel(50, 960, "serial", scratch_elems=960)], "rows")
    assert "tensorc_parallel_for" not in ser.get_source("ll-unoptimized")
    a = np.random.rand(50, 960).astype("float32")
    out_p, out_s = np.empty_like(a), np.empty_like(a)
    par(a, out_p)
    ser(a, out_s)
    np.testing.assert_array_equal(out_p, out_s)


def test_nested_parallel_loop_runs_serially_inside_and_captures_outer_values():
    """for t (serial): let k = t + 1: for r (parallel): for c (parallel): O[t, r, c] = A[r, c] * k."""
    a, o = buf("A", (9, 16)), buf("O", (3, 9, 16))
    t, r, c, k = E.Var("t"), E.Var("r"), E.Var("c"), E.Var("k")
    store = S.Store(o.data, E.Load("float32", a.data, r * 16 + c) * k.astype("float32"),
                    t * 144 + r * 16 + c)
    body = loop(t, 3, S.LetStmt(k, t + 1, loop(r, 9, loop(c, 16, store, "parallel"), "parallel")))
    mod = build_module([func("nest", [a, o], body, [1])], "nest")
    ir = mod.get_source("ll-unoptimized")
    assert ir.count("call i32 @tensorc_parallel_for") == 1 and "nest_parallel1" not in ir
    x = np.random.rand(9, 16).astype("float32")
    out = np.full((3, 9, 16), np.nan, "float32")
    mod(x, out)
    np.testing.assert_array_equal(out, x[None] * np.arange(1, 4, dtype="float32")[:, None, None])


@pytest.mark.parametrize("nthreads", [1, 2, 4])
def test_allocation_failure_in_a_thread_raises_memory_error(nthreads, threads):
    """Rows 0-3 fill their output; rows 4-7 fail to allocate, on whichever thread claims them."""
    a, o = buf("A", (8,), "int32"), buf("O", (8, MIN_CHUNK_WORK))
    tmp, r, c = E.Var("tmp", "handle"), E.Var("r"), E.Var("c")
    fill = loop(c, MIN_CHUNK_WORK, S.Store(o.data, const(1.0), r * MIN_CHUNK_WORK + c))
    greedy = S.Allocate(tmp, "float32", 2 ** 58, S.SeqStmt((
        S.Store(tmp, const(1.0), E.Load("int32", a.data, const(0))),  # not forwardable below
        S.Store(o.data, E.Load("float32", tmp, E.Load("int32", a.data, r)), r * MIN_CHUNK_WORK),
    )))
    body = loop(r, 8, S.SeqStmt((fill, S.IfThenElse(r >= 4, greedy))), "parallel")
    mod = build_module([func("greedy", [a, o], body, [1])], "greedy")
    threads(nthreads)
    for _ in range(20):
        with pytest.raises(MemoryError):
            mod(np.zeros(8, "int32"), np.empty((8, MIN_CHUNK_WORK), "float32"))


THREAD_PROBE = textwrap.dedent("""
    import os, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    import tensorc.runtime as rt
    from test_llvm_parallel import rows_kernel, run_rows, expected_rows
    from tensorc.codegen import build_module
    mod = build_module([rows_kernel(64, 1024)], "rows")
    before = len(os.listdir("/proc/self/task"))
    a, b = run_rows(mod, 64, 1024)
    assert (b == expected_rows(a)).all()
    print(rt.get_num_threads(), len(os.listdir("/proc/self/task")) - before)
    rt.set_num_threads(3)
    a, b = run_rows(mod, 64, 1024)
    assert (b == expected_rows(a)).all()
    print(rt.get_num_threads(), len(os.listdir("/proc/self/task")) - before)
""")


def _probe(threads_env):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                                     os.environ.get("PYTHONPATH")])))
    env["TENSORC_NUM_THREADS"] = threads_env
    script = THREAD_PROBE.format(tests=str(Path(__file__).parent))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return [tuple(map(int, line.split())) for line in done.stdout.split("\n") if line]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_tensorc_num_threads_is_honoured():
    (n1, extra1), (n3, extra3) = _probe("1")
    assert (n1, extra1) == (1, 0)  # one thread: the pool starts no worker at all
    assert n3 == 3 and extra3 == 2  # set_num_threads reaches the already loaded module
    (n2, extra2), _ = _probe("2")
    assert (n2, extra2) == (2, 1)


def test_grain_follows_the_work_per_iteration():
    r, c = E.Var("r"), E.Var("c")
    a = buf("A", (4, 100))
    store = S.Store(a.data, const(1.0), r * 100 + c)
    assert iteration_cost(store) == 1
    assert iteration_cost(loop(c, 100, store)) == 100
    both = S.SeqStmt((loop(c, 100, store), S.IfThenElse(r > 1, loop(c, 30, store))))
    assert iteration_cost(both) == 130
    unknown = S.For(c, const(0), E.Load("int32", a.data, r), "serial", store)
    assert iteration_cost(unknown) is None
    assert grain_for(loop(r, 4, loop(c, 100, store))) == -(-MIN_CHUNK_WORK // 100)
    assert grain_for(loop(r, 4, loop(c, MIN_CHUNK_WORK * 2, store))) == 1
    assert grain_for(loop(r, 4, unknown)) == 1
