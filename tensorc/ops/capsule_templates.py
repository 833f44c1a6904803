"""Tuning templates of the capsule ops: "capsule_routing" and "capsule_routing_lanes",
``capsule.predict`` + ``capsule.dynamic_routing`` (and ``capsule.predict_and_route_lanes``, the
same result with the batch in the vector lanes); "capsule_predict" and
"capsule_dynamic_routing", each alone (the ``block`` knob, and ``chunk`` for the routing, as
below); and "capsule_em_votes". The CPU schedules' constants are the knobs (registered when
``ops.templates`` is imported). Two templates for prediction + routing, not a layout knob: each
layout has knobs of its own, and one space holding both would be mostly duplicate programs.

"capsule_routing":

Knobs, each with the default schedule's value first (point 0 *is* ``schedule_routing``'s
default program):

- ``block``: batch elements per block (prediction vectors kept per block; the blocks run in
  parallel): the default is the thread-count rule of ``capsule_schedule._block``;
- ``chunk``: input capsules whose couplings are computed before the weighted sum reads them
  (defined with more than one round; sizes at least I are all the same program, so only the
  default and chunks below I are listed);
- ``predict``: the prediction per block or all first, parallel over input capsules (the
  default is what "auto" picks for this batch and thread count).

"capsule_routing_lanes" (point 0 is ``schedule_routing_lanes``'s default at the lanes
``capsule_schedule.cpu_lanes`` picks, or the native width for a smaller batch):

- ``lanes``: batch elements per block, the vector width and its half / double;
- ``chunk``: input capsules per step of a round (divisors of I only: a chunk must not
  overhang the prediction vectors);
- ``dblock``: output dimensions accumulated in registers together in the prediction.

"capsule_em_votes" (``capsule.em_votes``; point 0 is ``schedule_votes``'s default):

- ``parallel``: the loops fused into the parallel loop, (batch, output row) or also the column;
- ``oblock``: output capsule types that share each broadcast pose element (divisors of O up
  to 4);
- ``unroll_rows``: the rows of each P x P product unrolled too.

At the sizes of the paper's ConvCaps layers the votes are bound by the bandwidth of writing
them (21 MB at 14x14 inputs, 32 capsule types in and out, stride 2): every point of this space
ran within 10% of the default there (benchmarks/RESULTS.md, thirteenth session).
"""
from .. import te
from ..autotune import get_config, template
from . import capsule, capsule_schedule
from .schedule_cpu import vector_lanes
from .util import prod


def _options(default, others):
    out = [default]
    out += [o for o in others if o not in out]
    return out


def _block_knob(cfg, B):
    cfg.define_knob("block", _options(capsule_schedule._block(B),
                                      [b for b in (1, 2, 4, 8, 16) if b <= B]))


def _routing_knobs(cfg, B, I, iterations):
    """The ``block`` and (with more than one round) ``chunk`` knobs of ``schedule_routing``,
    as its keyword arguments."""
    _block_knob(cfg, B)
    knobs = {"block": cfg["block"].val}
    if iterations > 1:
        cfg.define_knob("chunk", _options(capsule_schedule.CHUNK,
                                          [c for c in (16, 32, 128) if c < I]))
        knobs["chunk"] = cfg["chunk"].val
    return knobs


@template("capsule_predict")
def capsule_predict(B, I, J, Din, Dout, dtype="float32"):
    """u_hat (B, I, J, Dout) = W[i, j] @ u[b, i] alone: u (B, I, Din), W (I, J, Dout, Din)."""
    cfg = get_config()
    u = te.placeholder((B, I, Din), dtype, name="u")
    W = te.placeholder((I, J, Dout, Din), dtype, name="W")
    u_hat = capsule.predict(u, W)
    cfg.add_flop(2.0 * B * I * J * Dout * Din)
    _block_knob(cfg, B)
    s = te.create_schedule(u_hat.op)
    capsule_schedule.schedule_predict_block(s, u_hat, block=cfg["block"].val)
    return s, [u, W, u_hat]


