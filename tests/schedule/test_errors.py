"""Illegal schedule requests fail early with a message that names the stage and the axis.

Each test states the error a user should get: the exception type and the meaningful part of
the message (the stage, the axis, what is wrong), never a crash, a wrong answer or an error from
deep inside lowering that names nothing the user wrote. Schedule primitives and the
arguments of ``lower``/``build`` are here; tensor-expression definitions and calls of a built
function are in ``test_errors_te_and_call``.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import matmul  # noqa: E402

import tensorc as tc  # noqa: E402
from tensorc import te  # noqa: E402
from tensorc.schedule import ScheduleError  # noqa: E402


def chain():
    A = te.placeholder((7, 9), name="A")
    B = te.compute((7, 9), lambda i, j: A[i, j] * 2, name="B")
    C = te.compute((7, 9), lambda i, j: B[i, j] + 1, name="C")
    return A, B, C


def row_sum():
    A = te.placeholder((7, 9), name="A")
    k = te.reduce_axis((0, 9), name="k")
    B = te.compute((7,), lambda i: te.sum(A[i, k], axis=k), name="B")
    return A, B, k


def test_schedule_error_is_a_value_error():
    assert issubclass(ScheduleError, ValueError)


# ------------------------------------------------------------------------ annotations

@pytest.mark.parametrize("prim", ["vectorize", "parallel"])
def test_annotate_reduction_axis(prim):
    A, B, k = row_sum()
    s = te.create_schedule(B.op)
    with pytest.raises(ScheduleError, match=rf"stage 'B'.*{prim}.*'k' is a reduction axis"):
        getattr(s[B], prim)(k)


@pytest.mark.parametrize("prim", ["vectorize", "parallel"])
def test_annotate_split_reduction_axis(prim):
    A, B, k = row_sum()
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, factor=4)
    with pytest.raises(ScheduleError, match=r"stage 'B'.*'k\.(inner|outer)' is a reduction"):
        getattr(s[B], prim)(ki if prim == "vectorize" else ko)


def test_annotate_twice():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    s[C].vectorize(C.op.axis[1])
    with pytest.raises(ScheduleError, match=r"stage 'C'.*'j' is already marked vectorize"):
        s[C].parallel(C.op.axis[1])


def test_annotate_placeholder_stage():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"stage 'A'.*placeholder"):
        s[A].parallel(C.op.axis[0])


def test_annotate_not_an_axis():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"stage 'C'.*vectorize.*expected an axis"):
        s[C].vectorize(3)


# ------------------------------------------------------------------------------ split

@pytest.mark.parametrize("factor", [0, -2, 2.5, "4", True, None])
def test_split_bad_factor(factor):
    A, B, C = chain()
    s = te.create_schedule(C.op)
    match = r"stage 'C'.*split of 'i'.*positive integer" if factor is not None else \
        r"stage 'C'.*split.*exactly one of factor= or nparts="
    with pytest.raises(ScheduleError, match=match):
        s[C].split(C.op.axis[0], factor=factor)


@pytest.mark.parametrize("nparts", [0, -1, 1.5])
def test_split_bad_nparts(nparts):
    A, B, C = chain()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"stage 'C'.*split of 'j'.*positive integer"):
        s[C].split(C.op.axis[1], nparts=nparts)


def test_split_both_factor_and_nparts():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"stage 'C'.*exactly one of factor= or nparts="):
        s[C].split(C.op.axis[0], factor=2, nparts=2)


def test_split_axis_already_split():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    i = C.op.axis[0]
    s[C].split(i, factor=2)
    with pytest.raises(ScheduleError, match=r"stage 'C'.*split.*'i' was already split"):
        s[C].split(i, factor=3)


def test_axis_already_fused():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    s[C].fuse(i, j)
    with pytest.raises(ScheduleError, match=r"stage 'C'.*vectorize.*'j' was already split or "
                                           r"fused"):
        s[C].vectorize(j)


@pytest.mark.parametrize("prim", ["split", "vectorize", "unroll", "parallel", "reorder", "fuse"])
def test_axis_from_another_stage(prim):
    A, B, C = chain()
    s = te.create_schedule(C.op)
    other = B.op.axis[0]                       # named 'i' like C's own axis
    call = {"split": lambda: s[C].split(other, factor=2),
            "vectorize": lambda: s[C].vectorize(other),
            "unroll": lambda: s[C].unroll(other),
            "parallel": lambda: s[C].parallel(other),
            "reorder": lambda: s[C].reorder(C.op.axis[1], other),
            "fuse": lambda: s[C].fuse(other, C.op.axis[1])}[prim]
    with pytest.raises(ScheduleError, match=r"stage 'C'.*'i' does not belong to this stage"):
        call()


# ------------------------------------------------------------------------- fuse, reorder

def test_fuse_non_adjacent():
    A = te.placeholder((3, 4, 5), name="A")
    B = te.compute((3, 4, 5), lambda i, j, k: A[i, j, k] + 1, name="B")
    s = te.create_schedule(B.op)
    i, j, k = B.op.axis
    with pytest.raises(ScheduleError, match=r"stage 'B'.*fuse.*'i' and 'k' are not adjacent"):
        s[B].fuse(i, k)


def test_fuse_wrong_order():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    with pytest.raises(ScheduleError, match=r"stage 'C'.*fuse.*'j' and 'i' are not adjacent"):
        s[C].fuse(j, i)


def test_fuse_spatial_with_reduction():
    A, B, k = row_sum()
    s = te.create_schedule(B.op)
    with pytest.raises(ScheduleError, match=r"stage 'B'.*fuse.*'i'.*reduce axis 'k'"):
        s[B].fuse(B.op.axis[0], k)


def test_reorder_duplicate_axis():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    with pytest.raises(ScheduleError, match=r"stage 'C'.*reorder.*same axis.*twice"):
        s[C].reorder(j, i, j)


# ---------------------------------------------------------------------------- placement

def test_compute_at_axis_not_a_leaf_of_target():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    s[C].split(i, factor=2)
    with pytest.raises(ScheduleError, match=r"stage 'B'.*compute_at.*'i' is not a loop of "
                                           r"stage 'C'"):
        s[B].compute_at(s[C], i)


def test_compute_at_axis_of_another_stage():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"stage 'B'.*compute_at.*not a loop of stage 'C'"):
        s[B].compute_at(s[C], B.op.axis[0])


def test_compute_at_not_a_stage():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"stage 'B'.*compute_at.*must be a stage"):
        s[B].compute_at(C, C.op.axis[0])


def test_compute_at_into_stage_that_does_not_read_it():
    """B is read only by D; attaching it inside C (a sibling that never reads B) is
    meaningless. The error must say that C does not read B, at the call or at lowering."""
    A = te.placeholder((7, 9), name="A")
    B = te.compute((7, 9), lambda i, j: A[i, j] * 2, name="B")
    C = te.compute((7, 9), lambda i, j: A[i, j] + 1, name="C")
    D = te.compute((7, 9), lambda i, j: B[i, j] + C[i, j], name="D")
    s = te.create_schedule(D.op)
    with pytest.raises(ScheduleError, match=r"'C' does not (read|consume).*'B'"):
        s[B].compute_at(s[C], C.op.axis[0])
        tc.lower(s, [A, D])


def test_compute_at_into_unrelated_stage_of_other_output():
    """Two outputs; B feeds only D but is attached into E, which reads only A."""
    A = te.placeholder((7, 9), name="A")
    B = te.compute((7, 9), lambda i, j: A[i, j] * 2, name="B")
    D = te.compute((7, 9), lambda i, j: B[i, j] + 1, name="D")
    E = te.compute((7, 9), lambda i, j: A[i, j] - 1, name="E")
    s = te.create_schedule([D.op, E.op])
    with pytest.raises(ScheduleError, match=r"'E' does not (read|consume).*'B'"):
        s[B].compute_at(s[E], E.op.axis[0])
        tc.lower(s, [A, D, E])


def test_compute_at_with_reader_outside_the_loop():
    A = te.placeholder((7, 9), name="A")
    B = te.compute((7, 9), lambda i, j: A[i, j] * 2, name="B")
    C = te.compute((7, 9), lambda i, j: B[i, j] + 1, name="C")
    D = te.compute((7, 9), lambda i, j: B[i, j] * C[i, j], name="D")
    s = te.create_schedule(D.op)
    s[B].compute_at(s[C], C.op.axis[0])
    with pytest.raises(ScheduleError, match=r"'B'.*'D' also reads it outside"):
        tc.lower(s, [A, D])


@pytest.mark.parametrize("how", ["split", "fuse"])
def test_restructure_attach_axis_after_compute_at(how):
    """B is computed at C's loop 'i', then 'i' is split (or fused). Either the schedule still
    works (B follows the loop) or the request is refused naming the axis and the attached
    stage; never a bare "ValueError: i is not in list" from deep inside bound inference."""
    A = te.placeholder((17, 9), name="A")
    B = te.compute((17, 9), lambda i, j: A[i, j] * 2, name="B")
    C = te.compute((17, 9), lambda i, j: B[i, j] + 1, name="C")
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    s[B].compute_at(s[C], i)
    try:
        if how == "split":
            s[C].split(i, factor=4)
        else:
            s[C].fuse(i, j)
        f = tc.build(s, [A, C], name="restructured")
    except ScheduleError as e:
        assert "'i'" in str(e) and "'B'" in str(e), str(e)
        return
    a = np.full((17, 9), 0.75, np.float32)
    c = np.full((17, 9), np.nan, np.float32)
    f(a, c)
    np.testing.assert_array_equal(c, a * 2 + 1)


def test_compute_at_self_and_cycle():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"stage 'B'.*cannot be computed at itself"):
        s[B].compute_at(s[B], B.op.axis[0])


def test_compute_at_of_output():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"stage 'C'.*compute_at.*output"):
        s[C].compute_at(s[B], B.op.axis[0])


def test_compute_inline_reduction():
    A, B, k = row_sum()
    C = te.compute((7,), lambda i: B[i] * 2, name="C")
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"stage 'B'.*compute_inline.*reduction"):
        s[B].compute_inline()


def test_compute_inline_output():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"stage 'C'.*compute_inline.*output"):
        s[C].compute_inline()


def test_compute_inline_with_stage_attached_to_it():
    A = te.placeholder((7, 9), name="A")
    B = te.compute((7, 9), lambda i, j: A[i, j] * 2, name="B")
    C = te.compute((7, 9), lambda i, j: B[i, j] + 1, name="C")
    D = te.compute((7, 9), lambda i, j: C[i, j] + 1, name="D")
    s = te.create_schedule(D.op)
    s[B].compute_at(s[C], C.op.axis[0])
    with pytest.raises(ScheduleError, match=r"stage 'C'.*compute_inline.*'B' is computed at"):
        s[C].compute_inline()


def test_schedule_inlined_stage():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    s[B].compute_inline()
    with pytest.raises(ScheduleError, match=r"stage 'B'.*split.*inlined"):
        s[B].split(B.op.axis[0], factor=2)


def test_stage_of_tensor_not_in_schedule():
    A, B, C = chain()
    X = te.placeholder((3,), name="X")
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"'X' is not part of this schedule"):
        s[X]


# ---------------------------------------------------------------------- dataflow rewrites

def test_cache_write_after_split():
    A, B, C = matmul(7, 9, 5)
    s = te.create_schedule(C.op)
    s[C].split(C.op.axis[0], factor=2)
    with pytest.raises(ScheduleError, match=r"cache_write.*stage 'C' is already scheduled"):
        s.cache_write(C, "local")


def test_cache_write_after_annotation():
    A, B, C = matmul(7, 9, 5)
    s = te.create_schedule(C.op)
    s[C].parallel(C.op.axis[0])
    with pytest.raises(ScheduleError, match=r"cache_write.*stage 'C' is already scheduled"):
        s.cache_write(C, "local")


def test_cache_write_placeholder():
    A, B, C = matmul(7, 9, 5)
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"cache_write.*'A' is a placeholder"):
        s.cache_write(A, "local")


def test_cache_read_reader_that_does_not_read():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"cache_read.*'C' does not read 'A'"):
        s.cache_read(A, "local", [C])


def test_rfactor_of_spatial_axis():
    A, B, k = row_sum()
    s = te.create_schedule(B.op)
    with pytest.raises(ScheduleError, match=r"rfactor.*\bi\b.*not a reduction loop of stage "
                                           r"'B'"):
        s.rfactor(B, B.op.axis[0])


def test_rfactor_of_non_reduction_stage():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"rfactor.*'C' is not a reduction"):
        s.rfactor(C, C.op.axis[0])


def test_rfactor_of_axis_already_split():
    A, B, k = row_sum()
    s = te.create_schedule(B.op)
    s[B].split(k, factor=4)
    with pytest.raises(ScheduleError, match=r"rfactor.*\bk\b.*not a reduction loop of stage "
                                           r"'B'"):
        s.rfactor(B, k)


def test_rfactor_bad_factor_axis():
    A, B, k = row_sum()
    s = te.create_schedule(B.op)
    ko, ki = s[B].split(k, factor=4)
    with pytest.raises(ScheduleError, match=r"rfactor.*factor_axis 2 out of range"):
        s.rfactor(B, ki, factor_axis=2)


# ------------------------------------------------------------------------------- threads

def test_bind_with_non_thread_axis():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    with pytest.raises(ScheduleError, match=r"stage 'C'.*bind.*te\.thread_axis"):
        s[C].bind(i, j)


def test_bind_reduction_axis():
    A, B, k = row_sum()
    s = te.create_schedule(B.op)
    with pytest.raises(ScheduleError, match=r"stage 'B'.*bind.*'k' is a reduction axis"):
        s[B].bind(k, te.thread_axis("blockIdx.x"))


def test_bind_same_thread_twice():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    s[C].bind(i, te.thread_axis("blockIdx.x"))
    with pytest.raises(ScheduleError, match=r"stage 'C'.*blockIdx\.x is already bound to 'i'"):
        s[C].bind(j, te.thread_axis("blockIdx.x"))


def test_thread_axis_bad_tag():
    with pytest.raises(ValueError, match=r"thread_axis: unknown tag 'threadIdx\.w'"):
        te.thread_axis("threadIdx.w")


def test_build_bound_schedule_for_llvm():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    s[C].bind(i, te.thread_axis("blockIdx.x"))
    s[C].bind(j, te.thread_axis("threadIdx.x"))
    with pytest.raises(ValueError, match=r"loop .(i|j). is bound to (blockIdx|threadIdx)\.x, "
                                         r"which only a GPU target"):
        tc.build(s, [A, C], target="llvm")


def test_build_unknown_target():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    with pytest.raises(ValueError, match=r"unknown target 'opencl'"):
        tc.build(s, [A, C], target="opencl")


# ------------------------------------------------------------------------- lower arguments

def test_placeholder_missing_from_args():
    A, B, C = matmul(7, 9, 5)
    s = te.create_schedule(C.op)
    with pytest.raises(ValueError, match=r"placeholder 'B' is read but not in the argument list"):
        tc.lower(s, [A, C])


def test_output_missing_from_args():
    A, B, C = matmul(7, 9, 5)
    s = te.create_schedule(C.op)
    with pytest.raises(ValueError, match=r"output 'C' is not in the argument list"):
        tc.build(s, [A, B])


def test_duplicate_argument():
    A, B, C = matmul(7, 9, 5)
    s = te.create_schedule(C.op)
    with pytest.raises(ValueError, match=r"same tensor appears twice"):
        tc.lower(s, [A, B, B, C])


def test_non_tensor_argument():
    A, B, C = matmul(7, 9, 5)
    s = te.create_schedule(C.op)
    with pytest.raises(TypeError, match=r"arguments must be tensors"):
        tc.lower(s, [A, np.zeros((5, 9), np.float32), C])


def test_inlined_tensor_in_args_is_written_or_rejected():
    """An intermediate passed as an argument is filled by the call (as it is when computed at
    the root or attached); once inlined it has no buffer of its own, so the call must either
    still fill it or building must refuse, naming it: never leave it silently unwritten."""
    A, B, C = chain()
    s = te.create_schedule(C.op)
    s[B].compute_inline()
    try:
        f = tc.build(s, [A, B, C], name="inl")
    except (ValueError, ScheduleError) as e:
        assert "'B'" in str(e) and "inline" in str(e), str(e)
        return
    a = np.ones((7, 9), np.float32)
    b = np.full((7, 9), np.nan, np.float32)
    c = np.full((7, 9), np.nan, np.float32)
    f(a, b, c)
    np.testing.assert_array_equal(c, a * 2 + 1)
    np.testing.assert_array_equal(b, a * 2)


def test_intermediate_in_args_is_written():
    A, B, C = chain()
    s = te.create_schedule(C.op)
    s[B].compute_at(s[C], C.op.axis[0])
    f = tc.build(s, [A, B, C], name="mid")
    a = np.full((7, 9), 1.5, np.float32)
    b = np.full((7, 9), np.nan, np.float32)
    c = np.full((7, 9), np.nan, np.float32)
    f(a, b, c)
    np.testing.assert_array_equal(b, a * 2)
    np.testing.assert_array_equal(c, a * 2 + 1)


def test_tensor_of_another_program_in_args():
    A, B, C = chain()
    X = te.placeholder((3,), name="X")
    Y = te.compute((3,), lambda i: X[i] + 1, name="Y")
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"'Y' is not part of this schedule"):
        tc.lower(s, [A, C, Y])


def test_static_out_of_bounds_read():
    A = te.placeholder((7, 9), name="A")
    with pytest.raises(IndexError, match=r"compute 'B': reads 'A' at index i \+ 1 in dimension "
                                         r"0.*extent 7.*te\.if_then_else"):
        te.compute((7, 9), lambda i, j: A[i + 1, j], name="B")
    with pytest.raises(IndexError, match=r"compute 'B': reads 'A' at index j - 1 in dimension 1"):
        te.compute((7, 9), lambda i, j: A[i, j - 1], name="B")


def test_build_without_args():
    A, B, C = matmul(7, 9, 5)
    s = te.create_schedule(C.op)
    with pytest.raises(TypeError, match=r"build: give the argument tensors"):
        tc.build(s)
