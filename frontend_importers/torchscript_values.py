"""Markers for values the TorchScript walker cannot compute, and tests on nested values.

A failed conversion must not stop the walk (every unsupported op is reported at once), so the
value it would have produced becomes ``UNKNOWN`` and its consumers are skipped; an output a
converter deliberately cannot produce (max-pool indices) is a ``Refused`` that fails only when
something reads it.
"""
from tensorc.graph.ir import Value


class Refused:
    """An output a converter cannot produce (the indices of a max pool): reading it is an
    UnsupportedFeatureError giving ``reason``."""

    def __init__(self, reason):
        self.reason = reason

    def __repr__(self):
        return f"<refused: {self.reason}>"


class _Unknown:
    """The value of a node that could not be converted (its consumers are skipped)."""

    def __repr__(self):
        return "<unknown>"


UNKNOWN = _Unknown()


def is_graph_tensor(x):
    return isinstance(x, Value)


def _contains(x, pred):
    if pred(x):
        return True
    if isinstance(x, (list, tuple)):
        return any(_contains(y, pred) for y in x)
    if isinstance(x, dict):
        return any(_contains(y, pred) for y in x.values())
    return False


def has_graph_tensor(x):
    return _contains(x, is_graph_tensor)


def _is_unknown(x):
    return _contains(x, lambda y: y is UNKNOWN)
