"""Tuning templates of the built-in ops (``tensorc.ops.templates``): on odd shapes, point 0 of
every space lowers to exactly the op's default schedule, random points compute what the numpy
oracle does, and the spaces hold the knobs (and sizes) the shapes call for."""
import subprocess
import sys

import numpy as np
import pytest
from helpers import assert_close

import tensorc as tc
from tensorc import ops, te
from tensorc.autotune import create_task
from tensorc.ops import conv as CV
from tensorc.ops import matmul as MM
from tensorc.ops import schedule_nn_conv as SNC
from tensorc.ops import schedule_nn_matmul as SNM
from tensorc.ops import schedule_cpu as SC
from tensorc.ops import schedule_nn as SN
from tensorc.ops import schedule_nn_fusion as SNF


@pytest.fixture(autouse=True)
def _always_parallel(monkeypatch):
    """Small test shapes would run on one thread; make the parallel paths run."""
    monkeypatch.setattr(SNF, "PARALLEL_WORK", 0)
    monkeypatch.setattr(SC, "PARALLEL_MIN", 0)


def _ph(*shapes, names="xw"):
    return [te.placeholder(s, name=n) for s, n in zip(shapes, names)]


def _default_dense(M, N, K):
    x, w = _ph((M, K), (N, K))
    y = MM.dense(x, w)
    return SN.create_schedule(y), [x, w, y]


def _default_matmul(M, N, K):
    a, b = _ph((M, K), (K, N), names="ab")
    y = MM.matmul(a, b)
    return SN.create_schedule(y), [a, b, y]


def _default_batch_matmul(B, M, N, K):
    a, b = _ph((B, M, K), (B, K, N), names="ab")
    y = MM.batch_matmul(a, b)
    return SN.create_schedule(y), [a, b, y]


def _default_conv(N, C, H, W, OC, KH, KW, strides=1, padding=0):
    x, w = _ph((N, C, H, W), (OC, C, KH, KW))
    y = CV.conv2d(x, w, strides=strides, padding=padding)
    return SN.create_schedule(y), [x, w, y]


def _default_depthwise(N, C, H, W, KH, KW, strides=1, padding=0):
    x, w = _ph((N, C, H, W), (C, 1, KH, KW))
    y = CV.depthwise_conv2d(x, w, strides=strides, padding=padding)
    return SN.create_schedule(y), [x, w, y]


def _default_softmax(shape, axis=-1):
    (x,) = _ph(tuple(shape))
    y = ops.softmax(x, axis)
    return ops.schedule_for(y), [x, y]


def _default_reduce(shape, axis=None, reducer="sum"):
    (x,) = _ph(tuple(shape))
    y = getattr(ops.reduction, reducer)(x, axis)
    return ops.schedule_for(y), [x, y]


def _nr_choices(n):
    """How many nr knob values reach column n: multiples of the host's float32 vector (8 on
    AVX2, 16 on AVX-512) up to 64, each starting below n."""
    lanes = SC.vector_lanes("float32")
    return len([v for v in range(lanes, 65, lanes) if v - lanes < n])


def _matmul_mr_choices(m):
    """matmul kernel: mr from 1 to the default tile (at least 8), at most M."""
    return min(m, max(8, SNM.default_mr(m)))


def _mr_choices(oc):
    """1x1 kernel: mr from 1 to the register budget (at least 8), at most OC."""
    return min(oc, max(8, SNC.conv1x1_mr_cap()))


# (template, args, default schedule, space size and why)
CASES = [
    # mr 1..8 (1..12 with AVX-512) x nr (vectors that reach column 29: 8..32 on AVX2) x
    # unroll 2 x parallel 3
    ("dense", (13, 29, 37), _default_dense, _matmul_mr_choices(13) * _nr_choices(29) * 2 * 3),
    ("matmul", (13, 29, 37), _default_matmul, _matmul_mr_choices(13) * _nr_choices(29) * 2 * 3),
    # mr 1..7 (M = 7) x nr (N = 19: 8..24 on AVX2) x 2 x 3
    ("batch_matmul", (3, 7, 19, 11), _default_batch_matmul, 7 * _nr_choices(19) * 2 * 3),
    # matrix-vector kernels: kv {16, 8, 32} (K = 37) x parallel 3; cols 5 x vec 4 x parallel 3
    ("dense", (2, 29, 37), _default_dense, 3 * 3),
    ("matmul", (3, 29, 37), _default_matmul, 5 * 4 * 3),
    # NCHWc: regn 1..11 (8-channel blocks, OW 11) x plane 2 x unroll 2 x parallel 2
    ("conv2d_nchw", (1, 5, 11, 11, 7, 3, 3, 1, 1), _default_conv, 11 * 2 * 2 * 2),
    # stride 2: OW 6, regn 1..6
    ("conv2d_nchw", (1, 5, 11, 11, 7, 3, 3, 2, 1), _default_conv, 6 * 2 * 2 * 2),
    # 1x1: mr 1..8 (1..11 with AVX-512) x nr {16, 8, 32, 64} x ry (divisors of 13: 13, 1) x
    # parallel 2
    ("conv2d_nchw", (1, 9, 13, 13, 11, 1, 1), _default_conv, _mr_choices(11) * 4 * 2 * 2),
    # depthwise: ry {4, 1, 2, 3, 6, 8} x vx {16, 8, 32} x unroll 2 x parallel 2
    ("depthwise_conv2d", (1, 6, 13, 13, 3, 3, 1, 1), _default_depthwise, 6 * 3 * 2 * 2),
    # stride 2 (OH 7): ry {4, 1, 2, 3, 6} x vx {8, 16, 32} x 2 x 2
    ("depthwise_conv2d", (1, 6, 13, 13, 3, 3, 2, 1), _default_depthwise, 5 * 3 * 2 * 2),
    # lanes {native, /2, x2, x4} x parallel 2
    ("softmax", ([13, 37],), _default_softmax, 4 * 2),
    ("softmax", ([5, 7, 9], 1), _default_softmax, 4 * 2),
    # rows: lanes {native, x2, x4} x parallel 2; columns: block {256, 64, 128, 512, 1024} x 2
    ("reduce", ([13, 37], 1), _default_reduce, 3 * 2),
    ("reduce", ([5, 7, 9], 1), _default_reduce, 5 * 2),
    ("reduce", ([6, 35], None, "mean"), _default_reduce, 3 * 2),
    ("reduce", ([3, 70, 11], (0, 1), "max"), _default_reduce, 5 * 2),
]
IDS = [f"{n}{list(a)}" for n, a, _, _ in CASES]


