"""The TorchScript importer (``frontend_importers.from_torchscript``) on whole models, its
contract and its errors; the operator coverage is in ``test_torchscript_ops``.

- Models (``torch_models``: MLP, small CNN with BN, residual block, ResNet-18, MobileNetV2,
  BERT-base layer, GPT-2-style block, CapsNet), each through ``torch.jit.trace`` *and*
  ``torch.jit.script``, imported and run by the graph interpreter against torch eager
  (relative L2 error < 1e-4); each model compiled once with ``tc.compile`` (the trace import;
  ResNet-18 and MobileNetV2 compile in ~40-60 s on two shared cores, so those two are
  ``slow``).
- The contract: traced shapes used when ``input_shapes`` is omitted, dict shapes, dtypes,
  saved files, ScriptFunctions, multiple outputs, the freezing fallback; and the errors --
  every unsupported op listed at once, dynamic shapes without ``input_shapes``, a wrong number
  of shapes, training mode, eager modules, data-dependent values, in-place writes into views,
  unreadable files.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import frontend_importers  # noqa: E402
import tensorc as tc  # noqa: E402
import torch_models  # noqa: E402
from frontend_importers import (DynamicShapeError, ImporterError,  # noqa: E402
                                ModelParseError, NonConstantInputError,
                                UnsupportedFeatureError, UnsupportedOpsError, from_torchscript)
from tensorc.graph.interpret import run_graph  # noqa: E402
from torchscript_helpers import check_outputs, convert, import_module  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
              pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")]


# ------------------------------------------------------------------------------ models

class _Model:
    def __init__(self, name):
        self.name = name
        self.module, self.inputs = torch_models.MODELS[name]()
        with torch.no_grad():
            self.expected = self.module(*self.inputs)
        self._graphs = {}

    def graph(self, mode):
        if mode not in self._graphs:
            self._graphs[mode] = import_module(self.module, mode, self.inputs)
        return self._graphs[mode]

    def arrays(self):
        return [i.numpy() for i in self.inputs]


_MODELS = {}


def model(name):
    """The model, its inputs, eager outputs and imports, built once per test session."""
    if name not in _MODELS:
        _MODELS[name] = _Model(name)
    return _MODELS[name]


ALL = list(torch_models.MODELS)
HEAVY_COMPILE = ("resnet18", "mobilenet_v2")
#: Models whose script import is checked by being the same graph as the trace import (their
#: interpretation takes seconds); the others are interpreted in both modes.
SAME_GRAPH = ("resnet18", "mobilenet_v2")


def graph_signature(g):
    """Equal for two graphs that compute the same thing the same way: ops, attributes, wiring,
    shapes and constant data (names aside)."""
    pos = {id(v): ("in", k, v.shape, v.dtype) for k, v in enumerate(g.inputs)}
    sig = []
    for j, n in enumerate(g.nodes):
        ins = []
        for v in n.inputs:
            if v.is_const:
                data = np.ascontiguousarray(v.data).tobytes()
                ins.append(("const", v.shape, v.dtype, hash(data)))
            else:
                ins.append(pos[id(v)])
        sig.append((n.op, repr(sorted(n.attrs.items())), tuple(ins)))
        for i, v in enumerate(n.outputs):
            pos[id(v)] = ("node", j, i, v.shape, v.dtype)
    return sig, [pos[id(v)] for v in g.outputs]


def _contents_resnet18(g):
    c = g.op_counts()
    assert c["conv2d"] == 20 and c["batch_norm"] == 20 and c["dense"] == 1   # BN left to fold
    assert c["global_avg_pool2d"] == 1 and c["add"] == 8 and c["max_pool2d"] == 1


def _contents_mobilenet_v2(g):
    c = g.op_counts()
    assert c["conv2d"] == 52 and c["clip"] == 35 and c["add"] == 10   # ReLU6 -> clip(0, 6)
    dw = [n for n in g.nodes if n.op == "conv2d" and n.attrs["groups"] > 1]
    assert len(dw) == 17


def _contents_gpt2_block(g):
    c = g.op_counts()
    assert c["dense"] == 5 and c["softmax"] == 1 and c["gather"] == 1
    where = [n for n in g.nodes if n.op == "where"]
    assert len(where) == 1 and where[0].inputs[0].is_const    # the tril buffer, sliced to T
    assert g.inputs[0].dtype == "int64"


def _contents_capsnet(g):
    c = g.op_counts()     # routing unrolled; the first softmax (of zeros) folds to a constant
    assert c["softmax"] == 2 and c["l2"] == 5 and c["conv2d"] == 2


def _contents_bert_layer(g):
    c = g.op_counts()
    assert c["layer_norm"] == 2 and c["gelu"] == 1 and c["dense"] == 6 and c["softmax"] == 1
    assert [v.name for v in g.inputs] == ["hidden_states", "mask"]


def _forward_args(module):
    import inspect
    return list(inspect.signature(module.forward).parameters)


@pytest.mark.parametrize("name", ALL)
def test_model_trace_and_script_imported(name):
    """Both conversions of every model import to graphs that match eager when interpreted
    (or, for the two big CNNs, the script import is the trace import's graph)."""
    m = model(name)
    for mode in ("trace", "script"):
        g = m.graph(mode)
        assert [v.name for v in g.inputs] == _forward_args(m.module)
        assert not {"shape", "arange"} & set(g.op_counts())      # size() arithmetic folded
        check = globals().get(f"_contents_{name}")
        if check:
            check(g)
        if mode == "script" and name in SAME_GRAPH:
            assert graph_signature(g) == graph_signature(m.graph("trace"))
        else:
            check_outputs(run_graph(g, m.arrays()), m.expected)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  if n in HEAVY_COMPILE else n for n in ALL])
