"""TorchScript -> tensorc graph IR.

    from frontend_importers import from_torchscript
    traced = torch.jit.trace(model.eval(), example)          # or torch.jit.script(model.eval())
    g = from_torchscript(traced, [(1, 3, 224, 224)])
    outs = tensorc.graph.interpret.run_graph(g, [x])          # or tc.compile(g)

``from_torchscript(module, input_shapes=None, input_dtypes=None, name=None)`` takes a
``torch.jit.ScriptModule`` (traced or scripted), a ``torch.jit.ScriptFunction``, or the path of
a module saved with ``torch.jit.save``. What it does, in order:

1. **Load.** A path goes through ``torch.jit.load`` (on the CPU, then ``.eval()``); a file that
   does not load is a ``ModelParseError``. A plain ``nn.Module`` is a ``TypeError`` that says to
   trace or script it first; a module in training mode is an ``UnsupportedFeatureError``
   (tensorc compiles inference: call ``.eval()``).
2. **Inputs.** The tensor arguments of ``forward`` become graph inputs, named after the Python
   arguments. ``input_shapes`` gives their static shapes: a list with one shape per input (a
   single shape when there is one input) or a dict by argument name. Left out (None), the
   shapes a trace recorded are used; an input with no recorded shape (scripted modules) is a
   ``DynamicShapeError`` listing every such input. A wrong number of shapes, an unknown name or
   a bad shape is a ``ValueError``. ``input_dtypes`` (one dtype for all, a list, or a dict;
   numpy/torch dtypes or names) defaults to the traced dtype, else float32; int64 inputs (token
   ids) are fine.
3. **Prepare.** The module is frozen (``torch._C._freeze_module``: parameters and attributes
   become constants, submodule calls are inlined, ``self.training`` branches fold; the
   numerics-changing frozen optimisations of ``torch.jit.freeze`` are not run: tensorc folds
   batch norms itself). If freezing fails the graph is inlined and ``prim::GetAttr`` is
   resolved against the module instead. Then ``remove_mutation`` (in-place ops to functional
   ones where that is safe), constant propagation and dead-code elimination.
4. **Walk.** Every value is either *static* -- a Python int/float/bool/None/str/list/tuple,
   a dtype/device, or a constant ``torch.Tensor`` -- or a *graph tensor* (a ``Value`` of the
   tensorc graph). A node whose inputs are all static is evaluated at once (Python for the
   scalar/list builtins, the exact ``torch.ops`` overload for the rest), so shape arithmetic
   (``x.size(1) // heads``, ``aten::__getitem__`` on sizes, ``NumToTensor``/``Int``, ``arange``,
   ``tril`` of ones, slicing a mask buffer by the sequence length) folds to constants given
   the input shapes. ``aten::size``/``dim``/``numel``/``prim::dtype`` of a graph tensor are
   static too. ``prim::If`` with a static condition runs the taken branch; ``prim::Loop`` with a
   static trip count is unrolled. Nodes on graph tensors are translated by
   ``torchscript_ops.CONVERTERS[kind]`` into ``tensorc.ops`` nodes (torch conventions --
   type promotion with Python scalars and 0-dim tensors, ``alpha``, ``rounding_mode``,
   ``squeeze`` of a non-1 dim, ``chunk`` sizes, adaptive pooling, ... -- are translated there).
   In-place ops (``relu_``, ``add_``) left by ``remove_mutation`` rebind the mutated value; one
   whose target aliases a tensor still read later (a view) is an ``UnsupportedFeatureError``.
5. **Errors.** Nodes of kinds without a converter are collected over the whole walk (the values
   they produce are marked unknown and their consumers skipped), and reported together in one
   ``UnsupportedOpsError`` (kind, count, output value and source location of each). A
   data-dependent ``prim::If``/``prim::Loop`` is reported there too.
6. **Outputs.** Returned tuples/lists are flattened into graph outputs named ``output`` (or
   ``output_0``, ``output_1``, ...); nodes nobody reads are dropped. Node names are the
   TorchScript value names (``input.7``, ``x.3``; extra nodes of a conversion get
   ``<name>/<op>``), constants keep their parameter names (``self.fc1.weight``).
"""
import os
import re

import numpy as np

