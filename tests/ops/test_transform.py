"""Data-movement operators against numpy, including ONNX's slicing and gathering rules, and
the einsum and topk compositions."""
import numpy as np
import pytest
from ops_helpers import check, lowered, placeholder

from tensorc import ops, te


def test_reshapes():
    x, a = placeholder((3, 7, 10), name="x")
    outs = [ops.reshape(x, (3, 7, 2, 5)), ops.reshape(x, (-1, 10)), ops.reshape(x, (21, 5, 2)),
            ops.flatten(x, 2), ops.flatten(x, 0), ops.flatten(x, -3),
            ops.unsqueeze(x, (0, -1)), ops.squeeze(ops.unsqueeze(x, 1), 1),
            ops.squeeze(ops.reshape(x, (1, 3, 1, 70)))]
    assert all(o.op.tag == "injective" for o in outs)
    check(outs, {x: a}, lambda p: (p.reshape(3, 7, 2, 5), p.reshape(-1, 10), p.reshape(21, 5, 2),
                                   p.reshape(21, 10), p.reshape(1, -1), p.reshape(1, -1),
                                   p[None, ..., None], p, p.reshape(3, 70)))


def test_transpose_expand_tile():
    (x, a), (y, b) = placeholder((3, 1, 5), name="x"), placeholder((7, 1), name="y", seed=1)
    outs = [ops.transpose(x), ops.transpose(x, (1, 2, 0)), ops.expand(x, (2, 3, 7, 5)),
            ops.expand(y, (3, 1, 1, 4)), ops.broadcast_to(y, (2, 7, 3)), ops.tile(x, (2, 3, 1)),
            ops.tile(y, (3,))]
    check(outs, {x: a, y: b}, lambda p, q: (
        p.transpose(), p.transpose(1, 2, 0), np.broadcast_to(p, (2, 3, 7, 5)),
        q * np.ones((3, 1, 1, 4), "float32"), np.broadcast_to(q, (2, 7, 3)), np.tile(p, (2, 3, 1)),
        np.tile(q, 3)))


def test_concat_and_split():
    xs = [placeholder((3, n, 5), name=f"x{n}", seed=n) for n in (1, 4, 2)]
    (x, a) = placeholder((3, 7, 10), name="x")
    outs = [ops.concat([t for t, _ in xs], axis=-2), ops.concat(xs[0][0], axis=1),
            ops.concat(xs[2][0], xs[0][0], axis=1),
            *ops.split(x, [2, 5], axis=1), *ops.split(x, 2, axis=-1)]
    check(outs, {**{t: v for t, v in xs}, x: a}, lambda p, q, r, s: (
        np.concatenate([p, q, r], 1), p, np.concatenate([r, p], 1), *np.split(s, [2], 1),
        *np.split(s, 2, -1)))


SLICES = [  # starts, ends, axes, steps
    ([1, 2], [3, 30], None, None),
    ([-1], [-1000], [1], [-1]),                # negative step from the end to before the start
    ([100, -1], [-100, -100], [2, 0], [-2, -1]),  # out-of-range starts/ends clamp
    ([-4, 0], [2**63 - 1, 5], [-1, 1], [3, 2]),
]


def test_slice_follows_onnx():
    x, a = placeholder((3, 7, 10), name="x")
    outs = [ops.slice(x, *c) for c in SLICES]

    def ref(p):
        res = []
        for starts, ends, axes, steps in SLICES:
            idx = [slice(None)] * 3
            for k, ax in enumerate(axes or range(len(starts))):
                idx[ax] = slice(starts[k], ends[k], 1 if steps is None else steps[k])
            res.append(p[tuple(idx)])
        return tuple(res)
    check(outs, {x: a}, ref)


def test_gathers_wrap_negative_indices():
    x, a = placeholder((5, 7, 3), name="x")
    i = te.placeholder((2, 3), "int64", name="i")
    iv = np.array([[0, -1, 4], [-5, 2, -3]], "int64")
    j = te.placeholder((5, 2, 3), "int32", name="j")
    jv = np.random.default_rng(0).integers(-7, 7, (5, 2, 3)).astype("int32")
    s = te.placeholder((), "int32", name="s")
    outs = [ops.gather(x, i, axis=0), ops.gather(x, i, axis=-2), ops.gather_elements(x, j, 1),
            ops.gather(x, s, axis=1)]
    check(outs, {x: a, i: iv, j: jv, s: np.array(-2, "int32")}, lambda p, q, r, t: (
        np.take(p, q, 0), np.take(p, q, 1), np.take_along_axis(p, np.where(r < 0, r + 7, r), 1),
        np.take(p, t, 1)))


def test_pad_modes():
    x, a = placeholder((3, 4, 5), name="x")
    widths = [(1, 2), (0, 3), (7, 1)]
    outs = [ops.pad(x, widths, value=-2.5), ops.pad(x, widths, "edge"),
            ops.pad(x, widths, "reflect"), ops.pad(x, [(0, 0), (-1, 2), (2, -3)], "reflect"),
            ops.pad(ops.reshape(x, (3, 20, 1)), [(0, 0), (0, 0), (2, 1)], "reflect")]
    check(outs, {x: a}, lambda p: (
        np.pad(p, widths, constant_values=-2.5), np.pad(p, widths, "edge"),
        np.pad(p, widths, "reflect"), np.pad(p, [(0, 0), (0, 2), (2, 0)], "reflect")[:, 1:, :-3],
        np.pad(p.reshape(3, 20, 1), [(0, 0), (0, 0), (2, 1)], "reflect")))


