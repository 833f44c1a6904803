"""Capsule ops (tensorc.ops.capsule) against float64 numpy written from the papers' equations:
the TE definitions, their schedules at odd sizes, and the numpy callables with their cache."""
import numpy as np
import pytest
from ops_helpers import check, lowered, placeholder

from tensorc import te
from tensorc.ops import capsule, capsule_schedule

EPS = 1e-7

# ------------------------------------------------------------------ references (Sabour et al.)


def np_predict(u, W):
    return np.einsum("ijdk,bik->bijd", W.astype(np.float64), u.astype(np.float64))


def np_squash(s, axis=-1):
    n2 = (s * s).sum(axis, keepdims=True)
    return n2 / (1 + n2) * s / np.sqrt(n2 + EPS)


def np_routing(u_hat, iterations):
    """Procedure 1 of the paper, with the logits b updated in place round by round."""
    u_hat = u_hat.astype(np.float64)
    B, I, J, _ = u_hat.shape
    b = np.zeros((B, I, J))
    for r in range(iterations):
        c = np.exp(b - b.max(2, keepdims=True))
        c /= c.sum(2, keepdims=True)
        v = np_squash(np.einsum("bij,bijd->bjd", c, u_hat))
        if r < iterations - 1:
            b = b + np.einsum("bijd,bjd->bij", u_hat, v)
    return v


def np_votes(pose, W, stride):
    B, H, Wd, C, P, _ = pose.shape
    K, _, _, O, _, _ = W.shape
    OH, OW = (H - K) // stride + 1, (Wd - K) // stride + 1
    out = np.zeros((B, OH, OW, K, K, C, O, P, P))
    for y in range(OH):
        for x in range(OW):
            win = pose[:, y * stride:y * stride + K, x * stride:x * stride + K]
            out[:, y, x] = np.einsum("bhwcpr,hwcorq->bhwcopq", win, W)
    return out


def rel_l2(got, ref):
    return np.linalg.norm(got - ref) / np.linalg.norm(ref)


# ------------------------------------------------------------------ TE + default schedules

B, I, J, DIN, DOUT = 3, 37, 5, 7, 9


def inputs(batch=B, seed=0):
    u, a = placeholder((batch, I, DIN), name="u", seed=seed)
    W, w = placeholder((I, J, DOUT, DIN), name="W", seed=seed + 1, lo=0.05, hi=0.3)
    return u, a, W, w


def test_predict():
    u, a, W, w = inputs()
    got = check(capsule.predict(u, W), {u: a, W: w}, np_predict, rtol=1e-5, atol=1e-5)
    assert rel_l2(got, np_predict(a, w)) < 1e-5


@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_dynamic_routing(iterations):
    x, a = placeholder((B, I, J, DOUT), name="u_hat", lo=0.05, hi=0.5)
    v = capsule.dynamic_routing(x, iterations)
    got = check(v, {x: a}, lambda p: np_routing(p, iterations), rtol=1e-5, atol=1e-6)
    assert rel_l2(got, np_routing(a, iterations)) < 1e-5


@pytest.mark.parametrize("batch,threads", [(1, 4), (3, 1), (9, 1), (9, 2)])
@pytest.mark.parametrize("iterations", [1, 3])
def test_predict_and_route_fused(monkeypatch, batch, threads, iterations):
    """The paths of the fused schedule: prediction first, parallel over input capsules (batch
    below the thread count); one block; blocks of MAX_BLOCK with a partial last block."""
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: threads)
    u, a, W, w = inputs(batch)
    v = capsule.dynamic_routing(capsule.predict(u, W), iterations)
    ref = np_routing(np_predict(a, w), iterations)
    got = check(v, {u: a, W: w}, lambda *_: ref, rtol=1e-5, atol=1e-6)
    assert rel_l2(got, ref) < 1e-5


def test_fused_schedule_keeps_prediction_vectors_per_block(monkeypatch):
    """u_hat is realized for one block of batch elements inside the parallel block loop,
    never for the whole batch."""
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: 1)
    u, _, W, _ = inputs(9)
    v = capsule.dynamic_routing(capsule.predict(u, W), 2)
    text = lowered(v, [u, W, v])
    block = capsule_schedule.MAX_BLOCK
    assert f"u_hat = allocate(float32[{block * I * J * DOUT}]" in text
    assert "# parallel" in text.split("u_hat = allocate")[0]


