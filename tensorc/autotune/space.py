"""Search spaces: the knobs a template defines and the points (configs) a tuner picks.

A template is ordinary schedule code that asks a config for its choices
(``cfg["tile_i"].apply(s, C, i)``, ``cfg["unroll"].val``). The same code runs in two modes:
once against a ``ConfigSpace``, where every ``define_*`` call adds a knob and ``cfg[name]``
hands back the knob's first choice so the code can go on; then, per candidate, against a
``ConfigEntity``, where ``define_*`` does nothing and ``cfg[name]`` is that point's choice.
That is AutoTVM's design, kept because it lets one function be both the space and the schedule.

A point is an integer index in mixed radix over the knobs (the last knob varies fastest), so
a tuner can enumerate, sample and step between points without building them; ``to_dict`` gives
its choices as plain JSON for the tuning database, independent of the knob order.
"""
import itertools
import math
import threading

import numpy as np

from ..ir.expr import IterVar


class SpaceError(ValueError):
    """A knob defined twice differently, a choice that is not in the space, and the like."""


# ------------------------------------------------------------------------------ entities


class SplitEntity:
    """Factors of a split, outermost first; the first is -1 ("whatever is left")."""

    def __init__(self, size):
        self.size = list(size)

    def apply(self, s, stage, axis):
        """Split ``axis`` of ``stage`` (a Stage, Tensor or op) into len(size) loops, outer first.
        Factors need not divide the extent: the schedule guards the remainder."""
        st = _stage(s, stage)
        loops = []
        for f in reversed(self.size[1:]):
            axis, inner = st.split(axis, factor=f)
            loops.append(inner)
        loops.append(axis)
        return loops[::-1]

    def json(self):
        return list(self.size)

    def __eq__(self, other):
        return isinstance(other, SplitEntity) and other.size == self.size

    def __repr__(self):
        return f"sp{self.size}"


class ReorderEntity:
    """A permutation of the knob's axes: position k of the result is axes[perm[k]]."""

    def __init__(self, perm):
        self.perm = list(perm)

    def apply(self, s, stage, axes):
        ordered = [axes[k] for k in self.perm]
        _stage(s, stage).reorder(*ordered)
        return ordered

    def json(self):
        return list(self.perm)

    def __eq__(self, other):
        return isinstance(other, ReorderEntity) and other.perm == self.perm

    def __repr__(self):
        return f"re{self.perm}"


class AnnotateEntity:
    """One annotation per axis: "none", "unroll", "vec" or "parallel"."""

    def __init__(self, anns):
        self.anns = list(anns)

    def apply(self, s, stage, axes):
        st = _stage(s, stage)
        for iv, ann in zip(axes, self.anns):
            if ann == "unroll":
                st.unroll(iv)
            elif ann == "vec":
                st.vectorize(iv)
            elif ann == "parallel":
                st.parallel(iv)
        return list(axes)

    def json(self):
        return list(self.anns)

    def __eq__(self, other):
        return isinstance(other, AnnotateEntity) and other.anns == self.anns

    def __repr__(self):
        return f"an{self.anns}"


class OtherOptionEntity:
    """A plain choice among listed values (``.val``)."""

    def __init__(self, val):
        self.val = val

    def json(self):
        return self.val

    def __eq__(self, other):
        return isinstance(other, OtherOptionEntity) and other.val == self.val

    def __repr__(self):
        return f"ot({self.val!r})"


def _stage(s, stage):
    from ..schedule.stage import Stage
    return stage if isinstance(stage, Stage) else s[stage]


# ------------------------------------------------------------------------------ knobs


def _extent(axis, knob):
    if isinstance(axis, IterVar):
        ext = axis.dom.extent if axis.dom is not None else None
        if ext is None or not hasattr(ext, "value"):
            raise SpaceError(f"knob {knob!r}: axis {axis} has no constant extent")
        return int(ext.value)
    if isinstance(axis, (int, np.integer)) and axis >= 1:
        return int(axis)
    raise SpaceError(f"knob {knob!r}: expected an IterVar or a positive extent, got {axis!r}")


