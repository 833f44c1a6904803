"""GFLOP/s of tensorc's default conv2d / dense schedules against PyTorch (oneDNN) and ONNX Runtime.

Every layer is conv + bias + ReLU (the group a graph compiler fuses), float32, batch 1, the
same thread count for every library. Each library is timed in the same process, interleaved
round by round, and medians are reported, because the machine is shared: absolute figures
move a lot with other jobs, ratios measured side by side much less. /proc/pressure/cpu is read
before and after so a reader can tell a quiet run from a loaded one.

Columns: ``tc`` is tensorc with the NCHW weight packed on every call (what a graph that feeds
weights as inputs runs), ``tc-pre`` with the weight pre-packed once (``pack_conv2d_weight``,
what a graph compiler that folds constant weights runs; only the NCHWc algorithm packs
weights), ``tc-wino`` Winograd F(4x4, 3x3) with the kernel transformed once, on the layers where
the graph compiler picks it (``winograd_pays``; its GFLOP/s count the direct convolution's
operations, as everyone's do; in ``--net`` sums, layers without it count their ``tc-pre`` time,
so the column is what a compiled model runs). ``torch`` is eager PyTorch (F.conv2d + bias +
relu); ``ort`` is a one-node-plus-ReLU ONNX model in ONNX Runtime (weights packed once at
session creation). Ratios are library time / tensorc time (> 1: tensorc is faster). Medians
and minima are both printed: on a loaded machine the minimum shows what a kernel can do, the
median what it does.

With 2 threads on a 2-core machine the libraries disturb each other: idle thread pools spin
(ONNX Runtime's by default, PyTorch's libgomp) and take the core the next library's second
thread needs. ``--libs tc,ort --no-spin`` times tensorc against a non-spinning ONNX Runtime
only.

    python benchmarks/bench_ops.py                 # the ResNet-18 / MobileNetV2 sample layers
    python benchmarks/bench_ops.py --net resnet18  # every conv of the network, summed
    python benchmarks/bench_ops.py --threads 1 --rounds 21
    python benchmarks/bench_ops.py --threads 2 --libs tc-pre,ort --no-spin
    python benchmarks/bench_ops.py --json results.json   # also write the figures as JSON
"""
import argparse
import statistics
import sys
import time

import numpy as np
from common import cpu_pressure
from records import Records

import tensorc as tc
from tensorc import te
from tensorc.graph.passes.conv_layout import winograd_pays
from tensorc.ops import conv as C
from tensorc.ops import conv_winograd as CW
from tensorc.ops import matmul as MM
from tensorc.ops import schedule_nn as SN

# name: (IC, H, W, OC, K, stride, pad, groups)
LAYERS = {
    "r18 3x3 64->64 @56": (64, 56, 56, 64, 3, 1, 1, 1),
    "r18 3x3 128->128 @28": (128, 28, 28, 128, 3, 1, 1, 1),
    "r18 3x3 256->256 @14": (256, 14, 14, 256, 3, 1, 1, 1),
    "r18 3x3 512->512 @7": (512, 7, 7, 512, 3, 1, 1, 1),
    "r18 7x7/2 3->64 @224": (3, 224, 224, 64, 7, 2, 3, 1),
    "r18 1x1/2 64->128 @56": (64, 56, 56, 128, 1, 2, 0, 1),
    "r18 3x3/2 64->128 @56": (64, 56, 56, 128, 3, 2, 1, 1),
    "mbv2 dw3x3 144 @56": (144, 56, 56, 144, 3, 1, 1, 144),
    "mbv2 dw3x3/2 96 @112": (96, 112, 112, 96, 3, 2, 1, 96),
    "mbv2 1x1 16->96 @112": (16, 112, 112, 96, 1, 1, 0, 1),
    "mbv2 1x1 960->160 @7": (960, 7, 7, 160, 1, 1, 0, 1),
}

DENSE = {"r18 fc 512->1000": (1, 512, 1000), "mbv2 fc 1280->1000": (1, 1280, 1000)}


def resnet18_convs():
    """(layer, count) for every conv of ResNet-18 at 224x224, batch 1."""
    out = {(3, 224, 224, 64, 7, 2, 3, 1): 1, (64, 56, 56, 64, 3, 1, 1, 1): 4}
    c, hw = 64, 56
    for oc in (128, 256, 512):
        out[(c, hw, hw, oc, 3, 2, 1, 1)] = 1
        out[(c, hw, hw, oc, 1, 2, 0, 1)] = 1
        hw //= 2
        out[(oc, hw, hw, oc, 3, 1, 1, 1)] = 3
        c = oc
    return out


