"""Reductions against numpy: every reducer, axis sets with negative axes and keepdims, the
argmax tie and NaN rules, and both default schedules (row sums rfactor-vectorized, column sums
vectorized across the output) at sizes where they parallelise."""
import numpy as np
import pytest
from ops_helpers import check, lowered, placeholder

from tensorc import ops, te

SHAPE = (3, 7, 33)
REDUCERS = {
    "sum": (ops.sum, np.sum), "mean": (ops.mean, np.mean), "max": (ops.max, np.max),
    "min": (ops.min, np.min), "prod": (ops.prod, np.prod),
    "l1": (ops.l1, lambda a, **kw: np.sum(np.abs(a), **kw)),
    "l2": (ops.l2, lambda a, **kw: np.sqrt(np.sum(a * a, **kw))),
    "sum_square": (ops.sum_square, lambda a, **kw: np.sum(a * a, **kw)),
    "log_sum_exp": (ops.log_sum_exp, lambda a, **kw: np.log(np.sum(np.exp(a), **kw))),
}
AXES = [dict(axis=None), dict(axis=-1), dict(axis=(1,), keepdims=True)]


@pytest.mark.parametrize("kw", AXES, ids=str)
def test_every_reducer_over_axis_sets(kw):
    """All reducers over one axis set in one module; outputs are named after the reducer."""
    x, a = placeholder(SHAPE)
    outs = [op(x, **kw) for op, _ in REDUCERS.values()]
    want = np.sum(a, **kw).shape
    assert all(o.shape == want for o in outs)
    check(outs, {x: a}, lambda p: tuple(ref(p.astype(np.float64), **kw)
                                        for _, ref in REDUCERS.values()),
          rtol=2e-5, atol=1e-5)


def test_axis_tuples_with_negative_axes():
    x, a = placeholder(SHAPE)
    outs = [ops.sum(x, axis=(0, -1)), ops.max(x, axis=(-3, 1), keepdims=True),
            ops.mean(x, axis=0, keepdims=True)]
    check(outs, {x: a}, lambda p: (p.sum((0, 2)), p.max((0, 1), keepdims=True),
                                   p.mean(0, keepdims=True)), rtol=2e-6)


def test_integer_sums_and_means():
    x, a = placeholder((7, 33), "int32")
    outs = [ops.sum(x, axis=1), ops.sum(x, axis=0, dtype="int64"), ops.mean(x, axis=1),
            ops.max(x, axis=(0, 1))]
    assert [o.dtype for o in outs] == ["int32", "int64", "float32", "int32"]
    check(outs, {x: a}, lambda p: (p.sum(1), p.sum(0), p.mean(1), p.max()))


def test_argmax_argmin_ties_give_the_first_index():
    x = te.placeholder((5, 33), "int32", name="x")
    a = np.random.default_rng(0).integers(0, 3, (5, 33)).astype("int32")  # many ties
    outs = [ops.argmax(x, axis=1), ops.argmin(x, axis=-1), ops.argmax(x, axis=0, keepdims=True),
            ops.argmin(x), ops.argmax(x, axis=1, select_last_index=True)]
    assert all(o.dtype == "int64" for o in outs)
    check(outs, {x: a}, lambda p: (np.argmax(p, 1), np.argmin(p, -1),
                                   np.argmax(p, 0)[None], np.argmin(p),
                                   32 - np.argmax(p[:, ::-1], 1)))


def test_argmax_finds_the_first_nan_as_numpy():
    x, a = placeholder((3, 7))
    a[1, 4] = a[1, 2] = a[2, 0] = np.nan
    check([ops.argmax(x, axis=1), ops.argmin(x, axis=1)], {x: a},
          lambda p: (np.argmax(p, 1), np.argmin(p, 1)))


def test_row_reduction_is_rfactored_and_parallel():
    """Sums along contiguous rows: vector partial sums (rfactor) per row, rows in parallel."""
    x, a = placeholder((300, 259))
    out = ops.mean(x, axis=-1)
    text = lowered(out, [x, out])
    assert ".rf" in text and "parallel" in text and "ramp" in text
    check(out, {x: a}, lambda p: p.astype(np.float64).mean(-1), rtol=1e-5)


def test_column_reduction_vectorizes_the_output_axis():
    """Sums over the outer axis: the reduction loop runs outside a block of vectorized
    outputs (the last axis, cut into blocks of COLUMN_BLOCK), the other output axes in
    parallel."""
    x, a = placeholder((65, 4, 261))
    out = ops.sum(x, axis=0)
    text = lowered(out, [x, out])
    assert ".rf" not in text and "parallel" in text and "ramp" in text
    assert "x[ramp(" in text
    check(out, {x: a}, lambda p: p.astype(np.float64).sum(0), rtol=1e-5, atol=1e-4)


def test_argmax_over_the_middle_axis_of_a_large_tensor():
    x, a = placeholder((40, 65, 33), seed=3)
    check(ops.argmax(x, axis=1), {x: a}, lambda p: np.argmax(p, 1))


def test_errors_name_the_op_tensor_and_axis():
    x = te.placeholder((3, 7), name="data")
    with pytest.raises(ValueError, match=r"sum: axis 2 is out of range for tensor 'data'"):
        ops.sum(x, axis=2)
    with pytest.raises(ValueError, match=r"argmax: axis -3 is out of range .*'data'"):
        ops.argmax(x, axis=-3)
    with pytest.raises(ValueError, match=r"mean: axes \(1, -1\) of tensor 'data' name the "
                                         "same axis twice"):
        ops.mean(x, axis=(1, -1))
    with pytest.raises(ValueError, match="max: no axis of tensor 'data'"):
        ops.max(x, axis=())
    with pytest.raises(TypeError, match="l2: tensor 'ints' has dtype int32"):
        ops.l2(te.placeholder((3,), "int32", "ints"))