@pytest.mark.parametrize("name, args, default, size", CASES, ids=IDS)
def test_default_point_is_the_default_schedule(name, args, default, size):
    task = create_task(name, args)
    assert len(task.config_space) == size, task.config_space
    s, tensors = default(*args)
    expected = str(tc.lower(s, tensors, name="f"))
    assert str(task.lower(0, name="f")) == expected
    defaults = {n: k.entities[0].json() for n, k in task.config_space.knobs.items()}
    assert str(task.lower(task.config(defaults), name="f")) == expected


def _run(task, index):
    f = task.build(index)
    inputs, expected = task.reference()
    outs = [np.full(shape, np.nan, dtype) for shape, dtype in task.tensors_info()[-task.num_outputs:]]
    f(*inputs, *outs)
    for got, want in zip(outs, expected):
        assert_close(got, want.astype(got.dtype), rtol=1e-4, atol=1e-4,
                     what=f"{task.key} config {task.config(index)}")


@pytest.mark.parametrize("name, args, default, size", CASES, ids=IDS)
def test_random_points_match_the_oracle(name, args, default, size):
    task = create_task(name, args)
    rng = np.random.default_rng(len(task.key))
    points = {int(i) for i in rng.choice(len(task.config_space), size=4, replace=False)}
    for index in sorted(points | {len(task.config_space) - 1}):
        _run(task, index)


def test_knob_choices_reach_the_schedule():
    """Different knob values give different programs (the knobs are not ignored)."""
    task = create_task("dense", (13, 29, 37))
    base = task.config(0).to_dict()
    texts = {str(task.lower(0))}
    for knob, value in [("mr", 4), ("nr", 32), ("unroll", False), ("parallel", "none")]:
        texts.add(str(task.lower(task.config({**base, knob: value}))))
    assert len(texts) == 5


def test_flop_counts_the_real_work():
    assert create_task("dense", (13, 29, 37)).flop == 2 * 13 * 29 * 37
    # 7 output channels (padded to 8 in the layout, not counted), 45 taps each
    assert create_task("conv2d_nchw", (1, 5, 11, 11, 7, 3, 3, 1, 1)).flop == \
        2 * 7 * 11 * 11 * 45


def test_schedule_rejects_unknown_knob_values():
    x, w = _ph((13, 37), (29, 37))
    y = MM.dense(x, w)
    with pytest.raises(ValueError, match="parallel must be"):
        SN.schedule_dense(te.create_schedule(y.op), y, parallel="inner")
    x, w = _ph((1, 5, 11, 11), (7, 5, 3, 3))
    y = CV.conv2d(x, w, padding=1)
    with pytest.raises(TypeError, match="mr"):
        SN.schedule_conv2d(te.create_schedule(y.op), SN.find_group_anchor(y), y, mr=4)


def test_create_task_imports_the_builtin_templates():
    """A fresh process finds the built-in templates without importing ops.templates."""
    code = ("import sys; from tensorc.autotune import create_task; "
            "assert 'tensorc.ops.templates' not in sys.modules; "
            "t = create_task('softmax', [[3, 5]]); print(len(t.config_space))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "4"  # lanes only: too little work for threads


def test_reduce_template_names_an_unknown_reducer():
    with pytest.raises(ValueError, match="unknown reducer 'median'"):
        len(create_task("reduce", ([4, 64], 1, "median")).config_space)


def test_reduce_lanes_knob_reaches_the_schedule():
    task = create_task("reduce", ([3, 97], 1))
    base = task.config(0).to_dict()
    texts = {str(task.lower(task.config({**base, "lanes": e.json()})))
             for e in task.config_space.knobs["lanes"].entities}
    assert len(texts) == 3
