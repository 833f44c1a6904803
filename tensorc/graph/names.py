"""Unique value names for graph construction (builders and importers share one rule)."""


class UniqueNames:
    """Hands out names never handed out before: ``base``, then ``base_1``, ``base_2``, ...

    Importers keep a model's own names where they can; this only disambiguates repeats.
    """

    def __init__(self):
        self._taken = set()
        self._next = {}

    def __contains__(self, name):
        return name in self._taken

    def fresh(self, base):
        base = str(base)
        if base not in self._taken:
            self._taken.add(base)
            return base
        k = self._next.get(base, 1)
        while f"{base}_{k}" in self._taken:
            k += 1
        self._next[base] = k + 1
        name = f"{base}_{k}"
        self._taken.add(name)
        return name

    def release(self, name):
        """Make ``name`` available again (its value is being renamed)."""
        self._taken.discard(name)

    def rename(self, old, new):
        """Give up ``old`` and take ``new`` (which must be free)."""
        self.release(old)
        self._taken.add(new)