def mobilenetv2_convs():
    out = {}

    def add(layer):
        out[layer] = out.get(layer, 0) + 1
    add((3, 224, 224, 32, 3, 2, 1, 1))
    cin, hw = 32, 112
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            if t != 1:
                add((cin, hw, hw, hidden, 1, 1, 0, 1))
            add((hidden, hw, hw, hidden, 3, stride, 1, hidden))
            hw = (hw - 1) // stride + 1
            add((hidden, hw, hw, c, 1, 1, 0, 1))
            cin = c
    add((320, 7, 7, 1280, 1, 1, 0, 1))
    return out


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def conv_flops(layer):
    ic, h, w, oc, k, s, p, g = layer
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return 2.0 * oc * oh * ow * (ic // g) * k * k, (oh, ow)


def build_conv(layer, prepacked, winograd=False):
    ic, h, w, oc, k, s, p, g = layer
    x = te.placeholder((1, ic, h, w), name="x")
    b = te.placeholder((oc,), name="b")
    if winograd:
        wt = te.placeholder((CW.ALPHA, CW.ALPHA, ic, oc), name="wu")
        y = C.conv2d(x, wt, s, p, weight_layout="winograd")
    elif prepacked:
        shape = C.pack_conv2d_weight(np.zeros((oc, ic // g, k, k), "float32"), g).shape
        wt = te.placeholder(shape, name="wp")
        y = C.conv2d(x, wt, s, p, groups=g, weight_layout="packed")
    else:
        wt = te.placeholder((oc, ic // g, k, k), name="w")
        y = C.conv2d(x, wt, s, p, groups=g)
    out = te.compute(y.shape, lambda n, c, i, j: te.max(y[n, c, i, j] + b[c], 0.0),
                     name="bias_relu", tag="broadcast")
    s_ = SN.create_schedule(out)
    return tc.build(s_, [x, wt, b, out], name="conv_bias_relu")


#: set by --no-spin: ONNX Runtime's idle workers sleep instead of spinning (on a 2-core machine a
#: spinning pool steals the core the next library's second thread needs)
ORT_SPIN = True


def ort_conv(layer, wn, bn, nt):
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    ic, h, w, _, k, s, p, g = layer
    node = helper.make_node("Conv", ["X", "W", "B"], ["Y0"], kernel_shape=[k, k],
                            strides=[s, s], pads=[p] * 4, group=g)
    relu = helper.make_node("Relu", ["Y0"], ["Y"])
    graph = helper.make_graph(
        [node, relu], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT,
                                                          [1, ic, h, w])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(wn, "W"), numpy_helper.from_array(bn, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = nt
    so.inter_op_num_threads = 1
    if not ORT_SPIN:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    return lambda xn: sess.run(None, {"X": xn})


#: libraries to time (--libs); tensorc is always timed
LIBS = ("tc-pre", "tc-wino", "torch", "ort")


def bench_conv(layer, nt, rounds, check=True):
    import torch
    ic, h, w, oc, k, s, p, g = layer
    flop, (oh, ow) = conv_flops(layer)
    rng = np.random.default_rng(0)
    xn = rng.uniform(-1, 1, (1, ic, h, w)).astype("float32")
    wn = rng.uniform(-1, 1, (oc, ic // g, k, k)).astype("float32")
    bn = rng.uniform(-1, 1, oc).astype("float32")
    o = np.full((1, oc, oh, ow), np.nan, "float32")
    t0 = time.perf_counter()
    f = build_conv(layer, False)
    build_s = time.perf_counter() - t0
    pre = (k > 1 and g != ic) and "tc-pre" in LIBS and build_conv(layer, True)
    wp = C.pack_conv2d_weight(wn, g) if pre else None
    wino = "tc-wino" in LIBS and winograd_pays(ic, wn.shape, (oh, ow), s, p, 1, g) and \
        build_conv(layer, False, winograd=True)
    wu = CW.winograd_weight(wn) if wino else None
    tx, tw, tb = map(torch.from_numpy, (xn, wn, bn))

    def torch_fn():
        return torch.relu(torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p,
                                                     groups=g))
    ort_fn = ort_conv(layer, wn, bn, nt) if "ort" in LIBS else None
    f(xn, wn, bn, o)
    if check:
        np.testing.assert_allclose(o, torch_fn().numpy(), rtol=2e-3, atol=2e-3)
    fns = {"tc": lambda: f(xn, wn, bn, o)}
    if pre:
        fns["tc-pre"] = lambda: pre(xn, wp, bn, o)
    if wino:
        ow_ = np.full_like(o, np.nan)
        wino(xn, wu, bn, ow_)
        if check:
            np.testing.assert_allclose(ow_, torch_fn().numpy(), rtol=2e-3, atol=2e-3)
        fns["tc-wino"] = lambda: wino(xn, wu, bn, ow_)
    if "torch" in LIBS:
        fns["torch"] = torch_fn
    if ort_fn is not None:
        fns["ort"] = lambda: ort_fn(xn)
    for fn in fns.values():   # warm up
        fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(_time(fn))
    return flop, {name: (statistics.median(ts), min(ts)) for name, ts in times.items()}, build_s


def bench_dense(shape, nt, rounds):
    import torch
    m, kdim, n = shape
    x = te.placeholder((m, kdim), name="x")
    wt = te.placeholder((n, kdim), name="w")
    b = te.placeholder((n,), name="b")
    y = MM.dense(x, wt, b)
    f = tc.build(SN.create_schedule(y), [x, wt, b, y])
    rng = np.random.default_rng(0)
    xn = rng.uniform(-1, 1, (m, kdim)).astype("float32")
    wn = rng.uniform(-1, 1, (n, kdim)).astype("float32")
    bn = rng.uniform(-1, 1, n).astype("float32")
    o = np.full((m, n), np.nan, "float32")
    f(xn, wn, bn, o)
    tx, tw, tb = map(torch.from_numpy, (xn, wn, bn))
    np.testing.assert_allclose(o, torch.nn.functional.linear(tx, tw, tb).numpy(), rtol=1e-3,
                               atol=1e-3)
    fns = {"tc": lambda: f(xn, wn, bn, o)}
    if "torch" in LIBS:
        fns["torch"] = lambda: torch.nn.functional.linear(tx, tw, tb)
    times = {k_: [] for k_ in fns}
    for _ in range(rounds):
        for k_, fn in fns.items():
            times[k_].append(_time(fn))
    return 2.0 * m * n * kdim, {k_: (statistics.median(v), min(v)) for k_, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--net", choices=["resnet18", "mobilenetv2"], default=None,
                    help="time every conv layer of the network and sum (count-weighted)")
    ap.add_argument("--only", default=None, help="substring filter on layer names")
    ap.add_argument("--libs", default="tc-pre,tc-wino,torch,ort",
                    help="comma list of tc-pre, tc-wino, torch, ort to time beside tc")
    ap.add_argument("--no-spin", action="store_true",
                    help="ONNX Runtime workers sleep when idle instead of spinning")
    ap.add_argument("--json", help="also write the figures to this JSON file (run_all.py)")
    args = ap.parse_args()
    records = Records("ops", "tc")
    global LIBS, ORT_SPIN
    LIBS = tuple(args.libs.split(","))
    ORT_SPIN = not args.no_spin
    try:
        import torch
    except ImportError:
        sys.exit("bench_ops needs torch: pip install torch==2.13.0")
    nt = args.threads
    tc.runtime.set_num_threads(nt)
    torch.set_num_threads(nt)
    print(f"threads {nt}, rounds {args.rounds}, libs tc,{args.libs}"
          f"{', ort without spinning' if args.no_spin else ''}; "
          f"cpu pressure before: {cpu_pressure()}")
    if args.net:
        layers = resnet18_convs() if args.net == "resnet18" else mobilenetv2_convs()
        total, total_min = {}, {}
        for layer, count in layers.items():
            flop, med, _ = bench_conv(layer, nt, args.rounds, check=False)
            med.setdefault("tc-pre", med["tc"])
            if "tc-wino" in LIBS:   # the sum is what the graph compiler runs per layer
                med.setdefault("tc-wino", med["tc-pre"])
            for k_, (t, tmin) in med.items():
                total[k_] = total.get(k_, 0.0) + count * t
                total_min[k_] = total_min.get(k_, 0.0) + count * tmin
            print(f"{count} x {layer}: " + "  ".join(f"{k_} {t * 1e3:.3f} ms"
                                                     for k_, (t, _) in med.items()), flush=True)
        for what, tot in (("medians", total), ("minima", total_min)):
            base = tot["tc"]
            print(f"{args.net} convs (sum of {what} x count): " +
                  "  ".join(f"{k_} {t * 1e3:.2f} ms ({t / base:.2f}x)" for k_, t in tot.items()))
        for k_, t in total.items():
            records.add(f"{args.net} convs (sum)", k_, nt, t * 1e3, total_min[k_] * 1e3)
    else:
        head = (f"{'layer':<24} {'lib':>7} {'median ms':>10} {'GFLOP/s':>8} {'vs tc':>6}"
                f" {'min ms':>8} {'GFLOP/s':>8} {'vs tc':>6}")
        print(head)
        rows = [(name, layer, None) for name, layer in LAYERS.items()] + \
            [(name, None, shape) for name, shape in DENSE.items()]
        for name, layer, shape in rows:
            if args.only and args.only not in name:
                continue
            if layer is not None:
                flop, med, build_s = bench_conv(layer, nt, args.rounds)
            else:
                (flop, med), build_s = bench_dense(shape, nt, args.rounds), None
            base, base_min = med["tc"]
            for k_, (t, tmin) in med.items():
                print(f"{name:<24} {k_:>7} {t * 1e3:>10.3f} {flop / t / 1e9:>8.1f} "
                      f"{t / base:>6.2f} {tmin * 1e3:>8.3f} {flop / tmin / 1e9:>8.1f} "
                      f"{tmin / base_min:>6.2f}")
                records.add(name, k_, nt, t * 1e3, tmin * 1e3)
            if build_s is not None:
                print(f"{'':<24} (tensorc build {build_s:.1f} s)", flush=True)
    print(f"cpu pressure after: {cpu_pressure()}")
    records.write(args.json)


if __name__ == "__main__":
    main()
