"""Illegal tensor expressions and bad calls of a built function fail early with a message
that names the tensor or the argument.

Like ``test_errors`` (schedule primitives), each test states the error a user should get: the
exception type and the meaningful part of the message, never a crash, a wrong answer or an
error from deep inside that names nothing the user wrote.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import matmul  # noqa: E402

import tensorc as tc  # noqa: E402
from tensorc import te  # noqa: E402

# ------------------------------------------------------------------------------ TE errors

def test_wrong_rank_indexing():
    A = te.placeholder((7, 9), name="A")
    with pytest.raises(IndexError, match=r"tensor 'A' has 2 dimensions, indexed with 1"):
        te.compute((7,), lambda i: A[i], name="B")
    with pytest.raises(IndexError, match=r"tensor 'A' has 2 dimensions, indexed with 3"):
        te.compute((7,), lambda i: A[i, i, i], name="B")


def test_a_tensor_is_not_iterable():
    """tuple(t) or a loop over t would otherwise index t[0], t[1], ... without end."""
    A = te.placeholder((7,), name="A")
    with pytest.raises(TypeError, match=r"tensor 'A' is not iterable"):
        tuple(A)


def test_float_index():
    A = te.placeholder((7, 9), name="A")
    with pytest.raises(TypeError, match=r"tensor 'A': index 1 .*float32.*integers"):
        te.compute((7,), lambda i: A[i, 1.5], name="B")


def test_compute_with_nested_reduction():
    A = te.placeholder((7, 9), name="A")
    k = te.reduce_axis((0, 9), name="k")
    k2 = te.reduce_axis((0, 7), name="k2")
    with pytest.raises(ValueError, match=r"compute 'E': a reduction must be the whole body"):
        te.compute((9,), lambda j: te.sum(te.sum(A[k2, k], axis=k) * A[k2, j], axis=k2),
                   name="E")


def test_compute_with_reduction_inside_arithmetic():
    A = te.placeholder((7, 9), name="A")
    k = te.reduce_axis((0, 9), name="k")
    with pytest.raises(ValueError, match=r"compute 'E': a reduction must be the whole body"):
        te.compute((7,), lambda i: te.sum(A[i, k], axis=k) * 2, name="E")


@pytest.mark.parametrize("dim", [2.5, "3", None])
def test_non_integer_shape(dim):
    with pytest.raises(TypeError, match=r"placeholder 'X': dimension 1 is .*static integers"):
        te.placeholder((4, dim), name="X")
    with pytest.raises(TypeError, match=r"compute 'Y': dimension 0 is .*static integers"):
        te.compute((dim,), lambda i: i, name="Y")


def test_symbolic_shape():
    n = te.var("n")
    with pytest.raises(TypeError, match=r"placeholder 'X': dimension 0 is n; shapes must be "
                                        r"static integers"):
        te.placeholder((n,), name="X")


@pytest.mark.parametrize("dim", [0, -3])
def test_non_positive_shape(dim):
    with pytest.raises(ValueError, match=rf"placeholder 'X': dimension 0 is {dim}; extents must "
                                         r"be positive"):
        te.placeholder((dim,), name="X")


def test_compute_arity_mismatch():
    with pytest.raises(ValueError, match=r"compute 'Y': shape has 2 dimensions but the function "
                                         r"takes 1"):
        te.compute((3, 4), lambda i: i, name="Y")


def test_reduce_axis_empty_range():
    with pytest.raises(ValueError, match=r"reduce_axis 'r': empty range \[3, 3\)"):
        te.reduce_axis((3, 3), name="r")


def test_reduce_over_spatial_axis():
    A = te.placeholder((7, 9), name="A")
    with pytest.raises(TypeError, match=r"sum: axis .* is not a te\.reduce_axis"):
        te.compute((7, 9), lambda i, j: te.sum(A[i, j], axis=j), name="B")


def test_reduce_axis_given_twice():
    A = te.placeholder((7, 9), name="A")
    k = te.reduce_axis((0, 9), name="k")
    with pytest.raises(ValueError, match=r"sum: the same reduce axis is given twice"):
        te.compute((7,), lambda i: te.sum(A[i, k], axis=[k, k]), name="B")


def test_float_intrinsic_on_int():
    A = te.placeholder((7,), dtype="int32", name="A")
    with pytest.raises(TypeError, match=r"te\.exp needs a floating-point argument"):
        te.compute((7,), lambda i: te.exp(A[i]), name="B")


# ------------------------------------------------------------------- calling the built function

@pytest.fixture(scope="module")
def built():
    A, B, C = matmul(3, 4, 5)
    s = te.create_schedule(C.op)
    f = tc.build(s, [A, B, C], name="mm")
    a = np.ones((3, 5), np.float32)
    b = np.ones((5, 4), np.float32)
    c = np.zeros((3, 4), np.float32)
    f(a, b, c)
    np.testing.assert_array_equal(c, np.full((3, 4), 5, np.float32))
    return f, a, b, c


def test_call_wrong_count(built):
    f, a, b, c = built
    with pytest.raises(TypeError, match=r"mm\(\) takes 3 arguments .*got 2"):
        f(a, b)


def test_call_wrong_dtype(built):
    f, a, b, c = built
    with pytest.raises(TypeError, match=r"argument 'B' \(#1\): expected dtype float32, got "
                                        r"float64"):
        f(a, b.astype(np.float64), c)


def test_call_wrong_shape(built):
    f, a, b, c = built
    with pytest.raises(ValueError, match=r"argument 'C' \(#2\): expected shape \(3, 4\), got "
                                         r"\(4, 3\)"):
        f(a, b, np.zeros((4, 3), np.float32))


def test_call_non_contiguous(built):
    f, a, b, c = built
    bt = np.ones((4, 5), np.float32).T
    with pytest.raises(ValueError, match=r"argument 'B' \(#1\): expected a C-contiguous array"):
        f(a, bt, c)


def test_call_not_an_array(built):
    f, a, b, c = built
    with pytest.raises(TypeError, match=r"argument 'A' \(#0\) must be a numpy\.ndarray"):
        f(a.tolist(), b, c)


def test_call_read_only_output(built):
    f, a, b, c = built
    ro = np.zeros((3, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"argument 'C' \(#2\) is an output but the array is "
                                         r"read-only"):
        f(a, b, ro)


def test_call_output_aliasing_input():
    A = te.placeholder((4, 4), name="A")
    B = te.compute((4, 4), lambda i, j: A[j, i], name="B")
    s = te.create_schedule(B.op)
    f = tc.build(s, [A, B], name="transpose")
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    with pytest.raises(ValueError, match=r"output argument 'B' \(#1\) overlaps argument 'A'"):
        f(a, a)
