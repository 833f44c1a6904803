"""TuningDatabase: round trips (SQLite, JSON lines), ranking, keys, concurrent writers, bad files."""
import json
import multiprocessing
import pickle
import sqlite3
from collections import namedtuple

import pytest

import tensorc
from tensorc.autotune.database import (
    FORMAT,
    Record,
    TuningDatabase,
    TuningDatabaseError,
    target_key,
)
from tensorc.codegen.target import host

# Stand-ins with the attributes the database reads from a Task and a MeasureResult.
Task = namedtuple("Task", "key name args target flop")
Result = namedtuple("Result", "costs error_no error_msg timestamp")

MATMUL = Task("matmul[37,53,29]", "matmul", (37, 53, 29), "llvm", 2.0 * 37 * 53 * 29)
CONV = Task('conv2d[[1,3,17,19],"NCHW"]', "conv2d", ([1, 3, 17, 19], "NCHW"), "llvm", 12345.0)
OTHER_CPU = "llvm -mcpu=skylake-avx512 -mattr=+avx512f,+avx2,+fma"


def ok(*costs, t=1.0):
    return Result(costs, 0, "", t)


def failed(error_no=4, msg="wrong answer: max abs diff 0.5", t=1.0):
    return Result((0.0001,), error_no, msg, t)


def fill(db):
    db.add_result(MATMUL, {"tile": [-1, 8], "unroll": True}, ok(0.003, 0.002, 0.004), index=17)
    db.add_result(MATMUL, {"tile": [-1, 4], "unroll": False}, ok(0.0015, 0.0013, 0.0014), index=3)
    db.add_result(MATMUL, {"tile": [-1, 16], "unroll": True}, failed(), index=40)
    db.add_result(CONV, {"tile_h": [-1, 2], "order": [2, 0, 1]}, ok(0.01), index=None)
    db.add_result(CONV, {"tile_h": [-1, 1], "order": [0, 1, 2]}, failed(5, "timeout after 10 s"))


def test_round_trip_through_sqlite_and_jsonl(tmp_path):
    with TuningDatabase(tmp_path / "a.db") as db:
        fill(db)
        best = db.best(MATMUL.key)
        assert best.config == {"tile": [-1, 4], "unroll": False}
        assert best.config_index == 3 and best.costs == (0.0015, 0.0013, 0.0014)
        assert best.median_cost == 0.0014
        assert best.gflops == pytest.approx(MATMUL.flop / 0.0014 / 1e9)
        assert best.task_args == (37, 53, 29) and best.version == tensorc.__version__
        assert best.target_key == target_key("llvm")
        assert db.best(CONV.key).task_args == ([1, 3, 17, 19], "NCHW")
        assert db.export_jsonl(tmp_path / "a.jsonl") == 5
        original = db.records()

    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(line)["format"] == FORMAT for line in lines)

    with TuningDatabase(tmp_path / "b.db") as fresh:
        assert fresh.import_jsonl(tmp_path / "a.jsonl") == 5
        assert fresh.records() == original
        assert fresh.best(MATMUL.key) == best
        assert fresh.import_jsonl(tmp_path / "a.jsonl") == 0  # exact duplicates are skipped
        assert fresh.count() == 5 and fresh.count(MATMUL.key) == 3

    with TuningDatabase(tmp_path / "a.db") as reopened:  # the file persists
        assert reopened.records() == original


def test_best_ignores_failed_measurements(tmp_path):
    with TuningDatabase(tmp_path / "t.db") as db:
        db.add_result(MATMUL, {"tile": [-1, 2]}, failed(3, "segfault"))
        assert db.best(MATMUL.key) is None
        db.add_result(MATMUL, {"tile": [-1, 8]}, ok(0.5))
        db.add_result(MATMUL, {"tile": [-1, 4]}, failed(4))  # "faster" (0.0001 s) but wrong
        assert db.best(MATMUL.key).config == {"tile": [-1, 8]}
        assert db.best("no-such-task") is None
        summary = {s.task_key: s for s in db.tasks()}
        assert summary[MATMUL.key].count == 3
        assert summary[MATMUL.key].best.config == {"tile": [-1, 8]}


