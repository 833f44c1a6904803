"""A compiled model: one shared object with an entry running every kernel, weights inside.

``GraphModule`` wraps the ``Module`` of a library built by ``tensorc.codegen.build_graph_module``
(or loaded by ``load_graph_module``). Its embedded metadata (``metadata["graph"]``) names the
model's inputs and outputs and records the plan, so a saved file is the whole model: loading it
compiles nothing.

- ``mod(*inputs)`` / ``mod.run({"name": array})``: check the inputs, allocate fresh outputs, run
  the entry; returns the list of outputs. Inputs that are not C-contiguous (or not aligned) are
  copied; a wrong count, type, dtype or shape raises with the input named.
- ``mod.save(path)``: the single-file artifact (``.tcm``: the shared object itself).
- ``mod.export_library(path)``: the shared object plus a C header (same name, ``.h``).
- ``mod.time_evaluator(number, repeat)(*inputs)``, ``mod.profile(*inputs)`` (each kernel timed
  alone, in plan order, on the data it sees in a real run), ``mod.get_source(fmt)``,
  ``mod.kernel_names``.
"""
import ctypes
import os
import re
import statistics
import tempfile
import textwrap
import time
from pathlib import Path
from typing import NamedTuple, Tuple

import numpy as np

from .module import (_C_KEYWORDS, Module, _c_type, _missing_cpu_features, atomic_write,
                     export_shared_library)

WEIGHTS_SYMBOL = "__tensorc_weights"  # exported address of the weights blob
_ALIGN = 64


class TensorInfo(NamedTuple):
    """Name, shape and dtype of a model input or output."""
    name: str
    shape: Tuple[int, ...]
    dtype: str


class KernelTiming(NamedTuple):
    """Seconds per call of the kernel at position ``call`` of the plan (one result per repeat)."""
    call: int
    kernel: str
    median: float
    results: Tuple[float, ...]


class ModelSignature:
    """Names, signature and run-by-name of a compiled model's ``inputs``/``outputs``
    (TensorInfo lists; ``entry_name`` and ``__call__`` come from the module), shared by the
    CPU and CUDA model modules."""

    @property
    def input_names(self):
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self):
        return tuple(t.name for t in self.outputs)

    def signature(self):
        ins = ", ".join(f"{t.name}: {t.dtype}{list(t.shape)}" for t in self.inputs)
        outs = ", ".join(f"{t.name}: {t.dtype}{list(t.shape)}" for t in self.outputs)
        return f"({ins}) -> ({outs})"

    def run(self, feed):
        """Run on a mapping from input name to array; returns the list of outputs."""
        names = self.input_names
        unknown = [n for n in feed if n not in names]
        if unknown:
            raise KeyError(f"{self.entry_name}.run(): no input named {unknown[0]!r}; the inputs "
                           f"are {', '.join(map(repr, names))}")
        missing = [n for n in names if n not in feed]
        if missing:
            raise KeyError(f"{self.entry_name}.run(): input {missing[0]!r} is missing")
        return self(*(feed[n] for n in names))


