"""apply_history_best: the per-thread stack of dispatch contexts and their lookups."""
import logging
import threading
import uuid

import pytest

from tensorc.autotune.database import Record, TuningDatabase, target_key
from tensorc.autotune.dispatch import (
    apply_history_best,
    current_context,
    lookup_best,
    warn_missing,
)

OTHER_CPU = "llvm -mcpu=skylake-avx512 -mattr=+avx512f,+avx2,+fma"


def record(task_key, config, cost, target="llvm", error_no=0):
    return Record(task_key, task_key.split("[")[0], [7, 11], target_key(target), "0.1.0", config,
                  None, [cost, cost * 1.25, cost * 0.75], error_no, "", 1e6, 3.0)


def make_db(path, *records):
    with TuningDatabase(path) as db:
        for r in records:
            db.add(r)
    return path


def test_no_context_finds_nothing():
    assert current_context() is None
    assert lookup_best("dense[7,11]") is None


def test_context_answers_inside_its_block_only(tmp_path):
    path = make_db(tmp_path / "t.db", record("dense[7,11]", {"tile": [-1, 4]}, 0.2),
                   record("dense[7,11]", {"tile": [-1, 8]}, 0.1),
                   record("dense[7,11]", {"tile": [-1, 2]}, 0.01, error_no=4))
    with apply_history_best(path) as ctx:
        assert current_context() is ctx
        assert lookup_best("dense[7,11]").config == {"tile": [-1, 8]}
        assert lookup_best("dense[7,11]", target_key("llvm")).config == {"tile": [-1, 8]}
        assert lookup_best("dense[7,11]", OTHER_CPU) is None
        assert lookup_best("conv[7,11]") is None
    assert current_context() is None
    assert lookup_best("dense[7,11]") is None


def test_nested_contexts_innermost_first_then_outward(tmp_path):
    outer = make_db(tmp_path / "outer.db", record("dense[7,11]", {"tile": [-1, 8]}, 0.1),
                    record("conv[7,11]", {"tile": [-1, 3]}, 0.3))
    inner = TuningDatabase(make_db(tmp_path / "inner.db",
                                   record("dense[7,11]", {"tile": [-1, 16]}, 0.5)))
    with apply_history_best(outer) as octx:
        with apply_history_best(inner) as ictx:
            assert current_context() is ictx
            assert lookup_best("dense[7,11]").config == {"tile": [-1, 16]}  # inner wins
            assert lookup_best("conv[7,11]").config == {"tile": [-1, 3]}  # falls back outward
        assert current_context() is octx
        assert lookup_best("dense[7,11]").config == {"tile": [-1, 8]}
    assert inner.count() == 1  # a database passed in stays the caller's to close
    inner.close()


def test_contexts_are_per_thread(tmp_path):
    path = make_db(tmp_path / "t.db", record("dense[7,11]", {"tile": [-1, 8]}, 0.1))
    entered, checked = threading.Event(), threading.Event()
    seen = {}

    def other_thread():
        seen["before"] = lookup_best("dense[7,11]")
        with apply_history_best(path):
            seen["own"] = lookup_best("dense[7,11]")
            entered.set()
            checked.wait(30)

    with apply_history_best(path):
        t = threading.Thread(target=other_thread)
        t.start()
        assert entered.wait(30)
    seen["main_after_exit"] = lookup_best("dense[7,11]")  # the thread's context is still open
    checked.set()
    t.join(30)
    assert seen["before"] is None
    assert seen["own"].config == {"tile": [-1, 8]}
    assert seen["main_after_exit"] is None


def test_lookups_are_cached_per_context(tmp_path):
    db = TuningDatabase(make_db(tmp_path / "t.db", record("dense[7,11]", {"tile": [-1, 8]}, 0.1)))
    ctx = apply_history_best(db)  # usable without `with`
    assert ctx.lookup("dense[7,11]").config == {"tile": [-1, 8]}
    assert ctx.lookup("conv[7,11]") is None
    db.add(record("dense[7,11]", {"tile": [-1, 4]}, 0.01))
    db.add(record("conv[7,11]", {"tile": [-1, 3]}, 0.3))
    assert ctx.lookup("dense[7,11]").config == {"tile": [-1, 8]}  # the cached answer
    assert ctx.lookup("conv[7,11]") is None  # misses are cached too
    fresh = apply_history_best(db)
    assert fresh.lookup("dense[7,11]").config == {"tile": [-1, 4]}
    assert fresh.lookup("conv[7,11]").config == {"tile": [-1, 3]}
    db.close()


def test_out_of_order_exit_is_an_error(tmp_path):
    a = apply_history_best(make_db(tmp_path / "a.db"))
    b = apply_history_best(make_db(tmp_path / "b.db"))
    a.__enter__()
    b.__enter__()
    with pytest.raises(RuntimeError, match="exited out of order"):
        a.__exit__(None, None, None)
    b.__exit__(None, None, None)
    a.__exit__(None, None, None)
    assert current_context() is None


def test_warn_missing_once_per_task(caplog):
    key, other = f"dense[{uuid.uuid4().hex}]", f"conv[{uuid.uuid4().hex}]"
    with caplog.at_level(logging.WARNING, logger="tensorc.autotune"):
        for _ in range(3):
            warn_missing(key)
        warn_missing(other)
    messages = [r.getMessage() for r in caplog.records if r.name == "tensorc.autotune"]
    assert len(messages) == 2
    assert key in messages[0] and other in messages[1]
    assert "default configuration" in messages[0]
