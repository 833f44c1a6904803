"""``_Walker``: runs a prepared TorchScript graph node by node over a value environment.

Static values are evaluated as the walk goes, so shape arithmetic folds and control flow on
static conditions resolves (the taken branch runs, loops unroll); nodes on graph tensors go to
the converters of ``torchscript_ops``. Unsupported nodes are collected rather than raised, so
one error lists them all. In-place ops are tracked through alias sets because a tensorc graph
is functional: rebinding the target is safe only when no view of it is read later.
"""
from tensorc.graph.ir import Value

from . import torchscript_ops as tops
from .errors import ImporterError, UnsupportedFeatureError
from .torchscript_dtypes import _torch
from .torchscript_fold import _call_torch, _coerce_outputs, _constant
from .torchscript_nodes import Call, _unsupported_entry, describe_node
from .torchscript_values import UNKNOWN, Refused, _contains, _is_unknown, has_graph_tensor

#: Loops are unrolled up to this many iterations in all (a guard against a runaway loop).
MAX_UNROLL = 10000


class _Walker:
    def __init__(self, ctx, label):
        self.ctx = ctx
        self.label = label
        self.converters = tops.CONVERTERS
        self.env = {}
        self.unsupported = {}
        self.alias = {}       # torch value unique -> alias set id
        self.members = {}     # alias set id -> [torch values]
        self.unrolled = 0

    # environment ------------------------------------------------------------------------

    def get(self, tv):
        try:
            return self.env[tv.unique()]
        except KeyError:
            raise ImporterError(f"{self.label}: value %{tv.debugName()} is read before it is "
                                "defined") from None

    def set(self, tv, value):
        self.env[tv.unique()] = value
        torch = _torch()
        if isinstance(value, torch.Tensor):
            self.ctx.tensor_names.setdefault(id(value), (value, tv.debugName()))

    def record_unsupported(self, node, kind=None):
        self.unsupported.setdefault(kind or node.kind(), []).append(_unsupported_entry(node))

    # blocks -----------------------------------------------------------------------------

    def run_block(self, block, inputs):
        for tv, v in zip(block.inputs(), inputs):
            self.set(tv, v)
        for node in block.nodes():
            self.run_node(node)
        return [self.get(o) for o in block.outputs()]

    def run_node(self, node):
        kind = node.kind()
        outs = list(node.outputs())
        if kind == "prim::Constant":
            self.set(outs[0], _constant(node))
            return
        args = [self.get(i) for i in node.inputs()]
        if kind == "prim::If":
            return self._if(node, args, outs)
        if kind == "prim::Loop":
            return self._loop(node, args, outs)
        if _is_unknown(args):
            if not self._known_kind(kind):
                self.record_unsupported(node)
            for o in outs:
                self.set(o, UNKNOWN)
            return
        if _contains(args, lambda y: isinstance(y, Refused)):
            bad = [y for a in args for y in (a if isinstance(a, (list, tuple)) else [a])
                   if isinstance(y, Refused)][0]
            raise UnsupportedFeatureError(f"{self.label}: {describe_node(node)} reads "
                                          f"{bad.reason}")
        call = Call(node, args)
        torch = _torch()
        top_value = any(isinstance(a, Value) for a in args)
        top_tensor = any(isinstance(a, torch.Tensor) for a in args)
        try:
            if kind in tops.SHAPE_QUERIES and args and isinstance(args[0], Value):
                res = tops.SHAPE_QUERIES[kind](call)
            elif kind in tops.STATIC_OPS and (
                    kind.startswith("prim::") or kind in tops.VALUES_OK or
                    (not top_value and (not top_tensor or kind in tops.STATIC_TENSOR_OK))):
                res = _coerce_outputs(call, tops.STATIC_OPS[kind](call, *args))
            elif not has_graph_tensor(args) and kind not in tops.NEVER_FOLD:
                res = self._fold(call)
                if res is NotImplemented:
                    return self._no_converter(node, outs)
            else:
                conv = self._converter(kind)
                if conv is None:
                    return self._no_converter(node, outs)
                self.ctx.begin(call)
                res = conv(self.ctx, call)
        except ImporterError:
            raise
        except Exception as e:
            raise ImporterError(f"{self.label}: {describe_node(node)}: conversion failed: "
                                f"{type(e).__name__}: {e}") from e
        res = self._as_outputs(call, res)
        if self.ctx.call is call:
            self.ctx.finish(res)
        for o, v in zip(outs, res):
            self.set(o, v)
        self._track_aliases(call, args, res)

    def _as_outputs(self, call, res):
        n = call.n_outputs
        if n == 1:
            return [res]
        if n == 0:
            return []
        if not isinstance(res, (list, tuple)) or len(res) != n:
            raise ImporterError(f"{self.label}: {call}: the converter returned {res!r} for "
                                f"{n} outputs")
        return list(res)

    def _converter(self, kind):
        conv = self.converters.get(kind)
        if conv is None and kind.endswith("_") and not kind.endswith("__"):
            conv = self.converters.get(kind[:-1])   # relu_ -> relu; the result rebinds self
        return conv

    def _known_kind(self, kind):
        return self._converter(kind) is not None or kind in tops.SHAPE_QUERIES or \
            kind in tops.STATIC_OPS or kind.startswith("prim::")

    def _no_converter(self, node, outs):
        self.record_unsupported(node)
        for o in outs:
            self.set(o, UNKNOWN)

    # static evaluation ------------------------------------------------------------------

    def _fold(self, call):
        """Evaluate a node on static operands with torch (NotImplemented: cannot)."""
        if call.schema is None:
            return NotImplemented
        if call.node.isNondeterministic() and call.kind not in tops.DETERMINISTIC_OK:
            return NotImplemented
        return _call_torch(call)

    # control flow -----------------------------------------------------------------------

    def _if(self, node, args, outs):
        cond = args[0]
        if cond is UNKNOWN:               # behind an unsupported op: already reported
            for o in outs:
                self.set(o, UNKNOWN)
            return
        if has_graph_tensor(cond) or not isinstance(cond, (bool, int)):
            torch = _torch()
            if isinstance(cond, torch.Tensor) and cond.numel() == 1:
                cond = bool(cond.item())
            else:
                self.record_unsupported(node, "prim::If (condition computed at run time)")
                for o in outs:
                    self.set(o, UNKNOWN)
                return
        blocks = list(node.blocks())
        res = self.run_block(blocks[0] if cond else blocks[1], [])
        for o, v in zip(outs, res):
            self.set(o, v)

    def _loop(self, node, args, outs):
        trip, cond, carried = args[0], args[1], list(args[2:])
        block = list(node.blocks())[0]
        if _is_unknown([trip, cond]):     # behind an unsupported op: already reported
            for o in outs:
                self.set(o, UNKNOWN)
            return
        if not isinstance(trip, int) or not isinstance(cond, (bool, int)) or \
                has_graph_tensor(cond):
            self.record_unsupported(node, "prim::Loop (trip count or condition computed at run "
                                          "time)")
            for o in outs:
                self.set(o, UNKNOWN)
            return
        i = 0
        while cond and i < trip:
            self.unrolled += 1
            if self.unrolled > MAX_UNROLL:
                raise UnsupportedFeatureError(f"{self.label}: {describe_node(node)}: more than "
                                              f"{MAX_UNROLL} loop iterations to unroll")
            res = self.run_block(block, [i] + carried)
            cond, carried = res[0], res[1:]
            if cond is UNKNOWN:
                carried = [UNKNOWN] * len(carried)
                break
            if has_graph_tensor(cond):
                self.record_unsupported(node, "prim::Loop (trip count or condition computed "
                                              "at run time)")
                carried = [UNKNOWN] * len(carried)
                break
            torch = _torch()
            if isinstance(cond, torch.Tensor):
                cond = bool(cond.item())
            i += 1
        for o, v in zip(outs, carried):
            self.set(o, v)

    # in-place ops and aliasing ----------------------------------------------------------

    def _alias_set(self, tv):
        k = self.alias.get(tv.unique())
        if k is None:
            k = tv.unique()
            self.alias[k] = k
            self.members[k] = [tv]
        return k

    def _join(self, a, b):
        ka, kb = self._alias_set(a), self._alias_set(b)
        if ka == kb:
            return
        for tv in self.members.pop(kb):
            self.alias[tv.unique()] = ka
            self.members[ka].append(tv)

    def _track_aliases(self, call, args, res):
        """Views share an alias set with their base; an in-place op rebinds its target and
        refuses when another member of the target's alias set is read later."""
        s = call.schema
        if s is None:
            return
        node = call.node
        ins = list(node.inputs())
        outs = list(node.outputs())
        by_set = {}
        for k, a in enumerate(s.arguments):
            if k < len(ins) and a.alias_info is not None and a.alias_info.before_set:
                for name in a.alias_info.before_set:
                    by_set.setdefault(name, (k, a.alias_info.is_write))
        for j, r in enumerate(s.returns):
            if j >= len(outs) or r.alias_info is None:
                continue
            for name in r.alias_info.before_set:
                if name in by_set and name != "*":
                    self._join(ins[by_set[name][0]], outs[j])
        result = res[0] if res else None
        for k, is_write in by_set.values():
            # a static in-place op ran in torch, with torch's aliasing; a converted one made
            # a new graph value that stands for the target from now on
            if not is_write or not isinstance(result, Value):
                continue
            target = ins[k]
            for tv in self.members.get(self._alias_set(target), []):
                if tv is target or tv.unique() == target.unique():
                    continue
                if any(_after(u.user, node) for u in tv.uses()):
                    raise UnsupportedFeatureError(
                        f"{self.label}: {describe_node(node)} writes in place into %"
                        f"{target.debugName()}, which shares memory with %{tv.debugName()} "
                        "(one is a view of the other) that is read later; tensorc graphs are "
                        "functional. Write the "
                        "model without the in-place update (x = x + y instead of x += y on a "
                        "view)")
            self.set(target, result)


def _after(user, node):
    try:
        return user.isAfter(node)
    except Exception:  # pragma: no cover - nodes in unrelated blocks: assume the worst
        return True