class GraphModule(ModelSignature):
    """A loaded whole-model library; calling it runs the model and returns its outputs."""

    def __init__(self, module):
        graph = module.metadata.get("graph")
        if graph is None:
            raise ValueError(f"{module.path} is a tensorc module but not a graph module (it "
                             "has no graph metadata); load it with tensorc.runtime.load_module")
        self.module = module
        self._graph = graph
        self.entry_name = module.entry_name
        self.inputs = tuple(TensorInfo(t["name"], tuple(t["shape"]), t["dtype"])
                            for t in graph["inputs"])
        self.outputs = tuple(TensorInfo(t["name"], tuple(t["shape"]), t["dtype"])
                             for t in graph["outputs"])
        self.kernel_names = tuple(graph["kernels"])
        self._entry = module.get_function(self.entry_name)
        self._in_dtypes = [np.dtype(t.dtype) for t in self.inputs]
        self._out_dtypes = [np.dtype(t.dtype) for t in self.outputs]
        missing = _missing_cpu_features(module.metadata["target"])
        self._unrunnable = (f"{module.path} was compiled for {module.metadata['target']!r}; this "
                            f"CPU lacks {', '.join(missing)}, so running it would crash"
                            ) if missing else ""

    # -- description ---------------------------------------------------------------------------

    @property
    def path(self):
        return self.module.path

    @property
    def metadata(self):
        return self.module.metadata

    def __repr__(self):
        return (f"<tensorc.GraphModule {self.entry_name}{self.signature()}, "
                f"{len(self._graph['calls'])} kernel calls, {self.path}>")

    def get_function(self, name):
        """The runtime Function of one kernel (or of the entry), callable on numpy arrays."""
        return self.module.get_function(name)

    def get_source(self, fmt="llvm"):
        """"llvm" (optimized IR), "asm" or "ll-unoptimized" text; only for in-process builds."""
        return self.module.get_source(fmt)

    # -- running ---------------------------------------------------------------------------------

    def check_inputs(self, inputs):
        """The inputs as arrays the entry can take (copied where not C-contiguous or aligned)."""
        if self._unrunnable:
            raise RuntimeError(self._unrunnable)
        if len(inputs) != len(self.inputs):
            raise TypeError(f"{self.entry_name}() takes {len(self.inputs)} inputs "
                            f"{self.signature()}, got {len(inputs)}")
        out = []
        for k, (t, a, want) in enumerate(zip(self.inputs, inputs, self._in_dtypes)):
            what = f"{self.entry_name}(): input {t.name!r} (#{k})"
            if not isinstance(a, np.ndarray):
                raise TypeError(f"{what} must be a numpy.ndarray of {t.dtype}{list(t.shape)}, "
                                f"got {type(a).__name__}")
            if a.dtype != want:
                raise TypeError(f"{what}: expected dtype {t.dtype}, got {a.dtype}")
            if a.shape != t.shape:
                raise ValueError(f"{what}: expected shape {t.shape}, got {a.shape}")
            if not (a.flags.c_contiguous and a.flags.aligned):
                a = np.require(a, requirements=("C", "A"))
            out.append(a)
        return out

    def new_outputs(self):
        """Freshly allocated output arrays."""
        return [np.empty(t.shape, d) for t, d in zip(self.outputs, self._out_dtypes)]

    def __call__(self, *inputs):
        arrays = self.check_inputs(inputs)
        outputs = self.new_outputs()
        self._entry.call_checked([a.ctypes.data for a in arrays] +
                                 [o.ctypes.data for o in outputs])
        return outputs

    def time_evaluator(self, number=10, repeat=3, min_repeat_ms=0):
        """A callable timing the whole model on given inputs (see ``Module.time_evaluator``)."""
        inner = self.module.time_evaluator(number, repeat, min_repeat_ms,
                                           func_name=self.entry_name)

        def evaluate(*inputs):
            return inner(*self.check_inputs(inputs), *self.new_outputs())

        return evaluate

    def profile(self, *inputs, number=5, repeat=3):
        """Time each kernel call of the plan alone; returns a KernelTiming per call, plan order.

        The plan runs once first, so each kernel then sees the data of a real run; in each
        repeat every call runs ``number`` times back to back (a kernel never writes what it
        reads, so repeating it is harmless) before the next call starts.
        """
        if number < 1 or repeat < 1:
            raise ValueError(f"profile needs number >= 1 and repeat >= 1, got number={number}, "
                             f"repeat={repeat}")
        arrays = self.check_inputs(inputs)
        outputs = self.new_outputs()
        graph = self._graph
        workspace = np.zeros(graph["workspace_nbytes"] + _ALIGN, np.uint8)
        ws = -(-workspace.ctypes.data // _ALIGN) * _ALIGN
        weights = 0
        if graph["weights_nbytes"]:
            weights = ctypes.addressof(ctypes.c_char.in_dll(self.module._library,
                                                            graph["weights_symbol"]))

        def address(ref):
            kind, index, offset = ref
            if kind == "input":
                return arrays[index].ctypes.data + offset
            if kind == "output":
                return outputs[index].ctypes.data + offset
            if kind == "const":
                return weights + graph["constants"][index]["offset"] + offset
            return ws + graph["storage_offsets"][index] + offset

        calls = [(c["func"], self.module.get_function(c["func"]),
                  [address(r) for r in c["args"]]) for c in graph["calls"]]
        for _, fn, addresses in calls:
            fn.call_checked(addresses)
        results = [[] for _ in calls]
        for _ in range(repeat):
            for k, (_, fn, addresses) in enumerate(calls):
                start = time.perf_counter()
                for _ in range(number):
                    fn.call_checked(addresses)
                results[k].append((time.perf_counter() - start) / number)
        return [KernelTiming(k, name, statistics.median(r), tuple(r))
                for k, ((name, _, _), r) in enumerate(zip(calls, results))]

    # -- files -----------------------------------------------------------------------------------

    def save(self, path):
        """Write the model as one file (the shared object, weights included); returns the path.

        ``load_graph_module(path)`` (or ``tensorc.load``) loads it back without compiling.
        """
        path = os.fspath(path)
        atomic_write(path, Path(self.path).read_bytes())
        return path

    def export_library(self, path):
        """Write the shared library to ``path`` and a C header next to it (same name, ``.h``)."""
        return export_shared_library(self.path, path,
                                     lambda lib, hdr: graph_c_header(self.metadata, lib, hdr))


def _dlopen_fresh(path):
    """dlopen ``path`` through a unique alias.

    glibc hands back the library already loaded under the same file name without looking at the
    file, so a model saved over a path loaded earlier would otherwise run the old code. Under a new
    name it compares the file's identity instead: a replaced file loads anew, the same file does
    not load twice.
    """
    with tempfile.TemporaryDirectory(prefix="tensorc-load-") as tmp:
        alias = os.path.join(tmp, "model.so")
        os.symlink(path, alias)
        return ctypes.CDLL(alias)


def load_graph_module(path):
    """Load a model written by ``GraphModule.save`` or ``export_library`` (or by
    ``CudaGraphModule.save``: a CudaGraphModule); compiles nothing."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path}")
    from .cuda_graph_module import is_model_file, load_cuda_graph_module
    if is_model_file(path):  # saved by a "cuda" / "cuda-emu" model
        return load_cuda_graph_module(path)
    module = Module.from_library(path, library=_dlopen_fresh(path))
    return GraphModule(module)


def _comment(text):
    return str(text).replace("*/", "* /")


def _c_ident(name, fallback, taken):
    ident = re.sub(r"[^0-9A-Za-z_]", "_", str(name))
    if not ident or ident[0].isdigit():
        ident = f"v_{ident}"
    if ident in _C_KEYWORDS or ident in taken or ident.startswith("__"):
        ident = fallback
    taken.add(ident)
    return ident


def graph_c_header(metadata, library_name, header_name):
    """A C header declaring the model's entry, with input/output names, shapes and dtypes."""
    graph = metadata["graph"]
    entry = metadata["entry"]
    guard = "TENSORC_" + "".join(c if c.isalnum() else "_" for c in header_name.upper())
    n_in, n_out = len(graph["inputs"]), len(graph["outputs"])
    lines = [f"/* {_comment(header_name)}: generated by tensorc {metadata['tensorc_version']} "
             "for target",
             f" *   \"{metadata['target']}\".",
             f" * The whole model as one function, {entry}(); its weights are inside "
             f"{_comment(library_name)}.",
             " * Link with that library (it needs only libc). Buffers are dense row-major (C order)",
             " * arrays aligned to their element size; an output must not overlap any other",
             " * argument. The function returns 0 on success, nonzero if memory for intermediate",
             " * results could not be allocated. It may be called from several threads at once.",
             " * float16 is passed as raw IEEE half bits (uint16_t).",
             " */", f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
             "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
             "/* Threads a parallel loop may use; 0 uses TENSORC_NUM_THREADS, else the usable cores. */",
             "extern int32_t __tensorc_num_threads;", "",
             f"/* {entry}: {n_in} input{'s' * (n_in != 1)}, {n_out} output{'s' * (n_out != 1)}"]
    args, taken = [], set()
    for role, tensors, prefix in (("input ", graph["inputs"], "in"),
                                  ("output", graph["outputs"], "out")):
        for k, t in enumerate(tensors):
            ident = _c_ident(t["name"], f"{prefix}{k}", taken)
            dims = ", ".join(map(str, t["shape"]))
            lines.append(f" *   {role} {k}: {_comment(t['name'])}: {t['dtype']}[{dims}] "
                         f"({ident})")
            const = "const " if prefix == "in" else ""
            args.append(f"{const}{_c_type(t['dtype'])} *{ident}")
    calls = ", ".join(c["func"] for c in graph["calls"]) or "none"
    lines += [f" * {line}" for line in textwrap.wrap(f"Kernels, in call order: {calls}", 92)]
    lines += [" */", f"int32_t {entry}({', '.join(args) or 'void'});", "",
              "#ifdef __cplusplus", "}", "#endif", "", f"#endif  /* {guard} */", ""]
    return "\n".join(lines)
