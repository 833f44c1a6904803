"""Tuning template "capsule_routing": ``capsule.predict`` + ``capsule.dynamic_routing`` with
the fused CPU schedule's constants as knobs (registered when ``ops.templates`` is imported).

Knobs, each with the default schedule's value first (point 0 *is* ``schedule_routing``'s
default program):

- ``block``: batch elements per block (prediction vectors kept per block; the blocks run in
  parallel): the default is the thread-count rule of ``capsule_schedule._block``;
- ``chunk``: input capsules whose couplings are computed before the weighted sum reads them
  (defined with more than one round; sizes at least I are all the same program, so only the
  default and chunks below I are listed);
- ``predict``: the prediction per block or all first, parallel over input capsules (the
  default is what "auto" picks for this batch and thread count).
"""
from .. import te
from ..autotune import get_config, template
from . import capsule, capsule_schedule


def _options(default, others):
    out = [default]
    out += [o for o in others if o not in out]
    return out


@template("capsule_routing")
def capsule_routing(B, I, J, Din, Dout, iterations=3, dtype="float32"):
    """v (B, J, Dout) from u (B, I, Din) and W (I, J, Dout, Din) in ``iterations`` rounds."""
    cfg = get_config()
    u = te.placeholder((B, I, Din), dtype, name="u")
    W = te.placeholder((I, J, Dout, Din), dtype, name="W")
    v = capsule.dynamic_routing(capsule.predict(u, W), iterations)
    cfg.add_flop(2.0 * B * I * J * Dout * (Din + 2 * iterations - 1))
    cfg.define_knob("block", _options(capsule_schedule._block(B),
                                      [b for b in (1, 2, 4, 8, 16) if b <= B]))
    knobs = {"block": cfg["block"].val}
    if iterations > 1:
        cfg.define_knob("chunk", _options(capsule_schedule.CHUNK,
                                          [c for c in (16, 32, 128) if c < I]))
        knobs["chunk"] = cfg["chunk"].val
    auto = "root" if B < capsule_schedule._threads() else "block"
    cfg.define_knob("predict", _options(auto, ["block", "root"]))
    s = te.create_schedule(v.op)
    capsule_schedule.schedule_routing(s, v, predict=cfg["predict"].val, **knobs)
    return s, [u, W, v]


__all__ = ["capsule_routing"]