def _divisors(n):
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def _factorizations(n, parts, allowed):
    """Tuples of ``parts`` inner factors from ``allowed`` whose product does not exceed n
    (exact factorizations when ``allowed`` is n's divisors and ``exact``)."""
    if parts == 0:
        yield ()
        return
    for f in allowed:
        if f > n:
            break
        for rest in _factorizations(n // f if n % f == 0 else -(-n // f), parts - 1, allowed):
            yield (f,) + rest


class Knob:
    """One named dimension of the space: a list of entities."""

    kind = ""

    def __init__(self, name, entities):
        if not entities:
            raise SpaceError(f"knob {name!r} has no choices (a filter removed all of them?)")
        self.name = name
        self.entities = entities

    def __len__(self):
        return len(self.entities)

    def index_of(self, value):
        for k, e in enumerate(self.entities):
            if e.json() == value:
                return k
        raise SpaceError(f"knob {self.name!r}: {value!r} is not one of its choices")

    def __repr__(self):
        return f"{self.kind}({self.name!r}, {len(self)} choices)"


class SplitKnob(Knob):
    """Ways to split an axis of ``extent`` into ``num_outputs`` loops.

    Policies: "factors" (exact factorizations: no remainder to guard), "power2" (inner
    factors are powers of two up to the extent; the outer loop takes the ceiling, so odd
    extents get tiled too), "candidate" (the listed factor lists). ``max_factor`` bounds every
    inner factor; ``filter`` drops entities it returns False for.
    """
    kind = "split"

    def __init__(self, name, extent, num_outputs=2, policy="factors", max_factor=None,
                 candidate=None, filter=None):  # noqa: A002
        self.extent, self.num_outputs, self.policy = extent, num_outputs, policy
        cap = min(extent, max_factor or extent)
        if policy == "factors":
            allowed = [d for d in _divisors(extent) if d <= cap]
            sizes = [s for s in _factorizations(extent, num_outputs - 1, allowed)
                     if extent % math.prod(s) == 0]
        elif policy == "power2":
            allowed = [1 << k for k in range(cap.bit_length()) if 1 << k <= cap]
            sizes = list(_factorizations(extent, num_outputs - 1, allowed))
        elif policy == "candidate":
            if not candidate:
                raise SpaceError(f"split knob {name!r}: policy 'candidate' needs candidate=")
            sizes = []
            for c in candidate:
                if len(c) != num_outputs:
                    raise SpaceError(f"split knob {name!r}: candidate {c} has {len(c)} "
                                     f"factors, num_outputs is {num_outputs}")
                sizes.append(tuple(int(f) for f in c[1:]))
        else:
            raise SpaceError(f"split knob {name!r}: unknown policy {policy!r} "
                             "(factors, power2, candidate)")
        entities = [SplitEntity([-1, *s]) for s in sizes]
        if filter is not None:
            entities = [e for e in entities if filter(e)]
        super().__init__(name, entities)


class ReorderKnob(Knob):
    """Orders of a list of axes. Policies: "identity", "all" (every permutation; keep the list
    short), "candidate" (listed permutations, as lists of indices)."""
    kind = "reorder"

    def __init__(self, name, n_axes, policy="all", candidate=None):
        if policy == "identity":
            perms = [tuple(range(n_axes))]
        elif policy == "all":
            if n_axes > 6:
                raise SpaceError(f"reorder knob {name!r}: {n_axes} axes give "
                                 f"{math.factorial(n_axes)} orders; list candidates instead")
            perms = list(itertools.permutations(range(n_axes)))
        elif policy == "candidate":
            perms = [tuple(p) for p in candidate or ()]
            for p in perms:
                if sorted(p) != list(range(n_axes)):
                    raise SpaceError(f"reorder knob {name!r}: {list(p)} is not a permutation "
                                     f"of {n_axes} axes")
        else:
            raise SpaceError(f"reorder knob {name!r}: unknown policy {policy!r} "
                             "(identity, all, candidate)")
        super().__init__(name, [ReorderEntity(p) for p in perms])


_ANNOTATIONS = {"try_unroll": ("none", "unroll"), "try_vec": ("none", "vec"),
                "try_unroll_vec": ("none", "unroll", "vec"),
                "try_parallel": ("none", "parallel")}


class AnnotateKnob(Knob):
    """Annotations of axes. Policies "try_unroll", "try_vec", "try_unroll_vec" (each axis gets
    one of the listed annotations, the vector one only on the last axis) and "try_parallel"
    (only on the first)."""
    kind = "annotate"

    def __init__(self, name, n_axes, policy):
        if policy not in _ANNOTATIONS:
            raise SpaceError(f"annotate knob {name!r}: unknown policy {policy!r} "
                             f"({', '.join(_ANNOTATIONS)})")
        per_axis = []
        for k in range(n_axes):
            opts = _ANNOTATIONS[policy]
            if k != n_axes - 1:
                opts = tuple(o for o in opts if o != "vec")
            if k != 0:
                opts = tuple(o for o in opts if o != "parallel")
            per_axis.append(opts)
        super().__init__(name, [AnnotateEntity(a) for a in itertools.product(*per_axis)])


class OtherOptionKnob(Knob):
    """A choice among listed JSON-able values."""
    kind = "knob"

    def __init__(self, name, candidates):
        super().__init__(name, [OtherOptionEntity(v) for v in candidates])


# ------------------------------------------------------------------------------ space and points


class _Defines:
    """The ``define_*`` vocabulary, shared by the space (which records knobs) and a point
    (where the knobs exist already and the calls only check the name)."""

    def define_split(self, name, axis, num_outputs=2, policy="factors", max_factor=None,
                     candidate=None, filter=None):  # noqa: A002
        return self._define(name, lambda: SplitKnob(name, _extent(axis, name), num_outputs,
                                                    policy, max_factor, candidate, filter))

    def define_reorder(self, name, axes, policy="all", candidate=None):
        return self._define(name, lambda: ReorderKnob(name, len(axes), policy, candidate))

    def define_annotate(self, name, axes, policy):
        return self._define(name, lambda: AnnotateKnob(name, len(axes), policy))

    def define_knob(self, name, candidate):
        return self._define(name, lambda: OtherOptionKnob(name, list(candidate)))

    def axis(self, iv):
        """AutoTVM spelling: the axis itself (knobs take IterVars directly)."""
        return iv

    reduce_axis = axis


class ConfigSpace(_Defines):
    """The knobs a template defined, in definition order, and their product as a space."""

    def __init__(self):
        self.knobs = {}
        self.flop = 0.0

    def _define(self, name, make):
        if name in self.knobs:
            raise SpaceError(f"knob {name!r} is defined twice")
        self.knobs[name] = make()

    def add_flop(self, flop):
        self.flop += float(flop)

    def __getitem__(self, name):
        return self.knobs[name].entities[0]

    @property
    def dims(self):
        return [len(k) for k in self.knobs.values()]

    def __len__(self):
        return math.prod(self.dims)

    def get(self, index):
        index = int(index)
        if not 0 <= index < len(self):
            raise SpaceError(f"config index {index} outside the space of {len(self)} points")
        return ConfigEntity(self, index)

    def choices(self, index):
        """Per-knob choice numbers of a point (mixed radix, last knob fastest)."""
        out = []
        for d in reversed(self.dims):
            index, r = divmod(index, d)
            out.append(r)
        return out[::-1]

    def index_from_choices(self, choices):
        index = 0
        for c, d in zip(choices, self.dims):
            index = index * d + c
        return index

    def index_of(self, values):
        """The point whose knob values are ``values`` (a ``ConfigEntity.to_dict()``)."""
        missing = set(self.knobs) - set(values)
        extra = set(values) - set(self.knobs)
        if missing or extra:
            raise SpaceError(f"config does not match the space: missing knobs "
                             f"{sorted(missing)}, unknown knobs {sorted(extra)}")
        return self.index_from_choices([k.index_of(values[n]) for n, k in self.knobs.items()])

    def random_index(self, rng):
        return self.index_from_choices([int(rng.integers(d)) for d in self.dims])

    def neighbour(self, index, rng):
        """A point that differs from ``index`` in one knob (itself in a one-point space)."""
        choices = self.choices(index)
        movable = [k for k, d in enumerate(self.dims) if d > 1]
        if not movable:
            return index
        k = movable[int(rng.integers(len(movable)))]
        step = int(rng.integers(1, self.dims[k]))
        choices[k] = (choices[k] + step) % self.dims[k]
        return self.index_from_choices(choices)

    def __repr__(self):
        lines = [f"ConfigSpace ({len(self)} points)"]
        lines += [f"  {k.name}: {k.kind}, {len(k)} choices" for k in self.knobs.values()]
        return "\n".join(lines)


class ConfigEntity(_Defines):
    """One point of a space: ``cfg[name]`` is its choice for the knob."""

    def __init__(self, space, index):
        self.space = space
        self.index = int(index)
        self._choice = dict(zip(space.knobs, space.choices(self.index)))

    @classmethod
    def from_dict(cls, space, values):
        return cls(space, space.index_of(values))

    def _define(self, name, make):
        if name not in self.space.knobs:
            raise SpaceError(f"knob {name!r} is not in the space this config belongs to")

    def add_flop(self, flop):
        """Ignored: the flop count belongs to the space."""

    def __getitem__(self, name):
        if name not in self._choice:
            raise SpaceError(f"config has no knob {name!r}; knobs: {list(self._choice)}")
        return self.space.knobs[name].entities[self._choice[name]]

    def to_dict(self):
        return {name: self[name].json() for name in self.space.knobs}

    def __eq__(self, other):
        return isinstance(other, ConfigEntity) and other.space is self.space and \
            other.index == self.index

    def __hash__(self):
        return hash(self.index)

    def __repr__(self):
        body = ", ".join(f"{n}={self[n]!r}" for n in self.space.knobs)
        return f"Config#{self.index}({body})"


# ------------------------------------------------------------------------------ the active config

_active = threading.local()


def get_config():
    """The space or point the running template should ask for its choices."""
    cfg = getattr(_active, "cfg", None)
    if cfg is None:
        raise SpaceError("get_config() called outside a template: build through "
                         "create_task(...).instantiate(config) or call the template directly")
    return cfg


class using_config:
    """Makes ``cfg`` what ``get_config()`` returns for the duration of a ``with`` block."""

    def __init__(self, cfg):
        self.cfg = cfg

    def __enter__(self):
        self.saved = getattr(_active, "cfg", None)
        _active.cfg = self.cfg
        return self.cfg

    def __exit__(self, *exc):
        _active.cfg = self.saved
