"""Elementwise operators against numpy: unary math, broadcasting binaries, activations.

Every case builds through ops.schedule_for + tc.build on odd shapes (1, 3, 7, 33), so the
vector loop, its scalar tail and broadcasting all run.
"""
import math

import numpy as np
import pytest
from ops_helpers import check, lowered, placeholder

from tensorc import ops, te

SHAPE = (7, 33)

_erf = np.vectorize(math.erf, otypes=[np.float64])

UNARY = [
    (ops.exp, np.exp, True), (ops.exp2, np.exp2, True), (ops.expm1, np.expm1, True),
    (ops.log, np.log, False), (ops.log2, np.log2, False), (ops.log10, np.log10, False),
    (ops.log1p, np.log1p, False), (ops.sqrt, np.sqrt, False),
    (ops.rsqrt, lambda x: 1 / np.sqrt(x), False), (ops.sin, np.sin, True),
    (ops.cos, np.cos, True), (ops.tan, np.tan, True), (ops.tanh, np.tanh, True),
    (ops.erf, _erf, True), (ops.sigmoid, lambda x: 1 / (1 + np.exp(-x)), True),
    (ops.floor, np.floor, True), (ops.ceil, np.ceil, True), (ops.trunc, np.trunc, True),
    (ops.round, np.round, True), (ops.neg, np.negative, True), (ops.abs, np.abs, True),
    (ops.square, np.square, True), (ops.reciprocal, np.reciprocal, True),
    (ops.sign, np.sign, True),
]