from tensorc.graph.ir import Graph, Node, Value
from tensorc.graph.names import UniqueNames

from .errors import (DynamicShapeError, ImporterError, MissingDependencyError, ModelParseError,
                     UnsupportedDtypeError, UnsupportedFeatureError, UnsupportedOpsError)

#: Loops are unrolled up to this many iterations in all (a guard against a runaway loop).
MAX_UNROLL = 10000


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError("torch", "torch") from e
    return torch


# ------------------------------------------------------------------------------ dtypes

_TC_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32",
              "float64")

#: TorchScript passes dtypes as ScalarType codes (ints).
_SCALAR_TYPE_CODES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16",
                      6: "float32", 7: "float64", 8: "complex32", 9: "complex64",
                      10: "complex128", 11: "bool", 15: "bfloat16"}


def torch_dtype(d):
    """A ``torch.dtype`` from a torch dtype, a ScalarType code, a tensorc/numpy dtype name."""
    torch = _torch()
    if isinstance(d, torch.dtype):
        return d
    if isinstance(d, bool):
        raise TypeError(f"not a dtype: {d!r}")
    if isinstance(d, int):
        name = _SCALAR_TYPE_CODES.get(d)
        if name is None:
            raise UnsupportedDtypeError(f"unknown TorchScript ScalarType code {d}")
        return getattr(torch, name)
    name = np.dtype(d).name if not isinstance(d, str) else d
    name = {"bool_": "bool"}.get(name, name)
    t = getattr(torch, name, None)
    if not isinstance(t, torch.dtype):
        raise TypeError(f"not a dtype: {d!r}")
    return t


def tc_dtype(d, what="tensor"):
    """The tensorc dtype name of a torch dtype (or anything ``torch_dtype`` takes)."""
    t = torch_dtype(d)
    name = str(t).replace("torch.", "")
    if name not in _TC_DTYPES:
        raise UnsupportedDtypeError(f"{what} has dtype {t}, which tensorc does not support "
                                    "(supported: bool, uint8, int8-64, float16, float32, "
                                    "float64)")
    return name


# ------------------------------------------------------------------------------ static values

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


# ------------------------------------------------------------------------------ node info

def source_location(node):
    """'file.py:123' for a TorchScript node (trace: the innermost recorded frame; script: the
    source range), or '' when the node has none."""
    try:
        text = str(node.sourceRange())
    except Exception:  # pragma: no cover - defensive: binding differences
        return ""
    text = text.strip()
    if not text:
        return ""
    first = text.splitlines()[0].strip()
    if first.startswith("File "):                      # script: File "x.py", line 12
        m = re.match(r'File "([^"]+)", line (\d+)', first)
        if m:
            return f"{os.path.basename(m.group(1))}:{m.group(2)}"
    m = re.match(r"(.+)\((\d+)\): (\S+)", first)       # trace: x.py(12): forward
    if m:
        return f"{os.path.basename(m.group(1))}:{m.group(2)} ({m.group(3)})"
    return first[:80]


def describe_node(node):
    """'aten::foo -> %x.3 at model.py:12 in layer1.0' -- how errors name a TorchScript
    node (the scope is a traced module's submodule path)."""
    outs = ", ".join(f"%{o.debugName()}" for o in node.outputs())
    loc = source_location(node)
    scope = ""
    try:
        scope = node.scopeName()
    except Exception:  # pragma: no cover
        pass
    parts = [f"{node.kind()}" + (f" -> {outs}" if outs else "")]
    if loc:
        parts.append(f"at {loc}")
    if scope:
        parts.append(f"in {scope.split('/')[-1].replace('__module.', '')}")
    return " ".join(parts)


def _unsupported_entry(node):
    outs = ", ".join(f"%{o.debugName()}" for o in node.outputs()) or "(no output)"
    loc = source_location(node)
    return f"{outs} at {loc}" if loc else outs


_SCHEMAS = {}


def node_schema(node):
    """The parsed ``FunctionSchema`` of a node, or None (prim ops have none)."""
    torch = _torch()
    try:
        text = node.schema()
    except Exception:
        return None
    if not text or text == "(no schema)":
        return None
    s = _SCHEMAS.get(text)
    if s is None:
        try:
            s = torch._C.parse_schema(text)
        except Exception:
            return None
        _SCHEMAS[text] = s
    return s


