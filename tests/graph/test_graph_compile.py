"""Whole graphs compiled to one module, checked against the interpreter and numpy."""

import numpy as np
import pytest

import tensorc as tc
from graph_helpers import (bn_params, bn_ref, conv2d_ref, mlp, mlp_ref, residual_block,
                           residual_ref, rnd)
from tensorc.graph.builder import GraphBuilder
from tensorc.graph.interpret import run_graph


@pytest.fixture(scope="module")
def mlp_model():
    rng = np.random.default_rng(0)
    g, weights = mlp(rng)
    return g, weights, tc.compile(g)


@pytest.fixture(scope="module")
def resblock():
    g, params = residual_block(np.random.default_rng(1), c=16, hw=8)
    return g, params, tc.compile(g)


def test_mlp_matches_interpreter_and_numpy(mlp_model):
    g, weights, mod = mlp_model
    x = rnd(np.random.default_rng(10), 4, 32)
    (y,) = mod(x)
    np.testing.assert_allclose(y, run_graph(g, [x])[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y, mlp_ref(x, *weights), rtol=1e-5, atol=1e-6)
    assert mod.input_names == ("x",) and mod.outputs[0].shape == (4, 10)
    assert len(mod.kernel_names) == 3  # dense+relu, dense, softmax


def test_residual_block(resblock):
    g, params, mod = resblock
    x = rnd(np.random.default_rng(11), 1, 16, 8, 8)
    (y,) = mod(x)
    np.testing.assert_allclose(y, run_graph(g, [x])[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(y, residual_ref(x, *params), rtol=1e-4, atol=1e-4)
    info = mod.compile_info
    assert [grp.ops for grp in info.groups] == [["conv2d", "add", "relu"],
                                                ["conv2d", "add", "add", "relu"]]
    assert len(info.plan.calls) == 2
    assert all(name.isidentifier() and name.startswith("resblock_") for name in
               mod.kernel_names)


def test_conv_bn_relu_is_one_kernel_with_batch_norm_folded():
    rng = np.random.default_rng(2)
    gb = GraphBuilder("cbr")
    x = gb.input("x", (1, 3, 9, 9))
    w = rnd(rng, 8, 3, 3, 3, lo=0.1, hi=0.3)
    p = bn_params(rng, 8)
    y = gb.op("conv2d", x, gb.const("w", w), padding=1, strides=2)
    y = gb.op("batch_norm", y, *[gb.const(f"bn{k}", a) for k, a in enumerate(p)])
    gb.output(gb.op("relu", y))
    g = gb.graph()
    mod = tc.compile(g)
    assert len(mod.compile_info.plan.calls) == 1
    assert "batch_norm" not in mod.compile_info.graph.op_counts()
    xa = rnd(rng, 1, 3, 9, 9)
    (out,) = mod(xa)
    np.testing.assert_allclose(out, run_graph(g, [xa])[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out, np.maximum(bn_ref(conv2d_ref(xa, w, 1, 2), *p), 0),
                               rtol=1e-4, atol=1e-5)


def test_save_load_round_trip(mlp_model, tmp_path):
    g, weights, mod = mlp_model
    path = mod.save(tmp_path / "mlp.tcm")
    loaded = tc.load(path)
    x = rnd(np.random.default_rng(12), 4, 32)
    np.testing.assert_array_equal(loaded(x)[0], mod(x)[0])
    assert loaded.kernel_names == mod.kernel_names
    assert loaded.signature() == mod.signature()


def test_dump_prints_passes_and_groups(capsys):
    g, *_ = residual_block(np.random.default_rng(3), c=4, hw=4, name="tiny")
    tc.compile(g, dump=True)
    err = capsys.readouterr().err
    for text in ("before fold_constants", "after fold_batch_norm", "after choose_conv_layout",
                 "fused into 2 groups", "storage:", "tiny_0_conv2d_add_relu"):
        assert text in err


def test_tuning_db_must_be_a_database():
    gb = GraphBuilder("tdb")
    x = gb.input("x", (8,))
    gb.output(gb.op("exp", x))
    with pytest.raises(TypeError):
        tc.compile(gb.graph(), tuning_db=object())


def test_identical_groups_share_one_kernel_and_outputs_of_every_kind():
    rng = np.random.default_rng(5)
    gb = GraphBuilder("share")
    x = gb.input("x", (1, 8, 6, 6))
    h = x
    for k in range(3):  # three conv+bias+relu groups of the same shapes, different weights
        h = gb.op("conv2d", h, gb.const(f"w{k}", rnd(rng, 8, 8, 3, 3, lo=0.05, hi=0.15)),
                  padding=1)
        h = gb.op("relu", gb.op("add", h, gb.const(f"b{k}", rnd(rng, 8, 1, 1))))
    flat = gb.op("reshape", h, newshape=[1, 288])              # written in place by the conv
    c = gb.op("transpose", gb.const("c", rnd(rng, 2, 3)))      # folds to a constant
    parts = gb.op("split", gb.op("sigmoid", flat), sizes=[100, 188], axis=1)
    gb.output(flat, x, c, parts[1], flat)
    g = gb.graph()
    mod = tc.compile(g)
    info = mod.compile_info
    assert len(info.kernels) == 3  # conv (x3 calls), sigmoid, split
    assert len(info.plan.calls) == 5
    assert info.plan.output_sources[1].kind == "input"
    assert info.plan.output_sources[2].kind == "const"
    assert info.plan.output_sources[4].kind == "output"
    xa = rnd(rng, 1, 8, 6, 6)
    got = mod(xa)
    want = run_graph(g, [xa])
    assert [o.name for o in mod.outputs] == ["reshape_9", "x", "transpose_10", "split_12.1",
                                             "reshape_9_1"]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_memory_is_reused_in_the_compiled_module():
    rng = np.random.default_rng(6)
    gb = GraphBuilder("chain")
    h = gb.input("x", (64,))
    for k in range(6):
        h = gb.op("sum", gb.op("reshape", gb.op("exp", h), newshape=[8, 8]), axis=1)
        h = gb.op("tile", gb.op("multiply", h, gb.const(f"s{k}", np.float32(0.01))), reps=[8])
    gb.output(h)
    g = gb.graph()
    mod = tc.compile(g)
    st = mod.compile_info.storage
    assert st.planned_bytes < sum(st.sizes.values()) and st.overlaps() == []
    xa = rnd(rng, 64, lo=0.1, hi=0.5)
    np.testing.assert_allclose(mod(xa)[0], run_graph(g, [xa])[0], rtol=1e-5)


def test_compile_errors_name_the_node():
    from tensorc.graph import Graph, Node, Value
    x = Value("x", (2, 3), "float32")
    y = Value("y", (2, 3), "float32")
    with pytest.raises(ValueError, match=r"node 'n1' \(nope\).*unknown operator"):
        tc.compile(Graph([x], [Node("nope", [x], [y], {}, "n1")], [y]))
    with pytest.raises(TypeError, match="expected a tensorc.graph.Graph"):
        tc.compile("model.onnx")


def test_prologues_and_epilogue_side_inputs_compile_correctly():
    rng = np.random.default_rng(7)
    gb = GraphBuilder("pro")
    x = gb.input("x", (1, 4, 5, 5))
    r = gb.input("r", (6, 8))
    p = gb.op("pad", x, pad_width=[(0, 0), (0, 0), (1, 1), (1, 1)])
    y = gb.op("relu", gb.op("conv2d", p, gb.const("w", rnd(rng, 8, 4, 3, 3, lo=0.1, hi=0.3))))
    f = gb.op("reshape", gb.op("transpose", y, perm=[0, 2, 3, 1]), newshape=[25, 8])
    d = gb.op("dense", f, gb.const("w2", rnd(rng, 6, 8, lo=0.1, hi=0.3)))       # (25, 6)
    side = gb.op("transpose", gb.op("slice", r, starts=[0, 0], ends=[6, 1]))     # (1, 6)
    d = gb.op("tanh", gb.op("add", d, side))
    s = gb.op("softmax", gb.op("exp", gb.op("multiply", r, gb.const("k", np.float32(0.1)))))
    m = gb.op("sum", gb.op("transpose", s), axis=1)
    gb.output(d, s, m)
    g = gb.graph()
    mod = tc.compile(g)
    groups = [grp.ops for grp in mod.compile_info.groups]
    assert groups == [["pad", "conv2d", "relu"],
                      ["transpose", "reshape", "dense", "slice", "transpose", "add", "tanh"],
                      ["multiply", "exp", "softmax"],
                      ["transpose", "sum"]], groups
    xa, ra = rnd(rng, 1, 4, 5, 5), rnd(rng, 6, 8)
    for a, b in zip(mod(xa, ra), run_graph(g, [xa, ra])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_small_cnn_with_pooling():
    rng = np.random.default_rng(8)
    gb = GraphBuilder("cnn")
    x = gb.input("x", (2, 3, 12, 12))
    h = gb.op("conv2d", x, gb.const("w", rnd(rng, 8, 3, 3, 3, lo=0.1, hi=0.3)), padding=1)
    h = gb.op("relu", gb.op("add", h, gb.const("b", rnd(rng, 8, 1, 1))))
    h = gb.op("max_pool2d", h, kernel=2, strides=2)
    h = gb.op("depthwise_conv2d", h, gb.const("dw", rnd(rng, 8, 1, 3, 3)), padding=1)
    h = gb.op("global_avg_pool2d", gb.op("sigmoid", h))
    y = gb.op("dense", gb.op("flatten", h), gb.const("fc", rnd(rng, 5, 8)))
    gb.output(y)
    g = gb.graph()
    mod = tc.compile(g)
    xa = rnd(rng, 2, 3, 12, 12)
    np.testing.assert_allclose(mod(xa)[0], run_graph(g, [xa])[0], rtol=1e-4, atol=1e-5)


def test_zero_dim_constant_output_keeps_its_shape():
    import numpy as np
    import tensorc as tc
    from tensorc.graph import GraphBuilder, run_graph
    gb = GraphBuilder("r")
    x = gb.input("x", (3,))
    c = gb.const("c", np.array(5, dtype=np.int64))
    gb.output(gb.op("relu", x), gb.op("reshape", c, newshape=[]))
    g = gb.graph()
    xv = np.ones(3, "float32")
    assert run_graph(g, [xv])[1].shape == ()
    assert tc.compile(g)(xv)[1].shape == ()