def test_model_compiled(name):
    """One tc.compile per model (the trace import) against torch eager."""
    m = model(name)
    mod = tc.compile(m.graph("trace"))
    check_outputs(mod(*m.arrays()), m.expected)


def test_gpt2_takes_int64_token_ids():
    m = model("gpt2_block")
    g = m.graph("trace")
    assert g.inputs[0].dtype == "int64" and g.inputs[0].shape == (1, 64)
    # scripted: no recorded dtype; without input_dtypes the ids would be float32
    s = torch.jit.script(m.module)
    with pytest.raises(ImporterError, match="embedding indices"):
        from_torchscript(s, [(1, 64)])
    g = from_torchscript(s, {"idx": (1, 64)}, {"idx": torch.int64})
    check_outputs(run_graph(g, m.arrays()), m.expected)


# ------------------------------------------------------------------------------ the contract

def test_lazy_export():
    from frontend_importers import torchscript_importer
    assert frontend_importers.from_torchscript is torchscript_importer.from_torchscript


def test_traced_shapes_used_when_omitted():
    m = model("residual_block")
    g = from_torchscript(torch.jit.trace(m.module, m.inputs, check_trace=False))
    assert g.inputs[0].shape == (1, 16, 16, 16) and g.inputs[0].dtype == "float32"
    assert g.name == "BasicBlock"


def test_trace_imported_at_another_batch():
    """Sizes read in forward are traced as aten::size, so a batch-1 trace imports at batch 3."""
    m = model("bert_layer")
    t = torch.jit.trace(m.module, m.inputs, check_trace=False)
    g = from_torchscript(t, {"hidden_states": (3, 16, 768), "mask": (3, 16)}, name="bert3")
    assert g.name == "bert3"
    x, mask = torch.randn(3, 16, 768), torch.ones(3, 16)
    mask[1, 10:] = 0
    with torch.no_grad():
        want = m.module(x, mask)
    check_outputs(run_graph(g, [x.numpy(), mask.numpy()]), want)


def test_single_shape_and_dtype_forms():
    m = model("mlp")
    s = torch.jit.script(m.module)
    for shapes in ((4, 64), [(4, 64)], {"x": [4, 64]}, [torch.Size([4, 64])]):
        g = from_torchscript(s, shapes)
        assert g.inputs[0].shape == (4, 64)
    g = from_torchscript(s, (4, 64), input_dtypes="float64")
    assert g.inputs[0].dtype == "float64"
    g = from_torchscript(s, (4, 64), input_dtypes=[np.float32])
    assert g.inputs[0].dtype == "float32"