@template("capsule_dynamic_routing")
def capsule_dynamic_routing(B, I, J, Dout, iterations=3, dtype="float32"):
    """v (B, J, Dout) from given prediction vectors u_hat (B, I, J, Dout)."""
    cfg = get_config()
    u_hat = te.placeholder((B, I, J, Dout), dtype, name="u_hat")
    v = capsule.dynamic_routing(u_hat, iterations)
    cfg.add_flop(2.0 * B * I * J * Dout * (2 * iterations - 1))
    knobs = _routing_knobs(cfg, B, I, iterations)
    s = te.create_schedule(v.op)
    capsule_schedule.schedule_routing(s, v, **knobs)
    return s, [u_hat, v]


@template("capsule_routing")
def capsule_routing(B, I, J, Din, Dout, iterations=3, dtype="float32"):
    """v (B, J, Dout) from u (B, I, Din) and W (I, J, Dout, Din) in ``iterations`` rounds."""
    cfg = get_config()
    u = te.placeholder((B, I, Din), dtype, name="u")
    W = te.placeholder((I, J, Dout, Din), dtype, name="W")
    v = capsule.dynamic_routing(capsule.predict(u, W), iterations)
    cfg.add_flop(2.0 * B * I * J * Dout * (Din + 2 * iterations - 1))
    knobs = _routing_knobs(cfg, B, I, iterations)
    auto = "root" if B < capsule_schedule._threads() else "block"
    cfg.define_knob("predict", _options(auto, ["block", "root"]))
    s = te.create_schedule(v.op)
    capsule_schedule.schedule_routing(s, v, predict=cfg["predict"].val, **knobs)
    return s, [u, W, v]


@template("capsule_routing_lanes")
def capsule_routing_lanes(B, I, J, Din, Dout, iterations=3, dtype="float32"):
    """``capsule_routing`` in the batch-in-lanes layout."""
    cfg = get_config()
    native = vector_lanes(dtype)
    default_lanes = capsule_schedule.cpu_lanes(B, dtype) or native
    cfg.define_knob("lanes", _options(default_lanes, [native // 2, native, 2 * native]))
    chunk = capsule_schedule.lane_chunk(default_lanes >= capsule.RECOMPUTE_LANES)
    cfg.define_knob("chunk", _options(chunk, [c for c in (1, 2, 4, 8, 16) if I % c == 0]))
    cfg.define_knob("dblock", _options(capsule_schedule.LANE_DBLOCK,
                                       [d for d in (2, 8) if Dout % d == 0]))
    u = te.placeholder((B, I, Din), dtype, name="u")
    W = te.placeholder((I, J, Dout, Din), dtype, name="W")
    v = capsule.predict_and_route_lanes(u, W, iterations, lanes=cfg["lanes"].val)
    cfg.add_flop(2.0 * B * I * J * Dout * (Din + 2 * iterations - 1))
    s = te.create_schedule(v.op)
    capsule_schedule.schedule_routing_lanes(s, v, chunk=cfg["chunk"].val,
                                            dblock=cfg["dblock"].val)
    return s, [u, W, v]


@template("capsule_em_votes")
def capsule_em_votes(B, H, Wd, C, O, K, P, stride=1, dtype="float32"):
    """Votes of a ConvCaps layer: poses (B, H, Wd, C, P, P), W (K, K, C, O, P, P)."""
    cfg = get_config()
    pose = te.placeholder((B, H, Wd, C, P, P), dtype, name="pose")
    W = te.placeholder((K, K, C, O, P, P), dtype, name="W")
    votes = capsule.em_votes(pose, W, stride)
    cfg.add_flop(2.0 * P * prod(votes.shape))
    cfg.define_knob("parallel", list(capsule_schedule.VOTES_PARALLEL))
    cfg.define_knob("oblock", [b for b in (1, 2, 4) if O % b == 0])
    cfg.define_knob("unroll_rows", [False, True])
    s = te.create_schedule(votes.op)
    capsule_schedule.schedule_votes(s, votes, cfg["parallel"].val, cfg["oblock"].val,
                                    cfg["unroll_rows"].val)
    return s, [pose, W, votes]


__all__ = ["capsule_dynamic_routing", "capsule_em_votes", "capsule_predict", "capsule_routing",
           "capsule_routing_lanes"]