def test_records_are_separated_by_target(tmp_path):
    other = MATMUL._replace(target=OTHER_CPU)
    with TuningDatabase(tmp_path / "t.db") as db:
        db.add_result(MATMUL, {"tile": [-1, 8]}, ok(0.2))
        db.add_result(other, {"tile": [-1, 16]}, ok(0.1))
        assert db.best(MATMUL.key).config == {"tile": [-1, 8]}
        assert db.best(MATMUL.key, OTHER_CPU).config == {"tile": [-1, 16]}
        assert db.best(MATMUL.key, "llvm -fast-math") is None
        assert [s.target_key for s in db.tasks()] == sorted({target_key("llvm"),
                                                            target_key(OTHER_CPU)})


def test_target_key_names_cpu_and_features_canonically():
    key = target_key("llvm")
    assert f"-mcpu={host().cpu}" in key
    assert all(f in key for f in host().features)
    assert target_key(key) == key
    assert (target_key("llvm -mcpu=skylake -mattr=+fma,+avx2")
            == target_key("llvm -mcpu=skylake -mattr=+avx2,+fma,+avx2"))
    assert target_key("llvm -fast-math") != key
    with pytest.raises(ValueError, match="unsupported target"):
        target_key("rocm")
    assert target_key("cuda -arch=sm_86") == target_key(target_key("cuda -arch=sm_86")) == \
        "cuda -arch=sm_86"
    assert target_key("cuda-emu") == "cuda-emu"


def test_version_preference(tmp_path):
    def record(version, cost, config):
        return Record(MATMUL.key, MATMUL.name, MATMUL.args, target_key("llvm"), version, config,
                      None, (cost,), 0, "", MATMUL.flop, 5.0)

    with TuningDatabase(tmp_path / "t.db") as db:
        assert db.add(record("0.0.1", 0.1, {"tile": [-1, 2]}))
        assert not db.add(record("0.0.1", 0.1, {"tile": [-1, 2]}))  # identical: ignored
        db.add(record(tensorc.__version__, 0.2, {"tile": [-1, 4]}))
        assert db.best(MATMUL.key).version == "0.0.1"  # any version, fastest first
        assert db.best(MATMUL.key, version=tensorc.__version__).config == {"tile": [-1, 4]}
        db.add(record(tensorc.__version__, 0.1, {"tile": [-1, 8]}))
        assert db.best(MATMUL.key).config == {"tile": [-1, 8]}  # a tie: the current version wins


def test_top_k_distinct_configs(tmp_path):
    with TuningDatabase(tmp_path / "t.db") as db:
        for cost, tile in [(0.3, 8), (0.1, 4), (0.2, 8), (0.5, 2), (0.05, 16)]:
            db.add_result(MATMUL, {"tile": [-1, tile]}, ok(cost, t=cost))
        db.add_result(MATMUL, {"tile": [-1, 32]}, failed())
        top = db.top_k(MATMUL.key, 3)
        assert [r.config["tile"][1] for r in top] == [16, 4, 8]
        assert top[2].median_cost == pytest.approx(0.25)  # both measurements of tile 8 pooled
        assert top[2].costs == (0.3, 0.2)
        assert len(db.top_k(MATMUL.key, 10)) == 4
        assert db.measurements(MATMUL.key, {"tile": [-1, 8]}) == 2
        assert db.measurements(MATMUL.key, {"tile": [-1, 32]}) == 0  # failed: not counted


def test_a_remeasured_config_ranks_by_all_its_measurements(tmp_path):
    with TuningDatabase(tmp_path / "t.db") as db:
        db.add_result(MATMUL, {"tile": [-1, 4]}, ok(0.10, t=1.0))   # a lucky first measurement
        db.add_result(MATMUL, {"tile": [-1, 8]}, ok(0.11, t=2.0))
        assert db.best(MATMUL.key).config == {"tile": [-1, 4]}
        for t in (3.0, 4.0):
            db.add_result(MATMUL, {"tile": [-1, 4]}, ok(0.13, t=t))
        best = db.best(MATMUL.key)
        assert best.config == {"tile": [-1, 8]}
        assert db.ranked(MATMUL.key)[1].median_cost == pytest.approx(0.13)


