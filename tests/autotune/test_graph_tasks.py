"""Model tuning plumbing: the tasks of a graph and compile(graph, tuning_db=...) scheduling
each kernel with its best record (or its default schedule)."""
import os
import sys
import time

import numpy as np

import tensorc as tc
from tensorc.autotune.database import TuningDatabase
from tensorc.autotune.measure import MeasureResult
from tensorc.autotune.graph_tasks import DEFAULT, GroupTask, extract_tasks, node_flop

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "graph"))
from graph_helpers import mlp, residual_block  # noqa: E402


def _measured(cost):
    return MeasureResult((cost,), 0, "", cost, time.time())


def test_tasks_of_a_residual_block_and_an_mlp():
    g, *_ = residual_block(np.random.default_rng(0), c=8, hw=9)
    tasks = extract_tasks(g)
    assert len(tasks) == 2 and all(t.name == "group_conv2d_add_relu" for t in tasks)
    assert tasks[0].flop >= tasks[1].flop > 8 * 8 * 9 * 9 * 9 * 2
    assert len({t.key for t in tasks}) == 2
    m, *_ = mlp(np.random.default_rng(1))
    names = [t.name for t in extract_tasks(m)]
    assert sorted(names) == ["group_auto_softmax", "group_dense", "group_dense_relu"], names


def test_flop_counts_the_model_arithmetic_not_packs_or_padded_tiles():
    """A group's flop is its nodes' arithmetic -- 2*M*N*K for a matmul, 2 per multiply-add of
    a conv, one per element of an elementwise op -- in both spaces, although the kernels pack
    the weights and pad the output tiles (20 matmul columns to 32, 12 conv output channels to
    16, a depthwise row of 9 to 16)."""
    from tensorc.graph.builder import GraphBuilder
    rng = np.random.default_rng(6)
    gb = GraphBuilder("flop")
    x = gb.input("x", (4, 24))
    w = gb.const("w", rng.uniform(-1, 1, (24, 20)).astype("float32"))
    gb.output(gb.op("relu", gb.op("matmul", x, w)))
    for space in ("template", "auto"):
        (task,) = extract_tasks(gb.graph(), space=space)
        assert task.flop == 2 * 4 * 20 * 24 + 4 * 20, space

    gb = GraphBuilder("convs")
    x = gb.input("x", (1, 10, 9, 9))
    w = gb.const("w", rng.uniform(-1, 1, (12, 10, 3, 3)).astype("float32"))
    y = gb.op("relu", gb.op("conv2d", x, w, padding=(1, 1, 1, 1)))
    wd = gb.const("wd", rng.uniform(-1, 1, (12, 1, 3, 3)).astype("float32"))
    gb.output(gb.op("conv2d", y, wd, strides=(2, 2), padding=(1, 1, 1, 1), groups=12))
    conv, depthwise = (n for n in gb.graph().nodes if n.op == "conv2d")
    assert node_flop(conv) == 2 * 12 * 9 * 9 * 10 * 3 * 3
    assert node_flop(depthwise) == 2 * 12 * 5 * 5 * 3 * 3
    tasks = {t.name: t for t in extract_tasks(gb.graph(), space="auto")}
    assert tasks["group_auto_conv2d_relu"].flop == 2 * 12 * 81 * 90 + 12 * 81
    assert tasks["group_auto_conv2d"].flop == 2 * 12 * 25 * 9


def test_same_group_twice_is_one_task_with_weight_two():
    from tensorc.graph.builder import GraphBuilder
    rng = np.random.default_rng(2)
    gb = GraphBuilder("twice")
    x = gb.input("x", (3, 16))
    w = gb.const("w", rng.uniform(-1, 1, (16, 16)).astype("float32"))
    h = gb.op("relu", gb.op("matmul", x, w))
    h = gb.op("relu", gb.op("matmul", h, w))
    gb.output(h)
    (task,) = extract_tasks(gb.graph())
    assert task.weight == 2


def test_compile_uses_the_best_record_of_each_kernel(tmp_path):
    rng = np.random.default_rng(3)
    g, *_ = residual_block(rng, c=8, hw=9)
    x = rng.uniform(0.5, 1.5, (1, 8, 9, 9)).astype("float32")
    want = tc.compile(g)(x)[0]
    tasks = extract_tasks(g)
    path = str(tmp_path / "tune.db")
    with TuningDatabase(path) as db:
        for k, t in enumerate(tasks):
            space = t.config_space
            db.add_result(t, space.get(len(space) // (k + 3)).to_dict(), _measured(1e-3))
            db.add_result(t, space.get(7).to_dict(), _measured(5e-3))      # slower: ignored
        db.add_result(tasks[1], DEFAULT, _measured(1e-4))                   # default wins here
    mod = tc.compile(g, tuning_db=path)
    np.testing.assert_allclose(mod(x)[0], want, rtol=1e-5, atol=1e-5)
    texts = [str(f) for f in mod.compile_info.kernels]
    default = [str(f) for f in tc.compile(g).compile_info.kernels]
    assert sum(a != b for a, b in zip(texts, default)) == 1       # one tuned, one default


def test_template_space_starts_at_the_default_schedule_and_auto_space_differs():
    g, *_ = residual_block(np.random.default_rng(5), c=8, hw=9)
    tmpl = extract_tasks(g)[0]
    auto = extract_tasks(g, space="auto")[0]
    assert tmpl.space_kind == "template" and auto.space_kind == "auto"
    assert tmpl.key != auto.key and {"regn", "unroll"} <= set(tmpl.config_space.knobs)
    assert str(tmpl.lower(0)) == str(tmpl.lower(DEFAULT))
    assert "tile_ici" in auto.config_space.knobs
    inputs, (want,) = tmpl.reference()
    for task in (tmpl, auto):
        index = len(task.config_space) - 1
        got = np.full(want.shape, np.nan, np.float32)
        task.build(index)(*inputs, got)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_winograd_groups_get_their_template_space():
    g, *_ = residual_block(np.random.default_rng(6), c=32, hw=16)
    task = extract_tasks(g)[0]
    assert task.space_kind == "template"
    assert {"tile_p", "lanes"} <= set(task.config_space.knobs)
    assert "p1: float32[6, 6, 32, 32]" in str(task.lower(DEFAULT))   # the transformed kernel
    assert str(task.lower(0)) == str(task.lower(DEFAULT))
    inputs, (want,) = task.reference()
    got = np.full(want.shape, np.nan, np.float32)
    task.build(len(task.config_space) - 1)(*inputs, got)
    # Winograd's rounding error scales with its tile's norm, not each element: compare norms
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 1e-5


def test_group_task_default_point_is_the_compiler_schedule():
    g, *_ = residual_block(np.random.default_rng(4), c=8, hw=9)
    task = extract_tasks(g)[0]
    inputs, (want,) = task.reference()
    for config in (DEFAULT, 0):
        got = np.full(want.shape, np.nan, np.float32)
        task.build(config)(*inputs, got)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert isinstance(task, GroupTask) and task.config(DEFAULT).index == -1
    assert task.config(-1).to_dict() == DEFAULT