class Call:
    """One TorchScript node as a converter sees it: ``args`` (resolved values: graph Values,
    static Python values or constant torch tensors, in schema order), ``arg(name, default)`` by
    schema argument name, ``kind``, ``node`` (the ``torch._C.Node``)."""

    def __init__(self, node, args):
        self.node = node
        self.kind = node.kind()
        self.args = list(args)
        self.schema = node_schema(node)
        self.names = [a.name for a in self.schema.arguments] if self.schema is not None else []
        self.overload = self.schema.overload_name if self.schema is not None else ""
        self.n_outputs = node.outputsSize()

    def has(self, name):
        return name in self.names and self.names.index(name) < len(self.args)

    def arg(self, name, default=None):
        """The argument called ``name`` in the node's schema (default when absent)."""
        if name in self.names:
            k = self.names.index(name)
            if k < len(self.args):
                return self.args[k]
        return default

    def __getitem__(self, k):
        return self.args[k] if k < len(self.args) else None

    def __repr__(self):
        return describe_node(self.node)


# ------------------------------------------------------------------------------ context

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


# ------------------------------------------------------------------------------ errors

class _DynamicInputsError(DynamicShapeError):
    """DynamicShapeError worded for ``from_torchscript`` (input_shapes, not shape_overrides)."""

    def __init__(self, inputs, label):
        self.inputs = dict(inputs)
        names = list(self.inputs)
        lines = [f"{label}: tensorc needs static shapes, but these inputs have no recorded "
                 "shape (scripted and loaded modules record none; a trace records its "
                 "example's):"]
        for n, dims in self.inputs.items():
            lines.append(f"  {n!r}: {dims if dims is not None else '[?]'}")
        lines.append("pass input_shapes=[" + ", ".join("(...)" for _ in names) + "] (one shape "
                     "per input, in forward's order) or input_shapes={" +
                     ", ".join(f"{n!r}: (...)" for n in names[:2]) + "}")
        ValueError.__init__(self, "\n".join(lines))


# ------------------------------------------------------------------------------ loading

def _load(module):
    """(script module or function, label, loaded_here)."""
    torch = _torch()
    if isinstance(module, (str, os.PathLike)):
        path = os.fspath(module)
        if not os.path.exists(path):
            raise FileNotFoundError(f"TorchScript model {path!r} does not exist")
        try:
            m = torch.jit.load(path, map_location="cpu")
        except Exception as e:
            raise ModelParseError(f"cannot load TorchScript model {path!r}: {type(e).__name__}: "
                                  f"{str(e).strip().splitlines()[0] if str(e).strip() else ''} "
                                  "(not a file saved by torch.jit.save?)") from None
        m.eval()
        return m, f"TorchScript model {os.path.basename(path)!r}", True
    if isinstance(module, torch.jit.ScriptModule):
        try:
            label = module.original_name
        except Exception:  # pragma: no cover
            label = type(module).__name__
        return module, f"TorchScript module {label!r}", False
    if isinstance(module, torch.jit.ScriptFunction):
        return module, f"TorchScript function {module.name!r}", False
    if isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torchscript: {type(module).__name__} is an eager nn.Module; "
                        "convert it first with torch.jit.trace(model.eval(), example_inputs) "
                        "or torch.jit.script(model.eval())")
    raise TypeError(f"from_torchscript: module must be a torch.jit.ScriptModule, a "
                    f"ScriptFunction or a path, got {type(module).__name__}")


def _is_module(m):
    return isinstance(m, _torch().jit.ScriptModule)


def _forward_graph(m):
    if _is_module(m):
        if not m._c._has_method("forward"):
            raise UnsupportedFeatureError("the TorchScript module has no forward method")
        return m.graph
    return m.graph


