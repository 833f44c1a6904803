"""benchmarks/run_all.py: the generated section of RESULTS.md is written between its markers,
replaced on the next run, and every hand-written line around it is kept."""
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
sys.path.insert(0, str(BENCH))
import run_all  # noqa: E402 -- benchmarks/ is not a package

HAND = "# Benchmark results\n\nHand-written analysis, kept verbatim: 1.23 ms | a | b |\n"


def test_section_is_appended_then_replaced():
    first = run_all.replace_section(HAND, f"{run_all.BEGIN}\nold figures\n{run_all.END}")
    assert first.startswith(HAND)
    assert first.count(run_all.BEGIN) == 1
    tail = "\n## Written after the section\n\nmore analysis\n"
    second = run_all.replace_section(first + tail, f"{run_all.BEGIN}\nnew\n{run_all.END}")
    assert second == first.replace("old figures", "new") + tail


def test_end_marker_without_begin_is_an_error():
    with pytest.raises(ValueError, match="run_all:begin"):
        run_all.replace_section(f"text\n{run_all.END}\n", "generated")


def test_thread_counts_reach_every_run():
    capsule = run_all.commands(run_all.BENCHES["capsule"], quick=True, threads=[2, 1])
    assert len(capsule) == 1 and capsule[0].count("--threads") == 1
    assert capsule[0][-3:] == ["--threads", "2", "1"]
    ops = run_all.commands(run_all.BENCHES["ops"], quick=False, threads=[1, 2])
    assert [c[-2:] for c in ops] == [["--threads", "1"], ["--threads", "2"]]
    assert run_all.commands(run_all.BENCHES["vecmath"], quick=True, threads=[2]) == \
        [run_all.BENCHES["vecmath"].quick]


def test_args_replace_a_benchmarks_own_and_keep_the_thread_counts():
    tuning = run_all.commands(run_all.BENCHES["tuning"], quick=False, threads=[2],
                              args=["--tasks", "matmul", "--trials", "8"])
    assert tuning == [["--tasks", "matmul", "--trials", "8", "--threads", "2"]]
    with pytest.raises(SystemExit, match="NAME=ARGS"):
        run_all.main(["--args", "nosuch=--x"])


def test_tuning_curves_become_rows():
    curves = {"mm|xgb|0": [1.0, 4.0, 10.0], "mm|xgb|1": [2.0, 9.6, 9.6],
              "mm|random|0": [1.0, 2.0, 3.0]}
    rows = {(task, tuner): (best, need) for task, tuner, best, need in
            run_all.tuning_rows(curves)}
    assert rows[("mm", "xgb")] == ([10.0, 9.6], [3, 2])
    assert rows[("mm", "random")] == ([3.0], [None])


def test_quick_run_rewrites_only_its_section(tmp_path):
    # the hand-written part of the real file, whose own generated section (if any) is cut off
    hand = (BENCH / "RESULTS.md").read_text().split(run_all.BEGIN)[0]
    after = "\n## Hand-written after the section\n\nstays too\n"
    results = tmp_path / "RESULTS.md"
    results.write_text(f"{hand}\n{run_all.BEGIN}\nstale figures\n{run_all.END}\n{after}")
    proc = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--quick", "--only",
                           "vecmath", "--results", str(results)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = results.read_text()
    assert text.startswith(hand)
    assert text.endswith(f"{run_all.END}\n{after}")
    generated = text[text.index(run_all.BEGIN):text.index(run_all.END)]
    assert "stale figures" not in generated
    assert "### vecmath" in generated and "ISA: " in generated
    assert f"numpy {importlib.metadata.version('numpy')}" in generated
    rows = [line.split("|")[1:-1] for line in generated.splitlines()
            if line.startswith("| ") and "n=65536" in line]
    assert len(rows) == 9      # exp, tanh, sigmoid x numpy, tensorc vecmath, tensorc libm
    for _case, threads, impl, median, _min, ratio in rows:
        assert float(median) > 0 and threads.strip() == "1"
        if impl.strip() == "tensorc vecmath":
            assert ratio.strip() == "1.00"
    has_mpl = importlib.util.find_spec("matplotlib") is not None
    chart = tmp_path / "charts" / "vecmath.png"
    assert chart.exists() == has_mpl
    assert ("![vecmath](charts/vecmath.png)" in generated) == has_mpl
    assert ("matplotlib is not installed" in generated) != has_mpl


def test_records_schema(tmp_path):
    from records import Records
    rec = Records("demo", "tensorc")
    rec.add("case", "tensorc", 2, 1.5, 1.25)
    rec.note("torch.compile skipped")
    path = tmp_path / "out.json"
    rec.write(str(path))
    rec.write(None)
    assert json.loads(path.read_text()) == {
        "benchmark": "demo", "baseline": "tensorc", "notes": ["torch.compile skipped"],
        "rows": [{"case": "case", "implementation": "tensorc", "threads": 2,
                  "median_ms": 1.5, "min_ms": 1.25}]}


def test_bench_layers_lists_both_runtimes_in_model_order(tmp_path):
    out = tmp_path / "layers.json"
    proc = subprocess.run([sys.executable, str(BENCH / "bench_layers.py"), "--model",
                           "small_cnn", "--rounds", "1", "--threads", "1", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "conv2d" in proc.stdout and "/fc/Gemm" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    assert {r["implementation"] for r in rows} == {"tensorc", "onnxruntime"}
    assert all(r["median_ms"] > 0 and r["threads"] == 1 for r in rows)
