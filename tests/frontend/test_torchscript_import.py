"""The TorchScript importer (``frontend_importers.from_torchscript``).

- Models (``torch_models``: MLP, small CNN with BN, residual block, ResNet-18, MobileNetV2,
  BERT-base layer, GPT-2-style block, CapsNet), each through ``torch.jit.trace`` *and*
  ``torch.jit.script``, imported and run by the graph interpreter against torch eager
  (relative L2 error < 1e-4); each model compiled once with ``tc.compile`` (the trace import;
  ResNet-18 and MobileNetV2 compile in ~40-60 s on two shared cores, so those two are
  ``slow``).
- Operator coverage: small modules that exercise the converter families (elementwise and
  activations, type promotion, shapes and indexing, reductions, nn ops, loops and branches in
  script), interpreted in both modes and compiled once.
- The contract: traced shapes used when ``input_shapes`` is omitted, dict shapes, dtypes,
  saved files, ScriptFunctions, multiple outputs, the freezing fallback; and the errors --
  every unsupported op listed at once, dynamic shapes without ``input_shapes``, a wrong number
  of shapes, training mode, eager modules, data-dependent values, in-place writes into views,
  unreadable files.
"""
from typing import List

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

TOL = 1e-4

pytestmark = [pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
              pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")]


def rel_l2(got, want):
    want = np.asarray(want, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def shapes_dtypes(ins):
    return [tuple(i.shape) for i in ins], [str(i.dtype).replace("torch.", "") for i in ins]


def convert(module, mode, ins):
    if mode == "trace":
        return torch.jit.trace(module, ins, check_trace=False)
    return torch.jit.script(module)


def import_module(module, mode, ins):
    shapes, dtypes = shapes_dtypes(ins)
    return from_torchscript(convert(module, mode, ins), shapes, dtypes)


def as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def check_outputs(got, want, tol=TOL):
    want = [w.detach().numpy() for w in as_tuple(want)]
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"output {k}: shape {g.shape} != {w.shape}"
        assert g.dtype == w.dtype, f"output {k}: dtype {g.dtype} != {w.dtype}"
        if w.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w, err_msg=f"output {k}")
        else:
            err = rel_l2(g, w)
            assert err < tol, f"output {k}: relative L2 error {err:.3g}"


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


# ------------------------------------------------------------------------------ op coverage

class Elementwise(nn.Module):
    def forward(self, x, y):
        a = torch.add(x, y, alpha=2) - 0.5 * y
        b = torch.sub(x, y, alpha=0.5) + (1 - x) + 3.0 / (x.abs() + 1)
        i = (x * 10).to(torch.int64)
        ints = torch.div(i, 3, rounding_mode="floor") + torch.div(i, 3, rounding_mode="trunc") + \
            i // 4 + i % 3
        f = i / 4 + torch.fmod(x, 0.3) + torch.remainder(x, 0.3)
        p = torch.pow(x, 2) + x.abs() ** 0.5 + x ** 3 + torch.pow(2.0, x) + x.abs().pow(1.5)
        act = (torch.clamp(x, -0.5, 0.5) + x.clamp(min=0.1) + F.hardtanh(x, -0.3, 0.7) +
               F.relu6(x * 8) + F.leaky_relu(x, 0.2) + F.elu(x, 0.7) + F.selu(x) +
               F.celu(x, 1.3) + F.gelu(x, approximate="tanh") + F.gelu(x) + F.silu(x) +
               torch.sigmoid(x) + torch.tanh(x) + F.hardswish(x) + F.hardsigmoid(x) +
               F.softplus(x, beta=2.0) + F.mish(x) + F.logsigmoid(x))
        un = (torch.exp(x) + torch.log(x.abs() + 1) + torch.sqrt(x.abs()) +
              torch.rsqrt(x.abs() + 1) + torch.neg(x) + torch.reciprocal(x.abs() + 1) +
              torch.sin(x) + torch.cos(x) + torch.erf(x) + torch.floor(x * 3) +
              torch.ceil(x * 3) + torch.round(x * 3) + torch.sign(x) + torch.log1p(x.abs()) +
              torch.expm1(x) + torch.trunc(x * 3))
        w = torch.where(x > 0, x, y) + x.masked_fill(x < 0, -1.0) + torch.maximum(x, y) + \
            torch.minimum(x, y) + (x == y).float() + ((x > 0) & (y < 0)).to(x.dtype) + \
            ((x > 0) | (y < 0)).float() + (~(x > 0.5)).float() + (x >= 0.1).float() * (x != 0.2)
        return a + b, ints, f + p, act, un, w


class Shapes(nn.Module):
    def forward(self, x, z):
        B = x.size(0)
        f = torch.flatten(x, 1) + x.view(B, -1) + x.reshape(x.shape[0], -1)
        p = x.permute(0, 2, 1, 3).contiguous().transpose(1, 2)
        u = x.unsqueeze(-1).squeeze(-1).squeeze(1).squeeze()            # squeeze(1): a no-op
        e = z[:, :1].expand(-1, 6) + z.expand_as(z) + z[:1].repeat(2, 1) + z.t().t()
        c = torch.cat([z, z * 2], dim=1)[:, ::2]
        s = torch.stack([z, z + 1], dim=-1).sum(-1)
        neg = x[:, -2:, 1:, ::2]
        sel = x[:, 1] + x.select(1, 2)
        idx = x[:, [0, 2]]
        a1, a2 = torch.chunk(z, 2, dim=1)
        s1, s2, s3 = torch.split(z, [1, 2, 3], dim=1)
        r0, r1 = z.unbind(0)
        fl = torch.flip(z, [1]) + torch.narrow(z, 1, 0, 6) + torch.roll(z, 2, 1)
        pd = F.pad(x, (1, 2, 0, 1))[..., :4, :5].sum() + \
            F.pad(x, (1, 1, 1, 1), mode="reflect").sum()
        tr = torch.tril(z[:, :2].repeat(1, 3)[:, :2]) + torch.triu(z[:, 2:4], 1)
        pos = torch.arange(z.size(1)).float() * z
        g = torch.gather(z, 1, torch.tensor([[0, 1], [2, 3]])) + \
            z.index_select(1, torch.tensor([5, 0]))
        return (f, p + u.reshape(x.shape), e, c + s, neg, sel, idx, a1 * a2,
                s1 + s2.sum(1, keepdim=True) + s3.mean(1, keepdim=True), r0 * r1, fl, pd, tr,
                pos, g)


class Reductions(nn.Module):
    def forward(self, x):
        m = x.mean(dim=(1, 2), keepdim=True) + x.sum() + x.amax(-1).sum() + x.amin((0, 1)).sum()
        v, i = x.max(dim=1)
        v2, i2 = torch.min(x, -1, keepdim=True)
        n = (x.norm(p=1, dim=-1) + torch.linalg.vector_norm(x, dim=(1, 2)).unsqueeze(-1).sum() +
             x.norm(p=float("inf"), dim=1).sum(-1, keepdim=True) +
             x.norm(p=2, dim=1).sum(-1, keepdim=True))
        st = x.var(dim=2) + x.std(dim=2, unbiased=False).sum() + torch.logsumexp(x, -1)
        cs = torch.cumsum(x, dim=2) + torch.prod(x[:, :, :2], dim=-1, keepdim=True)
        am = torch.argmax(x, dim=-1) + torch.argmin(x)
        anyall = (x > 0).any(dim=-1).float() + (x > -2).all(dim=-1).float()
        return m + x.max() + x.min(), v, i, v2, i2, n, st, cs, am, anyall


class NNOps(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(4, 6, 3, padding=1)
        self.c2 = nn.Conv2d(4, 8, 3, padding="same", dilation=2)
        self.ct = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.gn = nn.GroupNorm(2, 8)
        self.inn = nn.InstanceNorm2d(4, affine=True)
        self.ln = nn.LayerNorm([8], elementwise_affine=False)
        self.prelu = nn.PReLU(8)
        self.bn1 = nn.BatchNorm1d(6)
        self.fc = nn.Linear(8, 5, bias=False)
        self.emb = nn.Embedding(10, 8)
        self.w = nn.Parameter(torch.randn(3, 8, 8))

    def forward(self, x, t, ids):
        a = self.bn1(self.c1(t))                                      # [2, 6, 10]
        a = F.max_pool1d(a, 2) + F.avg_pool1d(a, 2) + F.adaptive_avg_pool1d(a, 5)
        y = self.prelu(self.gn(self.c2(x)))                           # [2, 8, 8, 8]
        z = self.ct(y)                                                # [2, 4, 16, 16]
        z = self.inn(z) + F.interpolate(x, scale_factor=2.0, mode="nearest")
        z2 = F.interpolate(x, size=(12, 12), mode="bilinear", align_corners=False) + \
            F.interpolate(x, size=(12, 12), mode="bilinear", align_corners=True)
        pl = F.avg_pool2d(y, 3, 2, 1, count_include_pad=False) + \
            F.adaptive_avg_pool2d(y, (4, 4)) + F.max_pool2d(y, 2, 2) + F.adaptive_max_pool2d(y, 4)
        ps = F.pixel_shuffle(y, 2)                                    # [2, 2, 16, 16]
        h = self.ln(y.flatten(2).transpose(1, 2))                     # [2, 64, 8]
        h = F.softmax(h, dim=-1) + F.log_softmax(h, dim=1)
        e = torch.einsum("bnc,kcd->bnkd", h, self.w).sum(2)
        b = torch.bmm(e, e.transpose(1, 2))[:, :8, :8] / 8.0 + \
            torch.baddbmm(e[:, :8, :8], e[:, :8], e[:, :8].transpose(1, 2), beta=0.5, alpha=2.0)
        emb = self.emb(ids)                                           # [2, 5, 8]
        q = emb.view(2, 5, 2, 4).transpose(1, 2)
        att = F.scaled_dot_product_attention(q, q, q, is_causal=True)
        o = self.fc(emb) + torch.addmm(torch.zeros(5), emb[0], self.fc.weight.t())
        return a, z, z2, pl, ps, b, att, o, e, F.max_pool2d(y, 3, 3, ceil_mode=True)


class ControlFlow(nn.Module):
    """Script keeps these as prim::Loop / prim::If on static values: unrolled and resolved."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])
        self.n = 3

    def forward(self, x):
        outs: List[torch.Tensor] = []
        for layer in self.layers:
            x = torch.relu(layer(x))
            outs.append(x)
        for i in range(self.n):
            if i % 2 == 0:
                x = x + outs[i]
            else:
                x = x * 0.5
        k = 0
        while k < x.size(0):
            x = x + float(k)
            k += 1
        if x.dim() == 2:
            x = x.unsqueeze(0)
        return x, torch.cat(outs, -1)


COVERAGE = {
    "elementwise": (Elementwise, lambda: (torch.randn(2, 3, 4, 5), torch.randn(4, 5))),
    "shapes": (Shapes, lambda: (torch.randn(2, 3, 4, 5), torch.randn(2, 6))),
    "reductions": (Reductions, lambda: (torch.randn(2, 3, 4),)),
    "nn_ops": (NNOps, lambda: (torch.randn(2, 4, 8, 8), torch.randn(2, 4, 10),
                               torch.randint(0, 10, (2, 5)))),
    "control_flow": (ControlFlow, lambda: (torch.randn(4, 8),)),
}


def _coverage(name):
    cls, make = COVERAGE[name]
    torch.manual_seed(1)
    m = cls().eval()
    for mod in m.modules():   # make eval-mode norms do something
        if isinstance(mod, nn.BatchNorm1d):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    ins = make()
    with torch.no_grad():
        want = m(*ins)
    return m, ins, want


@pytest.mark.parametrize("name", list(COVERAGE))
def test_op_coverage(name):
    """Interpreted in both modes; the trace import compiled once."""
    m, ins, want = _coverage(name)
    arrays = [i.numpy() for i in ins]
    graphs = {}
    for mode in ("trace", "script"):
        graphs[mode] = import_module(m, mode, ins)
        check_outputs(run_graph(graphs[mode], arrays), want)
    check_outputs(tc.compile(graphs["trace"])(*arrays), want)


def test_no_size_arithmetic_left_in_graphs():
    """Everything size()-driven folds: no graph op reads a shape, and reshape/slice operands
    are attributes."""
    m, ins, _ = _coverage("shapes")
    for mode in ("trace", "script"):
        g = import_module(m, mode, ins)
        assert "shape" not in g.op_counts()
        for n in g.nodes:
            if n.op in ("reshape", "slice", "broadcast_to", "tile"):
                assert len(n.inputs) == 1, n


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
