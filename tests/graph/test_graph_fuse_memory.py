"""Fusion groups and storage planning (no native code: build_plan lowers but does not link)."""
import numpy as np
import pytest

from graph_helpers import residual_block, rnd
from tensorc.graph.builder import GraphBuilder
from tensorc.graph.compiler import build_plan
from tensorc.graph.fuse import classify, fuse
from tensorc.graph.memory import plan_storage
from tensorc.graph.passes import run_passes


def _groups(g):
    return [(grp.kind, grp.ops) for grp in fuse(run_passes(g))]


def test_classify():
    gb = GraphBuilder("c")
    x = gb.input("x", (2, 8))
    ops = {"relu": gb.op("relu", x), "transpose": gb.op("transpose", x),
           "sum": gb.op("sum", x, axis=1), "softmax": gb.op("softmax", x),
           "dense": gb.op("dense", x, np.ones((4, 8), "float32"))}
    kinds = {n.op: classify(n).kind for n in gb._nodes}
    assert kinds == {"relu": "elemwise", "transpose": "injective", "sum": "anchor",
                     "softmax": "anchor", "dense": "anchor"}
    assert "dense" in classify(gb._nodes[-1]).tags
    del ops


def test_conv_bias_relu_is_one_group():
    rng = np.random.default_rng(0)
    gb = GraphBuilder("cbr")
    x = gb.input("x", (1, 4, 6, 6))
    y = gb.op("conv2d", x, gb.const("w", rnd(rng, 8, 4, 3, 3)), padding=1)
    y = gb.op("relu", gb.op("add", y, gb.const("b", rnd(rng, 8, 1, 1))))
    gb.output(y)
    assert _groups(gb.graph()) == [("anchor", ["conv2d", "add", "relu"])]


def test_residual_block_groups():
    g, *_ = residual_block(np.random.default_rng(1), c=8, hw=6)
    assert _groups(g) == [("anchor", ["conv2d", "add", "relu"]),
                          ("anchor", ["conv2d", "add", "add", "relu"])]


def test_dense_bias_gelu_and_reduce_divide_and_injective_runs():
    rng = np.random.default_rng(2)
    gb = GraphBuilder("mix")
    x = gb.input("x", (4, 16))
    h = gb.op("gelu", gb.op("dense", x, gb.const("w", rnd(rng, 8, 16)),
                            gb.const("b", rnd(rng, 8))))
    s = gb.op("divide", gb.op("sum", h, axis=1, keepdims=True), gb.const("n", np.float32(8)))
    t = gb.op("relu", gb.op("add", gb.op("transpose", h), gb.const("c", rnd(rng, 8, 1))))
    gb.output(s, t)
    assert _groups(gb.graph()) == [("anchor", ["dense", "gelu"]),
                                   ("anchor", ["sum", "divide"]),
                                   ("injective", ["transpose", "add", "relu"])]


def test_prologues_join_anchors_but_not_elementwise_into_matmul():
    rng = np.random.default_rng(3)
    gb = GraphBuilder("pro")
    x = gb.input("x", (1, 4, 5, 5))
    p = gb.op("pad", x, pad_width=[(0, 0), (0, 0), (1, 1), (1, 1)])
    y = gb.op("conv2d", p, gb.const("w", rnd(rng, 8, 4, 3, 3)))
    f = gb.op("exp", gb.op("reshape", y, newshape=[1, 200]))
    z = gb.op("dense", f, gb.const("w2", rnd(rng, 3, 200)))
    gb.output(z)
    assert _groups(gb.graph()) == [("anchor", ["pad", "conv2d"]),
                                   ("injective", ["reshape", "exp"]),
                                   ("anchor", ["dense"])]


def test_value_read_by_two_groups_is_materialized():
    rng = np.random.default_rng(4)
    gb = GraphBuilder("fork")
    x = gb.input("x", (1, 4, 6, 6))
    r = gb.op("relu", gb.op("conv2d", x, gb.const("w", rnd(rng, 4, 4, 3, 3)), padding=1))
    a = gb.op("conv2d", r, gb.const("w1", rnd(rng, 4, 4, 3, 3)), padding=1)
    b = gb.op("conv2d", r, gb.const("w2", rnd(rng, 4, 4, 1, 1)))
    gb.output(gb.op("add", a, b))
    groups = fuse(run_passes(gb.graph()))
    assert [grp.ops for grp in groups] == [["conv2d", "relu"], ["conv2d"], ["conv2d", "add"]]
    assert groups[0].outputs[0] in groups[1].inputs and groups[0].outputs[0] in groups[2].inputs