@pytest.mark.parametrize("signed", [False, True], ids=["positive", "signed"])
def test_unary(signed):
    """All unary ops of one domain in one module (outputs are named after their op)."""
    cases = [(op, ref) for op, ref, any_sign in UNARY if any_sign or not signed]
    x, a = placeholder(SHAPE, signed=signed, lo=0.5, hi=3.0)
    outs = [op(x) for op, _ in cases]
    assert all(o.shape == SHAPE and o.op.tag == "elemwise" for o in outs)
    check(outs, {x: a}, lambda p: tuple(ref(p) for _, ref in cases), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("shapes", [((7, 33), (33,)), ((3, 1, 5), (7, 1)), ((1,), (3, 7)),
                                    ((3, 7), (3, 7))])
def test_broadcasting_binaries(shapes):
    (x, a), (y, b) = placeholder(shapes[0], name="x"), placeholder(shapes[1], name="y", seed=1)
    outs = [ops.add(x, y), ops.subtract(x, y), ops.multiply(x, y), ops.divide(x, y),
            ops.maximum(x, y), ops.minimum(x, y), ops.power(ops.abs(x), y),
            ops.floor_divide(x, y), ops.mod(x, y), ops.fmod(x, y)]
    refs = (np.add, np.subtract, np.multiply, np.divide, np.maximum, np.minimum,
            lambda p, q: np.abs(p) ** q, np.floor_divide, np.mod, np.fmod)
    want = np.broadcast_shapes(*shapes)
    tag = "elemwise" if shapes[0] == shapes[1] else "broadcast"
    assert all(o.shape == want and o.op.tag == tag for o in outs)
    check(outs, {x: a, y: b}, lambda p, q: tuple(f(p, q) for f in refs), rtol=2e-6)


def test_comparisons_and_logic_give_bool():
    (x, a), (y, b) = placeholder((3, 7), "int32", "x"), placeholder((7,), "int32", "y", seed=1)
    outs = [ops.equal(x, y), ops.not_equal(x, y), ops.less(x, y), ops.less_equal(x, y),
            ops.greater(x, y), ops.greater_equal(x, y), ops.logical_and(ops.less(x, 0), y),
            ops.logical_or(ops.less(x, 0), ops.less(y, 0)), ops.logical_xor(x, ops.less(y, 0)),
            ops.logical_not(ops.less(x, y))]
    assert all(o.dtype == "bool" for o in outs)
    check(outs, {x: a, y: b}, lambda p, q: (
        p == q, p != q, p < q, p <= q, p > q, p >= q, (p < 0) & (q != 0), (p < 0) | (q < 0),
        (p != 0) ^ (q < 0), ~(p < q)))


def test_integer_division_is_floor_division():
    (x, a), (y, b) = placeholder((7, 33), "int32", "x"), placeholder((33,), "int32", "y", 1)
    outs = [ops.divide(x, y), ops.floor_divide(x, y), ops.mod(x, y), ops.power(x, 3)]
    check(outs, {x: a, y: b}, lambda p, q: (p // q, p // q, p % q, p ** 3))


def test_dtype_promotion_follows_numpy():
    (x, a), (y, b) = placeholder((3, 7), "int32", "x"), placeholder((7,), "float32", "y", 1)
    out = ops.add(x, y)
    assert out.dtype == np.promote_types(np.int32, np.float32).name
    check(out, {x: a, y: b}, np.add)
    (h, c) = placeholder((7,), "float16", "h")
    assert ops.multiply(h, 2.5).dtype == "float16"      # a literal takes the tensor's type
    assert ops.multiply(y, h).dtype == "float32"


def test_scalars_on_either_side():
    x, a = placeholder(SHAPE)
    check([ops.subtract(2.0, x), ops.divide(x, 4.0), ops.maximum(0.25, x)], {x: a},
          lambda p: (2 - p, p / 4, np.maximum(0.25, p)))


def test_where_broadcasts_three_ways():
    (c, cv), (x, a), (y, b) = (placeholder((7, 1), "bool", "c"), placeholder((33,), name="x"),
                               placeholder((3, 7, 33), name="y", seed=2))
    out = ops.where(c, x, y)
    assert out.shape == (3, 7, 33)
    check(out, {c: cv, x: a, y: b}, np.where)


def test_cast_clip_and_nan_tests():
    x, a = placeholder(SHAPE, lo=0.5, hi=300.0)
    a[0, :3] = [np.nan, np.inf, -np.inf]
    hi, hv = placeholder((33,), name="hi", lo=50.0, hi=150.0, signed=False)
    outs = [ops.cast(x, "int8"), ops.clip(x, -100.0, 100.0), ops.clip(x, a_min=0.0),
            ops.clip(x, -1.0, hi), ops.isnan(x), ops.isinf(x), ops.isfinite(x), ops.sign(x)]
    sat = np.clip(np.nan_to_num(np.trunc(a), nan=0, posinf=127, neginf=-128), -128, 127)
    check(outs, {x: a, hi: hv}, lambda p, h: (
        sat.astype("int8"), np.clip(p, -100, 100), np.maximum(p, 0), np.clip(p, -1, h),
        np.isnan(p), np.isinf(p), np.isfinite(p), np.sign(p)))


# ------------------------------------------------------------------------------ activations

SELU = (1.6732632423543772, 1.0507009873554805)
ACTIVATIONS = [
    (ops.relu, lambda x: np.maximum(x, 0)),
    (lambda x: ops.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    (lambda x: ops.elu(x, 0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x))),
    (ops.selu, lambda x: SELU[1] * np.where(x > 0, x, SELU[0] * np.expm1(x))),
    (ops.gelu, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    (lambda x: ops.gelu(x, approximate="tanh"),
     lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
    (ops.silu, lambda x: x / (1 + np.exp(-x))),
    (ops.hard_sigmoid, lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    (lambda x: ops.hard_sigmoid(x, 0.5, 0.25), lambda x: np.clip(0.5 * x + 0.25, 0, 1)),
    (ops.hard_swish, lambda x: x * np.clip(x + 3, 0, 6) / 6),
    (ops.softplus, lambda x: np.logaddexp(0, x)),
]


def test_activations():
    x, a = placeholder(SHAPE, lo=0.05, hi=4.0)
    check([op(x) for op, _ in ACTIVATIONS], {x: a},
          lambda p: tuple(ref(p.astype(np.float64)) for _, ref in ACTIVATIONS),
          rtol=2e-6, atol=2e-6)


def test_softplus_is_stable_at_extremes():
    x = te.placeholder((5,), name="x")
    a = np.array([-200.0, -30.0, 0.5, 30.0, 200.0], "float32")
    got = check(ops.softplus(x), {x: a}, lambda p: np.logaddexp(0, p.astype(np.float64)))
    assert np.all(np.isfinite(got))


def test_prelu_per_channel_and_broadcast():
    (x, a), (s, sv) = placeholder((3, 7, 5), name="x"), placeholder((7,), name="slope", seed=1)
    (t, tv) = placeholder((5,), name="slope5", seed=2)
    outs = [ops.prelu(x, s), ops.prelu(x, t, axis=None)]
    check(outs, {x: a, s: sv, t: tv}, lambda p, q, r: (
        np.where(p > 0, p, p * q[:, None]), np.where(p > 0, p, p * r)))


def test_large_chain_is_one_parallel_vector_loop():
    """relu(x * scale + bias): the producers inline into the output, whose outer loop runs in
    parallel (over 64K elements) and whose inner loop is vectorized with a scalar tail."""
    (x, a), (b, bv) = placeholder((257, 300), name="x"), placeholder((300,), name="b", seed=1)
    out = ops.relu(ops.add(ops.multiply(x, 0.5), b))
    text = lowered(out, [x, b, out])
    assert text.count("# produce") == 1 and "parallel" in text and "ramp" in text
    check(out, {x: a, b: bv}, lambda p, q: np.maximum(p * 0.5 + q, 0))


def test_errors_name_the_op_tensor_and_axis():
    x, y = te.placeholder((3, 7), name="lhs"), te.placeholder((4, 1), name="rhs")
    with pytest.raises(ValueError, match=r"add: cannot broadcast tensor 'rhs' .*'lhs'.*axis -2"):
        ops.add(x, y)
    with pytest.raises(TypeError, match="sqrt: tensor 'ints' has dtype int32"):
        ops.sqrt(te.placeholder((3,), "int32", "ints"))
    with pytest.raises(ValueError, match=r"prelu: slope 's' has shape \(3,\).*axis 1"):
        ops.prelu(x, te.placeholder((3,), name="s"))
    with pytest.raises(ValueError, match="gelu: approximate"):
        ops.gelu(x, approximate="fast")


def test_schedule_for_lets_an_anchor_schedule_keep_its_producer(monkeypatch):
    """A registered schedule decides about its injective producers: one it schedules itself
    (a packed copy, say) is not inlined afterwards; untouched ones are."""
    x, a = placeholder((7, 33))
    packed = ops.transpose(ops.exp(x))
    k = te.reduce_axis((0, 7), name="k")
    out = te.compute((33,), lambda j: te.sum(packed[j, k], axis=k), name="custom", tag="custom")

    def schedule_custom(s, t):
        s[packed].parallel(s[packed].op.axis[0])
    monkeypatch.setitem(ops.SCHEDULES, "custom", None)  # removed again after the test
    assert ops.register_schedule("custom")(schedule_custom) is schedule_custom
    text = lowered(out, [x, out])
    assert "# produce transpose" in text and "# produce exp" not in text
    check(out, {x: a}, lambda p: np.exp(p).sum(0), rtol=1e-5)


def test_vector_math_bodies_take_several_vectors_per_step():
    """A tanh is one long dependency chain per vector: the default schedule interleaves
    INTERLEAVE native vectors per step when the row holds whole steps, and a cheap body (or a
    row of an odd number of vectors) keeps the native width."""
    from tensorc.ops.schedule_cpu import INTERLEAVE, vector_lanes
    lanes = vector_lanes("float32")
    for body, width, want in ((ops.tanh, lanes * INTERLEAVE, lanes * INTERLEAVE),
                              (ops.relu, lanes * INTERLEAVE, lanes),
                              (ops.tanh, 7 * lanes, lanes)):
        x, xa = placeholder((7, width))
        y = body(x)
        text = lowered([y], [x, y])
        assert f", 1, {want})" in text, (body.__name__, width, text)
        check(y, {x: xa}, lambda a, body=body: np.tanh(a) if body is ops.tanh
              else np.maximum(a, 0))
