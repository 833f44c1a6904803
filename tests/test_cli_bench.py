"""``tensorc bench``: fields of the text and JSON reports, input files, the comparison with
ONNX Runtime and PyTorch, and the errors a bad file, shape or input gives."""
import json
import sys

import numpy as np
import pytest

import tensorc as tc
from tensorc.cli import main
from tensorc.runtime.timing import interleaved, summarize

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

FAST = ["--rounds", "3", "--warmup", "1", "--threads", "1"]


@pytest.fixture(autouse=True)
def _keep_threads():
    """bench sets the process-wide thread count; give the next test the one it had."""
    n = tc.runtime.get_num_threads()
    yield
    tc.runtime.set_num_threads(n)


@pytest.fixture
def tiny_onnx(tmp_path):
    """x @ w + emb[ids], relu: a float input with a dynamic batch and an index input that only
    a random draw in [0, 2) keeps in range (emb has 2 rows)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 5)).astype("float32"), "w")
    emb = numpy_helper.from_array(rng.standard_normal((2, 5)).astype("float32"), "emb")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Gather", ["emb", "ids"], ["e"], axis=0, name="gather"),
             helper.make_node("Add", ["h", "e"], ["s"], name="add"),
             helper.make_node("Relu", ["s"], ["y"], name="relu")]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8]),
                        helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])], [w, emb])
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


@pytest.fixture
def tiny_torchscript(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(7, 3), torch.nn.Tanh()).eval()
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.trace(model, torch.randn(5, 7)), str(path))
    return str(path)


def _bench_json(capsys, *args):
    assert main(["bench", *args, *FAST, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_onnx_report_fields_and_json(capsys, tiny_onnx):
    shapes = ["--shape", "x=3,8", "--shape", "ids=3"]
    assert main(["bench", tiny_onnx, *shapes, *FAST]) == 0
    text = capsys.readouterr().out
    for needle in ("tiny.onnx: 4 nodes -> ", " kernels, compiled in ",
                   "x float32[3, 8] (random normal)", "ids int64[3] (random in [0, 2))",
                   "threads 1", "tensorc/this", "cpu pressure before: ",
                   "torch: comparison skipped: an ONNX file holds no torch model"):
        assert needle in text, (needle, text)
    assert [ln.split()[0] for ln in text.splitlines()[4:6]] == ["tensorc", "onnxruntime"]

    report = _bench_json(capsys, tiny_onnx, *shapes)
    assert report["threads"] == 1 and report["rounds"] == 3 and report["warmup"] == 1
    assert report["compile_s"] > 0 and report["kernels"] >= 1
    assert set(report["results"]) == {"tensorc", "onnxruntime"}
    ort = report["results"]["onnxruntime"]
    tc_ms = report["results"]["tensorc"]["median_ms"]
    assert 0 < report["results"]["tensorc"]["min_ms"] <= tc_ms
    assert ort["tensorc_over_this"] == pytest.approx(tc_ms / ort["median_ms"])
    assert ort["rel_l2_vs_tensorc"] < 1e-5
    assert list(report["skipped"]) == ["torch"]
    assert [t["name"] for t in report["inputs"]] == ["x", "ids"]


def test_tuning_db_is_used_and_reported(capsys, tmp_path, tiny_onnx, monkeypatch):
    from tensorc.autotune import TuningDatabase
    db = tmp_path / "tune.db"
    TuningDatabase(str(db)).close()
    seen = []
    compile_ = tc.compile
    monkeypatch.setattr(tc, "compile", lambda g, **kw: seen.append(kw) or compile_(g, **kw))
    shapes = ["--shape", "x=3,8", "--shape", "ids=3"]
    report = _bench_json(capsys, tiny_onnx, *shapes, "--tuning-db", str(db))
    assert report["tuning_db"] == str(db) and seen == [{"tuning_db": str(db)}]
    assert main(["bench", tiny_onnx, *shapes, *FAST, "--tuning-db", str(db)]) == 0
    assert f"with the records of {db}" in capsys.readouterr().out
    assert main(["bench", tiny_onnx, *shapes, *FAST, "--tuning-db", str(tmp_path / "no.db")]) \
        != 0
    assert "no tuning database at" in capsys.readouterr().err


def test_input_files_replace_random_data_and_fix_shapes(capsys, tmp_path, tiny_onnx):
    rng = np.random.default_rng(3)
    np.save(tmp_path / "x.npy", rng.standard_normal((4, 8)).astype("float32"))
    np.save(tmp_path / "ids.npy", np.array([1, 0, 1, 1], "int64"))
    report = _bench_json(capsys, tiny_onnx, "--input", f"x={tmp_path / 'x.npy'}",
                         "--input", f"ids={tmp_path / 'ids.npy'}")
    assert [(t["shape"], t["source"]) for t in report["inputs"]] == [([4, 8], "file"),
                                                                      ([4], "file")]
    assert report["results"]["onnxruntime"]["rel_l2_vs_tensorc"] < 1e-5


def test_input_file_that_does_not_fit_names_the_input(capsys, tmp_path, tiny_onnx):
    np.save(tmp_path / "x.npy", np.ones((4, 8), "float32"))
    assert main(["bench", tiny_onnx, "--shape", "x=3,8", "--shape", "ids=3",
                 "--input", f"x={tmp_path / 'x.npy'}", *FAST]) == 1
    err = capsys.readouterr().err
    assert "--input x: the file holds float32[4, 8]" in err and "float32[3, 8]" in err
    assert main(["bench", tiny_onnx, "--shape", "x=3,8", "--shape", "ids=3",
                 "--input", f"z={tmp_path / 'x.npy'}", *FAST]) == 1
    assert "names ['z'], which are not graph inputs; the inputs are ['x', 'ids']" in \
        capsys.readouterr().err


def test_torchscript_compares_with_torch(capsys, tiny_torchscript):
    report = _bench_json(capsys, tiny_torchscript, "--shape", "x=5,7")
    assert set(report["results"]) == {"tensorc", "torch"}
    assert report["results"]["torch"]["rel_l2_vs_tensorc"] < 1e-5
    assert "onnxruntime" in report["skipped"]
    assert report["inputs"][0]["shape"] == [5, 7]


def test_missing_onnxruntime_skips_the_comparison(capsys, monkeypatch, tiny_onnx):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    assert main(["bench", tiny_onnx, "--shape", "x=3,8", "--shape", "ids=3", *FAST]) == 0
    text = capsys.readouterr().out
    assert "onnxruntime: comparison skipped: onnxruntime is not installed " \
           "(pip install 'tensorc[onnx]')" in text
    assert "\nonnxruntime " not in text  # no timing row


def test_torchscript_without_torch_names_the_extra(capsys, monkeypatch, tiny_torchscript):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["bench", tiny_torchscript, "--shape", "x=5,7", *FAST]) == 1
    assert "reading a TorchScript file needs torch (pip install 'tensorc[torch]')" in \
        capsys.readouterr().err


def test_bad_file_and_bad_shapes_fail_with_a_message(capsys, tmp_path, tiny_onnx):
    assert main(["bench", str(tmp_path / "missing.onnx"), *FAST]) == 1
    assert "FileNotFoundError: no model file at" in capsys.readouterr().err
    not_onnx = tmp_path / "junk.onnx"
    not_onnx.write_bytes(b"\x01not a model")
    assert main(["bench", str(not_onnx), *FAST]) == 1
    assert "cannot parse ONNX model" in capsys.readouterr().err
    assert main(["bench", tiny_onnx, "--shape", "x=3,9", "--shape", "ids=3", *FAST]) == 1
    assert "gives dimension 1 as 9, but the model fixes it to 8" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="expected NAME=D0,D1"):
        main(["bench", tiny_onnx, "--shape", "x", *FAST])
    with pytest.raises(SystemExit):
        main(["bench", tiny_onnx, "--rounds", "0"])
    assert "--rounds: expected an integer >= 1, got '0'" in capsys.readouterr().err


def test_interleaved_timing_order_and_summary():
    calls = []
    times = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                        rounds=3, warmup=2)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert [len(v) for v in times.values()] == [3, 3]
    stats = summarize(times)
    assert all(0 <= s["min_ms"] <= s["median_ms"] for s in stats.values())
    with pytest.raises(ValueError, match="rounds >= 1"):
        interleaved({"a": lambda: None}, rounds=0)
