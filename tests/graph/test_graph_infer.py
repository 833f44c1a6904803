"""Graph building, shape inference, its error messages, and the reference interpreter."""
import numpy as np
import pytest

from graph_helpers import conv2d_ref, mlp, mlp_ref, rnd
from tensorc.graph import Graph, Node, Value
from tensorc.graph.builder import GraphBuilder
from tensorc.graph.infer import GraphError, check_graph, infer_shapes, known_ops
from tensorc.graph.interpret import run_graph


def test_builder_infers_shapes_and_the_interpreter_matches_numpy():
    rng = np.random.default_rng(0)
    g, weights = mlp(rng)
    assert [n.op for n in g.nodes] == ["dense", "relu", "dense", "softmax"]
    assert g.outputs[0].shape == (4, 10) and g.outputs[0].dtype == "float32"
    x = rnd(rng, 4, 32)
    (y,) = run_graph(g, [x])
    np.testing.assert_allclose(y, mlp_ref(x, *weights), rtol=1e-5, atol=1e-6)
    (y2,) = run_graph(g, {"x": x})
    np.testing.assert_array_equal(y, y2)
    check_graph(g)


def test_infer_shapes_fills_unknown_shapes_without_changing_the_graph():
    rng = np.random.default_rng(1)
    x = Value("x", (1, 3, 8, 8), "float32")
    w = Value("w", (4, 3, 3, 3), "float32", rnd(rng, 4, 3, 3, 3))
    y = Value("y", None, None)
    z = Value("z", None, None)
    g = Graph([x], [Node("conv2d", [x, w], [y], {"strides": 2}, "c"),
                    Node("transpose", [y], [z], {"perm": [0, 2, 3, 1]}, "t")], [z])
    g2 = infer_shapes(g)
    assert g2.nodes[0].outputs[0].shape == (1, 4, 3, 3)
    assert g2.outputs[0].shape == (1, 3, 3, 4)
    assert y.shape is None  # pure: the input graph keeps its values
    xa = rnd(rng, 1, 3, 8, 8)
    (out,) = run_graph(g2, [xa])
    np.testing.assert_allclose(out, conv2d_ref(xa, w.data, 0, 2).transpose(0, 2, 3, 1),
                               rtol=1e-5, atol=1e-5)


def test_multi_output_nodes():
    gb = GraphBuilder("split")
    x = gb.input("x", (6, 4))
    a, b = gb.op("split", x, sizes=[2, 4], axis=0)
    assert a.shape == (2, 4) and b.shape == (4, 4)
    gb.output(gb.op("relu", b), a)
    xa = rnd(np.random.default_rng(2), 6, 4)
    rb, ra = run_graph(gb.graph(), [xa])
    np.testing.assert_array_equal(ra, xa[:2])
    np.testing.assert_array_equal(rb, np.maximum(xa[2:], 0))


def test_unknown_op_names_the_node():
    gb = GraphBuilder("bad")
    x = gb.input("x", (2, 3))
    with pytest.raises(GraphError, match=r"node 'mine' \(rellu\).*unknown operator 'rellu'.*"
                                         r"did you mean 'relu'"):
        gb.op("rellu", x, node_name="mine")
    g = Graph([x], [Node("conv3d", [x], [Value("y", (2, 3), "float32")], {}, "c3")],
              [x])
    with pytest.raises(GraphError, match=r"node 'c3' \(conv3d\).*unknown operator"):
        infer_shapes(g)
    assert "relu" in known_ops() and "conv2d" in known_ops() and "dense" in known_ops()


def test_shape_mismatch_names_node_op_and_input_shapes():
    gb = GraphBuilder("bad")
    x = gb.input("x", (2, 3))
    y = gb.input("y", (4, 5))
    with pytest.raises(GraphError) as e:
        gb.op("add", x, y, node_name="sum1")
    msg = str(e.value)
    assert "node 'sum1' (add)" in msg and "float32[2, 3]" in msg and "float32[4, 5]" in msg
    w = gb.const("w", np.ones((7, 5), "float32"))
    with pytest.raises(GraphError, match=r"node 'fc' \(dense\) with inputs \(%x: float32\[2, "
                                         r"3\], %w: const float32\[7, 5\]\)"):
        gb.op("dense", x, w, node_name="fc")


def test_a_tensor_input_where_the_op_takes_an_attribute_is_reported():
    """conv2d takes (data, weight): a third input lands on ``strides``. Before Tensor had
    __iter__, tuple(strides) indexed the bias forever and used up the memory."""
    gb = GraphBuilder("bad")
    x = gb.input("x", (1, 4, 9, 9))
    with pytest.raises(GraphError, match=r"node 'conv' \(conv2d\) .*TypeError: conv2d: strides "
                                         r"must be an int or a tuple of 2 ints, got Tensor"):
        gb.op("conv2d", x, np.ones((4, 4, 3, 3), "float32"), np.ones(4, "float32"),
              padding=1, node_name="conv")


def test_recorded_shape_that_disagrees_is_reported():
    x = Value("x", (2, 3), "float32")
    y = Value("y", (3, 2), "float32")
    g = Graph([x], [Node("relu", [x], [y], {}, "r")], [y])
    with pytest.raises(GraphError, match=r"node 'r' \(relu\): output %y is recorded as "
                                         r"float32\[3, 2\] but the operator gives float32\[2, 3\]"):
        check_graph(g)


def test_structure_errors():
    x = Value("x", (2,), "float32")
    ghost = Value("ghost", (2,), "float32")
    y = Value("y", (2,), "float32")
    g = Graph([x], [Node("add", [x, ghost], [y], {}, "a")], [y])
    with pytest.raises(GraphError, match="reads %ghost, which no earlier node produces"):
        infer_shapes(g)
    with pytest.raises(TypeError, match="takes 1 inputs"):
        run_graph(Graph([x], [Node("relu", [x], [y], {}, "r")], [y]), [])
