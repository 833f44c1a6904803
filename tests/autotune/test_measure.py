"""Measurement survives bad candidates: builds that raise, crash or hang, runs that segfault,
abort, loop forever or compute the wrong thing are each recorded with their reason, and the
candidates after them are still measured. The crashing and hanging runs are real shared
objects compiled from C, shaped like tensorc modules (metadata and thread-count globals)."""
import json
import os
import subprocess
import time

import numpy as np
import pytest

from tensorc import autotune, te
from tensorc.autotune.measure import (
    BuildResult,
    MeasureErrorNo,
    MeasureOption,
    Measurer,
    measure_batch,
)
from tensorc.autotune.space import SpaceError

E = MeasureErrorNo
FAST = {"number": 1, "repeat": 3, "min_repeat_ms": 0.0}


@autotune.template("test_measure.matmul")
def matmul(M, N, K):
    k = te.reduce_axis((0, K), name="k")
    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = te.create_schedule(C.op)
    cfg = autotune.get_config()
    i, j = C.op.axis
    cfg.define_split("tile_i", i, num_outputs=2, policy="power2", max_factor=8)
    cfg.define_split("tile_j", j, num_outputs=2, policy="power2", max_factor=16)
    io, ii = cfg["tile_i"].apply(s, C, i)
    jo, ji = cfg["tile_j"].apply(s, C, j)
    s[C].reorder(io, jo, k, ii, ji)
    s[C].vectorize(ji)
    s[C].parallel(io)
    return s, [A, B, C]


@autotune.template("test_measure.faulty")
def faulty(n):
    """Correct for mode "ok" (the space-defining point the reference comes from); each other
    mode fails in its own way, only inside a build process."""
    cfg = autotune.get_config()
    cfg.define_knob("mode", ["ok", "wrong", "raise", "abort", "sleep"])
    mode = cfg["mode"].val
    A = te.placeholder((n,), name="A")
    B = te.compute((n,), lambda i: A[i] * 2.0 + (0.5 if mode == "wrong" else 1.0), name="B")
    s = te.create_schedule(B.op)
    s[B].split(B.op.axis[0], factor=8)
    if mode == "raise":
        s[B].split(B.op.axis[0], factor=4)    # already split: a ScheduleError
    elif mode == "abort":
        os.abort()
    elif mode == "sleep":
        time.sleep(60)
    return s, [A, B]


def fake_candidate(tmp_path, template, body, name="fake"):
    """A BuildResult whose library takes ``template``'s arguments and runs the C ``body``."""
    meta = dict(template.metadata, entry="fake",
                functions=[{"name": "fake", "params": template.params}])
    src = tmp_path / f"{name}.c"
    src.write_text("#include <stdint.h>\n#include <stdlib.h>\n#include <time.h>\n"
                   "int32_t __tensorc_num_threads = 0;\n"
                   f"const char __tensorc_metadata[] = {json.dumps(json.dumps(meta))};\n"
                   f"int32_t fake(float *a, float *b, float *c) {{ {body} }}\n")
    so = tmp_path / f"{name}.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O0", "-o", str(so), str(src)], check=True)
    return BuildResult(so.read_bytes(), meta, 0.0)


def codes(results):
    return [r.error_no for r in results]


def test_matmul_candidates_are_checked_and_timed():
    task = autotune.create_task("test_measure.matmul", (37, 45, 29))
    configs = [0, len(task.config_space) - 1, task.config(7).to_dict()]
    results = measure_batch(task, configs, MeasureOption(**FAST, threads=2))
    assert codes(results) == [E.NO_ERROR] * 3, [r.error_msg for r in results]
    for r in results:
        assert len(r.costs) == 3 and all(c > 0 for c in r.costs)
        assert r.cost == sorted(r.costs)[1] and r.all_cost > r.cost and r.timestamp > 0


