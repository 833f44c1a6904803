"""Exceptions of the model importers.

Every error an importer raises on purpose is an ``ImporterError``; the specific kinds below let
callers (and the conformance runner) tell a model tensorc cannot take apart from a bug. Those
that describe a bad or unsupported *input* also derive from ``ValueError``, so code that
already catches ``ValueError`` around model loading keeps working.

- ``ModelParseError``: the file is not a readable model (truncated, corrupt, not ONNX).
- ``UnsupportedOpsError``: the model uses operator types the importer has no converter for;
  lists *all* of them at once, each with its count and node names.
- ``DynamicShapeError``: graph inputs with symbolic or unknown dimensions and no
  ``shape_overrides`` entry; lists every such input with its dims.
- ``NonConstantInputError``: an input that must be known at import time (a shape, axes, pads,
  K of TopK...) is computed at run time; names the node and the input.
- ``UnsupportedDtypeError``: a tensor type tensorc has no dtype for (bfloat16, string, float8,
  complex...).
- ``UnsupportedFeatureError``: a supported operator used with an attribute value or rank
  tensorc's operators cannot express (3-D convolution, cubic resize, training-mode dropout).
- ``OpsetError``: the model's opset is older than the importer supports and its operators
  changed since.
- ``MissingDependencyError``: an optional dependency (onnx, torch) is not installed; it is an
  ``ImportError`` whose message names the extra to install.
"""


class ImporterError(Exception):
    """Base class of everything an importer raises on purpose."""


class MissingDependencyError(ImporterError, ImportError):
    """An optional frontend dependency is missing: ``pip install 'tensorc[<extra>]'``."""

    def __init__(self, module, extra):
        self.module, self.extra = module, extra
        super().__init__(f"this importer needs the '{module}' package, an optional dependency "
                         f"of tensorc: pip install 'tensorc[{extra}]'")


class ModelParseError(ImporterError, ValueError):
    """The model file or bytes cannot be parsed."""


class OpsetError(ImporterError, ValueError):
    """The model's operator set version is not supported."""


class UnsupportedOpsError(ImporterError, NotImplementedError):
    """Operator types without a converter, all of them at once.

    ``ops`` maps each op type (``domain::Type`` outside the default domain) to the list of
    names of the nodes that use it, in model order.
    """

    def __init__(self, ops, model_name="model"):
        self.ops = {k: list(v) for k, v in ops.items()}
        total = sum(len(v) for v in self.ops.values())
        lines = [f"{model_name}: {len(self.ops)} unsupported operator type"
                 f"{'s' if len(self.ops) != 1 else ''} ({total} node{'s' if total != 1 else ''}):"]
        for op, names in sorted(self.ops.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            shown = ", ".join(repr(n) for n in names[:8])
            more = f", ... ({len(names) - 8} more)" if len(names) > 8 else ""
            lines.append(f"  {op} x{len(names)}: {shown}{more}")
        super().__init__("\n".join(lines))


class DynamicShapeError(ImporterError, ValueError):
    """Graph inputs with dynamic dims and no override. ``inputs`` maps name -> dims (ints,
    symbolic names, or None for an unknown dim)."""

    def __init__(self, inputs):
        self.inputs = dict(inputs)
        lines = ["tensorc needs static shapes, but these graph inputs have dynamic dimensions:"]
        for name, dims in self.inputs.items():
            shown = ", ".join("?" if d is None else str(d) for d in dims)
            lines.append(f"  {name!r}: [{shown}]")

        def dims_of(dims):
            return ", ".join(str(d) if isinstance(d, int) else "..." for d in dims)
        example = ", ".join(f"{n!r}: ({dims_of(dims)})"
                            for n, dims in list(self.inputs.items())[:2])
        lines.append(f"pass shape_overrides={{{example}}} to give them concrete shapes")
        super().__init__("\n".join(lines))


class NonConstantInputError(ImporterError, ValueError):
    """An operand that must be static is computed at run time. ``node`` and ``value`` name the
    ONNX node and the graph value of the operand."""

    def __init__(self, message, node=None, value=None):
        self.node, self.value = node, value
        super().__init__(message)


class UnsupportedDtypeError(ImporterError, TypeError):
    """A tensor element type tensorc cannot represent."""


class UnsupportedFeatureError(ImporterError, NotImplementedError):
    """An operator configuration (attribute value, rank) tensorc's operators cannot express."""