def test_double_model():
    md = torch_models.MLP().double().eval()
    x = torch.randn(3, 64, dtype=torch.float64)
    g = from_torchscript(torch.jit.trace(md, (x,), check_trace=False))
    assert g.inputs[0].dtype == "float64"
    out, = run_graph(g, [x.numpy()])
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, md(x).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_saved_file(tmp_path):
    m = model("small_cnn")
    path = tmp_path / "cnn.pt"
    torch.jit.save(torch.jit.script(m.module), str(path))
    g = from_torchscript(str(path), [tuple(m.inputs[0].shape)])
    check_outputs(run_graph(g, m.arrays()), m.expected)
    with pytest.raises(DynamicShapeError):     # a loaded module has no recorded shapes
        from_torchscript(path)


def test_script_function_and_tuple_outputs():
    def f(x, y):
        return x + y, (x * y).sum(1), x
    sf = torch.jit.script(f)
    g = from_torchscript(sf, [(2, 3), (1, 3)])
    assert [v.name for v in g.outputs] == ["output_0", "output_1", "output_2"]
    assert len({id(v) for v in g.outputs + g.inputs}) == 5      # an input output is copied
    x, y = np.random.rand(2, 3).astype("float32"), np.random.rand(1, 3).astype("float32")
    a, b, c = run_graph(g, [x, y])
    np.testing.assert_allclose(a, x + y, rtol=1e-6)
    np.testing.assert_allclose(b, (x * y).sum(1), rtol=1e-6)
    np.testing.assert_array_equal(c, x)


def test_without_freezing(monkeypatch):
    """If freezing fails the importer inlines the graph and reads parameters through
    prim::GetAttr, and unrolls script loops itself."""
    def refuse(*a, **k):
        raise RuntimeError("cannot freeze")
    monkeypatch.setattr(torch._C, "_freeze_module", refuse)
    for name in ("small_cnn", "capsnet"):
        m = model(name)
        g = from_torchscript(torch.jit.script(m.module), [tuple(m.inputs[0].shape)])
        check_outputs(run_graph(g, m.arrays()), m.expected)


# ------------------------------------------------------------------------------ errors

class _Unsupported(nn.Module):
    def forward(self, x):
        y = torch.erfinv(x)
        z = torch.relu(y) + torch.erfinv(x * 0.5)
        w = torch.cumprod(z, 0)                       # reads an unsupported result
        return torch.sort(w, 1)[0] + torch.atan(x)


@pytest.mark.parametrize("mode", ["trace", "script"])
def test_unsupported_ops_listed_at_once(mode):
    m = _Unsupported().eval()
    x = torch.rand(2, 3)
    with pytest.raises(UnsupportedOpsError) as ei:
        from_torchscript(convert(m, mode, (x,)), [(2, 3)])
    e = ei.value
    assert set(e.ops) == {"aten::erfinv", "aten::cumprod", "aten::sort", "aten::atan"}
    assert len(e.ops["aten::erfinv"]) == 2
    msg = str(e)
    assert "4 unsupported operator types (5 nodes)" in msg
    assert "aten::erfinv x2" in msg and "test_torchscript_import.py:" in msg
    assert isinstance(e, ImporterError) and isinstance(e, NotImplementedError)


def test_dynamic_shapes_without_input_shapes():
    class Two(nn.Module):
        def forward(self, tokens, mask):
            return tokens * mask
    with pytest.raises(DynamicShapeError) as ei:
        from_torchscript(torch.jit.script(Two().eval()))
    assert set(ei.value.inputs) == {"tokens", "mask"}
    assert "input_shapes" in str(ei.value) and "'tokens'" in str(ei.value)
    with pytest.raises(DynamicShapeError) as ei:       # one of two given by name
        from_torchscript(torch.jit.script(Two().eval()), {"mask": (2, 3)})
    assert set(ei.value.inputs) == {"tokens"}


