"""Real PyTorch models through the ONNX path: ``torch.onnx.export`` -> ``from_onnx`` ->
``tc.compile``, against torch eager.

The models are those of ``torch_models`` (the TorchScript importer tests use them too), each
exported once per session in memory with the TorchScript-based exporter (``dynamo=False``: the
torch.export-based one needs onnxscript, which tensorc does not depend on) at opset 17, whose
constant folding already merges eval-mode BatchNorm into the convolutions. Every import is
checked for its contents and, except ResNet-18's (seconds in the numpy interpreter), run by
``run_graph``, which tells an importer bug from a compiler bug; every model is compiled once
with ``tc.compile`` (ResNet-18 and MobileNetV2 take ~15 s each on two cores: ``slow``).
Outputs must match eager within a relative L2 error of 1e-4. Two export variants take other
importer paths: dynamic axes (symbolic dims resolved by ``shape_overrides``, the exporter's
Shape -> Gather -> Concat chains folded for the given shape), and no constant folding at the
oldest supported opset (BatchNormalization nodes kept).
"""
import functools
import inspect
import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import tensorc as tc  # noqa: E402
import torch_models  # noqa: E402
from frontend_importers import DynamicShapeError, from_onnx  # noqa: E402
from tensorc.graph.interpret import run_graph  # noqa: E402

TOL = 1e-4
OPSET = 17
ALL = list(torch_models.MODELS)
HEAVY_COMPILE = ("resnet18", "mobilenet_v2")
NOT_INTERPRETED = ("resnet18",)


def rel_l2(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def check_outputs(got, want):
    want = [w.detach().numpy() for w in (want if isinstance(want, tuple) else (want,))]
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype, \
            f"output {k}: {g.dtype}{list(g.shape)}, eager gives {w.dtype}{list(w.shape)}"
        err = rel_l2(g, w)
        assert err < TOL, f"output {k}: relative L2 error {err:.3g}"


def forward_args(module):
    return list(inspect.signature(module.forward).parameters)


def export(module, inputs, **kwargs):
    """The ONNX bytes of ``module`` traced on ``inputs``, graph inputs named after forward's
    parameters."""
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation, tracer warnings
        torch.onnx.export(module, inputs, f, dynamo=False, input_names=forward_args(module),
                          **kwargs)
    return f.getvalue()


class Exported:
    """A model, its example inputs and eager outputs, and its ONNX import."""

    def __init__(self, name):
        self.module, self.inputs = torch_models.MODELS[name]()
        with torch.no_grad():
            self.expected = self.module(*self.inputs)
        self.graph = from_onnx(export(self.module, self.inputs, opset_version=OPSET))

    def arrays(self):
        return [i.numpy() for i in self.inputs]


@functools.cache
def model(name):
    """Exported and imported once per test session."""
    return Exported(name)


def _contents_mlp(g):
    assert g.op_counts() == {"gemm": 3, "relu": 2, "log_softmax": 1}     # dropout gone


def _contents_small_cnn(g):
    c = g.op_counts()
    assert c["conv2d"] == 2 and c["pool2d"] == 1 and c["clip"] == 1 and "batch_norm" not in c
    assert [n.attrs["groups"] for n in g.nodes if n.op == "conv2d"] == [1, 2]


def _contents_residual_block(g):
    assert g.op_counts()["conv2d"] == 3


def _contents_resnet18(g):
    c = g.op_counts()     # the exporter folded BN into the convolutions
    assert c["conv2d"] == 20 and "batch_norm" not in c and c["gemm"] == 1
    assert c["pool2d"] == 1 and c["global_pool"] == 1


def _contents_mobilenet_v2(g):
    c = g.op_counts()
    assert c["conv2d"] == 52 and c["clip"] == 35          # ReLU6 -> Clip(0, 6) -> clip
    assert len([n for n in g.nodes if n.op == "conv2d" and n.attrs["groups"] > 1]) == 17


def _contents_bert_layer(g):
    c = g.op_counts()     # opset 17 has no Gelu: torch writes it with Erf
    assert c["layer_norm"] == 2 and c["matmul"] == 8 and c["softmax"] == 1 and c["erf"] == 1


def _contents_gpt2_block(g):
    c = g.op_counts()
    assert c["softmax"] == 1 and c["layer_norm"] == 3 and c["split"] == 1
    gathers = [n for n in g.nodes if n.op == "gather"]
    assert len(gathers) == 1 and not gathers[0].inputs[1].is_const   # wpe[arange] folded
    where = [n for n in g.nodes if n.op == "where"]
    assert len(where) == 1 and where[0].inputs[0].is_const     # the tril buffer, sliced to T


def _contents_capsnet(g):
    c = g.op_counts()     # routing unrolled; the first softmax (of zeros) folds to a constant
    assert c["conv2d"] == 2 and c["softmax"] == 2 and c["l2"] == 5


@pytest.mark.parametrize("name", ALL)
def test_model_imported(name):
    m = model(name)
    g = m.graph
    assert [v.name for v in g.inputs] == forward_args(m.module)
    assert [(v.shape, v.dtype) for v in g.inputs] == \
        [(tuple(i.shape), str(i.dtype).replace("torch.", "")) for i in m.inputs]
    assert not any(v.is_const for v in g.outputs)
    globals()[f"_contents_{name}"](g)
    if name not in NOT_INTERPRETED:
        check_outputs(run_graph(g, m.arrays()), m.expected)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  if n in HEAVY_COMPILE else n for n in ALL])
def test_model_compiled(name):
    m = model(name)
    check_outputs(tc.compile(m.graph)(*m.arrays()), m.expected)


def test_dynamic_axes_take_shape_overrides():
    """Batch and sequence exported as symbolic dims: the import needs shape_overrides, and at
    a length other than the traced one the folded shape arithmetic (position ids, the causal
    mask sliced to T) follows the override."""
    module, (ids,) = torch_models.make_gpt2_block()
    data = export(module, (ids,), opset_version=OPSET,
                  dynamic_axes={"idx": {0: "batch", 1: "seq"}})
    with pytest.raises(DynamicShapeError, match="'idx'"):
        from_onnx(data)
    short = ids[:, :37]
    g = from_onnx(data, shape_overrides={"idx": (1, 37)})
    assert g.inputs[0].shape == (1, 37) and g.outputs[0].shape == (1, 37, 512)
    with torch.no_grad():
        want = module(short)
    check_outputs(run_graph(g, [short.numpy()]), want)


def test_unfolded_export_keeps_batch_norm():
    module, inputs = torch_models.make_small_cnn()
    g = from_onnx(export(module, inputs, opset_version=13, do_constant_folding=False))
    assert g.op_counts()["batch_norm"] == 2
    with torch.no_grad():
        want = module(*inputs)
    check_outputs(run_graph(g, [i.numpy() for i in inputs]), want)
