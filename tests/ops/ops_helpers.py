"""Running an operator the way the graph compiler will: ``ops.schedule_for`` + ``tc.build``.

``check`` feeds the inputs, runs the module into NaN-filled (or bit-inverted integer) outputs,
and compares each output with the numpy oracle ``te.evaluate`` and, when given, with an
independent numpy reference, so a wrong definition (oracle and build agree, numpy does not)
and a wrong schedule (build differs from the oracle) are told apart.
"""
import numpy as np

import tensorc as tc
from tensorc import ops, te
from tensorc.te.tensor import Tensor

from helpers import assert_close, poison, rand


def check(outs, feed, ref=None, rtol=1e-5, atol=1e-6, ref_rtol=None, ref_atol=None,
          schedule=None):
    """Build ``outs`` over the placeholders of ``feed`` (in its order), run, compare.

    ``ref(*arrays)`` returns the expected output (a tuple for several). Returns the outputs.
    """
    outs = [outs] if isinstance(outs, Tensor) else list(outs)
    s = ops.schedule_for(outs) if schedule is None else schedule
    ins = list(feed)
    f = tc.build(s, ins + outs, name="op")
    expected = te.evaluate(outs, feed)
    # helpers.poison turns a 0-d integer array into shape (1,); keep the output's shape
    got = [poison(e).reshape(e.shape) for e in expected]
    f(*[feed[t] for t in ins], *got)
    for t, g, e in zip(outs, got, expected):
        assert_close(g, e, rtol, atol, what=f"{t.name} vs te.evaluate")
    if ref is not None:
        refs = ref(*[feed[t] for t in ins])
        refs = refs if isinstance(refs, (tuple, list)) else (refs,)
        for t, g, r in zip(outs, got, refs):
            r = np.asarray(r)
            assert_close(g, r.astype(g.dtype) if r.dtype != g.dtype else r,
                         rtol if ref_rtol is None else ref_rtol,
                         atol if ref_atol is None else ref_atol, what=f"{t.name} vs numpy")
    return got[0] if len(got) == 1 else got


def lowered(outs, args):
    """The lowered text of the default schedule (to check what the schedule did)."""
    return str(tc.lower(ops.schedule_for(outs), args))


def placeholder(shape, dtype="float32", name="x", seed=0, signed=True, lo=0.5, hi=1.5):
    """A placeholder and a random array for it, never zero."""
    return te.placeholder(shape, dtype, name), rand(shape, dtype, seed, signed, lo, hi)
