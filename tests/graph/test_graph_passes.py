"""Graph passes: constant folding, dead code, batch-norm folding, simplification, conv layout,
Winograd convolutions."""
import numpy as np
import pytest

from graph_helpers import bn_params, bn_ref, conv2d_ref, residual_block, rnd
from tensorc.graph.builder import GraphBuilder
from tensorc.graph.interpret import run_graph
import tensorc as tc
from tensorc.graph.passes import (choose_conv_layout, choose_winograd, eliminate_dead_code,
                                  fold_batch_norm, fold_constants, run_passes, simplify)


def _same(g1, g2, *inputs, rtol=1e-5, atol=1e-5):
    for a, b in zip(run_graph(g1, list(inputs)), run_graph(g2, list(inputs))):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def test_shape_gather_concat_reshape_chain_folds_to_one_reshape():
    rng = np.random.default_rng(0)
    gb = GraphBuilder("chain")
    x = gb.input("x", (2, 3, 4, 5))
    t = gb.op("transpose", x, perm=[0, 2, 1, 3])
    shape = gb.op("shape", t)
    head = gb.op("gather", shape, np.array([0, 1], "int64"))
    target = gb.op("concat", head, np.array([-1], "int64"), axis=0)
    y = gb.op("reshape", t, target)
    # constants only: a transposed, reshaped, concatenated weight folds away entirely
    c = gb.const("c", rnd(rng, 3, 4))
    ct = gb.op("reshape", gb.op("transpose", c), gb.const("s", np.array([12, 1], "int64")))
    cc = gb.op("concat", ct, ct, axis=1)           # (12, 2)
    cb = gb.op("reshape", cc, newshape=[1, 4, 6])
    gb.output(y, cb)
    g = gb.graph()
    assert y.shape == (2, 4, 15)
    g2 = fold_constants(g)
    assert g2.op_counts() == {"transpose": 1, "reshape": 1}
    reshape = [n for n in g2.nodes if n.op == "reshape"][0]
    assert len(reshape.inputs) == 1 and reshape.attrs["newshape"] == [2, 4, -1]
    assert g2.outputs[1].is_const and g2.outputs[1].shape == (1, 4, 6)
    x_ = rnd(rng, 2, 3, 4, 5)
    _same(g, g2, x_)
    ref = np.concatenate([c.data.T.reshape(12, 1)] * 2, axis=1).reshape(1, 4, 6)
    np.testing.assert_array_equal(g2.outputs[1].data, ref)


def test_dead_branch_is_removed():
    gb = GraphBuilder("dead")
    x = gb.input("x", (4, 4))
    y = gb.op("relu", x)
    gb.op("exp", gb.op("transpose", y))  # nobody reads it
    gb.output(gb.op("sigmoid", y))
    g = gb.graph()
    g2 = eliminate_dead_code(g)
    assert g.op_counts() == {"relu": 1, "exp": 1, "transpose": 1, "sigmoid": 1}
    assert g2.op_counts() == {"relu": 1, "sigmoid": 1}
    _same(g, g2, rnd(np.random.default_rng(1), 4, 4))


def _conv_bn(rng, with_bias=False):
    gb = GraphBuilder("cbr")
    x = gb.input("x", (1, 4, 7, 7))
    w = rnd(rng, 8, 4, 3, 3, lo=0.1, hi=0.3)
    y = gb.op("conv2d", x, gb.const("w", w), padding=1)
    b = rnd(rng, 8, 1, 1)
    if with_bias:
        y = gb.op("add", y, gb.const("b", b))
    p = bn_params(rng, 8)
    y = gb.op("batch_norm", y, *[gb.const(f"bn{k}", a) for k, a in enumerate(p)])
    gb.output(gb.op("relu", y))
    return gb.graph(), w, b, p


