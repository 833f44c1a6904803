"""Tasks: a template's space, its flop count and reference, and every point of a small space
built and checked against the numpy oracle (a schedule changes speed, never results)."""
import pickle

import numpy as np
import pytest

import tensorc as tc
from tensorc import autotune, te
from tensorc.autotune.space import SpaceError
from tensorc.autotune.task import compute_flop, random_array


@autotune.template("test_task.matmul")
def matmul(M, N, K):
    k = te.reduce_axis((0, K), name="k")
    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = te.create_schedule(C.op)
    cfg = autotune.get_config()
    i, j = C.op.axis
    cfg.define_split("tile_i", i, num_outputs=2, policy="power2", max_factor=8)
    cfg.define_split("tile_j", j, num_outputs=3, policy="power2", max_factor=8)
    cfg.define_split("tile_k", k, num_outputs=2, policy="candidate", candidate=[[-1, 1], [-1, 4]])
    cfg.define_knob("vec", [False, True])
    io, ii = cfg["tile_i"].apply(s, C, i)
    jo, jm, ji = cfg["tile_j"].apply(s, C, j)
    ko, ki = cfg["tile_k"].apply(s, C, k)
    s[C].reorder(io, jo, ko, jm, ii, ki, ji)
    if cfg["vec"].val:
        s[C].vectorize(ji)
    s[C].parallel(io)
    return s, [A, B, C]


@autotune.template("test_task.flop_declared")
def declared(n):
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] + 1.0, name="B")
    autotune.get_config().add_flop(1234)
    return te.create_schedule(B.op), [A, B]


def test_task_identity_space_and_info():
    task = autotune.create_task("test_task.matmul", (13, 19, 7))
    assert task.key == "test_task.matmul[13,19,7]"
    assert len(task.config_space) == 4 * 13 * 2 * 2     # tile_j: (a, b) with b <= ceil(19 / a)
    assert task.tensors_info() == [((13, 7), "float32"), ((7, 19), "float32"),
                                   ((13, 19), "float32")]
    assert task.num_outputs == 1 and [t.name for t in task.inputs] == ["A", "B"]
    assert task.flop == 2 * 13 * 19 * 7
    assert autotune.create_task("test_task.flop_declared", (5,)).flop == 1234


def test_every_point_of_a_small_space_matches_the_oracle():
    """Odd sizes the tile factors do not divide; NaN-filled outputs catch unwritten cells."""
    task = autotune.create_task("test_task.matmul", (13, 19, 7))
    inputs, (want,) = task.reference(seed=1)
    assert want.shape == (13, 19) and np.isfinite(want).all()
    rng = np.random.default_rng(0)
    for index in sorted({int(rng.integers(len(task.config_space))) for _ in range(12)} | {0}):
        mod = task.build(index)
        got = np.full((13, 19), np.nan, np.float32)
        mod(*inputs, got)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5,
                                   err_msg=str(task.config(index)))


def test_config_from_index_dict_or_entity_of_an_equal_space():
    task = autotune.create_task("test_task.matmul", (13, 19, 7))
    cfg = task.config(37)
    assert task.config(cfg.to_dict()).index == 37
    again = autotune.create_task("test_task.matmul", (13, 19, 7))
    assert again.config(cfg).index == 37 and again.config(cfg).space is again.config_space
    with pytest.raises(SpaceError, match="outside the space"):
        task.config(len(task.config_space))


def test_lowered_program_differs_per_config():
    task = autotune.create_task("test_task.matmul", (13, 19, 7))
    scalar = task.config({**task.config(0).to_dict(), "tile_j": [-1, 2, 4]})
    vec = task.config({**scalar.to_dict(), "vec": True})
    assert "ramp(" in str(task.lower(vec)) and "ramp(" not in str(task.lower(scalar))


def test_task_pickles_and_round_trips_through_json():
    task = autotune.create_task("test_task.matmul", (13, 19, 7))
    copy = pickle.loads(pickle.dumps(task))
    assert copy.key == task.key and len(copy.config_space) == len(task.config_space)
    assert autotune.Task.from_json(task.to_json()).key == task.key


def test_bad_tasks_name_what_is_wrong():
    with pytest.raises(SpaceError, match="no template named 'nope'"):
        autotune.create_task("nope", (1,))
    with pytest.raises(SpaceError, match="JSON values"):
        autotune.create_task("test_task.matmul", (np.zeros(2), 1, 1))
    with pytest.raises(ValueError, match="unknown target 'rocm'"):
        autotune.create_task("test_task.matmul", (4, 4, 4), target="rocm")
    with pytest.raises(ValueError, match="'test_task.matmul' has no variant for target 'cuda'"):
        autotune.create_task("test_task.matmul", (4, 4, 4), target="cuda")
    with pytest.raises(SpaceError, match="already registered"):
        autotune.template("test_task.matmul")(lambda: None)


def test_template_called_directly_uses_the_first_point():
    s, args = matmul(6, 10, 3)
    mod = tc.build(s, args)
    a, b = (random_array(t.shape, t.dtype, np.random.default_rng(2)) for t in args[:2])
    c = np.full((6, 10), np.nan, np.float32)
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5)


def test_compute_flop_counts_arithmetic_per_point():
    A = te.placeholder((8, 4), name="A")
    k = te.reduce_axis((0, 4), name="k")
    B = te.compute((8,), lambda i: te.sum(A[i, k] * A[i, k], axis=k), name="B")
    C = te.compute((8,), lambda i: te.exp(B[i]) + 1.0, name="C")
    assert compute_flop([C]) == 8 * 4 * 2 + 8 * 2
    copy = te.compute((8, 4), lambda i, j: A[i, j], name="copy")
    assert compute_flop([copy]) == 0
    # index arithmetic and padding conditions are address work, not flops
    X = te.placeholder((5, 13), name="X")
    r = te.reduce_axis((0, 3), name="r")
    conv = te.compute((5, 11), lambda c, x: te.sum(X[c, x + r] * 2.0, axis=r), name="conv")
    pad = te.compute((5, 15), lambda c, x: te.if_then_else(
        te.all(x >= 1, x < 14), X[c, te.max(x - 1, 0)], 0.0), name="pad")
    assert compute_flop([conv]) == 5 * 11 * 3 * 2 and compute_flop([pad]) == 0


def test_random_arrays_avoid_zeros():
    rng = np.random.default_rng(0)
    x = random_array((1000,), "float32", rng)
    assert x.dtype == np.float32 and np.abs(x).min() >= 0.5
    n = random_array((100,), "int32", rng)
    assert n.dtype == np.int32 and n.min() >= 0 and n.max() < 4
