"""GraphBuilder: build a graph by hand (tests, examples), shapes inferred as nodes are added.

    gb = GraphBuilder("mlp")
    x = gb.input("x", (1, 64))
    w = gb.const("w", np.random.rand(32, 64).astype("float32"))
    h = gb.op("relu", gb.op("dense", x, w, b))
    gb.output(gb.op("softmax", h, axis=-1))
    g = gb.graph()

``op(op_name, *inputs, **attrs)`` adds a node (inputs: values from this builder, or numpy arrays,
which become constants) and returns its output value, or a tuple of them for operators with
several results (split, topk). ``node_name=`` names the node (default ``<op>_<k>``),
``out_name=`` its output. The node's shapes are inferred at once, so a mistake fails on the
line that makes it, naming the node.
"""
import numpy as np

from ..ir import dtype as dt
from .infer import GraphError, infer_node, track_known
from .ir import Graph, Node, Value
from .names import UniqueNames


class GraphBuilder:
    def __init__(self, name="model"):
        if not isinstance(name, str) or not name:
            raise ValueError(f"GraphBuilder: the graph name must be a non-empty string, got "
                             f"{name!r}")
        self.name = name
        self._inputs, self._nodes, self._outputs = [], [], []
        self._names = UniqueNames()
        self._known = {}  # small values computed from constants only (shape arithmetic)

    def _fresh(self, base):
        return self._names.fresh(base)

    def input(self, name, shape, dtype="float32"):
        """A graph input of static ``shape``."""
        if name in self._names:
            raise ValueError(f"GraphBuilder {self.name!r}: the name {name!r} is taken")
        shape = tuple(int(d) for d in shape)
        if any(d <= 0 for d in shape):
            raise ValueError(f"input {name!r}: dimensions must be positive, got {shape}")
        v = Value(self._fresh(name), shape, dt.check(dtype))
        self._inputs.append(v)
        return v

    def const(self, name, array, dtype=None):
        """A constant (a weight): the array is copied, so later changes to it do not leak in."""
        a = np.array(array, dtype=dtype, copy=True) if dtype is not None else np.array(array)
        if a.dtype == np.float64 and dtype is None and not isinstance(array, np.ndarray):
            a = a.astype(np.float32)  # Python floats: float32, the library's default
        if a.dtype.hasobject:
            raise TypeError(f"const {name!r}: not a numeric array")
        dtype_name = dt.check(a.dtype.name if a.dtype != np.bool_ else "bool")
        return Value(self._fresh(name), tuple(a.shape), dtype_name, a)

    def _as_value(self, x, k, op):
        if isinstance(x, Value):
            return x
        if isinstance(x, (np.ndarray, np.generic)):
            return self.const(f"{op}_c{k}", x)
        raise TypeError(f"GraphBuilder.op({op!r}): input #{k} must be a Value or a numpy "
                        f"array, got {type(x).__name__} {x!r}")

    def op(self, op, *inputs, node_name=None, out_name=None, **attrs):
        """Add ``outputs = ops.<op>(*inputs, **attrs)``; returns the output value(s)."""
        ins = [self._as_value(x, k, op) for k, x in enumerate(inputs)]
        k = len(self._nodes)
        name = node_name or f"{op}_{k}"
        node = Node(op, ins, [], dict(attrs), name)
        inferred = infer_node(node, self._known)  # raises GraphError naming the node
        base = out_name or name
        outs = [Value(self._fresh(base if len(inferred) == 1 else f"{base}.{j}"), shape, dtype)
                for j, (shape, dtype) in enumerate(inferred)]
        node.outputs = outs
        track_known(node, self._known)
        self._nodes.append(node)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def output(self, *values):
        for v in values:
            if not isinstance(v, Value):
                raise TypeError(f"GraphBuilder.output: expected graph values, got {v!r}")
            self._outputs.append(v)
        return values[0] if len(values) == 1 else values

    def graph(self):
        """The graph built so far (the builder can keep going; the Graph shares its values)."""
        if not self._outputs:
            raise GraphError(f"graph {self.name!r} has no outputs; call GraphBuilder.output")
        return Graph(list(self._inputs), list(self._nodes), list(self._outputs), self.name)