@pytest.mark.parametrize("with_bias", [False, True])
def test_conv_bn_relu_folds_batch_norm(with_bias):
    rng = np.random.default_rng(2)
    g, w, b, p = _conv_bn(rng, with_bias)
    g2 = fold_batch_norm(g)
    assert "batch_norm" not in g2.op_counts()
    assert g2.op_counts() == {"conv2d": 1, "add": 1, "relu": 1}
    assert "batch_norm" in g.op_counts()  # the input graph is unchanged
    x = rnd(rng, 1, 4, 7, 7)
    _same(g, g2, x)
    ref = conv2d_ref(x, w, 1) + (b if with_bias else 0)
    ref = np.maximum(bn_ref(ref, *p), 0)
    np.testing.assert_allclose(run_graph(g2, [x])[0], ref, rtol=1e-4, atol=1e-5)


def test_dense_gemm_matmul_fold_batch_norm():
    rng = np.random.default_rng(3)
    gb = GraphBuilder("fc")
    x = gb.input("x", (3, 6))
    p1, p2, p3 = bn_params(rng, 5), bn_params(rng, 5), bn_params(rng, 5)
    d = gb.op("dense", x, gb.const("w", rnd(rng, 5, 6)), gb.const("b", rnd(rng, 5)))
    d = gb.op("batch_norm", d, *[gb.const(f"p1_{k}", a) for k, a in enumerate(p1)], axis=-1)
    m = gb.op("gemm", x, gb.const("B", rnd(rng, 5, 6)), gb.const("C", rnd(rng, 1, 5)),
              alpha=0.5, beta=2.0, trans_b=True)
    m = gb.op("batch_norm", m, *[gb.const(f"p2_{k}", a) for k, a in enumerate(p2)])
    mm = gb.op("matmul", x, gb.const("B2", rnd(rng, 6, 5)))
    mm = gb.op("batch_norm", mm, *[gb.const(f"p3_{k}", a) for k, a in enumerate(p3)],
               axis=1)
    gb.output(d, m, mm)
    g = gb.graph()
    g2 = fold_batch_norm(g)
    assert "batch_norm" not in g2.op_counts()
    _same(g, g2, rnd(rng, 3, 6), rtol=1e-4)


def test_batch_norm_stays_when_the_conv_output_has_other_readers():
    rng = np.random.default_rng(4)
    gb = GraphBuilder("shared")
    x = gb.input("x", (1, 2, 5, 5))
    c = gb.op("conv2d", x, gb.const("w", rnd(rng, 3, 2, 3, 3)))
    y = gb.op("batch_norm", c, *[gb.const(f"b{k}", a) for k, a in enumerate(bn_params(rng, 3))])
    gb.output(gb.op("add", y, c))
    g2 = fold_batch_norm(gb.graph())
    assert g2.op_counts()["batch_norm"] == 1


def test_simplify_removes_identities_and_collapses_chains():
    rng = np.random.default_rng(5)
    gb = GraphBuilder("simp")
    x = gb.input("x", (2, 3, 4))
    a = gb.op("reshape", x, newshape=[2, 3, 4])
    a = gb.op("transpose", a, perm=[0, 1, 2])
    a = gb.op("cast", a, dtype="float32")
    a = gb.op("flatten", a, axis=1)                 # (2, 12)
    a = gb.op("unsqueeze", a, axis=[0])             # (1, 2, 12)
    a = gb.op("squeeze", a, axis=[0])               # (2, 12)
    t = gb.op("transpose", gb.op("transpose", a, perm=[1, 0]), perm=[1, 0])
    y = gb.op("pad", t, pad_width=[(0, 0), (0, 0)])
    gb.output(gb.op("exp", y))
    g = gb.graph()
    g2 = eliminate_dead_code(simplify(g))
    assert g2.op_counts() == {"reshape": 1, "exp": 1}, g2
    _same(g, g2, rnd(rng, 2, 3, 4))


def test_identity_between_graph_input_and_output_stays():
    gb = GraphBuilder("io")
    x = gb.input("x", (3,))
    gb.output(gb.op("reshape", x, newshape=[3]))
    g2 = simplify(gb.graph())
    assert g2.op_counts() == {"reshape": 1}