def _write_many(path, worker, n, barrier):
    db = TuningDatabase(path)
    barrier.wait()
    task = MATMUL._replace(key=f"task-{worker}")
    for i in range(n):
        db.add_result(task, {"i": i}, ok(0.001 * (i + 1), t=float(i)), index=i)
    db.close()


def test_two_concurrent_writer_processes(tmp_path):
    path = tmp_path / "shared.db"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_write_many, args=(path, w, 200, barrier)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with TuningDatabase(path) as db:
        assert db.count() == 400
        assert db.count("task-0") == db.count("task-1") == 200
        assert db.best("task-1").config == {"i": 0}


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                    reason="fork is not available on this platform")
def test_forked_child_opens_its_own_connection(tmp_path):
    db = TuningDatabase(tmp_path / "t.db")
    db.add_result(MATMUL, {"tile": [-1, 1]}, ok(0.1))  # the parent's connection is open
    child = multiprocessing.get_context("fork").Process(
        target=lambda: db.add_result(CONV, {"tile_h": [-1, 3]}, ok(0.2)))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    db.add_result(MATMUL, {"tile": [-1, 2]}, ok(0.05))
    assert db.count() == 3 and db.best(CONV.key).config == {"tile_h": [-1, 3]}
    db.close()


def test_pickled_database_reopens_by_path(tmp_path):
    with TuningDatabase(tmp_path / "t.db") as db:
        fill(db)
        copy = pickle.loads(pickle.dumps(db))
        assert copy.path == db.path and copy.records() == db.records()
        copy.close()


def test_close_then_reuse(tmp_path):
    db = TuningDatabase(tmp_path / "t.db")
    fill(db)
    db.close()
    assert db.count() == 5  # a closed database reopens on the next call
    db.close()


def test_corrupt_and_foreign_files_are_rejected(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(bytes(range(7, 250)) * 40)
    with pytest.raises(TuningDatabaseError, match="garbage.db"):
        TuningDatabase(garbage)

    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(TuningDatabaseError, match="foreign.db.*not a tensorc tuning database"):
        TuningDatabase(foreign)

    with pytest.raises(TuningDatabaseError, match="cannot open"):
        TuningDatabase(tmp_path / "missing-dir" / "t.db")
    with pytest.raises(ValueError, match="file path"):
        TuningDatabase(":memory:")


def test_malformed_jsonl_is_rejected_whole(tmp_path):
    with TuningDatabase(tmp_path / "src.db") as db:
        fill(db)
        db.export_jsonl(tmp_path / "good.jsonl", task_key=CONV.key)
    lines = (tmp_path / "good.jsonl").read_text().splitlines()
    assert len(lines) == 2
    bad = json.loads(lines[1])
    del bad["costs"]
    bad["cost"] = 1.0
    (tmp_path / "bad.jsonl").write_text(lines[0] + "\n\n" + json.dumps(bad) + "\n")
    with TuningDatabase(tmp_path / "dst.db") as db:
        with pytest.raises(TuningDatabaseError,
                           match=r"bad.jsonl:3: .*missing fields costs; unknown fields cost"):
            db.import_jsonl(tmp_path / "bad.jsonl")
        assert db.count() == 0  # all or none
        (tmp_path / "other.jsonl").write_text(json.dumps({**bad, "format": "autotvm/0.2"}))
        with pytest.raises(TuningDatabaseError, match="other.jsonl:1: .*autotvm/0.2"):
            db.import_jsonl(tmp_path / "other.jsonl")


def test_record_rejects_non_json_config(tmp_path):
    with TuningDatabase(tmp_path / "t.db") as db:
        with pytest.raises(ValueError, match="matmul.*config is not JSON-serializable"):
            db.add_result(MATMUL, {"tile": object()}, ok(0.1))
        with pytest.raises(TypeError, match="config must be a dict"):
            db.add_result(MATMUL, [8, 4], ok(0.1))
        assert db.count() == 0
