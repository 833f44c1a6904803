"""Shared pieces of the graph tests: random data (never zero) and numpy references."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tensorc.graph.builder import GraphBuilder


def rnd(rng, *shape, lo=0.5, hi=1.5, dtype="float32"):
    """Uniform magnitudes in [lo, hi) with random signs: never zero."""
    return (rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)).astype(dtype)


def conv2d_ref(x, w, pad=0, stride=1):
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("ncyxij,ocij->noyx", win, w.astype(np.float64))


def bn_ref(y, scale, bias, mean, var, eps=1e-5, axis=1):
    shape = [1] * y.ndim
    shape[axis] = -1
    r = lambda a: a.reshape(shape)  # noqa: E731
    return (y - r(mean)) / np.sqrt(r(var) + eps) * r(scale) + r(bias)


def softmax_ref(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def bn_params(rng, c):
    return (rnd(rng, c), rnd(rng, c), rnd(rng, c, lo=0.0, hi=0.3),
            rng.uniform(0.5, 2.0, c).astype("float32"))


def mlp(rng, batch=4, dims=(32, 48, 10)):
    """dense + relu + dense + softmax; returns (graph, weights)."""
    gb = GraphBuilder("mlp")
    x = gb.input("x", (batch, dims[0]))
    w1, b1 = rnd(rng, dims[1], dims[0], lo=0.05, hi=0.2), rnd(rng, dims[1])
    w2, b2 = rnd(rng, dims[2], dims[1], lo=0.05, hi=0.2), rnd(rng, dims[2])
    h = gb.op("relu", gb.op("dense", x, gb.const("w1", w1), gb.const("b1", b1)))
    y = gb.op("softmax", gb.op("dense", h, gb.const("w2", w2), gb.const("b2", b2)), axis=-1)
    gb.output(y)
    return gb.graph(), (w1, b1, w2, b2)


def mlp_ref(x, w1, b1, w2, b2):
    h = np.maximum(x.astype(np.float64) @ w1.T + b1, 0)
    return softmax_ref(h @ w2.T + b2)


def residual_block(rng, c=16, hw=8, name="resblock"):
    """conv-bn-relu-conv-bn-add(x)-relu; returns (graph, params)."""
    gb = GraphBuilder(name)
    x = gb.input("x", (1, c, hw, hw))
    w1 = rnd(rng, c, c, 3, 3, lo=0.02, hi=0.1)
    w2 = rnd(rng, c, c, 3, 3, lo=0.02, hi=0.1)
    p1, p2 = bn_params(rng, c), bn_params(rng, c)
    h = gb.op("conv2d", x, gb.const("w1", w1), padding=1, node_name="conv1")
    h = gb.op("batch_norm", h, *[gb.const(f"bn1_{k}", a) for k, a in enumerate(p1)],
              node_name="bn1")
    h = gb.op("relu", h, node_name="relu1")
    h = gb.op("conv2d", h, gb.const("w2", w2), padding=1, node_name="conv2")
    h = gb.op("batch_norm", h, *[gb.const(f"bn2_{k}", a) for k, a in enumerate(p2)],
              node_name="bn2")
    h = gb.op("add", h, x, node_name="residual")
    gb.output(gb.op("relu", h, node_name="relu2"))
    return gb.graph(), (w1, p1, w2, p2)


def residual_ref(x, w1, p1, w2, p2):
    h = np.maximum(bn_ref(conv2d_ref(x, w1, 1), *p1), 0)
    h = bn_ref(conv2d_ref(h, w2, 1), *p2) + x
    return np.maximum(h, 0)
