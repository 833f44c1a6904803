"""Storage planning: intermediate values share storage tokens when their lifetimes are disjoint.

The planner sees the kernel calls in execution order, each reading and writing some values.
A value lives from the call that writes it to the last call that reads it (an alias -- a free
reshape viewing another value's bytes -- extends the life of the value it views). Walking the
calls in order, each value written gets a token: the free token of the best fit (the smallest
that holds it), else the largest free token grown to fit, else a new one; after the call, the
tokens of values read for the last time (or never read) are free again. A call's results never
land on the storage of its own arguments: tokens are freed only after the call that last
reads them. Token sizes are multiples of 64 bytes and each token starts 64-byte aligned in the
workspace, so every value is 64-byte aligned.

``StoragePlan`` records the assignment, the lifetimes, the planned bytes and what storage
without reuse would take (``naive_bytes``); ``check()`` verifies that no two values whose
lives overlap share bytes.
"""
from dataclasses import dataclass, field
from typing import Dict, Hashable, List, Tuple

ALIGN = 64


def round_up(n, a=ALIGN):
    return -(-int(n) // a) * a


@dataclass
class StoragePlan:
    token_sizes: List[int] = field(default_factory=list)
    #: key -> (token, byte offset in it)
    assignment: Dict[Hashable, Tuple[int, int]] = field(default_factory=dict)
    #: key -> (call that writes it, last call that reads it)
    lifetimes: Dict[Hashable, Tuple[int, int]] = field(default_factory=dict)
    sizes: Dict[Hashable, int] = field(default_factory=dict)

    @property
    def planned_bytes(self):
        return sum(self.token_sizes)

    @property
    def naive_bytes(self):
        """Bytes without reuse: every value its own (aligned) buffer."""
        return sum(round_up(s) for s in self.sizes.values())

    def report(self):
        saved = self.naive_bytes - self.planned_bytes
        pct = 100.0 * saved / self.naive_bytes if self.naive_bytes else 0.0
        return (f"storage: {len(self.sizes)} intermediate values in {len(self.token_sizes)} "
                f"tokens, {self.planned_bytes} bytes planned vs {self.naive_bytes} without "
                f"reuse ({pct:.0f}% saved)")

    def overlaps(self):
        """Pairs of values that are live at the same time and share bytes (should be none)."""
        bad = []
        keys = list(self.assignment)
        for i, a in enumerate(keys):
            ta, oa = self.assignment[a]
            la = self.lifetimes[a]
            for b in keys[i + 1:]:
                tb, ob = self.assignment[b]
                if ta != tb:
                    continue
                lb = self.lifetimes[b]
                live_together = la[0] <= lb[1] and lb[0] <= la[1]
                share = oa < ob + self.sizes[b] and ob < oa + self.sizes[a]
                if live_together and share and self.sizes[a] and self.sizes[b]:
                    bad.append((a, b))
        return bad

    def check(self):
        for key, (tok, off) in self.assignment.items():
            if off + self.sizes[key] > self.token_sizes[tok]:
                raise AssertionError(f"value {key!r} ({self.sizes[key]} bytes at {off}) does not "
                                     f"fit token #{tok} of {self.token_sizes[tok]} bytes")
        bad = self.overlaps()
        if bad:
            raise AssertionError(f"values {bad[0][0]!r} and {bad[0][1]!r} are live together "
                                 "and share storage")
        return self


def plan_storage(steps, sizes, aliases=None):
    """Assign storage tokens to the values of ``sizes`` (key -> bytes).

    ``steps``: per kernel call, in order, (keys read, keys written); keys not in ``sizes`` (model
    inputs, outputs, constants) are ignored. ``aliases``: key -> key of the value whose bytes
    it views (resolved transitively); an alias gets no storage of its own.
    """
    aliases = dict(aliases or {})

    def base(k):
        seen = 0
        while k in aliases:
            k = aliases[k]
            seen += 1
            if seen > len(aliases):
                raise ValueError("alias cycle in storage planning")
        return k

    first, last = {}, {}
    for t, (reads, writes) in enumerate(steps):
        for k in writes:
            b = base(k)
            if b in sizes:
                first.setdefault(b, t)
                last[b] = max(last.get(b, t), t)
        for k in reads:
            b = base(k)
            if b in sizes:
                last[b] = max(last.get(b, t), t)
    plan = StoragePlan(sizes={k: int(sizes[k]) for k in first})
    free = []            # token indices not in use
    dying = {}           # step -> values whose last use it is
    for k in first:
        plan.lifetimes[k] = (first[k], last[k])
        dying.setdefault(last[k], []).append(k)
    for t, (_, writes) in enumerate(steps):
        for k in writes:
            b = base(k)
            if b not in sizes or first[b] != t or b in plan.assignment:
                continue
            need = round_up(sizes[b])
            fits = [i for i in free if plan.token_sizes[i] >= need]
            if fits:
                tok = min(fits, key=lambda i: (plan.token_sizes[i], i))
            elif free:
                tok = max(free, key=lambda i: (plan.token_sizes[i], -i))
                plan.token_sizes[tok] = need
            else:
                plan.token_sizes.append(need)
                tok = len(plan.token_sizes) - 1
            if tok in free:
                free.remove(tok)
            plan.assignment[b] = (tok, 0)
        for k in dying.get(t, ()):
            if k in plan.assignment:
                free.append(plan.assignment[k][0])
    return plan