def test_arange_and_cumsum():
    x, a = placeholder((3, 33), name="x")
    outs = [ops.arange(7), ops.arange(2, 11, 3), ops.arange(1.5, -1.0, -0.5, "float32"),
            ops.cumsum(x, axis=1), ops.cumsum(x, axis=-1, exclusive=True),
            ops.cumsum(x, axis=0, reverse=True), ops.cumsum(x, 1, exclusive=True, reverse=True)]
    assert outs[0].dtype == "int64"

    def ref(p):
        c = np.cumsum(p, 1)
        rev = np.cumsum(p[:, ::-1], 1)[:, ::-1]
        return (np.arange(7), np.arange(2, 11, 3), np.arange(1.5, -1.0, -0.5), c, c - p,
                np.cumsum(p[::-1], 0)[::-1], rev - p)
    check(outs, {x: a}, ref, rtol=1e-5, atol=1e-5)


EINSUMS = [("bij,bjk->bik", [(2, 3, 5), (2, 5, 4)]),
           ("bhqd,bhkd->bhqk", [(1, 2, 3, 17), (1, 2, 5, 17)]),
           ("bhqk,bhkd->bhqd", [(1, 2, 3, 5), (1, 2, 5, 7)]),
           ("ij,jk", [(3, 5), (5, 2)]), ("ij->ji", [(3, 5)]), ("ii->i", [(4, 4)]),
           ("ij,ij->", [(3, 5), (3, 5)]), ("i,j->ij", [(3,), (4,)])]


def test_einsum_forms():
    feed, outs, refs = {}, [], []
    for k, (spec, shapes) in enumerate(EINSUMS):
        ins = [placeholder(sh, name=f"e{k}_{n}", seed=10 * k + n) for n, sh in enumerate(shapes)]
        feed.update(ins)
        outs.append(ops.einsum(spec, *[t for t, _ in ins]) if k % 2 else
                    ops.einsum(*[t for t, _ in ins], subscripts=spec))
        refs.append(np.einsum(spec, *[v.astype(np.float64) for _, v in ins]))
    assert [o.op.tag for o in outs][:3] == ["reduce"] * 3 and outs[4].op.tag == "injective"
    check(outs, feed, lambda *arrays: tuple(refs), rtol=1e-5, atol=1e-5)


def test_attention_scores_reduce_over_the_contiguous_head_dim():
    """'bhqd,bhkd->bhqk' sums along d, the last axis of both operands: rfactor-vectorized."""
    q, qv = placeholder((1, 2, 9, 64), name="q")
    k, kv = placeholder((1, 2, 9, 64), name="k", seed=1)
    out = ops.einsum("bhqd,bhkd->bhqk", q, k)
    assert ".rf" in lowered(out, [q, k, out])
    check(out, {q: qv, k: kv}, lambda a, b: np.einsum("bhqd,bhkd->bhqk", a, b), rtol=1e-5,
          atol=1e-5)


def test_topk_sorted_with_ties_towards_lower_index():
    x = te.placeholder((4, 9), "int32", name="x")
    a = np.random.default_rng(1).integers(0, 4, (4, 9)).astype("int32")  # many ties
    top = ops.topk(x, 3)
    bottom = ops.topk(x, 2, axis=0, largest=False)
    assert top[1].dtype == "int64" and top[0].shape == (4, 3) and bottom[0].shape == (2, 9)

    def ref(p):
        order = np.argsort(-p, axis=1, kind="stable")[:, :3]
        low = np.argsort(p, axis=0, kind="stable")[:2]
        return (np.take_along_axis(p, order, 1), order, np.take_along_axis(p, low, 0), low)
    check([*top, *bottom], {x: a}, ref)


def test_transpose_inlines_into_its_consumer():
    x, a = placeholder((7, 33), name="x")
    out = ops.add(ops.transpose(x), 1.0)
    assert lowered(out, [x, out]).count("# produce") == 1
    check(out, {x: a}, lambda p: p.T + 1)


def test_errors_name_the_op_tensor_and_shape():
    x = te.placeholder((3, 7), name="t")
    cases = [
        (lambda: ops.reshape(x, (4, 5)), r"reshape: cannot reshape tensor 't' of shape \(3, 7\)"),
        (lambda: ops.reshape(x, (-1, -1)), "at most one -1"),
        (lambda: ops.transpose(x, (0, 0)), r"transpose: perm \(0, 0\) is not a permutation"),
        (lambda: ops.concat(x, te.placeholder((4, 6), name="u"), axis=0),
         r"concat: tensor 'u' of shape \(4, 6\) does not match tensor 't'"),
        (lambda: ops.squeeze(x, 1), "squeeze: axis 1 of tensor 't'"),
        (lambda: ops.slice(x, [8], [9], [-1]), "slice: the slice of axis 1 of tensor 't'"),
        (lambda: ops.split(x, 2, axis=1), "split: axis 1 of tensor 't'"),
        (lambda: ops.expand(x, (2, 7)), r"expand: tensor 't' .* axis -2 has extents 3 and 2"),
        (lambda: ops.pad(x, [(1, 1)]), "pad: pad_width needs one"),
        (lambda: ops.einsum("...i,i", x, x), "ellipsis"),
        (lambda: ops.einsum("ij,jk", x, x), "letter 'j' is axis 0 of operand 't' with extent 3"),
        (lambda: ops.topk(x, 8), "topk: k=8 is out of range for axis 1 of tensor 't'"),
        (lambda: ops.cumsum(x, axis=2), "cumsum: axis 2 is out of range for tensor 't'"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()
    with pytest.raises(TypeError, match="gather: indices 't' have dtype float32"):
        ops.gather(x, x)
