"""The capsule-routing graph pass (``passes.fuse_capsule_routing``) on imported PyTorch code:
the CapsNet of ``tests/frontend/torch_models`` through TorchScript (trace and script) and ONNX
becomes one ``capsule_routing`` node and, compiled, matches torch eager; a DigitCaps layer at
odd sizes matches with 1-3 rounds; near misses (another squash, another softmax axis, u_hat
read elsewhere) keep their nodes (or their prediction) and stay correct."""
import io
import os
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "frontend"))
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import tensorc as tc  # noqa: E402
import torch_models  # noqa: E402
from frontend_importers import from_onnx  # noqa: E402
from tensorc.graph.infer import const_array  # noqa: E402
from tensorc.graph.passes import default_passes, fuse_capsule_routing, run_passes  # noqa: E402
from torchscript_helpers import check_outputs, import_module  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
              pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")]


def paper_squash(s, dim: int = -1):
    return torch_models.squash(s, dim)


def other_squash(s, dim: int = -1):
    """|s|^2 / (0.5 + |s|^2) instead of / (1 + |s|^2): not the capsule squash."""
    n = s.norm(p=2, dim=dim, keepdim=True)
    n2 = n * n
    return (n2 / (0.5 + n2)) * s / (n + 1e-8)


class DigitCaps(nn.Module):
    """Prediction + routing written as torch_models.CapsNet writes them, at any size."""

    def __init__(self, I=37, J=5, din=7, dout=9, iterations=3, squash=paper_squash,
                 softmax_dim=2, return_u_hat=False):
        super().__init__()
        self.J, self.iterations, self.squash = J, iterations, squash
        self.softmax_dim, self.return_u_hat = softmax_dim, return_u_hat
        self.W = nn.Parameter(0.1 * torch.randn(1, I, J, dout, din))

    def forward(self, u):
        u_hat = torch.matmul(self.W, u[:, :, None, :, None]).squeeze(-1)
        b = torch.zeros(u.size(0), u_hat.size(1), self.J, 1)
        v = u_hat[:, :1]
        for i in range(self.iterations):
            c = F.softmax(b, dim=self.softmax_dim)
            v = self.squash((c * u_hat).sum(dim=1, keepdim=True))
            if i < self.iterations - 1:
                b = b + (u_hat * v).sum(dim=-1, keepdim=True)
        out = v.squeeze(1).norm(p=2, dim=-1)
        return (out, u_hat) if self.return_u_hat else out


def _inputs(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _onnx(module, x):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), f, dynamo=False, input_names=["x"], opset_version=17)
    return from_onnx(f.getvalue())


def _routing_nodes(g):
    return [n for n in run_passes(g).nodes if n.op == "capsule_routing"]


def _compiled_matches(g, module, x):
    with torch.no_grad():
        want = module(x)
    check_outputs(tc.compile(g)(x.numpy()), want)


@pytest.fixture(scope="module")
def capsnet():
    module, _ = torch_models.make_capsnet()
    return module, _inputs(3, 1, 28, 28, seed=1)


@pytest.mark.parametrize("source", ["trace", "onnx"])
def test_imported_capsnet_compiles_to_one_routing_node(capsnet, source):
    module, x = capsnet
    g = import_module(module, "trace", (x,)) if source == "trace" else _onnx(module, x)
    (node,) = _routing_nodes(g)   # batch 3, below the lanes layout: W packed at compile time
    assert node.attrs["iterations"] == 3 and [v.shape for v in node.inputs] == \
        [(3, 288, 8), (288, 10, 8, 16)] and node.attrs["weight_layout"] == "packed"
    counts = run_passes(g).op_counts()
    assert "softmax" not in counts and "matmul" not in counts and counts["l2"] == 2
    _compiled_matches(g, module, x)


def test_scripted_capsnet_routing_is_recognized(capsnet):
    module, x = capsnet
    (node,) = _routing_nodes(import_module(module, "script", (x,)))
    assert node.attrs["iterations"] == 3 and len(node.inputs) == 2


