"""Capsule networks: prediction vectors, squash, dynamic routing (Sabour et al. 2017) and the
convolutional votes of matrix capsules (Hinton et al. 2018), as TE that reads as the papers.

Shapes: u (B, I, Din) are the input capsules, W (I, J, Dout, Din) one matrix per pair of an
input capsule i and an output capsule j, u_hat (B, I, J, Dout) the prediction vectors, v
(B, J, Dout) the output capsules.

    u_hat[b, i, j]  = W[i, j] @ u[b, i]                                          (predict)
    squash(s)       = |s|^2 / (1 + |s|^2) * s / sqrt(|s|^2 + eps)                 (squash)
    routing, logits b[b, i, j] = 0 at the start; each of ``iterations`` rounds:
        c[b, i, :]  = softmax over j of b[b, i, :]
        s[b, j]     = sum_i c[b, i, j] * u_hat[b, i, j]
        v[b, j]     = squash(s[b, j])
        b[b, i, j] += u_hat[b, i, j] . v[b, j]              (not after the last round)

The logits are written in closed form: after r rounds b[b, i, j] = u_hat[b, i, j] . V_r[b, j]
with V_r = v_1 + ... + v_r (the updates are dot products with one fixed u_hat, so they add
under the dot). That needs the (B, J, Dout) running sum V_r instead of the (B, I, J) logits
of every round, and lets a schedule compute a round's logits, softmax and weighted sum in one
pass over u_hat (``capsule_schedule``). The first round's coupling is the uniform 1/J.

``predict_and_route_lanes`` computes the same v with the batch in the vector lanes (every
intermediate indexed [batch block, ..., element within the block]); the CPU takes it for a
batch of at least 4 (``capsule_routing(lanes=)``, chosen by ``capsule_api`` and the graph
pass ``choose_capsule_layout``).

All stages carry the tag "capsule" and ``attrs["capsule"]`` naming the op ("predict",
"squash", "routing", "votes"); a composite's inner stages (W's packed copy, a round's sums and
couplings) also carry ``attrs["part"]``, as the softmax and norms do, so ``ops.schedule_for``
hands the whole composite to the schedule that ``capsule_schedule`` registers. The ``run_*``
functions (``capsule_api``) run them on numpy arrays, compiling each shape once:

    from tensorc.ops import capsule
    v = capsule.run_predict_and_route(u, W, iterations=3)    # numpy in, numpy out
"""
from .. import te
from ..ir import dtype as dt
from .util import check_tensor, normalize_axis, static_int

TAG = "capsule"

#: Added to |s|^2 under the square root of squash, so a zero vector squashes to zero (0 * 0 /
#: sqrt(eps)) rather than to 0/0; negligible against any |s|^2 above 1e-3.
EPS = 1e-7


def _float(op, x, what):
    check_tensor(op, x, what)
    if not dt.is_float(x.dtype):
        raise TypeError(f"{op}: {what} {x.name!r} has dtype {x.dtype}; {op} needs a "
                        "floating-point tensor")
    return x


def _stage(shape, fn, name, kind, part=None, **attrs):
    attrs["capsule"] = kind
    if part is not None:
        attrs["part"] = part
    return te.compute(shape, fn, name=name, tag=TAG, attrs=attrs)


def _rank(op, x, what, rank, layout):
    if x.ndim != rank:
        raise ValueError(f"{op}: {what} {x.name!r} must have {rank} dimensions {layout}, got "
                         f"shape {x.shape}")


#: The layouts W may come in: "IJDK", (I, J, Dout, Din), one Dout x Din matrix per pair (i, j)
#: as the paper and public code write it; or "packed", (I, J, Din, Dout) (``pack_weight``),
#: Dout innermost as the prediction multiplies it. A model's constant W is packed once, at
#: compile time, by the graph pass ``choose_capsule_layout``, as conv2d's weights are.
WEIGHT_LAYOUTS = ("IJDK", "packed")