@pytest.mark.parametrize("batch,threads,iterations,n_in", [(1, 2, 3, 38), (2, 4, 2, 39),
                                                         (1, 3, 3, 39)])
def test_rounds_split_over_input_capsules_with_fewer_blocks_than_threads(
        monkeypatch, batch, threads, iterations, n_in):
    """Dout in vectors, fewer batch elements than threads: one element per block reads W's
    columns in place (no packed copy), and each round's weighted sum runs as parallel partial
    sums over runs of input capsules (rfactor), the couplings computed per chunk in each."""
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: threads)
    u, a = placeholder((batch, n_in, DIN), name="u")
    W, w = placeholder((n_in, J, DOUT, DIN), name="W", seed=1, lo=0.05, hi=0.3)
    v = capsule.dynamic_routing(capsule.predict(u, W), iterations)
    text = lowered(v, [u, W, v])
    assert "u_hat.pack" not in text
    assert all(f"v.s{r}.rf" in text for r in range(iterations))
    ref = np_routing(np_predict(a, w), iterations)
    got = check(v, {u: a, W: w}, lambda *_: ref, rtol=1e-5, atol=1e-6)
    assert rel_l2(got, ref) < 1e-5


@pytest.mark.parametrize("predict", ["block", "root"])
def test_rounds_stay_per_block_when_the_prediction_is(monkeypatch, predict):
    """Batch 1 on 2 threads with 38 input capsules would split the rounds; a prediction
    placed per block (a tuning knob) keeps them in the block, the root one lets them split."""
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: 2)
    u, a = placeholder((1, 38, DIN), name="u")
    W, w = placeholder((38, J, DOUT, DIN), name="W", seed=1, lo=0.05, hi=0.3)
    v = capsule.dynamic_routing(capsule.predict(u, W), 2)
    s = capsule_schedule.schedule_routing(te.create_schedule(v.op), v, predict=predict)
    import tensorc as tc
    assert ("v.s1.rf" in str(tc.lower(s, [u, W, v]))) == (predict == "root")
    s = capsule_schedule.schedule_routing(te.create_schedule(v.op), v, predict=predict)
    f = tc.build(s, [u, W, v])
    got = np.full((1, J, DOUT), np.nan, np.float32)
    f(a, w, got)
    ref = np_routing(np_predict(a, w), 2)
    assert rel_l2(got, ref) < 1e-5


@pytest.mark.parametrize("batch,lanes,threads,iterations", [
    (9, 8, 2, 3),    # a partial last block
    (8, 8, 2, 2),    # fewer blocks than threads: the prediction parallel over input capsules
    (12, 4, 1, 1),   # whole blocks, one round
    (5, 4, 3, 3)])
def test_predict_and_route_lanes(monkeypatch, batch, lanes, threads, iterations):
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: threads)
    u, a, W, w = inputs(batch)
    v = capsule.predict_and_route_lanes(u, W, iterations, lanes=lanes)
    assert v.op.attrs["lanes"] == lanes and tuple(v.shape) == (batch, J, DOUT)
    ref = np_routing(np_predict(a, w), iterations)
    got = check(v, {u: a, W: w}, lambda *_: ref, rtol=1e-5, atol=1e-6)
    assert rel_l2(got, ref) < 1e-5


@pytest.mark.parametrize("batch,lanes,threads,iterations", [
    (35, 16, 2, 3),  # whole blocks, a partial last one
    (16, 16, 2, 2),  # one block: each round split over input capsules
    (7, 4, 1, 1)])   # narrow vectors, one round
def test_predict_and_route_lanes_recomputed(monkeypatch, batch, lanes, threads, iterations):
    """Every round computes its own prediction vectors, chunk by chunk: the same v, and no
    buffer of a block's whole u_hat."""
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: threads)
    u, a, W, w = inputs(batch)
    v = capsule.predict_and_route_lanes(u, W, iterations, lanes=lanes, recompute=True)
    assert v.op.attrs["recompute"] and (lanes >= capsule.RECOMPUTE_LANES) == \
        capsule.predict_and_route_lanes(u, W, iterations, lanes=lanes).op.attrs["recompute"]
    text = lowered(v, [u, W, v])
    chunk = capsule_schedule._divisor(I, capsule_schedule.LANE_CHUNK)   # 37 is prime: 1
    for r in range(iterations):
        assert f"v.u_hat{r} = allocate(float32[{chunk * J * DOUT * lanes}]" in text
    assert "v.u_hat =" not in text
    ref = np_routing(np_predict(a, w), iterations)
    got = check(v, {u: a, W: w}, lambda *_: ref, rtol=1e-5, atol=1e-6)
    assert rel_l2(got, ref) < 1e-5


