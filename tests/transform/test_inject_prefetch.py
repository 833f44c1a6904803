"""Software prefetch (``Stage.prefetch`` -> transform/inject_prefetch.py): the region each
iteration prefetches, where no prefetch is made, the errors, and unchanged results (every
schedule here is built and checked against numpy on random data, with odd sizes)."""
import os
import re
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import check, lower_text  # noqa: E402

import tensorc as tc  # noqa: E402
from tensorc import te  # noqa: E402
from tensorc.ir import stmt as S  # noqa: E402
from tensorc.ir.functor import post_order_visit  # noqa: E402
from tensorc.schedule import ScheduleError  # noqa: E402
from tensorc.transform.inject_prefetch import drop_prefetch  # noqa: E402


def _blocked_rowsum(M=61, K=37):
    """B = 2 * row sums of A, its rows in blocks of 4: (A, B, schedule, block loop, row loop)."""
    A = te.placeholder((M, K), name="A")
    k = te.reduce_axis((0, K), name="k")
    B = te.compute((M,), lambda i: te.sum(A[i, k] * 2.0, axis=k), name="B")
    s = te.create_schedule(B.op)
    io, ii = s[B].split(B.op.axis[0], factor=4)
    return A, B, s, io, ii


def _prefetches(func):
    found = []
    post_order_visit(func.body, lambda n: found.append(n) if isinstance(n, S.Prefetch) else None)
    return found


def test_rows_of_the_next_block():
    """Each block of 4 rows (148 floats) asks for the next block's 10 lines, 148 floats on."""
    A, B, s, io, ii = _blocked_rowsum()
    s[B].prefetch(A, io, 1)
    text = lower_text(s, [A, B])
    assert re.search(r"for A\.prefetch in range\(10\):\n\s+prefetch A\[A\.prefetch \* 16 \+ "
                     r"i\.outer \* 148 \+ 148\]", text), text
    check(s, [A, B], lambda a: 2 * a.sum(1))


def test_offset_counts_iterations_and_the_ir_calls_llvm_prefetch():
    A, B, s, io, ii = _blocked_rowsum()
    s[B].prefetch(A, ii, 3)
    text = lower_text(s, [A, B])
    # one row of 37 floats: 3 lines, 3 rows (111 floats) ahead
    assert "for A.prefetch in range(3):" in text and "+ 111]" in text, text
    f, _ = check(s, [A, B], lambda a: 2 * a.sum(1))
    assert "@llvm.prefetch.p0" in f.get_source("llvm")
    assert "prefetcht0" in f.get_source("asm")


def test_tile_of_a_2d_operand_inside_vectorized_and_parallel_loops():
    """A 2-D tile's region spans its rows (flat bounds); the loops still vectorize, the
    prefetch sits in the parallel loop's body."""
    M, N, K = 29, 35, 23
    A = te.placeholder((M, K), name="A")
    Bm = te.placeholder((K, N), name="Bm")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * Bm[k, j], axis=k), name="C")
    s = te.create_schedule(C.op)
    io, jo, ii, ji = s[C].tile(C.op.axis[0], C.op.axis[1], 4, 16)
    ko, ki = s[C].split(k, factor=8)
    s[C].reorder(io, jo, ko, ii, ki, ji)
    s[C].vectorize(ji)
    s[C].parallel(io)
    s[C].prefetch(Bm, ko, 1)
    s[C].prefetch(A, jo, 1)
    text = lower_text(s, [A, Bm, C])
    assert "prefetch Bm[" in text and "prefetch A[" in text and "ramp(" in text, text
    check(s, [A, Bm, C], lambda a, b: a @ b, rtol=1e-5, atol=1e-5)


