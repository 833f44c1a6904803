"""Search spaces: knob policies, point indexing and the define/instantiate double life of a
template's config."""
import math

import numpy as np
import pytest

from tensorc import te
from tensorc.autotune.space import (AnnotateKnob, ConfigEntity, ConfigSpace, ReorderKnob,
                                    SpaceError, SplitKnob, get_config, using_config)


def _products(knob):
    return [math.prod(e.size[1:]) for e in knob.entities]


def test_split_factors_are_exact_factorizations():
    knob = SplitKnob("t", 12, num_outputs=3)
    sizes = [tuple(e.size) for e in knob.entities]
    assert len(sizes) == len(set(sizes)) == 18      # ordered pairs (a, b) with a*b | 12
    assert all(12 % p == 0 for p in _products(knob))
    assert all(s[0] == -1 for s in sizes)


def test_split_power2_covers_odd_extents_and_max_factor():
    knob = SplitKnob("t", 37, num_outputs=2, policy="power2", max_factor=16)
    assert [e.size for e in knob.entities] == [[-1, 1], [-1, 2], [-1, 4], [-1, 8], [-1, 16]]
    prime = SplitKnob("p", 37, num_outputs=2)            # exact factors of a prime: 1 and 37
    assert [e.size for e in prime.entities] == [[-1, 1], [-1, 37]]


def test_split_candidate_and_filter():
    knob = SplitKnob("t", 64, num_outputs=3, policy="candidate",
                     candidate=[[-1, 4, 8], [-1, 2, 16]])
    assert [e.size for e in knob.entities] == [[-1, 4, 8], [-1, 2, 16]]
    small = SplitKnob("t", 64, num_outputs=2, filter=lambda e: e.size[-1] <= 4)
    assert _products(small) == [1, 2, 4]
    with pytest.raises(SpaceError, match="no choices"):
        SplitKnob("t", 64, filter=lambda e: False)
    with pytest.raises(SpaceError, match="3 factors"):
        SplitKnob("t", 64, policy="candidate", candidate=[[-1, 2, 2]])
    with pytest.raises(SpaceError, match="unknown policy"):
        SplitKnob("t", 64, policy="primes")


def test_reorder_and_annotate_knobs():
    assert len(ReorderKnob("r", 3)) == 6
    assert len(ReorderKnob("r", 3, policy="identity")) == 1
    with pytest.raises(SpaceError, match="not a permutation"):
        ReorderKnob("r", 3, policy="candidate", candidate=[[0, 0, 1]])
    with pytest.raises(SpaceError, match="list candidates"):
        ReorderKnob("r", 7)
    ann = AnnotateKnob("a", 2, "try_unroll_vec")
    assert {tuple(e.anns) for e in ann.entities} == {
        (a, b) for a in ("none", "unroll") for b in ("none", "unroll", "vec")}


def _space():
    cfg = ConfigSpace()
    cfg.define_split("tile", 24, num_outputs=2)        # 8 choices
    cfg.define_knob("unroll", [0, 4, 16])              # 3
    cfg.define_reorder("order", [None, None], policy="all")    # 2
    return cfg


def test_points_round_trip_through_index_choices_and_dict():
    space = _space()
    assert space.dims == [8, 3, 2] and len(space) == 48
    seen = set()
    for index in range(len(space)):
        cfg = space.get(index)
        assert space.index_from_choices(space.choices(index)) == index
        assert ConfigEntity.from_dict(space, cfg.to_dict()).index == index
        seen.add(repr(cfg))
    assert len(seen) == 48
    with pytest.raises(SpaceError, match="outside the space"):
        space.get(48)
    with pytest.raises(SpaceError, match="missing knobs"):
        space.index_of({"tile": [-1, 2]})
    with pytest.raises(SpaceError, match="not one of its choices"):
        space.index_of({"tile": [-1, 5], "unroll": 0, "order": [0, 1]})


def test_neighbour_changes_exactly_one_knob():
    space, rng = _space(), np.random.default_rng(0)
    for index in range(0, 48, 5):
        other = space.neighbour(index, rng)
        diff = [a != b for a, b in zip(space.choices(index), space.choices(other))]
        assert sum(diff) == 1
    assert all(0 <= space.random_index(rng) < 48 for _ in range(50))


def test_define_twice_and_unknown_knobs():
    space = _space()
    with pytest.raises(SpaceError, match="defined twice"):
        space.define_knob("unroll", [1])
    cfg = space.get(3)
    cfg.define_knob("unroll", [0, 4, 16])            # instantiation: a no-op
    with pytest.raises(SpaceError, match="not in the space"):
        cfg.define_knob("other", [1])
    with pytest.raises(SpaceError, match="no knob"):
        cfg["other"]


def test_get_config_only_inside_a_template():
    with pytest.raises(SpaceError, match="outside a template"):
        get_config()
    space = ConfigSpace()
    with using_config(space):
        assert get_config() is space
    with pytest.raises(SpaceError):
        get_config()


def test_entities_apply_to_a_schedule():
    A = te.placeholder((30, 20), name="A")
    B = te.compute((30, 20), lambda i, j: A[i, j] * 2.0, name="B")
    space = ConfigSpace()
    i, j = B.op.axis
    space.define_split("ti", i, num_outputs=3, policy="candidate", candidate=[[-1, 4, 2]])
    space.define_reorder("order", [0, 1, 2, 3], policy="candidate", candidate=[[0, 3, 1, 2]])
    space.define_annotate("ann", [0, 1], policy="try_vec")
    cfg = space.get(len(space) - 1)
    s = te.create_schedule(B.op)
    loops = cfg["ti"].apply(s, B, i)
    assert len(loops) == 3
    order = cfg["order"].apply(s, B, [*loops, j])
    assert [iv.var.name for iv in order] == [loops[0].var.name, j.var.name,
                                             loops[1].var.name, loops[2].var.name]
    cfg["ann"].apply(s, B, [order[0], order[-1]])
    assert ("vectorize", "B", order[-1].var.name) in s.trace