def test_builds_that_raise_crash_or_hang_are_recorded_and_the_rest_measured():
    task = autotune.create_task("test_measure.faulty", (1000,))
    # Compile the good points first, so that the short build timeout is only the sleep's.
    assert codes(measure_batch(task, [{"mode": "ok"}, {"mode": "wrong"}])) == [
        E.NO_ERROR, E.WRONG_ANSWER]
    modes = ["ok", "raise", "abort", "sleep", "wrong", "ok"]
    with Measurer(MeasureOption(**FAST, build_timeout=3.0)) as m:
        results = m.measure(task, [{"mode": x} for x in modes])
    assert codes(results) == [E.NO_ERROR, E.INSTANTIATION_ERROR, E.COMPILE_ERROR,
                              E.BUILD_TIMEOUT, E.WRONG_ANSWER, E.NO_ERROR]
    ok, raised, aborted, slept, wrong, ok2 = results
    assert "ScheduleError" in raised.error_msg and "test_measure.py" in raised.error_msg
    assert "SIGABRT" in aborted.error_msg
    assert "3 s build_timeout" in slept.error_msg and 3 <= slept.all_cost < 10
    assert "output #0 'B': 1000 of 1000 elements differ" in wrong.error_msg
    assert wrong.costs == () and wrong.cost == float("inf")
    assert ok.cost < float("inf") and ok2.cost < float("inf")


def test_crashing_hanging_and_wrong_runs_do_not_stop_tuning(tmp_path):
    task = autotune.create_task("test_measure.matmul", (24, 40, 16))
    with Measurer(MeasureOption(**FAST, timeout=3.0)) as m:
        good = m.build(task, [3])[0]
        bad = {name: fake_candidate(tmp_path, good, body, name) for name, body in {
            "segv": "*(volatile int *)0 = 1; return 0;",
            "abort": "abort();",
            "hang": "volatile int spin = 1; while (spin) {} return 0;",
            "noop": "return 0;",                      # fast, but leaves the output unwritten
            "fail": "return 1;",                      # reports an allocation failure
        }.items()}
        order = [good, bad["segv"], good, bad["hang"], bad["abort"], bad["noop"], bad["fail"],
                 good]
        results = m.run(task, order)
    assert codes(results) == [E.NO_ERROR, E.RUNTIME_ERROR, E.NO_ERROR, E.TIMEOUT,
                              E.RUNTIME_ERROR, E.WRONG_ANSWER, E.RUNTIME_ERROR, E.NO_ERROR]
    assert "SIGSEGV" in results[1].error_msg and "SIGABRT" in results[4].error_msg
    assert "3 s timeout" in results[3].error_msg and 3 <= results[3].all_cost < 10
    assert "'C': 960 of 960 elements differ" in results[5].error_msg
    assert results[5].cost == float("inf") and results[7].cost < float("inf")
    assert "MemoryError" in results[6].error_msg


def test_runs_use_the_fixed_thread_count(tmp_path):
    """The candidate fails unless its library's thread count is the option's."""
    task = autotune.create_task("test_measure.matmul", (8, 8, 8))
    with Measurer(MeasureOption(**FAST, threads=3, check=False)) as m:
        good = m.build(task, [0])[0]
        probe = fake_candidate(tmp_path, good, "return __tensorc_num_threads != 3;")
        assert m.threads == 3
        assert codes(m.run(task, [probe])) == [E.NO_ERROR]
    with Measurer(MeasureOption(**FAST, threads=2, check=False)) as m:
        assert codes(m.run(task, [probe])) == [E.RUNTIME_ERROR]


def test_one_measurer_serves_several_tasks():
    with Measurer(MeasureOption(**FAST)) as m:
        a = autotune.create_task("test_measure.matmul", (9, 17, 5))
        b = autotune.create_task("test_measure.faulty", (33,))
        assert codes(m.measure(a, [1, 2])) == [E.NO_ERROR] * 2
        assert codes(m.measure(b, [{"mode": "wrong"}, {"mode": "ok"}])) == [E.WRONG_ANSWER,
                                                                             E.NO_ERROR]
        assert codes(m.measure(a, [3])) == [E.NO_ERROR]


def test_dask_cluster_as_executor(tmp_path):
    distributed = pytest.importorskip("distributed")
    task = autotune.create_task("test_measure.matmul", (31, 20, 12))
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       host="127.0.0.1", dashboard_address=None)
    with cluster, distributed.Client(cluster) as client, \
            Measurer(MeasureOption(**FAST, executor=client.get_executor())) as m:
        builds = m.build(task, [0, 4, 9])
        crash = fake_candidate(tmp_path, builds[0], "abort();")
        results = m.run(task, [builds[0], crash, builds[1], crash, builds[2]])
        worker_pids = client.run(os.getpid)
    assert codes(results) == [E.NO_ERROR, E.RUNTIME_ERROR, E.NO_ERROR, E.RUNTIME_ERROR,
                              E.NO_ERROR]
    assert "SIGABRT" in results[1].error_msg and len(worker_pids) == 2
    assert all(len(r.costs) == 3 for r in results[::2])