@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_digitcaps_at_odd_sizes(iterations):
    module = DigitCaps(iterations=iterations).eval()
    x = _inputs(5, 37, 7)
    g = import_module(module, "trace", (x,))
    (node,) = _routing_nodes(g)
    assert node.attrs["iterations"] == iterations
    assert [v.shape for v in node.inputs] == [(5, 37, 7), (37, 5, 9, 7)]
    _compiled_matches(g, module, x)


@pytest.mark.parametrize("batch", [1, 2])
def test_a_small_batch_reads_w_packed_at_compile_time_on_the_cpu(batch):
    """choose_capsule_layout below the lanes layout: the constant W becomes its packed copy
    (Din before Dout) and the node reads it with weight_layout="packed"; GPU targets keep W."""
    module = DigitCaps(iterations=3).eval()
    x = _inputs(batch, 37, 7)
    g = import_module(module, "trace", (x,))
    (node,) = _routing_nodes(g)
    assert node.attrs["weight_layout"] == "packed" and "lanes" not in node.attrs
    w = node.inputs[1]
    assert w.is_const and w.shape == (37, 5, 7, 9)
    np.testing.assert_array_equal(const_array(w), module.W.detach().numpy().reshape(37, 5, 9, 7)
                                  .transpose(0, 1, 3, 2))
    (gpu_node,) = [n for n in run_passes(g, target="cuda").nodes if n.op == "capsule_routing"]
    assert "weight_layout" not in gpu_node.attrs and gpu_node.inputs[1].shape == (37, 5, 9, 7)
    _compiled_matches(g, module, x)


def test_a_batch_filling_a_vector_routes_in_lanes_on_the_cpu():
    """choose_capsule_layout: batch >= the vector width gets the lanes layout on CPU targets
    (and compiles to the same result), never on GPU ones."""
    from tensorc.ops.capsule_schedule import MAX_LANES
    from tensorc.ops.schedule_cpu import vector_lanes
    lanes = min(vector_lanes("float32"), MAX_LANES)
    module = DigitCaps(iterations=2).eval()
    x = _inputs(lanes + 3, 37, 7)
    g = import_module(module, "trace", (x,))
    (node,) = _routing_nodes(g)
    assert node.attrs["lanes"] == lanes
    (gpu_node,) = [n for n in run_passes(g, target="cuda").nodes if n.op == "capsule_routing"]
    assert "lanes" not in gpu_node.attrs
    _compiled_matches(g, module, x)


@pytest.mark.parametrize("change", [{"squash": other_squash}, {"softmax_dim": 1}])
def test_near_misses_are_left_alone(change):
    module = DigitCaps(**change).eval()
    x = _inputs(3, 37, 7, seed=2)
    g = import_module(module, "trace", (x,))
    before = run_passes(g, [p for p in default_passes() if p.name != "fuse_capsule_routing"])
    assert "softmax" in before.op_counts()
    assert str(fuse_capsule_routing(before)) == str(before)
    assert not _routing_nodes(g)
    _compiled_matches(g, module, x)


def test_prediction_vectors_read_elsewhere_stay_a_matmul():
    """u_hat is also an output: the routing becomes one node reading it, the matmul stays."""
    module = DigitCaps(return_u_hat=True).eval()
    x = _inputs(3, 37, 7, seed=3)
    g = import_module(module, "trace", (x,))
    (node,) = _routing_nodes(g)
    assert len(node.inputs) == 1 and node.inputs[0].shape == (3, 37, 5, 9)
    assert run_passes(g).op_counts()["matmul"] == 1
    _compiled_matches(g, module, x)


def test_unmatched_graphs_pass_through_unchanged():
    rng = np.random.default_rng(0)
    module = nn.Sequential(nn.Linear(6, 4), nn.Softmax(dim=-1)).eval()
    x = torch.from_numpy(rng.uniform(0.5, 1.5, (3, 6)).astype("float32"))
    g = import_module(module, "trace", (x,))
    assert str(fuse_capsule_routing(g)) == str(g)
