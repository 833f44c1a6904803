"""The ONNX importer on small hand-built models: one test per converter family, compared with
ONNX's reference evaluator (``onnx.reference``) through the graph interpreter, plus the error
contract (unsupported ops all at once, dynamic dims, truncated files, non-constant shape
operands, old opsets, unsupported dtypes) and, where ``tc.compile`` exists, a CNN and an MLP
compiled and compared with onnxruntime."""
import os
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as TP  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from frontend_importers import (DynamicShapeError, ImporterError, ModelParseError,  # noqa: E402
                                NonConstantInputError, OpsetError, UnsupportedDtypeError,
                                UnsupportedOpsError, from_onnx)
from tensorc.graph.interpret import run_graph  # noqa: E402

_NP2ONNX = {np.dtype(k): v for k, v in {
    "float32": TP.FLOAT, "float64": TP.DOUBLE, "float16": TP.FLOAT16, "int32": TP.INT32,
    "int64": TP.INT64, "int8": TP.INT8, "uint8": TP.UINT8, "bool": TP.BOOL}.items()}


def make_model(nodes, inputs, outputs, inits=None, opset=18, dynamic=None):
    """nodes; inputs: {name: array} (their dtype and shape); outputs: names (types left for
    inference); inits: {name: array}; dynamic: {input name: dims} overriding the declared
    shape (strings for symbolic dims)."""
    dynamic = dynamic or {}
    ins = [helper.make_tensor_value_info(k, _NP2ONNX[np.asarray(v).dtype],
                                         dynamic.get(k, list(np.shape(v))))
           for k, v in inputs.items()]
    outs = [helper.make_tensor_value_info(o, TP.UNDEFINED, None) if isinstance(o, str) else
            helper.make_tensor_value_info(o[0], o[1], None) for o in outputs]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    g = helper.make_graph(nodes, "test", ins, outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def reference(model, feeds):
    from onnx.reference import ReferenceEvaluator
    with np.errstate(all="ignore"):
        return ReferenceEvaluator(model).run(None, feeds)


def check(nodes, inputs, outputs, inits=None, opset=18, rtol=1e-5, atol=1e-6):
    """Import, run through the interpreter, compare with onnx.reference; returns the graph."""
    m = make_model(nodes, inputs, outputs, inits, opset)
    g = from_onnx(m)
    with np.errstate(all="ignore"):
        got = run_graph(g, [np.asarray(inputs[v.name]) for v in g.inputs])
    want = reference(m, {k: np.asarray(v) for k, v in inputs.items()})
    assert len(got) == len(want)
    for name, a, b in zip(outputs, got, want):
        b = np.asarray(b)
        assert a.shape == b.shape, f"{name}: shape {a.shape} != {b.shape}"
        assert a.dtype == b.dtype, f"{name}: dtype {a.dtype} != {b.dtype}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)
    return g


def N(op, ins, outs, name=None, **attrs):
    return helper.make_node(op, ins, outs, name=name or f"{op.lower()}_{outs[0]}", **attrs)


rng = np.random.default_rng(0)


def randn(*shape, dtype="float32"):
    return rng.standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------------------ converter families

def test_elementwise_and_activations():
    x, y = randn(2, 3, 4), randn(3, 4)
    nodes = [N("Add", ["x", "y"], ["a"]), N("Sub", ["a", "y"], ["b"]), N("Mul", ["b", "x"], ["c"]),
             N("Div", ["c", "two"], ["d"]), N("Relu", ["d"], ["r"]),
             N("LeakyRelu", ["d"], ["lr"], alpha=0.2), N("Sigmoid", ["d"], ["s"]),
             N("Tanh", ["d"], ["t"]), N("Gelu", ["d"], ["ge"], approximate="tanh"),
             N("HardSwish", ["d"], ["hs"]), N("Mish", ["d"], ["mi"]), N("Erf", ["d"], ["e"]),
             N("Abs", ["d"], ["ab"]), N("Sqrt", ["ab"], ["sq"]), N("Exp", ["d"], ["ex"]),
             N("Pow", ["ab", "three"], ["p"]), N("Softplus", ["d"], ["sp"]),
             N("Elu", ["d"], ["el"], alpha=0.5), N("Selu", ["d"], ["se"]),
             N("HardSigmoid", ["d"], ["hsg"]), N("Softsign", ["d"], ["ss"]),
             N("Max", ["x", "y", "d"], ["mx"]), N("Min", ["x", "y"], ["mn"]),
             N("Sum", ["x", "y", "d"], ["sm"]), N("Mean", ["x", "y"], ["me"]),
             N("Less", ["x", "y"], ["lt"]), N("Where", ["lt", "x", "y"], ["w"]),
             N("Not", ["lt"], ["nt"]), N("Xor", ["lt", "nt"], ["xo"]),
             N("Clip", ["x", "lo", "hi"], ["cl"]), N("Clip", ["x", "", "y"], ["cl2"]),
             N("Neg", ["x"], ["ng"]), N("Sign", ["x"], ["sg"]), N("Reciprocal", ["two"], ["rc"]),
             N("Sinh", ["x"], ["sh"]), N("Cosh", ["x"], ["ch"]), N("Asinh", ["x"], ["ash"]),
             N("Celu", ["x"], ["ce"], alpha=2.0), N("Shrink", ["x"], ["shr"], lambd=0.3, bias=0.1),
             N("ThresholdedRelu", ["x"], ["tr"], alpha=0.4), N("PRelu", ["x", "slope"], ["pr"])]
    check(nodes, {"x": x, "y": y},
          ["r", "lr", "s", "t", "ge", "hs", "mi", "e", "sq", "ex", "p", "sp", "el", "se", "hsg",
           "ss", "mx", "mn", "sm", "me", "w", "nt", "xo", "cl", "cl2", "ng", "sg", "rc", "sh",
           "ch", "ash", "ce", "shr", "tr", "pr"],
          inits={"two": np.float32(2.0), "three": np.array([3.0], np.float32),
                 "lo": np.float32(-0.5), "hi": np.float32(0.5), "slope": randn(4)},
          opset=20, rtol=1e-4, atol=1e-5)


def test_integer_div_and_mod_truncate_like_onnx():
    a = np.array([7, -7, 7, -7, 0, 5, -9, 9], np.int32)
    b = np.array([2, 2, -2, -2, 3, -5, 4, -4], np.int32)
    nodes = [N("Div", ["a", "b"], ["q"]), N("Mod", ["a", "b"], ["m"]),
             N("Mod", ["a", "b"], ["f"], fmod=1), N("Div", ["af", "bf"], ["qf"]),
             N("Mod", ["af", "bf"], ["ff"], fmod=1)]
    g = check(nodes, {"a": a, "b": b, "af": a.astype("float32"), "bf": b.astype("float32")},
              ["q", "m", "f", "qf", "ff"])
    q = run_graph(g, [a, b, a.astype("float32"), b.astype("float32")])[0]
    assert list(q) == [3, -3, -3, 3, 0, -1, -2, -2]  # truncation toward zero


def test_cast_and_castlike():
    x = np.array([[-2.7, -0.5, 0.0, 0.5, 3.9]], np.float32)
    nodes = [N("Cast", ["x"], ["i"], to=TP.INT32), N("Cast", ["x"], ["bo"], to=TP.BOOL),
             N("Cast", ["i"], ["d"], to=TP.DOUBLE), N("CastLike", ["x", "like"], ["h"]),
             N("Cast", ["x"], ["same"], to=TP.FLOAT)]
    check(nodes, {"x": x}, ["i", "bo", "d", "h", "same"],
          inits={"like": np.zeros(1, np.float16)}, rtol=1e-3)


def test_reductions_and_arg():
    x = randn(2, 3, 4)
    nodes = [N("ReduceSum", ["x", "ax1"], ["s"]),
             N("ReduceMean", ["x", "ax02"], ["m"], keepdims=0),
             N("ReduceMax", ["x"], ["mx"]), N("ReduceMin", ["x", "ax1"], ["mn"], keepdims=0),
             N("ReduceProd", ["x", "axm1"], ["p"]), N("ReduceL1", ["x", "ax1"], ["l1"]),
             N("ReduceL2", ["x", "ax02"], ["l2"]), N("ReduceSumSquare", ["x", "ax1"], ["ss"]),
             N("ReduceLogSumExp", ["x", "axm1"], ["lse"]), N("ArgMax", ["x"], ["am"], axis=1),
             N("ArgMin", ["x"], ["an"], axis=-1, keepdims=0, select_last_index=1),
             N("ReduceSum", ["x", "none"], ["noop"], noop_with_empty_axes=1),
             N("CumSum", ["x", "ax1s"], ["cs"], exclusive=1, reverse=1)]
    check(nodes, {"x": x},
          ["s", "m", "mx", "mn", "p", "l1", "l2", "ss", "lse", "am", "an", "noop", "cs"],
          inits={"ax1": np.array([1]), "ax02": np.array([0, 2]), "axm1": np.array([-1]),
                 "none": np.zeros(0, np.int64), "ax1s": np.array(1)}, rtol=1e-4, atol=1e-5)


def test_reductions_opset13_axes_attribute():
    x = randn(3, 5)
    nodes = [N("ReduceMean", ["x"], ["m"], axes=[1]), N("ReduceMax", ["x"], ["mx"], axes=[0],
                                                        keepdims=0)]
    check(nodes, {"x": x}, ["m", "mx"], opset=13)


def test_softmax_and_normalisations():
    x = randn(2, 4, 3, 3)
    c = 4
    nodes = [N("Softmax", ["x"], ["sm"], axis=1), N("LogSoftmax", ["x"], ["lsm"]),
             N("Hardmax", ["x"], ["hm"], axis=2),
             N("LayerNormalization", ["x", "g3", "b3"], ["ln", "mean", "inv"], axis=-2),
             N("BatchNormalization", ["x", "gc", "bc", "mu", "var"], ["bn"], epsilon=1e-3),
             N("InstanceNormalization", ["x", "gc", "bc"], ["in"]),
             N("GroupNormalization", ["x", "gc", "bc"], ["gn"], num_groups=2),
             N("LpNormalization", ["x"], ["lp"], axis=1, p=2),
             N("MeanVarianceNormalization", ["x"], ["mvn"])]
    check(nodes, {"x": x}, ["sm", "lsm", "hm", "ln", "mean", "inv", "bn", "in", "gn", "lp", "mvn"],
          inits={"g3": randn(3, 3), "b3": randn(3, 3), "gc": randn(c), "bc": randn(c),
                 "mu": randn(c), "var": np.abs(randn(c)) + 0.5},
          opset=21, rtol=1e-4, atol=1e-5)


def test_lp_normalization_l1_takes_absolute_values():
    # onnx.reference sums x, not |x|, for p=1; onnxruntime (and the definition) use |x|
    x = np.array([[1.0, -2.0, 3.0], [0.0, 0.0, 0.0]], np.float32)
    m = make_model([N("LpNormalization", ["x"], ["y"], p=1)], {"x": x}, ["y"])
    got = run_graph(from_onnx(m), [x])[0]
    np.testing.assert_allclose(got, [[1 / 6, -2 / 6, 3 / 6], [0, 0, 0]], rtol=1e-6)


def test_batchnorm_training_mode_outputs_running_stats():
    x = randn(3, 2, 4)
    nodes = [N("BatchNormalization", ["x", "g", "b", "mu", "var"], ["y", "rm", "rv"],
               training_mode=1, momentum=0.8)]
    check(nodes, {"x": x}, ["y", "rm", "rv"],
          inits={"g": randn(2), "b": randn(2), "mu": randn(2), "var": np.ones(2, np.float32)},
          rtol=1e-4, atol=1e-5)


def test_matmul_gemm_einsum():
    a, b = randn(2, 3, 4), randn(4, 5)
    nodes = [N("MatMul", ["a", "b"], ["mm"]), N("MatMul", ["v", "b"], ["mv"]),
             N("Gemm", ["a2", "b2", "c"], ["g1"], transA=1, transB=1, alpha=0.5, beta=2.0),
             N("Gemm", ["a2t", "b"], ["g2"]),
             N("Einsum", ["a", "b"], ["es"], equation="...ij,jk->...ik"),
             N("Einsum", ["a"], ["tr"], equation="bij->jb")]
    check(nodes, {"a": a, "b": b, "v": randn(4)}, ["mm", "mv", "g1", "g2", "es", "tr"],
          inits={"a2": randn(4, 3), "b2": randn(5, 4), "c": randn(5), "a2t": randn(3, 4)},
          rtol=1e-4, atol=1e-5)


def test_conv_family():
    x = randn(1, 4, 9, 9)
    nodes = [N("Conv", ["x", "w", "b"], ["c1"], pads=[1, 2, 0, 1], strides=[2, 1]),
             N("Conv", ["x", "wg"], ["c2"], group=2, dilations=[2, 2], auto_pad="SAME_UPPER"),
             N("Conv", ["x", "wd"], ["c3"], group=4, auto_pad="SAME_LOWER", strides=[2, 2]),
             N("Conv", ["x1", "w1"], ["c4"], pads=[1, 1], auto_pad="NOTSET"),
             N("ConvTranspose", ["x", "wt", "bt"], ["t1"], strides=[2, 2], pads=[1, 1, 0, 0],
               output_padding=[1, 0]),
             N("ConvTranspose", ["x", "wt"], ["t2"], strides=[2, 2], output_shape=[20, 19]),
             N("ConvTranspose", ["x1", "wt1"], ["t3"], strides=[3]),
             N("ConvTranspose", ["x", "wt"], ["t4"], strides=[2, 2], auto_pad="SAME_UPPER")]
    check(nodes, {"x": x, "x1": randn(2, 3, 7)}, ["c1", "c2", "c3", "c4", "t1", "t2", "t3", "t4"],
          inits={"w": randn(6, 4, 3, 3), "b": randn(6), "wg": randn(6, 2, 3, 3),
                 "wd": randn(8, 1, 3, 3), "w1": randn(5, 3, 3), "wt": randn(4, 3, 3, 3),
                 "bt": randn(3), "wt1": randn(3, 2, 4)}, rtol=1e-4, atol=1e-4)


def test_pooling_family():
    x = randn(1, 2, 9, 8)
    nodes = [N("MaxPool", ["x"], ["m1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             N("MaxPool", ["x"], ["m2"], kernel_shape=[2, 3], ceil_mode=1, strides=[2, 2],
               dilations=[2, 1]),
             N("AveragePool", ["x"], ["a1"], kernel_shape=[3, 3], auto_pad="SAME_UPPER",
               strides=[2, 2]),
             N("AveragePool", ["x"], ["a2"], kernel_shape=[3, 2], pads=[1, 1, 1, 1],
               count_include_pad=1),
             N("GlobalAveragePool", ["x"], ["ga"]), N("GlobalMaxPool", ["x"], ["gm"]),
             N("MaxPool", ["x3"], ["m3"], kernel_shape=[2, 2, 2], strides=[1, 2, 2]),
             N("AveragePool", ["x3"], ["a3"], kernel_shape=[3, 2, 2], pads=[1, 0, 1, 1, 0, 0]),
             N("LpPool", ["x"], ["lp"], kernel_shape=[2, 2], p=3)]
    check(nodes, {"x": x, "x3": randn(1, 2, 5, 6, 6)},
          ["m1", "m2", "a1", "a2", "ga", "gm", "m3", "a3", "lp"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode,ctm,extra", [
    ("nearest", "asymmetric", {"nearest_mode": "floor"}),
    ("nearest", "half_pixel", {}),
    ("linear", "half_pixel", {}),
    ("linear", "align_corners", {}),
    ("linear", "pytorch_half_pixel", {}),
    ("cubic", "half_pixel", {"cubic_coeff_a": -0.5}),
])
def test_resize_modes(mode, ctm, extra):
    x = randn(1, 2, 4, 5)
    nodes = [N("Resize", ["x", "", "scales"], ["up"], mode=mode,
               coordinate_transformation_mode=ctm, **extra),
             N("Resize", ["x", "", "", "sizes"], ["down"], mode=mode,
               coordinate_transformation_mode=ctm, **extra)]
    check(nodes, {"x": x}, ["up", "down"],
          inits={"scales": np.array([1, 1, 2.0, 1.5], np.float32),
                 "sizes": np.array([1, 2, 3, 2], np.int64)}, rtol=1e-4, atol=1e-5)


def test_data_movement():
    x = randn(2, 3, 4)
    nodes = [N("Pad", ["x", "pads", "pv"], ["pc"]),
             N("Pad", ["x", "pads2"], ["pr"], mode="reflect"),
             N("Pad", ["x", "pads2"], ["pe"], mode="edge"),
             N("Pad", ["x", "pads3"], ["pw"], mode="wrap"),
             N("Concat", ["x", "x"], ["cc"], axis=-1),
             N("Split", ["x", "split"], ["s0", "s1"], axis=2),
             N("Split", ["x"], ["t0", "t1"], axis=1, num_outputs=2),
             N("Slice", ["x", "st", "en", "ax", "sp"], ["sl"]),
             N("Gather", ["x", "gi"], ["ga"], axis=1),
             N("GatherElements", ["x", "ge"], ["gel"], axis=2),
             N("Transpose", ["x"], ["tp"], perm=[2, 0, 1]),
             N("Reshape", ["x", "shape"], ["rs"]), N("Flatten", ["x"], ["fl"], axis=2),
             N("Unsqueeze", ["x", "uax"], ["us"]), N("Squeeze", ["us", "uax"], ["sq"]),
             N("Expand", ["col", "eshape"], ["ex"]), N("Tile", ["x", "reps"], ["ti"]),
             N("TopK", ["x", "k"], ["tv", "tix"], axis=1, largest=0),
             N("Trilu", ["x", "tk"], ["tl"], upper=0),
             N("OneHot", ["oi", "depth", "ov"], ["oh"], axis=0),
             N("DepthToSpace", ["x4"], ["d2s"], blocksize=2, mode="CRD"),
             N("SpaceToDepth", ["x4"], ["s2d"], blocksize=2),
             N("Identity", ["x"], ["id"]), N("Dropout", ["x"], ["dr", "mask"])]
    check(nodes, {"x": x, "col": randn(3, 1), "oi": np.array([[0, -1], [2, 5]], np.int64),
                  "x4": randn(1, 8, 2, 2)},
          ["pc", "pr", "pe", "pw", "cc", "s0", "s1", "t0", "t1", "sl", "ga", "gel", "tp", "rs",
           "fl", "us", "sq", "ex", "ti", "tv", "tix", "tl", "oh", "d2s", "s2d", "id", "dr", "mask"],
          inits={"pads": np.array([0, 1, 2, 1, 0, 1]), "pv": np.float32(7.5),
                 "pads2": np.array([0, 2, 1, 0, 1, 3]), "pads3": np.array([1, 0, 2, 0, 4, 1]),
                 "split": np.array([1, 3]), "st": np.array([-1, 3]), "en": np.array([-10, 0]),
                 "ax": np.array([1, 2]), "sp": np.array([-1, -2]),
                 "gi": np.array([[2, -1], [0, 0]]),
                 "ge": rng.integers(-4, 4, (2, 3, 5)), "shape": np.array([0, -1, 2]),
                 "uax": np.array([0, 3]), "eshape": np.array([2, 1, 4]),
                 "reps": np.array([1, 2, 1]), "k": np.array([2]), "tk": np.array(1),
                 "depth": np.array(3), "ov": np.array([0.0, 2.0], np.float32)})


def test_negative_pads_crop():
    x = randn(3, 5)
    m = make_model([N("Pad", ["x", "pads"], ["y"]), N("Pad", ["x", "pads"], ["w"], mode="wrap")],
                   {"x": x}, ["y", "w"], inits={"pads": np.array([1, -1, -1, 2])})
    y, w = run_graph(from_onnx(m), [x])
    np.testing.assert_array_equal(y, np.pad(x[:2, 1:], [(1, 0), (0, 2)]))
    np.testing.assert_array_equal(w, np.pad(x[:2, 1:], [(1, 0), (0, 2)], mode="wrap"))


def test_shape_subgraph_folds_to_constants():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape (a flatten written the exporter way)
    leaves one reshape: every shape computation is folded at import."""
    x = randn(2, 3, 4)
    nodes = [N("Shape", ["x"], ["s"]), N("Gather", ["s", "zero"], ["b"], axis=0),
             N("Unsqueeze", ["b", "zero1"], ["bu"]), N("Concat", ["bu", "m1"], ["ns"], axis=0),
             N("Reshape", ["x", "ns"], ["y"]), N("Size", ["x"], ["n"]),
             N("ConstantOfShape", ["s"], ["ones"], value=numpy_helper.from_array(
                 np.array([1.0], np.float32))),
             N("Range", ["r0", "r1", "r2"], ["rg"]), N("Mul", ["ones", "rg"], ["z"]),
             N("Constant", [], ["c"], value_floats=[1.0, 2.0, 3.0, 4.0]),
             N("Add", ["z", "c"], ["out"])]
    g = check(nodes, {"x": x}, ["y", "out"],
              inits={"zero": np.array(0), "zero1": np.array([0]), "m1": np.array([-1]),
                     "r0": np.float32(0), "r1": np.float32(4), "r2": np.float32(1)})
    assert [n.op for n in g.nodes] == ["reshape"]
    assert g.nodes[0].attrs["newshape"] == [2, -1]
    assert g.outputs[1].is_const   # x's values never reach "out": all of it folded


def test_node_names_and_value_names_follow_onnx():
    x = randn(1, 2, 5, 5)
    nodes = [N("Conv", ["x", "w", "b"], ["c"], name="conv_a", pads=[1, 1, 1, 1]),
             N("Relu", ["c"], ["y"], name="relu_b")]
    g = check(nodes, {"x": x}, ["y"], inits={"w": randn(3, 2, 3, 3), "b": randn(3)},
              rtol=1e-4, atol=1e-5)
    names = [n.name for n in g.nodes]
    assert "relu_b" in names and "conv_a" in names
    assert all(nm in ("relu_b", "conv_a") or nm.startswith("conv_a/") for nm in names)
    assert g.outputs[0].name == "y"
    assert g.inputs[0].name == "x"


def test_graph_output_that_is_an_input_gets_its_own_value():
    x = randn(2, 2)
    m = make_model([N("Identity", ["x"], ["y"]), N("Neg", ["x"], ["z"]),
                    N("Identity", ["z"], ["z2"])], {"x": x}, ["y", "z", "z2"])
    g = from_onnx(m)
    ids = [id(v) for v in g.outputs]
    assert len(set(ids)) == 3 and id(g.inputs[0]) not in ids
    y, z, z2 = run_graph(g, [x])
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(z2, -x)


def test_opset13_forms_of_split_squeeze_and_reduce():
    x = randn(4, 1, 6)
    nodes = [N("Split", ["x", "sp"], ["a", "b"], axis=2), N("Squeeze", ["x", "ax"], ["s"]),
             N("ReduceSum", ["x", "ax"], ["r"], keepdims=0)]
    check(nodes, {"x": x}, ["a", "b", "s", "r"], inits={"sp": np.array([2, 4]),
                                                         "ax": np.array([1])}, opset=13)


def test_model_local_functions_are_inlined():
    fn = helper.make_function("local", "Swish2", ["a"], ["b"],
                              [N("Sigmoid", ["a"], ["s"]), N("Mul", ["a", "s"], ["b"])],
                              opset_imports=[helper.make_opsetid("", 18)])
    x = randn(3, 4)
    m = make_model([helper.make_node("Swish2", ["x"], ["y"], name="sw", domain="local")],
                   {"x": x}, ["y"])
    m.opset_import.append(helper.make_opsetid("local", 1))
    m.functions.append(fn)
    got = run_graph(from_onnx(m), [x])[0]
    np.testing.assert_allclose(got, x / (1 + np.exp(-x)), rtol=1e-5, atol=1e-6)


def test_function_ops_expand_into_their_onnx_body():
    """Attention (opset 23) has no converter: it is expanded into its ONNX function body,
    whose nodes are converted one by one and named after the Attention node."""
    q, k, v = randn(1, 2, 3, 4), randn(1, 2, 5, 4), randn(1, 2, 5, 4)
    nodes = [N("Attention", ["q", "k", "v"], ["y"], name="attn", is_causal=1)]
    g = check(nodes, {"q": q, "k": k, "v": v}, ["y"], opset=23, rtol=1e-4, atol=1e-5)
    assert g.nodes and all(n.name.startswith("attn/") for n in g.nodes)
    assert "matmul" in g.op_counts() and "softmax" in g.op_counts()


def test_model_from_path_and_bytes(tmp_path):
    x = randn(2, 3)
    m = make_model([N("Relu", ["x"], ["y"])], {"x": x}, ["y"])
    p = tmp_path / "relu.onnx"
    onnx.save(m, str(p))
    for src in (str(p), p, m.SerializeToString()):
        g = from_onnx(src)
        np.testing.assert_array_equal(run_graph(g, [x])[0], np.maximum(x, 0))
    assert from_onnx(str(p), name="mine").name == "mine"


# ------------------------------------------------------------------------------ errors

def test_unsupported_ops_are_listed_all_at_once():
    x = randn(4)
    nodes = [N("Relu", ["x"], ["a"]), N("NonZero", ["a"], ["nz1"], name="nz_first"),
             N("Unique", ["a"], ["u"], name="uniq"), N("NonZero", ["a"], ["nz2"], name="nz_second"),
             helper.make_node("FusedGemm", ["a"], ["f"], name="ms", domain="com.microsoft")]
    m = make_model(nodes, {"x": x}, ["nz1", "u", "nz2", "f"])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(UnsupportedOpsError) as ei:
        from_onnx(m)
    e = ei.value
    assert e.ops == {"NonZero": ["nz_first", "nz_second"], "Unique": ["uniq"],
                     "com.microsoft::FusedGemm": ["ms"]}
    msg = str(e)
    assert "3 unsupported operator types (4 nodes)" in msg
    assert "NonZero x2: 'nz_first', 'nz_second'" in msg
    assert "Unique x1: 'uniq'" in msg and "com.microsoft::FusedGemm x1" in msg


def test_dynamic_dims_need_shape_overrides():
    x = randn(2, 3, 8)
    m = make_model([N("Add", ["x", "y"], ["z"])], {"x": x, "y": randn(8)}, ["z"],
                   dynamic={"x": ["batch", 3, "seq"], "y": [None]})
    with pytest.raises(DynamicShapeError) as ei:
        from_onnx(m)
    msg = str(ei.value)
    assert "'x': [batch, 3, seq]" in msg and "'y': [?]" in msg
    assert "shape_overrides" in msg
    assert set(ei.value.inputs) == {"x", "y"}
    g = from_onnx(m, shape_overrides={"x": (2, 3, 8), "y": [8]})
    assert g.inputs[0].shape == (2, 3, 8)
    with pytest.raises(ValueError, match="not graph inputs"):
        from_onnx(m, shape_overrides={"x": (2, 3, 8), "y": [8], "w": (1,)})
    with pytest.raises(ValueError, match="fixes it to 3"):
        from_onnx(m, shape_overrides={"x": (2, 4, 8), "y": [8]})


def test_truncated_and_corrupt_files(tmp_path):
    x = randn(4, 4)
    m = make_model([N("MatMul", ["x", "w"], ["y"])], {"x": x}, ["y"],
                   inits={"w": randn(4, 4)})
    data = m.SerializeToString()
    for cut in (len(data) // 2, 7, len(data) - 3):
        p = tmp_path / f"cut{cut}.onnx"
        p.write_bytes(data[:cut])
        with pytest.raises(ModelParseError, match=r"cannot parse ONNX model '.*cut\d+\.onnx'"):
            from_onnx(str(p))
    p = tmp_path / "garbage.onnx"
    p.write_bytes(b"\xff\xfe not a model at all \x00\x01")
    with pytest.raises(ValueError, match="cannot parse ONNX model"):
        from_onnx(str(p))
    with pytest.raises(FileNotFoundError):
        from_onnx(str(tmp_path / "missing.onnx"))


def test_non_constant_shape_operand_names_the_node():
    x = randn(2, 6)
    m = make_model([N("Reshape", ["x", "shape"], ["y"], name="the_reshape")],
                   {"x": x, "shape": np.array([3, 4])}, ["y"])
    with pytest.raises(NonConstantInputError) as ei:
        from_onnx(m)
    assert "'the_reshape' (Reshape)" in str(ei.value) and "'shape'" in str(ei.value)
    assert ei.value.node == "the_reshape" and ei.value.value == "shape"


def test_old_opsets():
    x = randn(2, 3)
    # Cos is still version 7 at opset 13: an opset-9 model means the same, so it imports
    m = make_model([N("Cos", ["x"], ["y"])], {"x": x}, ["y"], opset=9)
    np.testing.assert_allclose(run_graph(from_onnx(m), [x])[0], np.cos(x), rtol=1e-6)
    # Relu has a new version at 13: an opset-6 model is refused, naming the operator
    relu = make_model([N("Relu", ["x"], ["y"])], {"x": x}, ["y"], opset=6)
    with pytest.raises(OpsetError, match="Relu"):
        from_onnx(relu)
    soft = make_model([N("Softmax", ["x"], ["y"])], {"x": x}, ["y"], opset=11)
    with pytest.raises(OpsetError, match="version_converter"):
        from_onnx(soft)


def test_unsupported_dtype():
    x = helper.make_tensor_value_info("x", TP.BFLOAT16, [2])
    y = helper.make_tensor_value_info("y", TP.BFLOAT16, [2])
    m = helper.make_model(helper.make_graph([N("Relu", ["x"], ["y"])], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(UnsupportedDtypeError, match="BFLOAT16"):
        from_onnx(m)


def test_errors_are_importer_errors():
    assert issubclass(UnsupportedOpsError, ImporterError)
    assert issubclass(ModelParseError, ValueError)
    assert issubclass(DynamicShapeError, ValueError)


def test_missing_onnx_names_the_extra(monkeypatch):
    import frontend_importers.onnx_importer as oi
    monkeypatch.setitem(sys.modules, "onnx", None)   # "import onnx" raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'tensorc\[onnx\]'"):
        oi.load_model("whatever.onnx")


def test_package_imports_without_onnx_and_from_torchscript_is_lazy():
    import subprocess
    code = ("import sys; sys.modules['onnx'] = None; import frontend_importers as f; "
            "print(callable(f.from_onnx))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


# ------------------------------------------------------------------------------ compiled vs ORT

def _ort(model, feeds):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _compile_or_skip():
    import tensorc as tc
    try:
        import tensorc.graph.compiler  # noqa: F401
    except ImportError:
        pytest.skip("tc.compile is not available yet")
    return tc.compile


def _cnn():
    w = {"w1": randn(8, 3, 3, 3) * 0.3, "b1": randn(8), "w2": randn(16, 8, 3, 3) * 0.2,
         "b2": randn(16), "g": np.abs(randn(16)) + 0.5, "be": randn(16), "mu": randn(16) * 0.1,
         "var": np.abs(randn(16)) + 0.5, "wf": randn(10, 16) * 0.2, "bf": randn(10)}
    nodes = [N("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             N("Relu", ["c1"], ["r1"]),
             N("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             N("Conv", ["p1", "w2", "b2"], ["c2"], strides=[2, 2], auto_pad="SAME_UPPER"),
             N("BatchNormalization", ["c2", "g", "be", "mu", "var"], ["bn"]),
             N("Relu", ["bn"], ["r2"]), N("GlobalAveragePool", ["r2"], ["gp"]),
             N("Flatten", ["gp"], ["fl"]), N("Gemm", ["fl", "wf", "bf"], ["y"], transB=1),
             N("Softmax", ["y"], ["prob"])]
    return make_model(nodes, {"x": randn(2, 3, 16, 16)}, [("prob", TP.FLOAT)], inits=w, opset=17,
                      dynamic={"x": ["N", 3, 16, 16]})


def _mlp():
    w = {"w1": randn(32, 64) * 0.2, "b1": randn(64), "w2": randn(64, 10) * 0.2,
         "b2": randn(10), "sh": np.array([0, -1])}
    nodes = [N("Reshape", ["x", "sh"], ["flat"]), N("MatMul", ["flat", "w1"], ["h"]),
             N("Add", ["h", "b1"], ["hb"]), N("Gelu", ["hb"], ["a"]),
             N("MatMul", ["a", "w2"], ["o"]), N("Add", ["o", "b2"], ["y"])]
    return make_model(nodes, {"x": randn(4, 4, 8)}, [("y", TP.FLOAT)], inits=w, opset=20,
                      dynamic={"x": ["batch", 4, 8]})


@pytest.mark.parametrize("build,shape", [(_cnn, (2, 3, 16, 16)), (_mlp, (4, 4, 8))],
                         ids=["cnn", "mlp"])
def test_compiled_matches_onnxruntime(build, shape):
    compile_ = _compile_or_skip()
    m = build()
    x = randn(*shape)
    want = _ort(m, {"x": x})[0]
    g = from_onnx(m, shape_overrides={"x": shape})
    np.testing.assert_allclose(run_graph(g, [x])[0], want, rtol=1e-4, atol=1e-5)
    got = compile_(g)(x)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
