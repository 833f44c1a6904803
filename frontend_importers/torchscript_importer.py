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

The steps live in their own modules: ``torchscript_load`` (1, 3), ``torchscript_inputs``
(2), ``torchscript_walker`` with ``torchscript_fold`` and the converters of
``torchscript_ops`` (4, 5); this module runs them and assembles the graph (6).
"""
from tensorc.graph.ir import Graph, Node, Value
from tensorc.graph.passes.dce import live_nodes

from .errors import ImporterError, UnsupportedFeatureError, UnsupportedOpsError
from .torchscript_context import Context
from .torchscript_dtypes import _torch, tc_dtype, torch_dtype
from .torchscript_inputs import _input_specs, _resolve_dtypes, _resolve_shapes
from .torchscript_load import _forward_graph, _is_module, _load, _prepare
from .torchscript_nodes import Call
from .torchscript_values import UNKNOWN, Refused
from .torchscript_walker import _Walker


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
    nodes = live_nodes(ctx.nodes, outputs)
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


__all__ = ["from_torchscript", "tc_dtype", "torch_dtype", "Context", "Call", "UNKNOWN",
           "Refused"]