def test_recomputed_rounds_take_two_input_capsules_per_chunk(monkeypatch):
    """The default chunk of a recomputing round is RECOMPUTE_CHUNK (2: its prediction vectors
    stay in L1), where the stored layout takes LANE_CHUNK (4)."""
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: 2)
    n_in, lanes = 12, 16
    u, a = placeholder((21, n_in, DIN), name="u")
    W, w = placeholder((n_in, J, DOUT, DIN), name="W", seed=1, lo=0.05, hi=0.3)
    v = capsule.predict_and_route_lanes(u, W, 2, lanes=lanes, recompute=True)
    text = lowered(v, [u, W, v])
    assert capsule_schedule.RECOMPUTE_CHUNK == 2 and capsule_schedule.lane_chunk(False) == 4
    assert f"v.u_hat1 = allocate(float32[{2 * J * DOUT * lanes}]" in text
    ref = np_routing(np_predict(a, w), 2)
    got = check(v, {u: a, W: w}, lambda *_: ref, rtol=1e-5, atol=1e-6)
    assert rel_l2(got, ref) < 1e-5


@pytest.mark.parametrize("threads,iterations", [(2, 3), (4, 2)])
def test_lanes_rounds_split_over_input_capsules_with_fewer_blocks_than_threads(
        monkeypatch, threads, iterations):
    """One block, 38 input capsules: each round's weighted sum runs as two partial sums in
    parallel (rfactor), the couplings computed per chunk inside each."""
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: threads)
    u, a = placeholder((5, 38, DIN), name="u")
    W, w = placeholder((38, J, DOUT, DIN), name="W", seed=1, lo=0.05, hi=0.3)
    v = capsule.predict_and_route_lanes(u, W, iterations, lanes=8)
    text = lowered(v, [u, W, v])
    assert "v.s1.rf" in text and text.count("# parallel") >= 1 + iterations
    ref = np_routing(np_predict(a, w), iterations)
    got = check(v, {u: a, W: w}, lambda *_: ref, rtol=1e-5, atol=1e-6)
    assert rel_l2(got, ref) < 1e-5


def test_predict_and_route_lanes_float64():
    u, a = placeholder((6, I, DIN), "float64", name="u")
    W, w = placeholder((I, J, DOUT, DIN), "float64", name="W", seed=1, lo=0.05, hi=0.3)
    got = check(capsule.capsule_routing(u, W, 2, lanes=4), {u: a, W: w},
                lambda *_: np_routing(np_predict(a, w), 2), rtol=1e-10, atol=1e-12)
    assert rel_l2(got, np_routing(np_predict(a, w), 2)) < 1e-12


def test_lanes_schedule_keeps_prediction_vectors_per_block(monkeypatch):
    """u_hat (one block of lanes batch elements) is realized inside the parallel block loop,
    and every stage of a round is vectorized across the lanes."""
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: 2)
    u, _, W, _ = inputs(16)
    v = capsule.predict_and_route_lanes(u, W, 2, lanes=8)
    text = lowered(v, [u, W, v])
    assert f"v.u_hat = allocate(float32[{8 * I * J * DOUT}]" in text
    assert "# parallel" in text.split("v.u_hat = allocate")[0]
    round1 = text.split("# produce v.c1.logit")[1].split("# produce v.n2_1")[0]
    assert "ramp(" in round1 and "x8(W[" in text


def test_capsule_routing_rejects_bad_lanes():
    u, _, W, _ = inputs()
    with pytest.raises(ValueError, match="iterations and lanes must be at least 1"):
        capsule.predict_and_route_lanes(u, W, 3, lanes=0)
    with pytest.raises(TypeError, match="lanes"):
        capsule.capsule_routing(u, W, 3, lanes=2.5)
    with pytest.raises(TypeError, match="recompute must be True, False or None"):
        capsule.predict_and_route_lanes(u, W, 3, lanes=4, recompute="yes")