def test_wrong_input_shapes():
    s = torch.jit.script(model("bert_layer").module)
    with pytest.raises(ValueError, match=r"forward takes 2 inputs \(hidden_states, mask\), but "
                                         r"input_shapes gives 1 shape"):
        from_torchscript(s, [(1, 128, 768)])
    with pytest.raises(ValueError, match="gives 3 shapes"):
        from_torchscript(s, [(1, 8, 768), (1, 8), (1, 8)])
    with pytest.raises(ValueError, match="not inputs of forward"):
        from_torchscript(s, {"hidden": (1, 8, 768), "mask": (1, 8)})
    with pytest.raises(ValueError, match="positive"):
        from_torchscript(s, [(1, 0, 768), (1, 8)])
    with pytest.raises(ValueError, match="input_dtypes gives 1"):
        from_torchscript(s, [(1, 8, 768), (1, 8)], ["float32"])


def test_training_mode_and_eager_modules_rejected():
    m = torch_models.MLP()                   # nn.Module starts in training mode
    with pytest.raises(UnsupportedFeatureError, match=r"training mode.*\.eval\(\)"):
        from_torchscript(torch.jit.script(m), (1, 64))
    with pytest.raises(TypeError, match="torch.jit.trace"):
        from_torchscript(m.eval(), (1, 64))
    with pytest.raises(TypeError):
        from_torchscript(42, (1, 64))


def test_data_dependent_values_rejected():
    class Branch(nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x * 2
            return x

    class Count(nn.Module):
        def forward(self, x):
            return x[: int(x.sum())]
    for cls in (Branch, Count):
        with pytest.raises(NonConstantInputError, match="computed at run time"):
            from_torchscript(torch.jit.script(cls().eval()), [(2, 3)])


def test_inplace_write_into_view_rejected():
    class ViewInplace(nn.Module):
        def forward(self, x):
            x = x * 1.0
            y = x.view(-1)
            y.add_(1.0)
            return x * 2
    m = ViewInplace().eval()
    for mode in ("trace", "script"):
        with pytest.raises(UnsupportedFeatureError, match="in place"):
            from_torchscript(convert(m, mode, (torch.rand(2, 3),)), [(2, 3)])


def test_inplace_ops_rebind():
    """relu_ / add_ / mul_ / fill_ / zero_ on values nobody else reads are their functional
    forms; an in-place op on a constant buffer with a graph operand rebinds the buffer."""
    class Inplace(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("b", torch.ones(2, 5))

        def forward(self, x):
            y = x * 2.0
            y.add_(1.0)
            y.relu_()
            y.mul_(3.0)
            z = self.b.clone()
            z.add_(x)
            w = x.clone()
            w.fill_(3.0)
            v = x * 1
            v.zero_()
            return y + z * 2 + w + v + z
    m = Inplace().eval()
    x = torch.randn(2, 5)
    for mode in ("trace", "script"):
        g = from_torchscript(convert(m, mode, (x,)), [(2, 5)])
        check_outputs(run_graph(g, [x.numpy()]), m(x))


def test_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        from_torchscript(str(tmp_path / "missing.pt"), (1, 3))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torchscript archive" * 4)
    with pytest.raises(ModelParseError, match="cannot load TorchScript model"):
        from_torchscript(bad, (1, 3))


def test_unsupported_features():
    class Conv3d(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv3d(2, 2, 3)

        def forward(self, x):
            return self.c(x)

    class Pooled(nn.Module):
        def forward(self, x):
            y, i = F.max_pool2d(x, 2, return_indices=True)
            return y + i.float()
    with pytest.raises(UnsupportedFeatureError, match="3-D convolution"):
        from_torchscript(torch.jit.script(Conv3d().eval()), [(1, 2, 5, 5, 5)])
    with pytest.raises(UnsupportedFeatureError, match="indices output"):
        from_torchscript(torch.jit.trace(Pooled().eval(), torch.rand(1, 2, 4, 4)))