def _input_specs(graph, is_module):
    """[(name, tensor?, sizes or None, dtype or None, torch type)] of forward's arguments."""
    torch = _torch()
    ins = list(graph.inputs())
    if is_module:
        ins = ins[1:]
    specs, seen = [], set()
    for v in ins:
        name = v.debugName()
        base = name.rsplit(".", 1)[0] if "." in name and name.rsplit(".", 1)[1].isdigit() \
            else name
        if base in seen or not base:
            base = name
        seen.add(base)
        t = v.type()
        is_tensor = isinstance(t, torch._C.TensorType)
        sizes, dtype = None, None
        if is_tensor:
            try:
                s = t.sizes()
                sizes = list(s) if s is not None and all(d is not None for d in s) else None
            except Exception:
                sizes = None
            try:
                st = t.dtype()
                dtype = tc_dtype(st) if st is not None else None
            except Exception:
                dtype = None
        specs.append((base, is_tensor, sizes, dtype, t))
    return specs


def _as_shape(shape, what):
    torch = _torch()
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"{what} must be a sequence of ints, got {shape!r}") from None
    if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) for d in dims):
        raise ValueError(f"{what} must be a sequence of ints, got {shape!r}")
    dims = tuple(int(d) for d in dims)
    if any(d <= 0 for d in dims):
        raise ValueError(f"{what} = {dims}: dimensions must be positive (tensorc does not "
                         "support empty or dynamic dimensions)")
    return dims


def _is_single_shape(x):
    torch = _torch()
    if isinstance(x, torch.Size):
        return True
    return isinstance(x, (list, tuple)) and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in x) and len(x) > 0


def _resolve_shapes(specs, input_shapes, label):
    names = [s[0] for s in specs]
    n = len(specs)
    given = [None] * n
    if input_shapes is None:
        pass
    elif isinstance(input_shapes, dict):
        unknown = [k for k in input_shapes if k not in names]
        if unknown:
            raise ValueError(f"{label}: input_shapes names {unknown}, which are not inputs of "
                             f"forward; the inputs are {names}")
        for k, v in input_shapes.items():
            given[names.index(k)] = _as_shape(v, f"input_shapes[{k!r}]")
    else:
        shapes = [input_shapes] if _is_single_shape(input_shapes) else list(input_shapes)
        if len(shapes) != n:
            raise ValueError(f"{label}: forward takes {n} input{'s' if n != 1 else ''} "
                             f"({', '.join(names) or 'none'}), but input_shapes gives "
                             f"{len(shapes)} shape{'s' if len(shapes) != 1 else ''}: "
                             f"{input_shapes!r}")
        for k, s in enumerate(shapes):
            given[k] = _as_shape(s, f"input_shapes[{k}] ({names[k]!r})")
    out, dynamic = [], {}
    for (name, is_tensor, sizes, _, t), g in zip(specs, given):
        if not is_tensor:
            raise UnsupportedFeatureError(f"{label}: input {name!r} of forward has type {t}; "
                                          "only tensor inputs are supported")
        shape = g if g is not None else (tuple(sizes) if sizes is not None else None)
        if shape is None:
            dynamic[name] = None
        elif any(d <= 0 for d in shape):
            raise ValueError(f"{label}: input {name!r} would have shape {shape}; dimensions "
                             "must be positive")
        out.append(shape)
    if dynamic:
        raise _DynamicInputsError(dynamic, label)
    return out


def _resolve_dtypes(specs, input_dtypes, label):
    names = [s[0] for s in specs]
    n = len(specs)

    def one(d, what):
        try:
            return tc_dtype(d, what)
        except TypeError:
            raise ValueError(f"{label}: {what} = {d!r} is not a dtype") from None
    if input_dtypes is None:
        return [s[3] or "float32" for s in specs]
    if isinstance(input_dtypes, dict):
        unknown = [k for k in input_dtypes if k not in names]
        if unknown:
            raise ValueError(f"{label}: input_dtypes names {unknown}, which are not inputs of "
                             f"forward; the inputs are {names}")
        return [one(input_dtypes[nm], f"input_dtypes[{nm!r}]") if nm in input_dtypes
                else (s[3] or "float32") for nm, s in zip(names, specs)]
    if isinstance(input_dtypes, (list, tuple)):
        if len(input_dtypes) != n:
            raise ValueError(f"{label}: forward takes {n} inputs ({', '.join(names)}), but "
                             f"input_dtypes gives {len(input_dtypes)}: {input_dtypes!r}")
        return [one(d, f"input_dtypes[{k}]") for k, d in enumerate(input_dtypes)]
    d = one(input_dtypes, "input_dtypes")
    return [d] * n