@pytest.mark.parametrize("axis", [-1, 1])
def test_squash(axis):
    x, a = placeholder((4, 6, 11), name="s", lo=0.01, hi=2.0)
    got = check(capsule.squash(x, axis), {x: a},
                lambda p: np_squash(p.astype(np.float64), axis), rtol=1e-5, atol=1e-6)
    norms = np.linalg.norm(got, axis=axis)
    assert (norms < 1).all()


def test_squash_of_a_zero_vector_is_zero():
    x = te.placeholder((2, 16), name="s")
    a = np.zeros((2, 16), "float32")
    a[1] = 0.5
    got = check(capsule.squash(x), {x: a}, lambda p: np_squash(p.astype(np.float64)))
    assert np.isfinite(got).all() and (got[0] == 0).all()


@pytest.mark.parametrize("stride", [1, 2])
def test_em_votes(stride):
    pose, p = placeholder((2, 7, 6, 3, 4, 4), name="pose")
    W, w = placeholder((3, 3, 3, 5, 4, 4), name="W", seed=1)
    votes = capsule.em_votes(pose, W, stride)
    assert votes.shape == (2, (7 - 3) // stride + 1, (6 - 3) // stride + 1, 3, 3, 3, 5, 4, 4)
    got = check(votes, {pose: p, W: w}, lambda a, b: np_votes(a, b, stride), rtol=1e-5,
                atol=1e-5)
    assert rel_l2(got, np_votes(p, w, stride)) < 1e-5


@pytest.mark.parametrize("batch,threads,lanes", [(1, 2, 0), (3, 1, 0), (9, 2, 0), (9, 2, 8)])
def test_packed_weights_give_the_same_result(monkeypatch, batch, threads, lanes):
    """weight_layout="packed": W (I, J, Din, Dout) from pack_weight, read as it is (no pack
    stage) in both layouts and every block placement."""
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: threads)
    u, a = placeholder((batch, I, DIN), name="u")
    W, w = placeholder((I, J, DIN, DOUT), name="W", seed=1, lo=0.05, hi=0.3)
    w_ijdk = w.transpose(0, 1, 3, 2)
    np.testing.assert_array_equal(capsule.pack_weight(w_ijdk), w)
    v = capsule.capsule_routing(u, W, 3, lanes=lanes, weight_layout="packed")
    assert "u_hat.pack" not in lowered(v, [u, W, v])
    ref = np_routing(np_predict(a, w_ijdk), 3)
    got = check(v, {u: a, W: w}, lambda *_: ref, rtol=1e-5, atol=1e-6)
    assert rel_l2(got, ref) < 1e-5
    got = check(capsule.predict(u, W, weight_layout="packed"), {u: a, W: w},
                lambda *_: np_predict(a, w_ijdk), rtol=1e-5, atol=1e-5)


def test_te_functions_reject_bad_arguments():
    u, _, W, _ = inputs()
    with pytest.raises(ValueError, match=r"weights W 'W' of shape .* do not fit input"):
        capsule.predict(u, te.placeholder((I, J, DOUT, DIN + 1), name="W"))
    with pytest.raises(ValueError, match=r"\(W in the packed layout \(in_caps, out_caps, "
                                         r"in_dim, out_dim\)\): .* W.shape\[2\] == 7"):
        capsule.predict(u, W, weight_layout="packed")
    with pytest.raises(ValueError, match="weight_layout must be one of"):
        capsule.capsule_routing(u, W, weight_layout="IJKD")
    with pytest.raises(ValueError, match="iterations must be at least 1"):
        capsule.dynamic_routing(capsule.predict(u, W), 0)
    with pytest.raises(TypeError, match="iterations must be an int"):
        capsule.dynamic_routing(capsule.predict(u, W), 2.0)
    with pytest.raises(ValueError, match=r"kernel 5x5 is larger than the 4x4 grid"):
        capsule.em_votes(te.placeholder((1, 4, 4, 2, 4, 4), name="pose"),
                         te.placeholder((5, 5, 2, 3, 4, 4), name="W"))


# ------------------------------------------------------------------ numpy callables