def test_a_gathered_operand_gets_no_prefetch():
    """A[idx[i]] has no constant-bounded region: nothing is prefetched, results stay right."""
    A = te.placeholder((50, 13), name="A")
    idx = te.placeholder((31,), dtype="int32", name="idx")
    j = te.reduce_axis((0, 13), name="j")
    B = te.compute((31,), lambda i: te.sum(A[idx[i], j], axis=j), name="B")
    s = te.create_schedule(B.op)
    io, ii = s[B].split(B.op.axis[0], factor=4)
    s[B].prefetch(A, io, 1)
    s[B].prefetch(idx, io, 1)
    func = tc.lower(s, [A, idx, B])
    assert {p.buffer.name for p in _prefetches(func)} == {"idx"}
    rng = np.random.default_rng(3)
    a = rng.uniform(0.5, 1.5, (50, 13)).astype("float32")
    ix = rng.integers(0, 50, 31).astype("int32")
    check(s, [A, idx, B], lambda a, ix: a[ix].sum(1), inputs={A: a, idx: ix}, rtol=1e-5)


def test_prefetch_inside_a_vectorized_loop_stays_scalar():
    A = te.placeholder((40, 48), name="A")
    B = te.compute((40, 48), lambda i, j: A[i, j] * 3.0, name="B")
    s = te.create_schedule(B.op)
    jo, ji = s[B].split(B.op.axis[1], factor=16)
    s[B].vectorize(ji)
    s[B].prefetch(A, ji, 32)
    text = lower_text(s, [A, B])
    assert "ramp(" in text and "prefetch A[" in text, text
    check(s, [A, B], lambda a: 3 * a)


def test_gpu_lowering_drops_the_hints():
    A, B, s, io, ii = _blocked_rowsum()
    s[B].prefetch(A, io, 1)
    func = tc.lower(s, [A, B])
    assert _prefetches(func)
    from tensorc.schedule.schedule_ops import schedule_ops
    from tensorc.transform.storage_flatten import storage_flatten
    body, _ = schedule_ops(s)
    flat = storage_flatten(body, [A, B], "main", {B})
    assert "# prefetch" in str(flat)
    dropped = drop_prefetch(flat)
    assert "prefetch" not in str(dropped) and not _prefetches(dropped)


def test_bad_requests_name_the_stage_axis_and_tensor():
    A, B, s, io, ii = _blocked_rowsum()
    other = te.placeholder((5,), name="other")
    with pytest.raises(ScheduleError, match="'other' is not part of this schedule"):
        s[B].prefetch(other, io, 1)
    with pytest.raises(ScheduleError, match="offset must be a positive"):
        s[B].prefetch(A, io, 0)
    with pytest.raises(ScheduleError, match="already split"):
        s[B].prefetch(A, B.op.axis[0], 1)
    s[B].prefetch(A, ii, 1)
    s[B].split(ii, factor=2)
    with pytest.raises(ScheduleError, match="prefetch of 'A' at axis 'i.inner'"):
        tc.lower(s, [A, B])


def _through_p():
    """B = row sums of P = A + 1, B's rows in blocks of 4: (A, P, B, schedule, block loop,
    row loop)."""
    A = te.placeholder((30, 19), name="A")
    P = te.compute((30, 19), lambda i, j: A[i, j] + 1.0, name="P")
    k = te.reduce_axis((0, 19), name="k")
    B = te.compute((30,), lambda i: te.sum(P[i, k], axis=k), name="B")
    s = te.create_schedule(B.op)
    io, ii = s[B].split(B.op.axis[0], factor=4)
    return A, P, B, s, io, ii


def test_prefetch_of_a_tensor_the_loop_does_not_read():
    """B's loops read A only through P, computed at the root: prefetching A there finds
    nothing to prefetch and says so; prefetching P (what the loop reads) works."""
    A, P, B, s, io, _ = _through_p()
    s[B].prefetch(A, io, 1)
    with pytest.raises(ValueError, match="loop 'i.outer' reads nothing of 'A'"):
        tc.lower(s, [A, B])
    A, P, B, s, io, _ = _through_p()
    s[B].prefetch(P, io, 1)
    check(s, [A, B], lambda a: (a + 1).sum(1), rtol=1e-5)


def test_prefetch_of_a_tensor_computed_inside_the_loop():
    A, P, B, s, io, ii = _through_p()
    s[P].compute_at(s[B], ii)
    s[B].prefetch(P, io, 1)
    with pytest.raises(ValueError, match="'P' is computed inside the loop"):
        tc.lower(s, [A, B])