def _prepare(m, label):
    """(graph to walk, object bound to its ``self`` input or None): frozen when possible."""
    torch = _torch()
    if not _is_module(m):
        g = m.graph.copy()
        torch._C._jit_pass_inline(g)
        return _clean(g), None
    if m.training:
        raise UnsupportedFeatureError(
            f"{label} is in training mode; tensorc compiles inference (dropout off, batch norm "
            "with running statistics): call module.eval() before tracing/scripting or before "
            "importing")
    owner = m
    try:
        frozen = torch._C._freeze_module(m._c, [])
        g = frozen._get_method("forward").graph
        owner = frozen
    except Exception:
        g = m.graph.copy()
    torch._C._jit_pass_inline(g)
    return _clean(g), owner


def _clean(g):
    torch = _torch()
    for p in (torch._C._jit_pass_remove_mutation, torch._C._jit_pass_constant_propagation,
              torch._C._jit_pass_dce):
        try:
            p(g)
        except Exception:  # a pass that refuses a graph is only an optimisation lost
            pass
    return g


# ------------------------------------------------------------------------------ the walker

class _Walker:
    def __init__(self, ctx, label):
        from .torchscript_ops import CONVERTERS
        self.ctx = ctx
        self.label = label
        self.converters = CONVERTERS
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
        from . import torchscript_ops as tops
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
        from . import torchscript_ops as tops
        return self._converter(kind) is not None or kind in tops.SHAPE_QUERIES or \
            kind in tops.STATIC_OPS or kind.startswith("prim::")

    def _no_converter(self, node, outs):
        self.record_unsupported(node)
        for o in outs:
            self.set(o, UNKNOWN)

    # static evaluation ------------------------------------------------------------------

    def _fold(self, call):
        """Evaluate a node on static operands with torch (NotImplemented: cannot)."""
        from . import torchscript_ops as tops
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
        for name, (k, is_write) in by_set.items():
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


def _constant(node):
    torch = _torch()
    out = node.output()
    t = out.type()
    if isinstance(t, torch._C.NoneType):
        return None
    try:
        v = out.toIValue()
    except Exception:
        if node.hasAttribute("value"):
            kind = node.kindOf("value")
            v = getattr(node, kind)("value")
        else:
            return None
    if isinstance(v, torch.device):
        return v
    if isinstance(t, torch._C.DeviceObjType):
        return torch.device(v)
    return v


def _coerce_outputs(call, res):
    """Python results of static builtins, coerced to the TorchScript output types."""
    torch = _torch()
    n = call.n_outputs
    vals = [res] if n == 1 else list(res) if n > 1 else []
    outs = list(call.node.outputs())
    fixed = []
    for o, v in zip(outs, vals):
        t = o.type()
        if isinstance(t, torch._C.IntType) and isinstance(v, (bool, float, np.integer)):
            v = int(v)
        elif isinstance(t, torch._C.FloatType) and isinstance(v, (int, np.floating)) and \
                not isinstance(v, bool):
            v = float(v)
        elif isinstance(t, torch._C.BoolType) and not isinstance(v, bool) and \
                isinstance(v, (int, np.bool_)):
            v = bool(v)
        fixed.append(v)
    return fixed[0] if n == 1 else fixed


def _call_torch(call):
    """Evaluate a node on static operands with the exact ``torch.ops`` overload."""
    torch = _torch()
    s = call.schema
    ns, name = s.name.split("::", 1)
    packet = getattr(getattr(torch.ops, ns), name)
    op = getattr(packet, s.overload_name or "default")
    pos, kw = [], {}
    for a, v in zip(s.arguments, call.args):
        if a.kwarg_only:
            kw[a.name] = v
        else:
            pos.append(v)
    with torch.no_grad():
        res = op(*pos, **kw)
    if call.n_outputs == 1:
        return res
    return list(res)


# ------------------------------------------------------------------------------ the importer

