"""How a stage's loop axes derive from the axes of its operation.

A stage starts with the op's root axes as its loops. Each split or fuse records one relation;
the relations, replayed in order, give every loop's extent from the roots' extents, and replayed
backwards, every root index as an expression of the loop variables.
"""
from dataclasses import dataclass
from typing import Optional

from ..ir.expr import IterVar


@dataclass(frozen=True, eq=False)
class Split:
    """parent = outer * factor + inner (with factor = ceil(extent / nparts) if nparts is given)."""
    parent: IterVar
    outer: IterVar
    inner: IterVar
    factor: Optional[int]
    nparts: Optional[int]

    def extents(self, parent_extent):
        """(outer, inner) extents for a parent of the given extent."""
        if self.factor is not None:
            inner = min(self.factor, parent_extent)
            return -(-parent_extent // inner), inner
        outer = min(self.nparts, parent_extent)
        return outer, -(-parent_extent // outer)


@dataclass(frozen=True, eq=False)
class Fuse:
    """fused = outer * extent(inner) + inner."""
    outer: IterVar
    inner: IterVar
    fused: IterVar


def pass_down_extents(relations, root_extents):
    """Extent of every axis (roots and derived), given the roots' integer extents."""
    ext = dict(root_extents)
    for r in relations:
        if isinstance(r, Split):
            ext[r.outer], ext[r.inner] = r.extents(ext[r.parent])
        else:
            ext[r.fused] = ext[r.outer] * ext[r.inner]
    return ext


def pass_up_values(relations, leaf_values, ext):
    """Value of every axis, relative to its own range start, from values of the leaf axes.

    Also returns the conditions that must hold for a point to be real: a split whose factor does
    not divide its parent's extent runs past the end, and those extra iterations must be skipped
    (for every split, not only of roots: a nested overhang would compute a point twice).
    """
    val = dict(leaf_values)
    conds = []
    for r in reversed(relations):
        if isinstance(r, Split):
            outer_ext, inner_ext = r.extents(ext[r.parent])
            val[r.parent] = val[r.outer] * inner_ext + val[r.inner]
            if outer_ext * inner_ext != ext[r.parent]:
                conds.append(val[r.parent] < ext[r.parent])
        else:
            n = ext[r.inner]
            val[r.outer] = val[r.fused] // n
            val[r.inner] = val[r.fused] % n
    return val, conds
