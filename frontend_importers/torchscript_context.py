"""``Context``: what the TorchScript converters build the tensorc graph with.

Shapes are inferred as each node is emitted, so a conversion that produces a wrong operand
fails at the TorchScript node that caused it rather than later in the graph compiler;
constants are cached so a weight read twice is one graph constant; ``finish`` gives graph
values their TorchScript names so the imported graph reads like the model.
"""
import numpy as np

from tensorc.graph.ir import Node, Value
from tensorc.graph.names import UniqueNames

from .errors import ImporterError, UnsupportedDtypeError, UnsupportedFeatureError
from .torchscript_dtypes import _TC_DTYPES, _torch, tc_dtype, torch_dtype


class Context:
    """What converters build with: ``emit`` adds ``ops.<op>(*inputs, **attrs)`` (its shapes
    inferred at once), ``tensor`` makes a graph value of a static operand, ``cast``,
    ``scalar``, ``const``."""

    def __init__(self, label):
        self.label = label
        self.nodes = []
        self.call = None
        self._names = UniqueNames()
        self._const_cache = {}      # (id(tensor), dtype) -> (tensor, Value)
        self.tensor_names = {}      # id(constant tensor) -> (tensor, TorchScript name)
        self._emitted = []
        self._fresh_values = set()
        self._node_names = set()

    # names ------------------------------------------------------------------------------

    def fresh(self, base):
        return self._names.fresh(str(base) or "v")

    def _node_name(self, base):
        name, k = base, 1
        while name in self._node_names:
            name, k = f"{base}_{k}", k + 1
        self._node_names.add(name)
        return name

    def _base(self):
        if self.call is None:
            return "v"
        outs = list(self.call.node.outputs())
        return outs[0].debugName() if outs else self.call.kind.split("::")[-1]

    # values -----------------------------------------------------------------------------

    def const(self, array, name=None):
        """A constant graph value holding ``array`` (a numpy array or scalar)."""
        a = np.asarray(array)
        if a.dtype == np.bool_:
            dtype = "bool"
        else:
            dtype = a.dtype.name
            if dtype not in _TC_DTYPES:
                raise UnsupportedDtypeError(f"{self.call or self.label}: constant of numpy "
                                            f"dtype {a.dtype} is not supported")
        if 0 in a.shape:
            raise UnsupportedFeatureError(f"{self.call or self.label}: a constant of shape "
                                          f"{a.shape}; tensorc does not support empty tensors")
        if not a.flags.c_contiguous:
            a = a.copy(order="C")
        return Value(self.fresh(name or f"{self._base()}/const"), tuple(int(d) for d in a.shape),
                     dtype, a)

    def const_tensor(self, t, dtype=None):
        """The graph constant of a static torch tensor (cached: a weight used twice is one
        constant), cast to ``dtype`` when given."""
        torch = _torch()
        dtype = dtype or tc_dtype(t.dtype, f"{self.call or self.label}: constant tensor")
        key = (id(t), dtype)
        hit = self._const_cache.get(key)
        if hit is not None and hit[0] is t:
            return hit[1]
        with torch.no_grad():
            a = t.detach().to("cpu")
            if dtype != tc_dtype(a.dtype):
                a = a.to(torch_dtype(dtype))
            arr = a.contiguous().numpy().copy()
        named = self.tensor_names.get(id(t))
        name = named[1] if named is not None and named[0] is t else None
        v = self.const(arr, name)
        self._const_cache[key] = (t, v)
        return v

    def scalar(self, value, dtype):
        """A 0-d constant of ``dtype`` holding a Python number."""
        from tensorc.ir import dtype as dt
        return self.const(np.array(value, dtype=np.dtype(dt.to_numpy(dtype))))

    def tensor(self, x, dtype=None):
        """``x`` as a graph value: graph values pass (cast to ``dtype`` when given), static
        tensors and numbers become constants (numbers need ``dtype`` or take float32/int64/
        bool by their Python type)."""
        torch = _torch()
        if isinstance(x, Value):
            return self.cast(x, dtype) if dtype is not None else x
        if isinstance(x, torch.Tensor):
            return self.const_tensor(x, dtype)
        if isinstance(x, (bool, int, float)):
            if dtype is None:
                dtype = "bool" if isinstance(x, bool) else \
                    "int64" if isinstance(x, int) else "float32"
            return self.scalar(x, dtype)
        if isinstance(x, np.ndarray):
            return self.const(x if dtype is None else x.astype(dtype))
        raise ImporterError(f"{self.call or self.label}: expected a tensor operand, got "
                            f"{type(x).__name__} {x!r}")

    def cast(self, v, dtype):
        if v.dtype == dtype:
            return v
        if v.is_const:
            from tensorc.ir import dtype as dt
            return self.const(v.data.astype(np.dtype(dt.to_numpy(dtype))), f"{v.name}/{dtype}")
        return self.emit("cast", [v], dtype=dtype)

    # nodes ------------------------------------------------------------------------------

    def emit(self, op, inputs, **attrs):
        """Add ``ops.<op>(*inputs, **attrs)``; returns its output Value (a tuple for operators
        with several results). Shapes are inferred at once, so a wrong operand fails here,
        naming the TorchScript node."""
        from tensorc.graph.infer import GraphError, build_node, placeholders
        inputs = list(inputs)
        for k, v in enumerate(inputs):
            if not isinstance(v, Value):
                raise TypeError(f"{self.call}: emit({op!r}): input #{k} is {v!r}, not a Value")
        node = Node(op, inputs, [], dict(attrs), self._node_name(f"{self._base()}/{op}"))
        try:
            tensors = build_node(node, placeholders(inputs))
        except GraphError as e:
            raise ImporterError(f"{self.call or self.label}: cannot convert: {e}") from e
        outs = []
        for j, t in enumerate(tensors):
            base = f"{self._base()}/{op}" if len(tensors) == 1 else f"{self._base()}/{op}.{j}"
            v = Value(self.fresh(base), tuple(int(d) for d in t.shape), str(t.dtype))
            outs.append(v)
            self._fresh_values.add(id(v))
        node.outputs = outs
        self.nodes.append(node)
        self._emitted.append(node)
        return outs[0] if len(outs) == 1 and op not in ("split", "topk") else tuple(outs)

    def begin(self, call):
        self.call = call
        self._emitted = []
        self._fresh_values = set()

    def finish(self, outputs):
        """Name what the TorchScript node produced after its values: the graph value of each
        output it created keeps the TorchScript name (``x.3``; ``out.0``, ``out.1`` for the
        parts of a list), and so does the node computing the first one."""
        call = self.call
        self.call = None
        if not self._emitted:
            return
        tvs = list(call.node.outputs())
        for tv, out in zip(tvs, outputs):
            vals = out if isinstance(out, (list, tuple)) else [out]
            for j, v in enumerate(vals):
                if not isinstance(v, Value) or id(v) not in self._fresh_values:
                    continue
                want = tv.debugName() if len(vals) == 1 else f"{tv.debugName()}.{j}"
                if want in self._names:
                    continue
                self._names.rename(v.name, want)
                v.name = want
        first = outputs[0] if outputs else None
        if isinstance(first, Value) and tvs:
            main = next((n for n in self._emitted if any(v is first for v in n.outputs)), None)
            base = tvs[0].debugName()
            if main is not None and base not in self._node_names:
                main.name = base
                self._node_names.add(base)