def test_run_functions_match_the_references():
    rng = np.random.default_rng(5)
    a = rng.uniform(-1, 1, (B, I, DIN)).astype("float32")
    w = rng.uniform(-0.3, 0.3, (I, J, DOUT, DIN)).astype("float32")
    u_hat = capsule.run_predict(a, w)
    assert u_hat.dtype == np.float32 and rel_l2(u_hat, np_predict(a, w)) < 1e-5
    for iterations in (1, 2, 3):
        ref = np_routing(np_predict(a, w), iterations)
        assert rel_l2(capsule.run_predict_and_route(a, w, iterations=iterations), ref) < 1e-5
        assert rel_l2(capsule.run_dynamic_routing(u_hat, iterations=iterations), ref) < 1e-5
    s = rng.uniform(-1, 1, (5, 3, 8))
    assert rel_l2(capsule.run_squash(s, axis=1), np_squash(s, 1)) < 1e-12   # float64 kernel
    packed = capsule.pack_weight(w)
    assert rel_l2(capsule.run_predict(a, packed, weight_layout="packed"), np_predict(a, w)) < 1e-5
    assert rel_l2(capsule.run_predict_and_route(a, packed, weight_layout="packed"),
                  np_routing(np_predict(a, w), 3)) < 1e-5
    pose = rng.uniform(-1, 1, (1, 5, 5, 2, 4, 4)).astype("float32")
    wv = rng.uniform(-1, 1, (3, 3, 2, 4, 4, 4)).astype("float32")
    assert rel_l2(capsule.run_em_votes(pose, wv, stride=2), np_votes(pose, wv, 2)) < 1e-5


@pytest.mark.parametrize("native,expected", [
    (16, {3: 0, 5: 4, 8: 8, 11: 8, 16: 16, 128: 16}),   # AVX-512: 16-lane blocks recompute
    (8, {3: 0, 5: 4, 8: 8, 11: 8, 16: 8, 128: 8}),      # AVX2: at most MAX_LANES, stored
    (4, {3: 0, 4: 4, 128: 4})])
def test_cpu_lanes_by_vector_width_and_batch(monkeypatch, native, expected):
    monkeypatch.setattr(capsule_schedule, "vector_lanes", lambda dtype: native)
    for batch, lanes in expected.items():
        assert capsule_schedule.cpu_lanes.__wrapped__(batch, "float32") == lanes, batch


def test_run_predict_and_route_takes_the_lanes_layout_for_a_full_vector_of_batch(monkeypatch):
    from tensorc.ops import capsule_api
    from tensorc.ops.schedule_cpu import vector_lanes
    batch = vector_lanes("float32") + 3
    lanes = capsule_schedule.cpu_lanes(batch, "float32")
    built = []
    real = capsule.predict_and_route_lanes
    monkeypatch.setattr(capsule, "predict_and_route_lanes",
                        lambda *a, **k: built.append(a[4]) or real(*a, **k))
    capsule_api.cache_clear()
    rng = np.random.default_rng(7)
    for b in (batch, 3):
        a = rng.uniform(-1, 1, (b, I, DIN)).astype("float32")
        w = rng.uniform(-0.3, 0.3, (I, J, DOUT, DIN)).astype("float32")
        got = capsule.run_predict_and_route(a, w, iterations=3)
        assert rel_l2(got, np_routing(np_predict(a, w), 3)) < 1e-5
    assert built == [lanes]     # the smaller batch kept Dout in vectors


def test_run_compiles_once_per_shape_and_parameters():
    rng = np.random.default_rng(6)
    a = rng.uniform(-1, 1, (2, 11, 3)).astype("float32")
    w = rng.uniform(-1, 1, (11, 4, 5, 3)).astype("float32")
    first = capsule.run_predict_and_route(a, w, iterations=2)
    before = capsule.cache_info()
    again = capsule.run_predict_and_route(a[::-1].copy()[::-1], w, iterations=2)
    after = capsule.cache_info()
    assert (after.misses, after.hits) == (before.misses, before.hits + 1)
    np.testing.assert_array_equal(first, again)
    capsule.run_predict_and_route(a, w, iterations=3)          # a new compile-time constant
    assert capsule.cache_info().misses == after.misses + 1


def test_run_functions_reject_bad_arrays_naming_the_argument():
    a = np.ones((2, 11, 3), "float32")
    w = np.ones((11, 4, 5, 3), "float32")
    with pytest.raises(ValueError, match=r"weights W 'W' of shape \(11, 4, 5, 2\) do not fit"):
        capsule.run_predict(a, w[..., :2])
    with pytest.raises(ValueError, match="prediction vectors u_hat 'u_hat' must have 4 dim"):
        capsule.run_dynamic_routing(a)
    with pytest.raises(TypeError, match="run_predict: W must be a numpy array"):
        capsule.run_predict(a, w.tolist())
    with pytest.raises(TypeError, match="u is float32, W is float64"):
        capsule.run_predict_and_route(a, w.astype("float64"))
    with pytest.raises(TypeError, match="u_hat has dtype int64"):
        capsule.run_dynamic_routing(np.ones((1, 2, 3, 4), "int64"))