def pack_weight(W):
    """numpy: W (I, J, Dout, Din) in the layout ``weight_layout="packed"`` reads,
    (I, J, Din, Dout)."""
    import numpy as np
    w = np.asarray(W)
    if w.ndim != 4:
        raise ValueError(f"capsule.pack_weight: W must have 4 dimensions (in_caps, out_caps, "
                         f"out_dim, in_dim), got shape {w.shape}")
    return np.ascontiguousarray(w.transpose(0, 1, 3, 2))


def _weight_at(W, weight_layout):
    """W's element (i, j, d, k) (output dimension d, input dimension k) in either layout."""
    if weight_layout == "packed":
        return lambda i, j, d, k: W[i, j, k, d]
    return lambda i, j, d, k: W[i, j, d, k]


def predict(u, W, name="u_hat", weight_layout="IJDK"):
    """u_hat[b, i, j, :] = W[i, j] @ u[b, i, :]: u (B, I, Din), W (I, J, Dout, Din) (or
    (I, J, Din, Dout) with ``weight_layout="packed"``).

    An "IJDK" W is read through a packed copy Wt[i, j, k, d] = W[i, j, d, k] (attrs part
    "pack"): with Dout innermost a schedule multiplies whole vectors of W by one broadcast
    element of u. A "packed" W is that copy already.
    """
    J, Dout, Din = _predict_shapes("capsule.predict", u, W, weight_layout)
    B, I, _ = u.shape
    if weight_layout == "packed":
        Wt = W
    else:
        Wt = _stage((I, J, Din, Dout), lambda i, j, k, d: W[i, j, d, k], f"{name}.pack",
                    "predict", part="pack")
    k = te.reduce_axis((0, Din), name="k")
    return _stage((B, I, J, Dout),
                  lambda b, i, j, d: te.sum(Wt[i, j, k, d] * u[b, i, k], axis=k),
                  name, "predict")


def _predict_shapes(op, u, W, weight_layout="IJDK"):
    """(J, Dout, Din) of W, after checking u and W fit each other in ``weight_layout``."""
    if weight_layout not in WEIGHT_LAYOUTS:
        raise ValueError(f"{op}: weight_layout must be one of {WEIGHT_LAYOUTS}, got "
                         f"{weight_layout!r}")
    packed = weight_layout == "packed"
    layout = "(in_caps, out_caps, in_dim, out_dim)" if packed else \
        "(in_caps, out_caps, out_dim, in_dim)"
    _float(op, u, "input capsules u")
    _float(op, W, "weights W")
    _rank(op, u, "input capsules u", 3, "(batch, in_caps, in_dim)")
    _rank(op, W, "weights W", 4, layout)
    if u.dtype != W.dtype:
        raise TypeError(f"{op}: u {u.name!r} is {u.dtype} but W {W.name!r} is {W.dtype}")
    (_, I, Din), (I2, J, a, b) = u.shape, W.shape
    Dout, Din2 = (b, a) if packed else (a, b)
    if (I2, Din2) != (I, Din):
        where = 2 if packed else 3
        raise ValueError(f"{op}: weights W {W.name!r} of shape {W.shape} do not fit input "
                         f"capsules u {u.name!r} of shape {u.shape} (W in the {weight_layout} "
                         f"layout {layout}): need W.shape[0] == {I} (in_caps) and "
                         f"W.shape[{where}] == {Din} (in_dim)")
    return J, Dout, Din


def _squash_scale(n2, eps):
    """The factor squash multiplies s by, from n2 = |s|^2."""
    return n2 / ((1 + n2) * te.sqrt(n2 + te.const(eps, n2.dtype)))


def squash(s, axis=-1, eps=EPS, name="squash"):
    """s scaled to length |s|^2 / (1 + |s|^2) < 1 along ``axis``: short vectors shrink to
    almost zero, long ones to almost unit length, the direction kept."""
    op = "capsule.squash"
    _float(op, s, "input")
    axis = normalize_axis(op, s, axis)
    rest = s.shape[:axis] + s.shape[axis + 1:]

    def norm2(*i):
        k = te.reduce_axis((0, s.shape[axis]), name="k")
        x = s[i[:axis] + (k,) + i[axis:]]
        return te.sum(x * x, axis=k)
    n2 = _stage(rest, norm2, f"{name}.norm2", "squash", part="norm2")
    return _stage(s.shape, lambda *i: s[i] * _squash_scale(n2[i[:axis] + i[axis + 1:]], eps),
                  name, "squash", axis=axis)