def test_conv_layout_packs_constant_weights():
    rng = np.random.default_rng(6)
    gb = GraphBuilder("layout")
    x = gb.input("x", (1, 16, 6, 6))
    y = gb.op("conv2d", x, gb.const("w", rnd(rng, 16, 16, 3, 3, lo=0.05, hi=0.1)), padding=1)
    y = gb.op("conv2d", y, gb.const("w1x1", rnd(rng, 16, 16, 1, 1)))         # 1x1: stays
    y = gb.op("conv2d", y, gb.const("dw", rnd(rng, 16, 1, 3, 3)), groups=16)  # depthwise
    y = gb.op("conv2d", y, gb.const("odd", rnd(rng, 5, 16, 3, 3)))            # 5 channels
    gb.output(y)
    g = gb.graph()
    g2 = choose_conv_layout(g)
    layouts = [n.attrs.get("weight_layout", "OIHW") for n in g2.nodes]
    assert layouts == ["packed", "OIHW", "OIHW", "OIHW"]
    assert g2.nodes[0].inputs[1].shape == (1, 1, 3, 3, 16, 16)
    _same(g, g2, rnd(rng, 1, 16, 6, 6), rtol=1e-4)


def test_winograd_for_stride_1_3x3_convs_on_large_enough_planes(monkeypatch):
    rng = np.random.default_rng(7)
    gb = GraphBuilder("wino")
    x = gb.input("x", (1, 32, 13, 14))
    w = rnd(rng, 32, 32, 3, 3, lo=0.02, hi=0.06)
    y = gb.op("conv2d", x, gb.const("w", w), padding=1)                         # 4 x 4 tiles
    y = gb.op("conv2d", y, gb.const("s2", rnd(rng, 32, 32, 3, 3, lo=0.02, hi=0.06)), padding=1,
              strides=2)                                                       # stride 2
    y = gb.op("conv2d", y, gb.const("small", rnd(rng, 32, 32, 3, 3, lo=0.02, hi=0.06)),
              padding=1)                                                       # 7x7: 4 tiles
    gb.output(y)
    gb2 = GraphBuilder("wino16")
    x16 = gb2.input("x", (1, 16, 16, 16))
    gb2.output(gb2.op("conv2d", x16, gb2.const("w", rnd(rng, 16, 16, 3, 3)), padding=1))
    g = gb.graph()
    g2 = choose_winograd(g)
    layouts = [n.attrs.get("weight_layout", "OIHW") for n in g2.nodes]
    assert layouts == ["winograd", "OIHW", "OIHW"]
    assert g2.nodes[0].inputs[1].shape == (6, 6, 32, 32)
    assert [n.attrs.get("weight_layout", "OIHW") for n in choose_winograd(gb2.graph()).nodes] \
        == ["OIHW"]   # fewer than WINOGRAD_MIN_CHANNELS input channels
    xa = rnd(rng, 1, 32, 13, 14)
    got = tc.compile(g)(xa)[0]
    monkeypatch.setenv("TENSORC_WINOGRAD", "0")
    assert choose_winograd(g) is g
    want = run_graph(g, [xa])[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_pipeline_is_pure_and_dump_prints_every_pass(capsys):
    g, *_ = residual_block(np.random.default_rng(7), c=8, hw=6)
    before = str(g)
    g2 = run_passes(g, dump=True)
    assert str(g) == before
    err = capsys.readouterr().err
    for name in ("before fold_constants", "after fold_constants", "after simplify",
                 "after fold_batch_norm", "after eliminate_dead_code",
                 "after choose_conv_layout"):
        assert name in err
    assert "batch_norm x2" in err and "conv2d x2" in err
    assert "batch_norm" not in g2.op_counts()
    _same(g, g2, rnd(np.random.default_rng(8), 1, 8, 6, 6), rtol=1e-4)


def test_dump_from_the_environment(monkeypatch, capsys):
    g, *_ = residual_block(np.random.default_rng(9), c=4, hw=4)
    monkeypatch.setenv("TENSORC_DUMP_GRAPH", "1")
    run_passes(g)
    assert "after fold_batch_norm" in capsys.readouterr().err
    monkeypatch.setenv("TENSORC_DUMP_GRAPH", "0")
    run_passes(g)
    assert capsys.readouterr().err == ""
