"""Model tuning for GPU targets, on cuda-emu: the tasks of a graph in the GPU templates'
spaces, a short tuning run through the emulator, and compile(graph, target="cuda-emu",
tuning_db=...) scheduling each kernel with its best GPU record."""
import os
import sys
import time

import numpy as np
import pytest

import tensorc as tc
from tensorc.autotune.database import TuningDatabase
from tensorc.autotune.measure import MeasureResult
from tensorc.autotune.graph_tasks import DEFAULT, GroupTask, extract_tasks
from tensorc.autotune.measure import MeasureOption
from tensorc.autotune.task_scheduler import tune_tasks

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "graph"))
from graph_helpers import mlp, residual_block  # noqa: E402

EMU = "cuda-emu"
FAST = {"number": 1, "repeat": 2, "min_repeat_ms": 0.0, "n_parallel_builds": 2}


def _measured(cost):
    return MeasureResult((cost,), 0, "", cost, time.time())


def test_gpu_tasks_are_the_matmul_and_conv_groups_in_the_gpu_templates_spaces():
    g, *_ = residual_block(np.random.default_rng(0), c=8, hw=9)
    tasks = extract_tasks(g, target=EMU)
    assert [t.name for t in tasks] == ["group_conv2d_add_relu"] * 2
    m, *_ = mlp(np.random.default_rng(1))
    dense = extract_tasks(m, target=EMU)        # the softmax group has no GPU template
    assert sorted(t.name for t in dense) == ["group_dense", "group_dense_relu"]
    for t in tasks[:1] + dense:
        assert t.space_kind == "template" and t.target == EMU
        assert {"threads", "unroll"} <= set(t.config_space.knobs)
        assert str(t.lower(0)) == str(t.lower(DEFAULT))   # point 0: schedule_for_gpu
    assert {"reg", "kt"} <= set(dense[0].config_space.knobs)
    assert tasks[0].key == extract_tasks(g)[0].key       # one task key, records per target


def test_gpu_targets_refuse_the_auto_space_and_groups_without_a_template():
    g, *_ = residual_block(np.random.default_rng(0), c=8, hw=9)
    with pytest.raises(ValueError, match="'cuda-emu' has the template space only"):
        extract_tasks(g, target=EMU, space="auto")
    m, *_ = mlp(np.random.default_rng(1))
    from tensorc.graph.fuse import fuse
    from tensorc.graph.infer import infer_shapes
    from tensorc.graph.passes import run_passes
    softmax = [grp for grp in fuse(run_passes(infer_shapes(m), target=EMU))
               if "softmax" in repr(grp)][0]
    with pytest.raises(ValueError, match="has no GPU tuning template"):
        GroupTask(softmax, EMU)


def test_a_short_tuning_run_measures_on_the_emulator(tmp_path):
    m, *_ = mlp(np.random.default_rng(2))
    task = extract_tasks(m, target=EMU)[0]
    path = str(tmp_path / "gpu.db")
    tune_tasks([task], 3, path, tuner="random", measure_option=MeasureOption(**FAST),
               progress=False, verify=0)
    with TuningDatabase(path) as db:
        records = db.records(task.key)
    assert {r.target_key for r in records} == {EMU}
    assert any(r.config == DEFAULT for r in records) and len(records) >= 3
    assert all(r.error_no == 0 for r in records)


def test_compile_for_the_gpu_uses_the_best_gpu_record_of_each_kernel(tmp_path):
    rng = np.random.default_rng(3)
    g, *_ = residual_block(rng, c=8, hw=9)
    x = rng.uniform(0.5, 1.5, (1, 8, 9, 9)).astype("float32")
    want = tc.compile(g)(x)[0]
    tasks = extract_tasks(g, target=EMU)
    path = str(tmp_path / "tune.db")
    with TuningDatabase(path) as db:
        for t, (tuned, default) in zip(tasks, ((1e-4, 1e-3), (1e-3, 1e-4))):  # 2nd: default
            last = t.config_space.get(len(t.config_space) - 1).to_dict()
            db.add_result(t, last, _measured(tuned))
            db.add_result(t, DEFAULT, _measured(default))
    mod = tc.compile(g, target=EMU, tuning_db=path)
    np.testing.assert_allclose(mod(x)[0], want, rtol=1e-4, atol=1e-5)
    texts = [str(f) for f in mod.compile_info.kernels]
    default = [str(f) for f in tc.compile(g, target=EMU).compile_info.kernels]
    assert sum(a != b for a, b in zip(texts, default)) == 1       # one tuned, one default
    cpu = [str(f) for f in tc.compile(g, tuning_db=path).compile_info.kernels]
    assert cpu == [str(f) for f in tc.compile(g).compile_info.kernels]  # GPU records only