def dynamic_routing(u_hat, iterations=3, eps=EPS, name="v"):
    """Routing by agreement: v (B, J, Dout) from u_hat (B, I, J, Dout) in ``iterations``
    rounds (a compile-time count; see the module docstring for the closed-form logits)."""
    op = "capsule.dynamic_routing"
    _float(op, u_hat, "prediction vectors u_hat")
    _rank(op, u_hat, "prediction vectors u_hat", 4, "(batch, in_caps, out_caps, out_dim)")
    static_int(op, "iterations", iterations)
    if iterations < 1:
        raise ValueError(f"{op}: iterations must be at least 1, got {iterations}")
    V = None  # running sum of the rounds' outputs: the logits are u_hat . V
    for r in range(iterations):
        c = None if V is None else _coupling(u_hat, V, f"{name}.c{r}", r)
        s = _weighted_sum(u_hat, c, f"{name}.s{r}", r)
        n2 = _norm2(s, f"{name}.n2_{r}", r)
        if r == iterations - 1:
            return _squashed(s, n2, eps, V, name, None, iterations=iterations)
        V = _squashed(s, n2, eps, V, f"{name}.V{r + 1}", r, add=True)


def capsule_routing(x, W=None, iterations=3, eps=EPS, name="v", lanes=0, weight_layout="IJDK"):
    """The graph operator "capsule_routing": v (B, J, Dout) = dynamic_routing(predict(x, W))
    when W is given, else dynamic_routing(x) with x the prediction vectors. One operator, so
    the graph compiler makes it one kernel with the fused schedule (the graph pass
    ``passes.capsule`` puts it where an imported model routes). ``lanes`` > 0 (with W) builds
    the same result in the batch-in-lanes layout of ``predict_and_route_lanes``, which the
    CPU compiler picks (``passes.choose_capsule_layout``). ``weight_layout`` is W's, as in
    ``predict``."""
    static_int("capsule.capsule_routing", "lanes", lanes)
    if lanes and W is not None:
        return predict_and_route_lanes(x, W, iterations, eps, lanes, name, weight_layout)
    u_hat = x if W is None else predict(x, W, f"{name}.u_hat", weight_layout)
    return dynamic_routing(u_hat, iterations, eps, name)


#: The narrowest blocks whose rounds recompute their prediction vectors (``recompute`` None
#: in ``predict_and_route_lanes``). A block keeps its u_hat in memory (lanes x 737 KB at MNIST
#: sizes, beyond the L2 cache) and streams it from L3 once per round; recomputing a chunk of it
#: in L1 instead costs Din multiply-adds per element, each broadcasting one element of W
#: against all lanes, so it is the cheaper of the two on 16-float vectors (AVX-512: 1.14 vs
#: 1.38 ms at batch 32, 4.3 vs 5.1 at 128 on 2 threads of a Zen 5) and the dearer on 8 (the
#: same machine restricted to AVX2: 2.1 vs 1.6, 7.9 vs 5.5; benchmarks/RESULTS.md).
RECOMPUTE_LANES = 16