def test_value_read_several_times_inside_one_group_joins_it():
    """where(y > 1, y, y * 0.5) reads y three times, all in the same kernel: y is computed
    there (no round trip through memory), and the result is right."""
    import tensorc as tc
    gb = GraphBuilder("multi_read")
    x = gb.input("x", (5, 33))
    y = gb.op("tanh", gb.op("multiply", x, gb.const("s", np.float32(3.0))))
    out = gb.op("where", gb.op("greater", y, gb.const("one", np.float32(0.5))), y,
                gb.op("multiply", y, gb.const("half", np.float32(0.5))))
    gb.output(out)
    assert [kind for kind, _ in _groups(gb.graph())] == ["injective"]
    xa = rnd(np.random.default_rng(7), 5, 33)
    ya = np.tanh(xa * 3)
    np.testing.assert_allclose(tc.compile(gb.graph())(xa)[0],
                               np.where(ya > 0.5, ya, ya * 0.5), rtol=1e-6)


def test_plan_storage_best_fit_and_no_overlap():
    # a chain v0 -> v1 -> v2 -> v3 -> v4 plus a long-lived value
    steps = [([], ["a"]), (["a"], ["b"]), (["b"], ["c"]), (["c", "a"], ["d"]), (["d"], ["e"])]
    sizes = {"a": 1000, "b": 4000, "c": 4000, "d": 100, "e": 3000}
    plan = plan_storage(steps, sizes).check()
    assert plan.lifetimes["a"] == (0, 3)
    # c reuses nothing (a and b are live), d takes b's token (freed after step 2), e c's
    assert plan.assignment["d"][0] == plan.assignment["b"][0]
    assert plan.assignment["e"][0] == plan.assignment["c"][0]
    assert plan.planned_bytes < plan.naive_bytes
    assert all(s % 64 == 0 for s in plan.token_sizes)
    assert "planned" in plan.report()


def test_plan_storage_grows_a_free_token_and_handles_aliases():
    steps = [([], ["a"]), (["a"], ["b"]), (["b"], ["c"]), (["v"], ["d"])]
    plan = plan_storage(steps, {"a": 64, "b": 64, "c": 640, "d": 64}, aliases={"v": "c"})
    plan.check()
    assert len(plan.token_sizes) == 2 and plan.planned_bytes == 640 + 64
    assert plan.lifetimes["c"] == (2, 3)  # read through its alias at step 3


def test_memory_plan_of_a_deep_mlp_reuses_storage():
    rng = np.random.default_rng(5)
    gb = GraphBuilder("deep")
    h = gb.input("x", (2, 16))
    for k in range(5):
        h = gb.op("relu", gb.op("dense", h, gb.const(f"w{k}", rnd(rng, 16, 16, lo=0.1, hi=0.3))))
    gb.output(h)
    info = build_plan(gb.graph(), jobs=1)
    st = info.storage
    intermediates = sum(st.sizes.values())
    assert len(st.sizes) == 4 and st.planned_bytes < intermediates
    assert len(st.token_sizes) == 2
    assert st.overlaps() == []
    # the plan's own view: no two values live together in the same bytes
    refs = []
    for t, call in enumerate(info.plan.calls):
        for ref in call.args:
            if ref.kind == "storage":
                refs.append((t, ref))
    assert {r.index for _, r in refs} == {0, 1}
    info.plan.validate(info.kernels)
    # the same kernel (dense 16x16 + relu) serves every layer
    assert len(info.kernels) == 1 and len(info.plan.calls) == 5


@pytest.mark.parametrize("n", [3])
def test_storage_never_shared_by_live_values_random_graphs(n):
    rng = np.random.default_rng(6)
    for _ in range(20):
        nvals = 12
        steps, sizes = [], {}
        for t in range(nvals):
            reads = [f"v{j}" for j in rng.choice(t, size=min(t, n), replace=False)] if t else []
            steps.append((reads, [f"v{t}"]))
            sizes[f"v{t}"] = int(rng.integers(1, 5000))
        plan = plan_storage(steps, sizes).check()
        assert plan.planned_bytes <= plan.naive_bytes


def test_parallel_lowering_gives_the_same_kernels():
    from tensorc.graph.compiler import lower_groups
    rng = np.random.default_rng(7)
    gb = GraphBuilder("par")
    x = gb.input("x", (4, 16))
    h = gb.op("relu", gb.op("dense", x, gb.const("w", rnd(rng, 8, 16))))
    gb.output(gb.op("softmax", gb.op("exp", h)))
    groups = fuse(run_passes(gb.graph()))
    serial = [str(f) for f in lower_groups(groups, jobs=1)]
    parallel = [str(f) for f in lower_groups(groups, jobs=2)]
    assert serial == parallel and len(serial) == 2