def test_bad_options_and_configs_name_the_problem():
    with pytest.raises(ValueError, match="MeasureOption.repeat must be a positive integer"):
        MeasureOption(repeat=0)
    with pytest.raises(ValueError, match="MeasureOption.timeout must be a positive number"):
        MeasureOption(timeout=-1)
    with pytest.raises(ValueError, match="MeasureOption.executor"):
        MeasureOption(executor="local")
    task = autotune.create_task("test_measure.matmul", (8, 8, 8))
    with pytest.raises(SpaceError, match="outside the space"):
        measure_batch(task, [len(task.config_space)])
    assert MeasureOption().tolerance("float32") == (1e-4, 1e-4)
    assert MeasureOption(rtol=0.5).tolerance("int32") == (0.5, 0.0)


def test_tolerance_scales_with_the_outputs_magnitude():
    """A float32 sum in another order passes; a result off by one part in a thousand fails."""
    from tensorc.autotune.measure_worker import _mismatch
    from tensorc.runtime.module import Param
    rng = np.random.default_rng(0)
    want = (rng.uniform(-1, 1, (50, 50)) * 300).astype(np.float32)
    p = [Param("C", want.shape, "float32", True)]
    reordered = want + np.float32(1e-5) * 300
    assert _mismatch(p, [reordered], [want], [(1e-4, 1e-4)]) == ""
    off = want.copy()
    off[np.unravel_index(np.abs(want).argmax(), want.shape)] *= 1.001
    assert "1 of 2500 elements differ" in _mismatch(p, [off], [want], [(1e-4, 1e-4)])
    ints = np.arange(6, dtype=np.int32)
    assert _mismatch([Param("I", (6,), "int32", True)], [ints + (ints == 5)], [ints],
                     [(0.5, 0.5)]).startswith("output #0 'I': 1 of 6 elements differ")


def test_costs_are_timed_against_the_baseline(tmp_path):
    task = autotune.create_task("test_measure.matmul", (24, 40, 16))
    with Measurer(MeasureOption(repeat=3, min_repeat_ms=2.0)) as m:
        base = m.baseline(task)
        assert base is not None and base.scale > 0
        good = m.build(task, [0])[0]
        # the baseline's own code, timed against itself: a ratio near 1 in the baseline's unit
        (same,) = m.run(task, [good])
        assert len(same.costs) == 3 and 0.2 < same.cost / base.scale < 5
        # a correct candidate that also sleeps 20 ms per call costs far more
        a, b = good.params[0]["shape"], good.params[1]["shape"]
        body = (f"for (int i = 0; i < {a[0]}; i++) for (int j = 0; j < {b[1]}; j++) {{"
                f" float s = 0; for (int k = 0; k < {a[1]}; k++)"
                f" s += a[i * {a[1]} + k] * b[k * {b[1]} + j]; c[i * {b[1]} + j] = s; }}"
                " struct timespec t = {0, 20000000}; nanosleep(&t, 0); return 0;")
        slow = fake_candidate(tmp_path, good, body, "slow")
        (res,) = m.run(task, [slow])
        assert res.error_no == E.NO_ERROR, res.error_msg
        assert res.cost / same.cost > 50   # ~20 ms against microseconds, in any unit
        m.set_baseline_scale(task, 1.0)   # a database's unit: costs become ratios to it
        (ratio,) = m.run(task, [good])
        assert 0.2 < ratio.cost < 5


def test_unpaired_costs_are_absolute_times():
    task = autotune.create_task("test_measure.matmul", (24, 40, 16))
    with Measurer(MeasureOption(**FAST, paired=False)) as m:
        (res,) = m.measure(task, [0])
        assert res.error_no == E.NO_ERROR and 0 < res.cost < 0.01
        assert m._baselines == {}