# ------------------------------------------------------------------ tuning template


@pytest.mark.parametrize("batch,threads", [(3, 4), (9, 2)])
def test_template_point_zero_is_the_default_schedule(monkeypatch, batch, threads):
    import tensorc as tc
    from tensorc.autotune import create_task
    from tensorc.ops.schedule_cpu import schedule_for
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: threads)
    task = create_task("capsule_routing", [batch, I, J, DIN, DOUT, 3])
    u, _, W, _ = inputs(batch)
    v = capsule.dynamic_routing(capsule.predict(u, W), 3)
    expected = str(tc.lower(schedule_for(v), [u, W, v], name="f"))
    assert str(task.lower(0, name="f")) == expected
    assert task.flop == 2 * batch * I * J * DOUT * (DIN + 5)


def test_template_points_match_numpy(monkeypatch):
    """Every point of a small space (blocks, chunks below I, both prediction placements)."""
    from tensorc.autotune import create_task
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: 2)
    task = create_task("capsule_routing", [5, I, J, DIN, DOUT, 2])
    assert set(task.config_space.knobs) == {"block", "chunk", "predict"}
    texts = set()
    rng = np.random.default_rng(7)
    a = rng.uniform(-1, 1, (5, I, DIN)).astype("float32")
    w = rng.uniform(-0.3, 0.3, (I, J, DOUT, DIN)).astype("float32")
    ref = np_routing(np_predict(a, w), 2)
    for index in range(len(task.config_space)):
        texts.add(str(task.lower(index)))
        out = np.full((5, J, DOUT), np.nan, "float32")
        task.build(index)(a, w, out)
        assert rel_l2(out, ref) < 1e-5, task.config(index)
    assert len(texts) == len(task.config_space)


def test_lanes_template_point_zero_is_the_default_and_points_match_numpy(monkeypatch):
    import tensorc as tc
    from tensorc.autotune import create_task
    from tensorc.ops.schedule_cpu import schedule_for
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: 2)
    batch, inputs_ = 9, 36
    task = create_task("capsule_routing_lanes", [batch, inputs_, J, DIN, DOUT, 2])
    assert set(task.config_space.knobs) == {"lanes", "chunk", "dblock"}
    u = te.placeholder((batch, inputs_, DIN), name="u")
    W = te.placeholder((inputs_, J, DOUT, DIN), name="W")
    lanes = capsule_schedule.cpu_lanes(batch, "float32")
    v = capsule.capsule_routing(u, W, 2, lanes=lanes)
    assert str(task.lower(0, name="f")) == str(tc.lower(schedule_for(v), [u, W, v], name="f"))
    assert len({str(task.lower(k)) for k in range(len(task.config_space))}) == \
        len(task.config_space)
    rng = np.random.default_rng(8)
    a = rng.uniform(-1, 1, (batch, inputs_, DIN)).astype("float32")
    w = rng.uniform(-0.3, 0.3, (inputs_, J, DOUT, DIN)).astype("float32")
    ref = np_routing(np_predict(a, w), 2)
    for index in (0, len(task.config_space) - 1):
        out = np.full((batch, J, DOUT), np.nan, "float32")
        task.build(index)(a, w, out)
        assert rel_l2(out, ref) < 1e-5, task.config(index)


