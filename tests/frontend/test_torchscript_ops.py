"""Operator coverage of the TorchScript importer (``frontend_importers.from_torchscript``):
small modules that exercise the converter families (elementwise and activations, type
promotion, shapes and indexing, reductions, nn ops, loops and branches in script), each
imported through ``torch.jit.trace`` *and* ``torch.jit.script``, interpreted against torch
eager and compiled once; and no size arithmetic left in the graphs.
"""
from typing import List

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import tensorc as tc  # noqa: E402
from tensorc.graph.interpret import run_graph  # noqa: E402
from torchscript_helpers import check_outputs, import_module  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
              pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")]


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
