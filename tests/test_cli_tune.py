"""``tensorc tune`` and ``tensorc tune-db``: records written and resumed, the compiled output,
interruption, the database views and their errors. One small MatMul+Relu model is tuned once
for real (random tuner, a few trials) and its database copied into the tests that need one."""
import json
import shutil
import signal
import time

import numpy as np
import pytest

import tensorc as tc
from tensorc.autotune.database import TuningDatabase, pooled
from tensorc.autotune.graph_tasks import DEFAULT, extract_tasks, is_default
from tensorc.autotune.measure import MeasureResult
from tensorc.cli import main
from tensorc.cli_models import load_graph

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

FAST = ["--tuner", "random", "--batch-size", "2", "--threads", "1", "--no-progress",
        "--verify", "0"]


def _model(path):
    """relu(x @ w): x float32[4, 24], w a constant float32[24, 20]."""
    w = np.random.default_rng(0).standard_normal((24, 20)).astype("float32")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    graph = helper.make_graph(
        nodes, "mm_relu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 24])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 20])],
        [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return w


def _cli(capsys, *args):
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _records(path):
    with TuningDatabase(path) as db:
        return db.records()


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """(model path, weight, database path) after `tensorc tune --trials 4` on the model."""
    root = tmp_path_factory.mktemp("tuned")
    model, db = root / "mm.onnx", root / "tune.db"
    w = _model(model)
    assert main(["tune", str(model), "--trials", "4", "--db", str(db), *FAST]) == 0
    return str(model), w, str(db)


@pytest.fixture
def db_copy(tuned, tmp_path):
    path = tmp_path / "tune.db"
    shutil.copy(tuned[2], path)   # the CLI closed it, so the WAL was checkpointed into the file
    return str(path)


def test_tune_records_the_default_and_each_trial(tuned, capsys):
    model, _, db = tuned
    records = _records(db)
    defaults = [r for r in records if is_default(r.config)]
    tried = [r for r in records if not is_default(r.config)]
    assert len(defaults) == 1 and len(tried) == 4
    assert len({json.dumps(r.config, sort_keys=True) for r in tried}) == 4
    assert all(r.ok and r.median_cost > 0 for r in records), [r.error_msg for r in records]
    (task,) = extract_tasks(load_graph(model))
    assert {r.task_key for r in records} == {task.key}

    status, out, _ = _cli(capsys, "tune", model, "--trials", "4", "--db", db, *FAST)
    assert status == 0
    assert f"{db} already holds 5 records of these tasks: resuming" in out
    assert task.key in out and "weight" in out and "speed-up" in out
    assert "estimated time in the tuned kernels per model run" in out
    assert _records(db) == records            # nothing measured again


def test_a_second_run_continues_without_remeasuring(tuned, db_copy, capsys):
    model = tuned[0]
    before = _records(db_copy)
    status, out, _ = _cli(capsys, "tune", model, "--trials", "6", "--db", db_copy, *FAST,
                          "--json")
    assert status == 0
    report = json.loads(out)
    after = _records(db_copy)
    assert after[:len(before)] == before

    def keys(records):
        return [json.dumps(r.config, sort_keys=True) for r in records]
    new = keys(after[len(before):])
    # two new points, nothing measured before measured again (the default included); a
    # point that beat the best by far may be measured again at once (Tuner._confirmed)
    assert len(set(new)) == 2 and not set(new) & set(keys(before)) and len(new) <= 2 + 2 * 2
    (row,) = report["tasks"]
    assert row["trials"] == 6 and row["records"] == len(after) and row["errors"] == 0
    ranked = pooled([r for r in after if r.ok])   # a re-measured point by all its costs
    best = ranked[0].median_cost
    default = next(r.median_cost for r in ranked if is_default(r.config))
    assert row["best_s"] == best and row["default_s"] == default
    assert row["speedup"] == pytest.approx(default / best)
    k = report["kernel_time"]
    assert k["tasks_counted"] == 1 and k["default_s"] == default and k["tuned_s"] == best
    assert report["db_records"] == len(after) and not report["interrupted"]
    assert report["output"] is None


def test_output_is_compiled_with_the_best_record(tuned, db_copy, tmp_path, capsys, monkeypatch):
    """A record made the fastest by hand must be the one -o compiles with, and the saved model
    must compute what the untuned one does."""
    import tensorc.autotune.graph_tasks as graph_tasks
    model, w, _ = tuned
    graph = load_graph(model)
    (task,) = extract_tasks(graph)
    chosen = next(r for r in _records(db_copy) if not is_default(r.config))
    with TuningDatabase(db_copy) as db:
        # enough costs that the configuration's pooled median is this one's
        db.add_result(task, chosen.config, MeasureResult((1e-12,) * 20, 0, "", 0.0, time.time()),
                      index=chosen.config_index)
    picked = []
    real = graph_tasks.tuned_config

    def spy(*args):
        picked.append(real(*args))
        return picked[-1]
    monkeypatch.setattr(graph_tasks, "tuned_config", spy)
    out_path = tmp_path / "mm.tcm"
    status, out, _ = _cli(capsys, "tune", model, "--trials", "4", "--db", db_copy, *FAST,
                          "-o", out_path)
    assert status == 0 and f"written to {out_path}" in out
    assert picked == [(task.space_kind, chosen.config)]
    x = np.random.default_rng(1).standard_normal((4, 24)).astype("float32")
    got = tc.load(str(out_path))(x)[0]
    np.testing.assert_allclose(got, tc.compile(graph)(x)[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, np.maximum(x @ w, 0), rtol=1e-4, atol=1e-4)


def test_the_best_and_the_default_are_measured_again(tuned, db_copy, capsys):
    model = tuned[0]
    status, out, _ = _cli(capsys, "tune", model, "--trials", "5", "--db", db_copy,
                          *FAST[:-1], "2", "--json")
    assert status == 0
    records = _records(db_copy)
    (row,) = json.loads(out)["tasks"]
    assert row["trials"] == 5 and row["records"] == len(records)
    with TuningDatabase(db_copy) as db:
        (task,) = extract_tasks(load_graph(model))
        top = db.top_k(task.key, 2)
        for rec in [*top, next(r for r in db.ranked(task.key) if is_default(r.config))]:
            assert db.measurements(task.key, rec.config) >= 3, rec.config
            assert len(rec.costs) >= 3 * len(records[0].costs)   # pooled
        assert row["best_s"] == top[0].median_cost


def test_ctrl_c_keeps_the_records_and_skips_the_output(tuned, tmp_path, capsys, monkeypatch):
    """Ctrl-C during the first tuning batch, after the default schedule was measured: exit 130,
    the default's record kept, no -o file, the SIGINT handler from before back in place (Python's
    default, or SIG_IGN where the tests run in a background job)."""
    import tensorc.autotune.task_scheduler as scheduler
    before = signal.getsignal(signal.SIGINT)
    real = scheduler.tune_tasks
    calls = []

    def measure(task, configs):
        calls.append(configs)
        if len(calls) > 1:
            signal.raise_signal(signal.SIGINT)
        return [MeasureResult((2e-6,), 0, "", 0.0, time.time()) for _ in configs]

    def interrupted(tasks, trials, db, **kwargs):
        kwargs.pop("measure_option")
        return real(tasks, trials, db, measure=measure, **kwargs)
    monkeypatch.setattr(scheduler, "tune_tasks", interrupted)
    db, out_path = tmp_path / "tune.db", tmp_path / "mm.tcm"
    status, out, _ = _cli(capsys, "tune", tuned[0], "--trials", "4", "--db", db, *FAST,
                          "-o", out_path)
    assert status == 130
    assert (f"interrupted: every measurement so far is kept in {db} (1 record); run the same "
            "command again to continue (-o was not written)") in out
    assert [r.config for r in _records(db)] == [DEFAULT]
    assert not out_path.exists()
    assert signal.getsignal(signal.SIGINT) is before


def test_show_lists_tasks_and_the_top_configs(tuned, capsys):
    db = tuned[2]
    records = _records(db)
    status, out, _ = _cli(capsys, "tune-db", "show", db)
    assert status == 0
    key = records[0].task_key
    assert out.startswith(f"{db}: 5 records, 1 task\n")
    row = next(line for line in out.splitlines() if line.startswith(key))
    assert row.split()[2:5] == ["5", "5", "0"]           # records, ok, errors
    assert "#" in row.split()[1]                         # the short target
    assert "is this machine" in out

    status, out, _ = _cli(capsys, "tune-db", "show", db, "--task", key[3:12], "--top", "3",
                          "--json")
    assert status == 0
    (task,) = json.loads(out)["tasks"]
    medians = sorted(r.median_cost for r in records)
    assert [c["median_s"] for c in task["top"]] == medians[:3]
    assert task["best_s"] == medians[0] and task["records"] == 5 and task["trials"] == 4
    assert task["target_key"] == records[0].target_key and "#" in task["target"]
    status, out, _ = _cli(capsys, "tune-db", "show", db, "--task", key)
    assert "the 4 fastest configurations" not in out and "the 5 fastest configurations" in out


def test_export_import_round_trip(tuned, tmp_path, capsys):
    db = tuned[2]
    records = _records(db)
    out_path, other = tmp_path / "records.jsonl", tmp_path / "other.db"
    status, out, _ = _cli(capsys, "tune-db", "export", db, out_path, "--task", "matmul")
    assert status == 0 and out.startswith(f"exported 5 records of {records[0].task_key}")
    lines = out_path.read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(ln)["task_key"] == records[0].task_key
                                   for ln in lines)
    status, out, _ = _cli(capsys, "tune-db", "import", other, out_path)
    assert (status, out) == (0, f"imported 5 new records from {out_path} into {other} "
                                "(5 records now)\n")
    status, out, _ = _cli(capsys, "tune-db", "import", other, out_path)
    assert status == 0 and out.startswith("imported 0 new records")
    assert _records(other) == records


def test_bad_files_give_one_message_and_status_1(tuned, tmp_path, capsys):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an SQLite file" * 40)
    for args in (["tune-db", "show", garbage], ["tune", tuned[0], "--trials", "1", "--db",
                                                garbage, *FAST]):
        status, out, err = _cli(capsys, *args)
        assert status == 1 and out == ""
        assert err == f"tensorc {args[0]}: error: tuning database {garbage}: file is not a " \
                      "database\n"

    missing = tmp_path / "missing.db"
    status, _, err = _cli(capsys, "tune-db", "export", missing, tmp_path / "x.jsonl")
    assert status == 1 and f"no tuning database at {missing}" in err
    assert not missing.exists()                # looking did not create one

    db = tmp_path / "tune.db"
    shutil.copy(tuned[2], db)
    status, _, err = _cli(capsys, "tune-db", "show", db, "--task", "no-such-task")
    assert status == 1 and "no task of" in err and "matches 'no-such-task'" in err

    good = json.dumps(_records(db)[0].to_json_dict()).replace('"timestamp": ', '"timestamp": 1')
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good + "\n" + '{"format": "tensorc-tuning-record/1"}\n')
    status, _, err = _cli(capsys, "tune-db", "import", db, bad)
    assert status == 1 and f"{bad}:2: not a tuning record: missing fields" in err
    assert len(_records(db)) == 5              # all or nothing: the good line was not added


def test_tune_for_cuda_emu_records_gpu_configs_and_compiles_with_them(tmp_path, capsys):
    """--target cuda-emu: the GPU template space, measured through the emulator, records filed
    under "cuda-emu", and -o compiles the model for that target with them."""
    model, db, out = tmp_path / "mm.onnx", tmp_path / "gpu.db", tmp_path / "mm.tcm"
    w = _model(model)
    status, text, err = _cli(capsys, "tune", model, "--target", "cuda-emu", "--trials", "2",
                             "--db", db, "-o", out, *FAST)
    assert status == 0, err
    records = _records(str(db))
    assert {r.target_key for r in records} == {"cuda-emu"} and len(records) == 3
    assert all(r.ok for r in records), [r.error_msg for r in records]
    assert {"threads", "reg", "kt"} <= set(next(r for r in records
                                               if not is_default(r.config)).config)
    assert "cuda-emu" in text
    x = np.random.default_rng(1).standard_normal((4, 24)).astype("float32")
    (got,) = tc.load(str(out))(x)
    np.testing.assert_allclose(got, np.maximum(x @ w, 0), rtol=1e-4, atol=1e-5)
    status, _, err = _cli(capsys, "tune", model, "--target", "cuda-emu", "--space", "auto",
                          "--trials", "2", "--db", db, *FAST)
    assert status == 1 and "has the template space only" in err