@pytest.mark.parametrize("name", ["capsule_predict", "capsule_dynamic_routing"])
def test_predict_and_routing_alone_templates(monkeypatch, name):
    """Each half of the op alone: point 0 the default schedule, every point (blocks, and the
    routing's chunks below I) a distinct program that computes the numpy result."""
    import tensorc as tc
    from tensorc.autotune import create_task
    from tensorc.ops.schedule_cpu import schedule_for
    monkeypatch.setattr(capsule_schedule, "_threads", lambda: 2)
    batch = 5
    u, a, W, w = inputs(batch)
    if name == "capsule_predict":
        task = create_task(name, [batch, I, J, DIN, DOUT])
        out = capsule.predict(u, W)
        tensors, arrays, ref = [u, W, out], [a, w], np_predict(a, w)
        assert set(task.config_space.knobs) == {"block"}
    else:
        u_hat, uh = placeholder((batch, I, J, DOUT), name="u_hat", seed=3)
        task = create_task(name, [batch, I, J, DOUT, 2])
        out = capsule.dynamic_routing(u_hat, 2)
        tensors, arrays, ref = [u_hat, out], [uh], np_routing(uh.astype(np.float64), 2)
        assert set(task.config_space.knobs) == {"block", "chunk"}
    assert str(task.lower(0, name="f")) == str(tc.lower(schedule_for(out), tensors, name="f"))
    texts = set()
    for index in range(len(task.config_space)):
        texts.add(str(task.lower(index)))
        got = np.full(ref.shape, np.nan, "float32")
        task.build(index)(*arrays, got)
        assert rel_l2(got, ref) < 1e-5, task.config(index)
    assert len(texts) == len(task.config_space)


def test_votes_template_point_zero_is_the_default_and_every_point_matches_numpy(monkeypatch):
    """All 12 points (parallel loops x output-type blocks x unrolled rows) of an odd-sized
    stride-2 layer: distinct programs, each the numpy votes, point 0 the default schedule."""
    import tensorc as tc
    from tensorc.autotune import create_task
    from tensorc.ops.schedule_cpu import schedule_for
    monkeypatch.setattr(capsule_schedule, "PARALLEL_MIN", 0)
    args = [2, 7, 6, 3, 4, 3, 4, 2]   # B, H, Wd, C, O, K, P, stride
    task = create_task("capsule_em_votes", args)
    assert {n: len(k.entities) for n, k in task.config_space.knobs.items()} == \
        {"parallel": 2, "oblock": 3, "unroll_rows": 2}
    pose, p = placeholder((2, 7, 6, 3, 4, 4), name="pose")
    W, w = placeholder((3, 3, 3, 4, 4, 4), name="W", seed=1)
    votes = capsule.em_votes(pose, W, 2)
    assert str(task.lower(0, name="f")) == str(tc.lower(schedule_for(votes), [pose, W, votes],
                                                        name="f"))
    assert task.flop == 2 * 4 * np.prod(votes.shape)
    texts = set()
    ref = np_votes(p, w, 2)
    for index in range(len(task.config_space)):
        texts.add(str(task.lower(index)))
        out = np.full(ref.shape, np.nan, "float32")
        task.build(index)(p, w, out)
        assert rel_l2(out, ref) < 1e-5, task.config(index)
    assert len(texts) == len(task.config_space)


def test_votes_schedule_names_a_bad_knob():
    pose = te.placeholder((1, 5, 5, 2, 4, 4), name="pose")
    votes = capsule.em_votes(pose, te.placeholder((3, 3, 2, 3, 4, 4), name="W"))
    with pytest.raises(ValueError, match="oblock 2 does not divide the 3 output capsule types "
                                         "of 'votes'"):
        capsule_schedule.schedule_votes(te.create_schedule(votes.op), votes, oblock=2)
    with pytest.raises(ValueError, match="parallel must be one of"):
        capsule_schedule.schedule_votes(te.create_schedule(votes.op), votes, parallel="b")


def test_template_has_no_chunk_knob_for_one_round():
    from tensorc.autotune import create_task
    task = create_task("capsule_routing", [3, I, J, DIN, DOUT, 1])
    assert set(task.config_space.knobs) == {"block", "predict"}


def test_schedule_rejects_an_unknown_prediction_placement():
    u, _, W, _ = inputs()
    v = capsule.dynamic_routing(capsule.predict(u, W), 2)
    with pytest.raises(ValueError, match="predict must be one of"):
        capsule_schedule.schedule_routing(te.create_schedule(v.op), v, predict="inner")


@pytest.mark.parametrize("first", ["tensorc.ops.capsule_api", "tensorc.ops.capsule_schedule",
                                   "tensorc.ops.capsule"])
def test_capsule_modules_import_in_any_order(first):
    """capsule, capsule_api and capsule_schedule build on each other; a fresh process that
    imports any of them first still gets all three whole."""
    import subprocess
    import sys
    code = (f"import {first}\nfrom tensorc.ops import capsule, capsule_api, capsule_schedule\n"
            "assert capsule.run_predict_and_route is capsule_api.run_predict_and_route\n"
            "assert capsule_schedule.cpu_lanes(3, 'float32') == 0\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
