"""The model subcommands end to end: inspect, compile and run an ONNX file from the shell."""
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tensorc.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _model(path, with_unsupported=False):
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 16)).astype("float32"), "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(16).astype("float32"), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((16, 4)).astype("float32"), "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("Add", ["h", "b1"], ["hb"], name="add1"),
             helper.make_node("Relu", ["hb"], ["r"], name="relu1"),
             helper.make_node("MatMul", ["r", "w2"], ["z"], name="mm2"),
             helper.make_node("Softmax", ["z"], ["y"], axis=-1, name="sm")]
    if with_unsupported:
        nodes[-1] = helper.make_node("Softmax", ["z"], ["s"], axis=-1, name="sm")
        nodes.append(helper.make_node("StringNormalizer", ["s"], ["y"], name="odd"))
    graph = helper.make_graph(nodes, "mlp",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
                              [w1, b1, w2])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, path)
    return m


def test_inspect_compile_run_matches_onnxruntime(tmp_path):
    path = str(tmp_path / "mlp.onnx")
    _model(path)
    r = _cli("inspect", path, "--shape", "x=3,8", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "MatMul" in r.stdout and "supported" in r.stdout and "NOT SUPPORTED" not in r.stdout
    r = _cli("compile", path, "--shape", "x=3,8", "-o", str(tmp_path / "mlp.tcm"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    x = np.random.default_rng(1).standard_normal((3, 8)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    r = _cli("run", str(tmp_path / "mlp.tcm"), "--input", str(tmp_path / "x.npy"),
             "--output", str(tmp_path / "y.npy"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "y.npy")
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_inspect_marks_unsupported_ops_and_dynamic_shapes(tmp_path):
    path = str(tmp_path / "odd.onnx")
    _model(path, with_unsupported=True)
    r = _cli("inspect", path, cwd=tmp_path)
    assert "StringNormalizer" in r.stdout and "NOT SUPPORTED" in r.stdout
    assert r.returncode == 1
    r = _cli("compile", str(tmp_path / "odd.onnx"), cwd=tmp_path)
    assert r.returncode == 1
    assert "UnsupportedOpsError" in r.stderr and "StringNormalizer x1: 'odd'" in r.stderr
    assert "Traceback" not in r.stderr
