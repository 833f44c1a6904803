"""The inputs of a TorchScript ``forward``: names, static shapes and dtypes.

tensorc compiles static shapes, so every input needs one: the caller's ``input_shapes``, else
the shape a trace recorded. All missing shapes are reported together, and bad shape or dtype
arguments are ``ValueError``s naming the input, before any node is walked.
"""
import numpy as np

from .errors import DynamicShapeError, UnsupportedFeatureError
from .torchscript_dtypes import _torch, tc_dtype


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
