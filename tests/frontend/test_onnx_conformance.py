"""ONNX backend node tests through the importer and the reference interpreter.

Runs ``frontend_importers.onnx_conformance`` over the node tests of every operator the importer
claims (each case imported with its inputs' shapes, run with ``run_graph``, compared with the
expected outputs under the case's tolerances) and asserts the target: at least 95 % of the
non-skipped cases of each claimed op type pass. One session-wide run on two worker processes
(about half a minute); each op type is then its own test, so a regression names the operator
and lists its failing cases. ``slow``: the same through ``tc.compile`` on one case per op type.
"""
import os

import pytest

from frontend_importers import onnx_conformance as conf

pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def summaries():
    cases = conf.load_cases(conf.claimed_ops())
    jobs = min(2, len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else 2
    results = conf.run_cases(cases, "interpret", jobs=jobs)
    return conf.summarize(results)


@pytest.mark.parametrize("op_type", conf.claimed_ops())
def test_claimed_op_meets_target(summaries, op_type):
    s = summaries.get(op_type)
    if s is None:
        pytest.skip(f"onnx has no node tests for {op_type}")
    detail = "\n".join(f"  {name}: {reason}" for name, reason in s.failures)
    assert s.meets_target, (f"{op_type}: {s.passed}/{s.considered} non-skipped cases pass "
                            f"({100 * s.rate:.1f}% < {100 * conf.TARGET:.0f}%):\n{detail}")


def test_overall_and_skips_are_explained(summaries):
    total = sum(s.cases for s in summaries.values())
    passed = sum(s.passed for s in summaries.values())
    skipped = [(s.op_type, n, r) for s in summaries.values() for n, r in s.skips]
    assert total > 500 and passed / total > 0.75
    allowed = ("dtype", "feature not supported", "uses unclaimed ops", "empty tensor",
               "non-tensor", "opset older than 13")
    unexplained = [x for x in skipped if not x[2].startswith(allowed)]
    assert not unexplained, unexplained


def test_compare_uses_shapes_dtypes_and_tolerances():
    import numpy as np
    a = np.array([1.0, 2.0], np.float32)
    assert conf.compare([a], [a.copy()], 1e-3, 1e-7) is None
    assert "dtype" in conf.compare([a], [a.astype(np.float64)], 1e-3, 1e-7)
    assert "shape" in conf.compare([a], [a[:1]], 1e-3, 1e-7)
    assert conf.compare([a + 1e-4], [a], 1e-3, 1e-7) is None
    assert conf.compare([a + 1e-2], [a], 1e-3, 1e-7) is not None


def test_write_docs_table(tmp_path, summaries):
    path = tmp_path / "onnx_support.md"
    conf.write_docs(summaries, str(path), 1.0, compiled=summaries)
    text = path.read_text()
    assert "| ONNX op | cases | passed | failed | skipped | rate | compiled | notes |" in text
    for op in ("Conv", "Resize", "Gemm"):
        assert f"| {op} |" in text


@pytest.mark.slow
def test_compiled_sample_matches():
    """One runnable case per claimed op type, through tc.compile."""
    cases = conf.load_cases(conf.claimed_ops(), include_expanded=False)
    first = {}
    for c in cases:
        first.setdefault(c.op_type, []).append(c)
    sample = []
    for cs in first.values():
        for c in cs:
            r = conf.run_case(c, "interpret")
            if r.status == "pass":
                sample.append(c)
                break
    results = conf.run_cases(sample, "compile", jobs=1)
    failed = [(r.name, r.reason) for r in results if r.status == "fail"]
    assert not failed, "\n".join(f"{name}: {reason}" for name, reason in failed)
