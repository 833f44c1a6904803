"""The auto-template: random points of the space derived from each kind of program compute
what the numpy oracle computes (odd sizes, NaN-filled outputs)."""
import pickle

import numpy as np
import pytest

from tensorc import autotune, te
from tensorc.autotune.auto_template import program_text


def _matmul(M, N, K):
    k = te.reduce_axis((0, K), name="k")
    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    return te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")


def _matmul_bias_relu(M, N, K):
    C = _matmul(M, N, K)
    bias = te.placeholder((N,), name="bias")
    return te.compute((M, N), lambda i, j: te.max(C[i, j] + bias[j], 0.0), name="D")


def _softmax(R, L):
    x = te.placeholder((R, L), name="x")
    k1, k2 = te.reduce_axis((0, L), name="k1"), te.reduce_axis((0, L), name="k2")
    mx = te.compute((R,), lambda i: te.max(x[i, k1], axis=k1), name="mx")
    e = te.compute((R, L), lambda i, j: te.exp(x[i, j] - mx[i]), name="e")
    sm = te.compute((R,), lambda i: te.sum(e[i, k2], axis=k2), name="sm")
    return te.compute((R, L), lambda i, j: e[i, j] / sm[i], name="y")


def _elementwise(shape):
    w = te.placeholder(shape, name="w")
    return te.compute(shape, lambda *i: te.tanh(w[i]) * 2.0 + 1.0, name="z")


def _conv(C, F, H):
    X = te.placeholder((1, C, H, H), name="X")
    W = te.placeholder((F, C, 3, 3), name="W")
    rc = te.reduce_axis((0, C), name="rc")
    ry, rx = te.reduce_axis((0, 3), name="ry"), te.reduce_axis((0, 3), name="rx")
    return te.compute((1, F, H - 2, H - 2), lambda n, f, y, x: te.sum(
        X[n, rc, y + ry, x + rx] * W[f, rc, ry, rx], axis=[rc, ry, rx]), name="Y")


PROGRAMS = {
    "matmul": (lambda: _matmul(37, 50, 29), {"tile_i", "tile_k", "cache_write", "attach"}),
    "epilogue": (lambda: _matmul_bias_relu(19, 33, 21), {"tile_j", "attach", "unroll"}),
    "softmax": (lambda: _softmax(13, 37), {"tile_inner", "inner_stages"}),
    "elementwise": (lambda: _elementwise((7, 9, 11)), {"tile_fused", "unroll"}),
    "conv": (lambda: _conv(5, 6, 11), {"tile_f", "tile_rc", "tile_ry", "tile_rx"}),
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_random_points_match_the_oracle(name):
    make, knobs = PROGRAMS[name]
    task = autotune.auto_task(make())
    space = task.config_space
    assert knobs <= set(space.knobs)
    inputs, want = task.reference()
    rng = np.random.default_rng(7)
    for index in {0, len(space) - 1} | {space.random_index(rng) for _ in range(3)}:
        mod = task.build(index)
        got = [np.full(w.shape, np.nan, w.dtype) for w in want]
        mod(*inputs, *got)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg=repr(task.config(index)))


def test_key_is_the_program_not_the_objects():
    a, b = autotune.auto_task(_matmul(8, 9, 10)), autotune.auto_task(_matmul(8, 9, 10))
    assert a.key == b.key and a.key.startswith("auto_C@")
    assert autotune.auto_task(_matmul(8, 9, 11)).key != a.key
    assert "sum(A[i, k] * B[k, j]" in program_text(a.tensors)


def test_auto_task_pickles_with_its_program():
    task = autotune.auto_task(_matmul_bias_relu(6, 7, 8))
    copy = pickle.loads(pickle.dumps(task))
    assert copy.key == task.key and len(copy.config_space) == len(task.config_space)
    inputs, (want,) = task.reference()
    got = np.full(want.shape, np.nan, np.float32)
    copy.build(5)(*inputs, got)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_argument_order_and_bad_outputs():
    C = _matmul(4, 5, 6)
    A, B = C.op.input_tensors
    task = autotune.auto_task(C, args=[B, A, C])
    assert [t.name for t in task.tensors] == ["B", "A", "C"]
    assert [t.name for t in autotune.auto_task(C).tensors] == ["A", "B", "C"]
    with pytest.raises(TypeError, match="computed te.Tensors"):
        autotune.auto_task(A)


def test_capsule_routing_is_tunable_without_schedule_code():
    """A program whose reductions are read by several later stages (routing rounds): the
    sketch keeps such a reduction out of the output's tiles, so every point builds."""
    from tensorc.ops import capsule
    u = te.placeholder((3, 37, 7), name="u")
    W = te.placeholder((37, 5, 9, 7), name="W")
    task = autotune.auto_task(capsule.dynamic_routing(capsule.predict(u, W), iterations=3))
    inputs, (want,) = task.reference()
    rng = np.random.default_rng(0)
    for index in {task.config_space.random_index(rng) for _ in range(3)}:
        got = np.full(want.shape, np.nan, np.float32)
        task.build(index)(*inputs, got)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_the_baseline_is_register_tiled_and_correct():
    """Candidates are timed against the baseline, so it must be a reasonable schedule, not
    point 0 (every loop untiled)."""
    k = te.reduce_axis((0, 45), name="k")
    A = te.placeholder((37, 45), name="A")
    B = te.placeholder((45, 70), name="B")
    C = te.compute((37, 70), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    task = autotune.auto_task(C)
    base = task.baseline_config().to_dict()
    assert base["tile_i"] == [-1, 1, 4] and base["tile_j"] == [-1, 1, 16]
    assert base["tile_k"] == [-1, 16] and task.baseline_config().index != 0
    inputs, (want,) = task.reference()
    got = np.full(want.shape, np.nan, np.float32)
    task.build(task.baseline_config())(*inputs, got)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _unrolled(task, **knobs):
    """Names of the loops the point ``knobs`` (over the baseline) unrolls."""
    config = task.baseline_config().to_dict()
    config.update(knobs)
    space = task.config_space
    sched, _ = task.instantiate(space.get(space.index_of(config)))
    return sorted(iv.var.name for st in sched.stages
                  for iv, (kind, _) in st.iter_var_attrs.items() if kind == "unroll")


def test_unroll_step_bounds_the_unrolled_body():
    """The unroll knob unrolls the innermost register-tile loops while the copies they make
    fit its step, so no point's body explodes (a 16x16 tile with a 32x2 reduction tile,
    unrolled whole, made 16384 copies and a 3.5-minute build)."""
    task = autotune.auto_task(_matmul(64, 64, 64))
    tile = {"tile_i": [-1, 1, 4], "tile_j": [-1, 1, 16], "tile_k": [-1, 16]}
    direct = dict(tile, cache_write=False)   # nest: ... i.inner(4) k.inner(16) j.inner(vec)
    assert _unrolled(task, unroll=0, **direct) == []
    assert _unrolled(task, unroll=16, **direct) == ["k.inner"]
    assert _unrolled(task, unroll=64, **direct) == ["i.inner", "k.inner"]
    cached = dict(tile, cache_write=True, attach=1)   # accumulator nest: k, then i(4) j(vec)
    assert _unrolled(task, unroll=16, **cached) == ["i.c"]
    assert _unrolled(task, unroll=0, **cached) == []
    big = {"tile_i": [-1, 1, 64], "tile_j": [-1, 1, 64], "tile_k": [-1, 64],
           "cache_write": False, "unroll": 512}
    assert _unrolled(task, **big) == ["k.inner"]
