"""Schedule traces: printing, replaying (directly and through dumps/loads JSON).

A replayed trace must rebuild the same schedule: the lowered IR text is identical and the built
function computes the same values, both on a fresh schedule of the very same ops and on a
schedule of the same program built again from scratch.
"""
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import check, lower_text  # noqa: E402

import tensorc as tc  # noqa: E402
from tensorc import te  # noqa: E402
from tensorc.schedule import ScheduleError, dumps, loads, replay  # noqa: E402


# Each program builder returns (outputs, args); each recipe schedules such a program.

def prog_matmul_packed(M=33, N=48, K=37, bn=16):
    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    BP = te.compute((N // bn, K, bn), lambda x, y, z: B[y, x * bn + z], name="BP")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * BP[j // bn, k, j % bn], axis=k),
                   name="C")
    return [C], [A, B, C]


def recipe_matmul_packed(s, outs, args):
    (C,) = outs
    BP = C.op.input_tensors[1]
    CC = s.cache_write(C, "local")
    mo, no, mi, ni = s[C].tile(C.op.axis[0], C.op.axis[1], 4, 16)
    s[CC].compute_at(s[C], no)
    mc, nc = s[CC].op.axis
    ko, ki = s[CC].split(s[CC].op.reduce_axis[0], factor=4)
    s[CC].reorder(ko, ki, mc, nc)
    s[CC].prefetch(BP, ko, 1)
    s[CC].unroll(mc)
    s[CC].vectorize(nc)
    s[C].vectorize(ni)
    s[C].parallel(mo)
    s[BP].vectorize(s[BP].op.axis[2])
    s[BP].parallel(s[BP].op.axis[0])


def prog_rowsum(M=7, N=1000):
    A = te.placeholder((M, N), name="A")
    k = te.reduce_axis((0, N), name="k")
    B = te.compute((M,), lambda i: te.sum(A[i, k], axis=k), name="B")
    return [B], [A, B]


def recipe_rfactor(s, outs, args):
    (B,) = outs
    ko, ki = s[B].split(B.op.reduce_axis[0], factor=16)
    BF = s.rfactor(B, ki, factor_axis=1)
    s[BF].vectorize(BF.op.axis[1])
    s[BF].compute_at(s[B], s[B].op.axis[0])
    s[B].parallel(s[B].op.axis[0])


def prog_pipeline():
    A = te.placeholder((33, 130), name="A")
    B = te.compute((33, 130), lambda i, j: te.abs(A[i, j]) + 0.5, name="B")
    C = te.compute((33, 128), lambda i, j: te.log(B[i, j]) * B[i, j + 2], name="C")
    k = te.reduce_axis((0, 3), name="k")
    D = te.compute((33, 126), lambda i, j: te.sum(C[i, j + k], axis=k), name="D")
    return [D], [A, D]


def recipe_pipeline(s, outs, args):
    (D,) = outs
    C = D.op.input_tensors[0]
    B = C.op.input_tensors[0]
    A = args[0]
    AA = s.cache_read(A, "local", [B])
    s[B].compute_inline()
    io, jo, ii, ji = s[D].tile(D.op.axis[0], D.op.axis[1], 4, 16)
    s[D].reorder(io, jo, ii, D.op.reduce_axis[0], ji)
    s[D].vectorize(ji)
    s[D].unroll(D.op.reduce_axis[0])
    s[D].parallel(s[D].fuse(io, jo))
    s[C].compute_at(s[D], ii)
    s[C].set_scope("local")
    s[AA].compute_at(s[D], ii)


def prog_two_outputs():
    A = te.placeholder((7, 33), name="A")
    B = te.compute((7, 33), lambda i, j: A[i, j] + 1, name="B")
    C = te.compute((7, 33), lambda i, j: B[i, j] * B[i, 32 - j], name="C")
    return [B, C], [A, B, C]


def recipe_two_outputs(s, outs, args):
    B, C = outs
    f = s[C].fuse(*C.op.axis)
    fo, fi = s[C].split(f, nparts=3)
    s[C].parallel(fo)
    xo, xi = s[B].split(B.op.axis[1], factor=8)
    s[B].vectorize(xi)
    s[B].compute_root()


def prog_same_names():
    """Two computes share the default name: stages are named compute, compute_1, ..."""
    A = te.placeholder((9,), name="A")
    B = te.compute((9,), lambda i: A[i] * 2)
    C = te.compute((9,), lambda i: B[i] + 1)
    D = te.compute((9,), lambda i: C[i] * C[8 - i])
    return [D], [A, D]


def recipe_same_names(s, outs, args):
    (D,) = outs
    C = D.op.input_tensors[0]
    B = C.op.input_tensors[0]
    xo, xi = s[D].split(D.op.axis[0], factor=4)
    s[B].compute_inline()
    s[C].compute_at(s[D], xo)


def prog_short_max():
    """A max over a 3 x 2 constant window, read twice by its consumer."""
    A = te.placeholder((11, 9), name="A")
    r = te.reduce_axis((0, 3), name="r")
    q = te.reduce_axis((0, 2), name="q")
    M = te.compute((9, 8), lambda i, j: te.max(A[i + r, j + q], axis=[r, q]), name="M")
    D = te.compute((9, 8), lambda i, j: M[i, j] * M[i, 7 - j], name="D")
    return [D], [A, D]


def recipe_expand_reduction(s, outs, args):
    (D,) = outs
    M = D.op.input_tensors[0]
    s.expand_reduction(M)
    s[M].compute_inline()
    s[D].vectorize(s[D].op.axis[1])


CASES = {"matmul_packed": (prog_matmul_packed, recipe_matmul_packed),
         "expand_reduction": (prog_short_max, recipe_expand_reduction),
         "rfactor": (prog_rowsum, recipe_rfactor),
         "pipeline": (prog_pipeline, recipe_pipeline),
         "two_outputs": (prog_two_outputs, recipe_two_outputs),
         "same_names": (prog_same_names, recipe_same_names)}


def _schedule(outs):
    return te.create_schedule([t.op for t in outs])


def _run(f, args, outs, feed):
    arrays = [feed[a] if a in feed else np.full(a.shape, np.nan, a.dtype) for a in args]
    f(*arrays)
    return [arr for a, arr in zip(args, arrays) if a in outs]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("how", ["direct", "json"])
def test_replay_same_ops_same_ir_and_result(case, how):
    prog, recipe = CASES[case]
    outs, args = prog()
    s = _schedule(outs)
    recipe(s, outs, args)
    trace = s.trace if how == "direct" else loads(dumps(s.trace))
    s2 = replay(_schedule(outs), trace)
    assert s2.trace == s.trace
    text = lower_text(s, args)
    assert lower_text(s2, args) == text
    f1, arrays = check(s, args, name=f"orig_{case}")
    feed = {a: arrays[a] for a in args if a not in outs}
    f2 = tc.build(s2, args, name=f"replayed_{case}")
    for x, y in zip(_run(f2, args, outs, feed), [arrays[o] for o in outs]):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("case", list(CASES))
def test_replay_on_rebuilt_program(case):
    """Replaying onto the same program constructed anew (new te objects)."""
    prog, recipe = CASES[case]
    outs, args = prog()
    s = _schedule(outs)
    recipe(s, outs, args)
    outs2, args2 = prog()
    s2 = replay(_schedule(outs2), loads(dumps(s.trace)))
    assert lower_text(s2, args2) == lower_text(s, args)
    assert str(s2) == str(s)


def test_print_lists_every_primitive_in_order():
    outs, args = prog_matmul_packed()
    s = _schedule(outs)
    assert str(s) == ""
    recipe_matmul_packed(s, outs, args)
    text = str(s)
    lines = text.splitlines()
    assert len(lines) == len(s.trace)
    prims = [line.split("(")[0] for line in lines]
    assert prims == ["cache_write", "split", "split", "reorder", "compute_at", "split",
                     "reorder", "prefetch", "unroll", "vectorize", "vectorize", "parallel",
                     "vectorize", "parallel"]
    assert lines[7] == "prefetch('C.local', 'BP', 'k.c.outer', 1)"
    assert lines[0] == "cache_write('C', 'local')"
    assert lines[1] == "split('C', 'i', 4, None)"
    assert lines[4] == "compute_at('C.local', 'C', 'j.outer')"
    assert "'k.c'" in lines[5]                       # the cache stage's own axis names


def test_dumps_is_plain_json():
    outs, args = prog_rowsum()
    s = _schedule(outs)
    recipe_rfactor(s, outs, args)
    data = json.loads(dumps(s.trace))
    assert data[0] == ["split", "B", "k", 16, None]
    assert data[1] == ["rfactor", "B", "k.inner", 1]
    assert loads(dumps(s.trace)) == s.trace


def test_replay_then_continue_scheduling():
    outs, args = prog_rowsum()
    s = _schedule(outs)
    (B,) = outs
    ko, ki = s[B].split(B.op.reduce_axis[0], factor=16)
    s2 = replay(_schedule(outs), s.trace)
    BF = s2.rfactor(B, s2[B].leaf_iter_vars[-1])
    s2[BF].vectorize(s2[BF].op.axis[0])
    s3 = replay(_schedule(outs), s2.trace)
    assert lower_text(s3, args) == lower_text(s2, args)
    check(s3, args, lambda a: a.sum(axis=1), atol=1e-4)


def test_replay_bind_lowers_identically():
    A = te.placeholder((64, 33), name="A")
    B = te.compute((64, 33), lambda i, j: A[i, j] * 2, name="B")
    s = te.create_schedule(B.op)
    bx, tx = s[B].split(B.op.axis[0], factor=16)
    s[B].bind(bx, te.thread_axis("blockIdx.x"))
    s[B].bind(tx, te.thread_axis("threadIdx.x"))
    s2 = replay(te.create_schedule(B.op), loads(dumps(s.trace)))
    text = lower_text(s, [A, B])
    assert "blockIdx.x" in text and "threadIdx.x" in text
    assert lower_text(s2, [A, B]) == text


def test_replay_bind_keeps_thread_extent():
    """A thread axis made with an extent (dom) must keep it through a trace: the mismatch
    error of the original schedule must also come from the replayed one."""
    A = te.placeholder((64,), name="A")
    B = te.compute((64,), lambda i: A[i] * 2, name="B")
    s = te.create_schedule(B.op)
    bx, tx = s[B].split(B.op.axis[0], factor=16)
    s[B].bind(tx, te.thread_axis("threadIdx.x", dom=(0, 32)))
    with pytest.raises(ScheduleError, match=r"'i\.inner' has extent 16 but is bound to "
                                            r"threadIdx\.x of extent 32"):
        tc.lower(s, [A, B])
    s2 = replay(te.create_schedule(B.op), loads(dumps(s.trace)))
    with pytest.raises(ScheduleError, match=r"'i\.inner' has extent 16 but is bound to "
                                            r"threadIdx\.x of extent 32"):
        tc.lower(s2, [A, B])


def test_replay_on_wrong_program_names_what_is_missing():
    outs, args = prog_rowsum()
    s = _schedule(outs)
    recipe_rfactor(s, outs, args)
    other_outs, _ = prog_two_outputs()
    with pytest.raises(ScheduleError, match=r"replay: (no stage named 'B'|stage 'B' has no "
                                            r"axis named 'k')"):
        replay(_schedule(other_outs), s.trace)


def test_replay_unknown_primitive():
    outs, args = prog_rowsum()
    with pytest.raises(ScheduleError, match=r"replay: unknown primitive 'tensorize'"):
        replay(_schedule(outs), [("tensorize", "B", "k")])


def test_replay_illegal_record_raises_schedule_error():
    outs, args = prog_rowsum()
    with pytest.raises(ScheduleError, match=r"stage 'B'.*vectorize.*'k' is a reduction axis"):
        replay(_schedule(outs), [("vectorize", "B", "k")])


def test_trace_of_failed_primitive_is_not_recorded():
    outs, args = prog_rowsum()
    s = _schedule(outs)
    (B,) = outs
    with pytest.raises(ScheduleError):
        s[B].split(B.op.axis[0], factor=0)
    with pytest.raises(ScheduleError):
        s[B].vectorize(B.op.reduce_axis[0])
    assert s.trace == []


def test_expand_reduction_rejects_what_it_cannot_write_out():
    A = te.placeholder((5, 9), name="A")
    k = te.reduce_axis((0, 9), name="k")
    S = te.compute((5,), lambda i: te.sum(A[i, k], axis=k, where=k < 4), name="S")
    with pytest.raises(ScheduleError, match="'S' reduces under a condition"):
        te.create_schedule(S.op).expand_reduction(S)
    B = te.compute((5,), lambda i: A[i, 0] + 1, name="B")
    with pytest.raises(ScheduleError, match="'B' is not a reduction"):
        te.create_schedule(B.op).expand_reduction(B)
    s = te.create_schedule(S.op)
    s[S].split(S.op.axis[0], factor=2)
    with pytest.raises(ScheduleError, match="already scheduled"):
        s.expand_reduction(S)
