"""softmax / log_softmax and the normalisations against float64 numpy references."""
import numpy as np
import pytest
from ops_helpers import check, lowered, placeholder

from tensorc import ops, te


def np_softmax(a, axis):
    a = a.astype(np.float64)
    e = np.exp(a - a.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def np_log_softmax(a, axis):
    a = a.astype(np.float64)
    m = a.max(axis, keepdims=True)
    return a - m - np.log(np.exp(a - m).sum(axis, keepdims=True))


@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_softmax_and_log_softmax(axis):
    x, a = placeholder((3, 7, 33), lo=0.1, hi=4.0)
    outs = [ops.softmax(x, axis), ops.log_softmax(x, axis)]
    assert all(o.op.tag == "softmax" and o.shape == x.shape for o in outs)
    check(outs, {x: a}, lambda p: (np_softmax(p, axis), np_log_softmax(p, axis)),
          rtol=1e-5, atol=1e-6)


def test_softmax_of_huge_inputs_stays_finite():
    x = te.placeholder((2, 33), name="x")
    a = np.random.default_rng(0).uniform(-1e4, 1e4, (2, 33)).astype("float32")
    a[1, :] = 1e4
    got = check([ops.softmax(x), ops.log_softmax(x)], {x: a},
                lambda p: (np_softmax(p, -1), np_log_softmax(p, -1)), rtol=1e-5, atol=1e-6)
    assert all(np.isfinite(g).all() for g in got)
    np.testing.assert_allclose(got[0].sum(-1), 1.0, rtol=1e-6)


def test_softmax_rows_are_computed_in_the_parallel_row_loop():
    """Large: max, exp and sum per row inside the parallel row loop, rows rfactor-vectorized."""
    x, a = placeholder((65, 1031), lo=0.1, hi=8.0)
    out = ops.softmax(x)
    text = lowered(out, [x, out])
    assert text.count("# produce softmax.") >= 3 and "parallel" in text and ".rf" in text
    assert text.index("parallel") < text.index("# produce softmax.max")
    check(out, {x: a}, lambda p: np_softmax(p, -1), rtol=1e-5, atol=1e-7)


def test_softmax_float16_is_computed_in_float32():
    x, a = placeholder((3, 33), "float16", lo=0.1, hi=6.0)
    out = ops.softmax(x)
    assert out.dtype == "float16"
    check(out, {x: a}, lambda p: np_softmax(p, -1), rtol=2e-3, atol=1e-4)


# ------------------------------------------------------------------------------ norms

def np_normalize(a, axes, eps):
    a = a.astype(np.float64)
    mean = a.mean(axes, keepdims=True)
    var = ((a - mean) ** 2).mean(axes, keepdims=True)
    return (a - mean) / np.sqrt(var + eps)


@pytest.mark.parametrize("axis", [-1, -2])
def test_layer_norm_matches_float64(axis):
    x, a = placeholder((3, 7, 33), lo=0.1, hi=3.0)
    norm_shape = x.shape[axis:]
    (g, gv), (b, bv) = (placeholder(norm_shape, name="scale", seed=1),
                        placeholder(norm_shape[-1:], name="bias", seed=2))
    axes = tuple(range(3 + axis, 3))
    outs = [ops.layer_norm(x, g, b, axis=axis, epsilon=1e-3), ops.layer_norm(x, axis=axis)]
    check(outs, {x: a, g: gv, b: bv}, lambda p, s, c: (
        np_normalize(p, axes, 1e-3) * s + c, np_normalize(p, axes, 1e-5)),
        rtol=1e-5, atol=1e-5)


def test_layer_norm_of_offset_data_keeps_precision():
    """A mean of 1000 against a spread of 1: the two-pass variance stays accurate, where one
    pass (E[x^2] - mean^2, both near 1e6 in float32) would lose every digit of it."""
    x, a = placeholder((4, 260), lo=0.5, hi=1.5)
    a = (a + 1000.0).astype("float32")
    out = ops.layer_norm(x)
    text = lowered(out, [x, out])
    assert "parallel" not in text and ".rf" in text
    check(out, {x: a}, lambda p: np_normalize(p, (-1,), 1e-5), rtol=1e-5, atol=5e-4)


def test_layer_norm_large_is_parallel():
    x, a = placeholder((64, 1030))
    out = ops.layer_norm(x)
    assert "parallel" in lowered(out, [x, out])
    check(out, {x: a}, lambda p: np_normalize(p, (-1,), 1e-5), rtol=1e-5, atol=1e-5)


def test_instance_group_and_batch_norm():
    x, a = placeholder((2, 6, 5, 7), lo=0.1, hi=3.0)
    params = [placeholder((6,), name=n, seed=k, signed=n != "var")
              for k, n in enumerate(["scale", "bias", "mean", "var"], 1)]
    (g, gv), (b, bv), (m, mv), (v, vv) = params
    outs = [ops.instance_norm(x, g, b), ops.group_norm(x, g, b, num_groups=3, epsilon=1e-4),
            ops.group_norm(x, num_groups=1), ops.batch_norm(x, g, b, m, v, epsilon=1e-3)]
    assert [o.op.tag for o in outs] == ["norm", "norm", "norm", "broadcast"]

    def ref(p, s, c, mu, var):
        ch = (slice(None), None, None)
        grouped = np_normalize(p.reshape(2, 3, 2, 5, 7), (2, 3, 4), 1e-4).reshape(p.shape)
        return (np_normalize(p, (2, 3), 1e-5) * s[ch] + c[ch], grouped * s[ch] + c[ch],
                np_normalize(p, (1, 2, 3), 1e-5),
                (p - mu[ch]) / np.sqrt(var[ch] + 1e-3) * s[ch] + c[ch])
    check(outs, {x: a, g: gv, b: bv, m: mv, v: vv}, ref, rtol=1e-5, atol=1e-5)


def test_errors_name_the_op_tensor_and_axis():
    x = te.placeholder((2, 6, 5), name="act")
    with pytest.raises(ValueError, match=r"softmax: axis 3 is out of range for tensor 'act'"):
        ops.softmax(x, axis=3)
    with pytest.raises(ValueError, match=r"group_norm: tensor 'act' of shape \(2, 6, 5\) has "
                                         "6 channels on axis 1, which num_groups=4"):
        ops.group_norm(x, num_groups=4)
    with pytest.raises(ValueError, match=r"layer_norm: scale 'g' has shape \(4,\), which does "
                                         r"not broadcast to \(5,\)"):
        ops.layer_norm(x, te.placeholder((4,), name="g"))
    with pytest.raises(ValueError, match=r"batch_norm: var 'v' has shape \(5,\).*\(6,\)"):
        p = te.placeholder((6,), name="p")
        ops.batch_norm(x, p, p, p, te.placeholder((5,), name="v"))
    with pytest.raises(TypeError, match="log_softmax: tensor 'i' has dtype int32"):
        ops.log_softmax(te.placeholder((3,), "int32", "i"))


def test_attention_block_composes():
    """softmax(q k^T / sqrt(d)) v over layer-normed inputs: every stage kind in one graph, the
    scale (broadcast) inlined into the softmax's max and exp stages."""
    x, a = placeholder((2, 9, 16), lo=0.1, hi=2.0)
    h = ops.layer_norm(x)
    scores = ops.multiply(ops.einsum("bqd,bkd->bqk", h, h), 0.25)
    out = ops.einsum("bqk,bkd->bqd", ops.softmax(scores), h)

    def ref(p):
        hn = np_normalize(p, (-1,), 1e-5)
        return np.einsum("bqk,bkd->bqd", np_softmax(np.einsum("bqd,bkd->bqk", hn, hn) / 4, -1),
                         hn)
    text = lowered(out, [x, out])
    assert "multiply" not in text
    check(out, {x: a}, ref, rtol=1e-5, atol=1e-5)