def _flatten_outputs(x, label):
    torch = _torch()
    if isinstance(x, (list, tuple)):
        out = []
        for y in x:
            out.extend(_flatten_outputs(y, label))
        return out
    if isinstance(x, dict):
        raise UnsupportedFeatureError(f"{label}: forward returns a dict; return a tensor or a "
                                      "tuple of tensors")
    if isinstance(x, Refused):
        raise UnsupportedFeatureError(f"{label}: forward returns {x.reason}")
    if x is None or isinstance(x, (Value, torch.Tensor, bool, int, float)):
        return [x]
    raise UnsupportedFeatureError(f"{label}: forward returns a {type(x).__name__}; return a "
                                  "tensor or a tuple of tensors")


def from_torchscript(module, input_shapes=None, input_dtypes=None, name=None):
    """Import a TorchScript module (``torch.jit.trace``/``torch.jit.script`` result, a
    ScriptFunction, or a path to a saved one) as a tensorc ``Graph``.

    ``input_shapes``: one static shape per tensor argument of ``forward`` (a list in argument
    order, a single shape for a one-input model, or a dict by argument name); None uses the
    shapes a trace recorded. ``input_dtypes``: a dtype for all inputs, a list or a dict
    (default: the traced dtype, else float32). ``name`` names the graph (default: the module's
    class name). See the module docstring for the steps and the errors.
    """
    torch = _torch()
    m, label, _ = _load(module)
    is_module = _is_module(m)
    specs = _input_specs(_forward_graph(m), is_module)
    shapes = _resolve_shapes(specs, input_shapes, label)
    dtypes = _resolve_dtypes(specs, input_dtypes, label)
    graph, owner = _prepare(m, label)
    gname = name or (getattr(m, "original_name", None) if is_module else getattr(m, "name", None))
    gname = gname or "model"

    ctx = Context(label)
    walker = _Walker(ctx, label)
    g_inputs = list(graph.inputs())
    inputs = []
    if is_module:
        walker.set(g_inputs[0], owner)
        g_inputs = g_inputs[1:]
    if len(g_inputs) != len(specs):  # pragma: no cover - freezing keeps the signature
        raise ImporterError(f"{label}: the prepared graph has {len(g_inputs)} inputs, forward "
                            f"{len(specs)}")
    for tv, (nm, *_), shape, dtype in zip(g_inputs, specs, shapes, dtypes):
        v = Value(ctx.fresh(nm), tuple(shape), dtype)
        inputs.append(v)
        walker.set(tv, v)
    with torch.no_grad():
        for node in graph.nodes():
            walker.run_node(node)
        results = [walker.get(o) for o in graph.outputs()]
    if walker.unsupported:
        raise UnsupportedOpsError(walker.unsupported, label)
    flat = _flatten_outputs(results, label)
    outputs = _materialize_outputs(ctx, flat, inputs, label)
    nodes = _dead_code(ctx.nodes, outputs)
    return Graph(inputs, nodes, outputs, str(gname))


def _materialize_outputs(ctx, flat, inputs, label):
    """Graph outputs: distinct, computed values named output / output_k. An output that is an
    input, repeats another or is a constant gets a copy node of its own."""
    input_ids = {id(v) for v in inputs}
    seen, result = set(), []
    multi = len(flat) > 1
    for k, x in enumerate(flat):
        oname = f"output_{k}" if multi else "output"
        if x is None:
            raise UnsupportedFeatureError(f"{label}: output #{k} is None; return tensors only")
        if not isinstance(x, Value):
            x = ctx.tensor(x)
        if x.is_const or id(x) in input_ids or id(x) in seen:
            copy = Value(ctx.fresh(oname), x.shape, x.dtype)
            ctx.nodes.append(Node("reshape", [x], [copy], {"newshape": list(x.shape)},
                                  f"{oname}/copy"))
            x = copy
        else:
            ctx._names.release(x.name)
            x.name = ctx.fresh(oname)
        seen.add(id(x))
        result.append(x)
    return result


def _dead_code(nodes, outputs):
    live = {id(v) for v in outputs}
    keep = []
    for n in reversed(nodes):
        if any(id(v) in live for v in n.outputs):
            keep.append(n)
            live.update(id(v) for v in n.inputs)
    return list(reversed(keep))


__all__ = ["from_torchscript", "tc_dtype", "torch_dtype", "Context", "Call", "UNKNOWN",
           "Refused"]