def predict_and_route_lanes(u, W, iterations=3, eps=EPS, lanes=8, name="v",
                            weight_layout="IJDK", recompute=None):
    """v (B, J, Dout) = dynamic_routing(predict(u, W)), computed with the batch in vector lanes.

    The batch is cut into blocks of ``lanes`` elements (the last one padded with zero
    capsules, whose prediction vectors are zero and add nothing), and every intermediate
    keeps the element's place in its block as the innermost axis: u_hat is (B/L, I, J, Dout,
    L). Each multiply-add of the prediction then broadcasts one element of W, read in place,
    against L batch elements, and a logit's dot product over Dout, the softmax over j and the
    weighted sum over i are elementwise across the lanes: no repacking of W, no horizontal
    sums. The price is a block's prediction vectors in memory (5.9 MB at MNIST sizes and 8
    lanes), which ``capsule_schedule.schedule_routing_lanes`` streams once per round, or,
    with ``recompute`` (None: at least ``RECOMPUTE_LANES`` lanes), every round computes its
    own prediction vectors (parts "u_hat0", "u_hat1", ...), which the schedule places chunk
    by chunk where the round reads them. Stages and parts are named as in ``predict`` and
    ``dynamic_routing``; the result carries ``attrs["lanes"]`` and ``attrs["recompute"]``.
    ``weight_layout`` is W's, as in ``predict``.
    """
    op = "capsule.predict_and_route_lanes"
    J, Dout, Din = _predict_shapes(op, u, W, weight_layout)
    static_int(op, "iterations", iterations)
    static_int(op, "lanes", lanes)
    if iterations < 1 or lanes < 1:
        raise ValueError(f"{op}: iterations and lanes must be at least 1, got {iterations} "
                         f"and {lanes}")
    if recompute is None:
        recompute = lanes >= RECOMPUTE_LANES
    elif not isinstance(recompute, bool):
        raise TypeError(f"{op}: recompute must be True, False or None, got {recompute!r}")
    B, I, _ = u.shape
    L, dtype = lanes, u.dtype
    w_at = _weight_at(W, weight_layout)

    def lane_of_u(bo, i, k, lane):
        b = bo * L + lane
        if B % L == 0:
            return u[b, i, k]
        return te.if_then_else(b < B, u[te.min(b, B - 1), i, k], te.const(0, dtype))
    shape5 = (-(-B // L), I, J, Dout, L)
    uT = _stage((shape5[0], I, Din, L), lane_of_u, f"{name}.u_lanes", "routing", part="pack")

    def prediction(suffix):
        k = te.reduce_axis((0, Din), name="k")
        return _stage(shape5, lambda bo, i, j, d, lane: te.sum(
            w_at(i, j, d, k) * uT[bo, i, k, lane], axis=k),
            f"{name}.u_hat{suffix}", "routing", part=f"u_hat{suffix}")
    uh = None if recompute else prediction("")
    V = None  # running sum of the rounds' outputs, as in dynamic_routing
    for r in range(iterations):
        if recompute:
            uh = prediction(r)
        c = None if V is None else _coupling_lanes(uh, V, f"{name}.c{r}", r)
        s = _weighted_sum_lanes(uh, c, f"{name}.s{r}", r)
        dn = te.reduce_axis((0, Dout), name="d")
        n2 = _stage(s.shape[:2] + s.shape[3:], lambda bo, j, lane: te.sum(
            s[bo, j, dn, lane] * s[bo, j, dn, lane], axis=dn),  # noqa: B023 (built here)
            f"{name}.n2_{r}", "routing", part=f"n2_{r}", round=r)
        if r < iterations - 1:
            V = _running_sum_lanes(s, n2, V, eps, f"{name}.V{r + 1}", r)
    return _stage((B, J, Dout), lambda b, j, d: s[b // L, j, d, b % L] * _squash_scale(
        n2[b // L, j, b % L], eps), name, "routing", iterations=iterations, lanes=L,
        recompute=recompute)


def _weighted_sum_lanes(uh, c, name, r):
    """s[bo, j, d, lane] = sum_i c[bo, i, j, lane] * u_hat[bo, i, j, d, lane]; c = 1/J (None)
    in the first round."""
    nb, I, J, Dout, L = uh.shape
    i = te.reduce_axis((0, I), name="i")
    if c is None:
        def f(bo, j, d, lane):
            return te.sum(uh[bo, i, j, d, lane] * te.const(1 / J, uh.dtype), axis=i)
    else:
        def f(bo, j, d, lane):
            return te.sum(c[bo, i, j, lane] * uh[bo, i, j, d, lane], axis=i)
    return _stage((nb, J, Dout, L), f, name, "routing", part=f"s{r}", round=r)


def _running_sum_lanes(s, n2, V, eps, name, r):
    """V + squash(s) (V None: 0) in the lanes layout."""
    def f(bo, j, d, lane):
        v = s[bo, j, d, lane] * _squash_scale(n2[bo, j, lane], eps)
        return v if V is None else v + V[bo, j, d, lane]
    return _stage(s.shape, f, name, "routing", part=f"V{r + 1}", round=r)


def _coupling_lanes(uh, V, name, r):
    """``_coupling`` for ``predict_and_route_lanes``: c[bo, i, j, lane], every stage
    elementwise across the lanes."""
    _, I, J, Dout, _ = uh.shape
    d = te.reduce_axis((0, Dout), name="d")
    logit = _stage(uh.shape[:3] + uh.shape[4:], lambda bo, i, j, lane: te.sum(
        uh[bo, i, j, d, lane] * V[bo, j, d, lane], axis=d), f"{name}.logit", "routing",
        part=f"logit{r}", round=r)
    per_i = uh.shape[:2] + uh.shape[4:]
    jm = te.reduce_axis((0, J), name="jm")
    m = _stage(per_i, lambda bo, i, lane: te.max(logit[bo, i, jm, lane], axis=jm),
               f"{name}.max", "routing", part=f"max{r}", round=r)
    e = _stage(logit.shape, lambda bo, i, j, lane: te.exp(logit[bo, i, j, lane] -
                                                          m[bo, i, lane]),
               f"{name}.exp", "routing", part=f"exp{r}", round=r)
    js = te.reduce_axis((0, J), name="js")
    z = _stage(per_i, lambda bo, i, lane: te.sum(e[bo, i, js, lane], axis=js), f"{name}.sum",
               "routing", part=f"sum{r}", round=r)
    return _stage(logit.shape, lambda bo, i, j, lane: e[bo, i, j, lane] / z[bo, i, lane], name,
                  "routing", part=f"c{r}", round=r)


def _weighted_sum(u_hat, c, name, r):
    """s[b, j] = sum_i c[b, j, i] * u_hat[b, i, j]; c = 1/J (None) in the first round."""
    B, I, J, Dout = u_hat.shape
    i = te.reduce_axis((0, I), name="i")
    if c is None:
        def f(b, j, d):
            return te.sum(u_hat[b, i, j, d] * te.const(1 / J, u_hat.dtype), axis=i)
    else:
        def f(b, j, d):
            return te.sum(c[b, j, i] * u_hat[b, i, j, d], axis=i)
    return _stage((B, J, Dout), f, name, "routing", part=f"s{r}", round=r)


def _norm2(s, name, r):
    d = te.reduce_axis((0, s.shape[2]), name="d")
    return _stage(s.shape[:2], lambda b, j: te.sum(s[b, j, d] * s[b, j, d], axis=d), name,
                  "routing", part=f"n2_{r}", round=r)


def _squashed(s, n2, eps, V, name, r, add=False, **attrs):
    """squash(s) (the output, r None), or V + squash(s) (the running sum; V None: 0)."""
    def f(b, j, d):
        v = s[b, j, d] * _squash_scale(n2[b, j], eps)
        return v + V[b, j, d] if add and V is not None else v
    if r is None:
        return _stage(s.shape, f, name, "routing", **attrs)
    return _stage(s.shape, f, name, "routing", part=f"V{r + 1}", round=r)


def _coupling(u_hat, V, name, r):
    """c[b, j, i] = softmax over j of the logits u_hat[b, i, j] . V[b, j] (max-subtracted).

    Stored j-major, (B, J, I): the softmax runs along j for every i, so with i innermost a
    schedule computes it for a run of input capsules at once, in vectors.
    """
    B, I, J, Dout = u_hat.shape
    d = te.reduce_axis((0, Dout), name="d")
    logit = _stage((B, J, I), lambda b, j, i: te.sum(u_hat[b, i, j, d] * V[b, j, d], axis=d),
                   f"{name}.logit", "routing", part=f"logit{r}", round=r)
    jm = te.reduce_axis((0, J), name="jm")
    m = _stage((B, I), lambda b, i: te.max(logit[b, jm, i], axis=jm), f"{name}.max", "routing",
               part=f"max{r}", round=r)
    e = _stage((B, J, I), lambda b, j, i: te.exp(logit[b, j, i] - m[b, i]), f"{name}.exp",
               "routing", part=f"exp{r}", round=r)
    js = te.reduce_axis((0, J), name="js")
    z = _stage((B, I), lambda b, i: te.sum(e[b, js, i], axis=js), f"{name}.sum", "routing",
               part=f"sum{r}", round=r)
    return _stage((B, J, I), lambda b, j, i: e[b, j, i] / z[b, i], name, "routing",
                  part=f"c{r}", round=r)


def em_votes(pose, W, stride=1, name="votes"):
    """Votes of a convolutional matrix-capsule layer (EM routing's input): every output
    position (y, x) gathers the K x K window of input capsules at (y*stride + ky, x*stride +
    kx), and each input capsule's P x P pose matrix M votes for every output capsule type o
    through its own transformation matrix:

        votes[b, y, x, ky, kx, c, o] = M[b, y*stride + ky, x*stride + kx, c] @ W[ky, kx, c, o]

    pose (B, H, Wd, C, P, P), W (K, K, C, O, P, P) (the paper's ConvCaps weights, shared over
    positions), votes (B, OH, OW, K, K, C, O, P, P) with OH = (H - K) // stride + 1, no
    padding. EM routing treats (ky, kx, c) as one axis of K*K*C input capsules: reshape. Not
    included: the class-capsule layer's coordinate addition.
    """
    op = "capsule.em_votes"
    _float(op, pose, "poses")
    _float(op, W, "weights W")
    _rank(op, pose, "poses", 6, "(batch, height, width, caps, P, P)")
    _rank(op, W, "weights W", 6, "(K, K, in_caps, out_caps, P, P)")
    static_int(op, "stride", stride)
    if stride < 1:
        raise ValueError(f"{op}: stride must be at least 1, got {stride}")
    B, H, Wd, C, P, P2 = pose.shape
    K, K2, C2, O, Pw, Pw2 = W.shape
    if P != P2 or (Pw, Pw2) != (P, P):
        raise ValueError(f"{op}: pose matrices must be square and match W's: poses "
                         f"{pose.name!r} {pose.shape}, W {W.name!r} {W.shape}")
    if K != K2 or C2 != C:
        raise ValueError(f"{op}: weights W {W.name!r} of shape {W.shape} must be (K, K, {C}, "
                         f"out_caps, {P}, {P}) for poses {pose.name!r} of shape {pose.shape}")
    if K > H or K > Wd:
        raise ValueError(f"{op}: kernel {K}x{K} is larger than the {H}x{Wd} grid of poses "
                         f"{pose.name!r}")
    OH, OW = (H - K) // stride + 1, (Wd - K) // stride + 1
    r = te.reduce_axis((0, P), name="r")
    return _stage(
        (B, OH, OW, K, K, C, O, P, P),
        lambda b, y, x, ky, kx, c, o, p, q: te.sum(
            pose[b, y * stride + ky, x * stride + kx, c, p, r] * W[ky, kx, c, o, r, q], axis=r),
        name, "votes", stride=stride)


from . import capsule_schedule  # noqa: E402, F401  (registers the "capsule" schedules)

#: The numpy-level functions of ``capsule_api``, reachable here. Looked up on first use
#: (PEP 562): capsule_api builds on this module, so importing it from here would make
#: whichever of the two is imported first see the other half-initialized.
_API = ("cache_info", "run_dynamic_routing", "run_em_votes", "run_predict",
        "run_predict_and_route", "run_squash")


def __getattr__(name):
    if name in _API:
        from . import capsule_api
        return getattr(capsule_api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EPS", "RECOMPUTE_LANES", "WEIGHT_LAYOUTS", "capsule_routing", "dynamic_routing",
           "em_votes", "pack_weight", "predict", "predict_and_route_lanes", "squash", *_API]
