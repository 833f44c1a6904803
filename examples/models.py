"""Reference CNNs built with tensorc's GraphBuilder: ResNet-18 and MobileNetV2 (ImageNet shapes).

Weights are random (fixed seed) with batch-norm statistics, so the graphs exercise the same
passes (batch-norm folding, fusion, layout packing) as the trained networks; importers are not
needed to run them. The layer structure follows torchvision's definitions.
"""
import numpy as np

from tensorc.graph import GraphBuilder


class _Weights:
    def __init__(self, gb, seed):
        self.gb, self.rng, self.n = gb, np.random.default_rng(seed), 0

    def conv(self, cin, cout, k, groups=1):
        self.n += 1
        fan_in = cin // groups * k * k
        w = self.rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin // groups, k, k))
        return self.gb.const(f"conv{self.n}.w", w.astype("float32"))

    def bn(self, c):
        self.n += 1
        r = self.rng
        return [self.gb.const(f"bn{self.n}.{p}", v.astype("float32")) for p, v in (
            ("scale", r.uniform(0.5, 1.5, c)), ("bias", r.normal(0, 0.1, c)),
            ("mean", r.normal(0, 0.1, c)), ("var", r.uniform(0.5, 1.5, c)))]

    def dense(self, cin, cout):
        self.n += 1
        w = self.rng.normal(0, np.sqrt(1.0 / cin), (cout, cin)).astype("float32")
        return self.gb.const(f"fc{self.n}.w", w), self.gb.const(
            f"fc{self.n}.b", self.rng.normal(0, 0.01, cout).astype("float32"))


def _conv_bn(gb, w, x, cin, cout, k, stride, pad, groups=1, act="relu"):
    y = gb.op("conv2d", x, w.conv(cin, cout, k, groups), strides=stride, padding=pad,
              groups=groups)
    y = gb.op("batch_norm", y, *w.bn(cout))
    if act == "relu":
        y = gb.op("relu", y)
    elif act == "relu6":
        y = gb.op("clip", y, a_min=0.0, a_max=6.0)
    return y


def resnet18(batch=1, num_classes=1000, seed=0):
    gb = GraphBuilder("resnet18")
    w = _Weights(gb, seed)
    x = gb.input("input", (batch, 3, 224, 224))
    y = _conv_bn(gb, w, x, 3, 64, 7, 2, 3)
    y = gb.op("max_pool2d", y, kernel=3, strides=2, padding=1)
    cin = 64
    for cout, stride in ((64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                         (512, 1)):
        out = _conv_bn(gb, w, y, cin, cout, 3, stride, 1)
        out = _conv_bn(gb, w, out, cout, cout, 3, 1, 1, act=None)
        short = y if stride == 1 and cin == cout else \
            _conv_bn(gb, w, y, cin, cout, 1, stride, 0, act=None)
        y = gb.op("relu", gb.op("add", out, short))
        cin = cout
    y = gb.op("flatten", gb.op("global_avg_pool2d", y), axis=1)
    y = gb.op("dense", y, *w.dense(512, num_classes))
    gb.output(y)
    return gb.graph()


def mobilenet_v2(batch=1, num_classes=1000, seed=0):
    gb = GraphBuilder("mobilenet_v2")
    w = _Weights(gb, seed)
    x = gb.input("input", (batch, 3, 224, 224))
    y = _conv_bn(gb, w, x, 3, 32, 3, 2, 1, act="relu6")
    cin = 32
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            h = y if t == 1 else _conv_bn(gb, w, y, cin, hidden, 1, 1, 0, act="relu6")
            h = _conv_bn(gb, w, h, hidden, hidden, 3, stride, 1, groups=hidden, act="relu6")
            h = _conv_bn(gb, w, h, hidden, c, 1, 1, 0, act=None)
            y = gb.op("add", h, y) if stride == 1 and cin == c else h
            cin = c
    y = _conv_bn(gb, w, y, cin, 1280, 1, 1, 0, act="relu6")
    y = gb.op("flatten", gb.op("global_avg_pool2d", y), axis=1)
    y = gb.op("dense", y, *w.dense(1280, num_classes))
    gb.output(y)
    return gb.graph()
