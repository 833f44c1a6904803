"""A compiled model on the GPU (target "cuda") or on the CPU emulator (target "cuda-emu").

``tensorc.compile(graph, target="cuda")`` gives one CUDA translation unit holding every kernel of
the model and the ``ExecutionPlan`` the CPU compiler makes; ``CudaGraphModule`` runs that plan
with the GraphModule call API (``mod(*inputs)``, ``mod.run(feed)``, outputs as numpy arrays).
Its buffers are the plan's pools: the model's inputs and outputs, the constants (uploaded once),
and one allocation per storage token; a kernel parameter views ``shape``/``dtype`` at a byte
offset of its buffer, so aliases (free reshapes) need nothing at run time, as on the CPU.

- "cuda": through pycuda, imported on the first call (``cuda_status()`` must be "ready"). The
  cubin comes from nvcc (at construction when nvcc is on PATH, so ``resource_usage`` -- ptxas's
  registers, shared memory and spills per kernel -- needs no GPU). Device buffers are allocated
  once; a call uploads the inputs, launches every kernel in plan order and downloads the outputs.
- "cuda-emu": the same source built by ``cuda_emu`` for the CPU, as ONE EmuModule whose
  parameters are every (call, kernel parameter) pair of the plan, so a single emulator call
  launches the whole model. Its buffers are host memory aligned like cudaMalloc's. ``order``
  ("forward" / "reverse") picks the order the threads of a block run in.

``poison_storage = True`` fills the storage tokens and the outputs with 0xFF bytes (NaN for
floats) before every run, so an element no kernel writes shows up in the result.
"""
import math
import shutil
import threading

import numpy as np

from .cuda_module import cuda_status
from .graph_module import ModelSignature, TensorInfo

#: cudaMalloc aligns to 256 bytes; kernels read float4 from any argument, so the emulator's
#: host buffers are aligned alike and every kernel argument must start 16-byte aligned.
_ALIGN = 256
_ARG_ALIGN = 16


def _aligned_bytes(nbytes):
    raw = np.empty(int(nbytes) + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    return raw[start:start + int(nbytes)]


def _nbytes(shape, dtype):
    return math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize


def _view(buf, offset, shape, dtype):
    """``shape``/``dtype`` over the bytes of ``buf`` (a uint8 array) from ``offset``."""
    return buf[offset:offset + _nbytes(shape, dtype)].view(dtype).reshape(shape)


def _bytes_of(a):
    return a.reshape(-1).view(np.uint8)


def flat_source(name, text, sources, plan):
    """The model as one CudaSource the emulator runs in a single call: one parameter per
    (call, kernel parameter) of the plan, named ``c<call>_<param>``, and every call's
    launches in plan order with their arguments renamed alike."""
    from ..codegen.cuda_source import CudaSource, KernelLaunch
    params, launches = [], []
    for c, call in enumerate(plan.calls):
        src = sources[call.func]
        params += [(f"c{c}_{p}", tuple(shape), dtype) for p, shape, dtype in src.params]
        launches += [KernelLaunch(k.name, k.grid, k.block, tuple(f"c{c}_{a}" for a in k.args),
                                  k.shared_bytes) for k in src.kernels]
    return CudaSource(name, text, tuple(launches), tuple(params))


class CudaGraphModule(ModelSignature):
    """A whole model's CUDA kernels and the plan running them; calling it runs the model.

    ``text``: the translation unit; ``sources``: kernel PrimFunc name -> its CudaSource (launch
    dimensions and parameters); ``plan``: the ExecutionPlan over those kernels; ``target``:
    "cuda" or "cuda-emu"; ``arch``: the sm_XX nvcc compiles for (default sm_80).
    """

    def __init__(self, text, sources, plan, target="cuda", arch=None):
        from ..codegen.cuda_compile import DEFAULT_ARCH
        if target not in ("cuda", "cuda-emu"):
            raise ValueError(f"CudaGraphModule: target must be 'cuda' or 'cuda-emu', got "
                             f"{target!r}")
        self.text = text
        self.sources = dict(sources)
        self.plan = plan
        self.target = target
        self.arch = arch or DEFAULT_ARCH
        self.entry_name = plan.name
        self.inputs = tuple(TensorInfo(n, tuple(s), d) for n, s, d in plan.inputs)
        self.outputs = tuple(TensorInfo(n, tuple(s), d) for n, s, d in plan.outputs)
        self.kernel_names = tuple(self.sources)
        self.order = "forward"
        self.poison_storage = False
        self._params = [self.sources[c.func].params for c in plan.calls]
        self._check_offsets()
        self._lock = threading.Lock()
        self._compiled = None
        self._device = None
        self._emu = None
        if target == "cuda-emu":
            from .cuda_emu import build_emu
            # Nothing is declared written: the per-argument overlap check would refuse the
            # storage reuse between calls; ExecutionPlan.validate checked each call instead.
            self._emu = build_emu(flat_source(plan.name, text, self.sources, plan), ())
            self._consts = [_aligned_bytes(np.asarray(a).nbytes) for _, a in plan.constants]
            for buf, (_, a) in zip(self._consts, plan.constants):
                buf[...] = _bytes_of(np.ascontiguousarray(a))
                buf.setflags(write=False)
            self._storage = [_aligned_bytes(n) for n in plan.storage]
        elif shutil.which("nvcc"):
            self._compile()

    def _check_offsets(self):
        for c, (call, params) in enumerate(zip(self.plan.calls, self._params)):
            for ref, (pname, _, _) in zip(call.args, params):
                if ref.offset % _ARG_ALIGN:
                    raise ValueError(f"call #{c} ({call.func}), parameter {pname!r}: byte offset "
                                     f"{ref.offset} of {ref.kind} #{ref.index} is not a multiple "
                                     f"of {_ARG_ALIGN}, which CUDA kernels need")

    # -- description ---------------------------------------------------------------------------

    def __repr__(self):
        return (f"<tensorc.CudaGraphModule {self.entry_name}{self.signature()}, "
                f"{len(self.plan.calls)} kernel calls, target {self.target!r}>")

    def get_source(self, fmt="cuda"):
        """The CUDA C translation unit (the only format a CUDA model has)."""
        if fmt != "cuda":
            raise ValueError(f"a {self.target} model has only 'cuda' source, not {fmt!r}")
        return self.text

    def _compile(self):
        if self._compiled is None:
            from ..codegen.cuda_compile import compile_cubin
            self._compiled = compile_cubin(self.text, self.arch)
        return self._compiled

    @property
    def resource_usage(self):
        """{CUDA kernel: {"registers", "shared_bytes", "spill_stores", "spill_loads"}} from
        ptxas for ``arch`` (needs nvcc, not a GPU)."""
        return self._compile()[1]

    def save(self, path):
        raise NotImplementedError(
            f"{self.entry_name}: saving a {self.target} model is not supported yet (a file "
            "format holding the CUDA source, the plan and the constants is missing); compile "
            "the graph again, or save the CPU build of tensorc.compile(graph)")

    # -- running ---------------------------------------------------------------------------------

    def check_inputs(self, inputs):
        """The inputs as C-contiguous arrays aligned like cudaMalloc'd memory (copied where
        not); a wrong count, type, dtype or shape raises naming the input."""
        if len(inputs) != len(self.inputs):
            raise TypeError(f"{self.entry_name}() takes {len(self.inputs)} inputs "
                            f"{self.signature()}, got {len(inputs)}")
        out = []
        for k, (t, a) in enumerate(zip(self.inputs, inputs)):
            what = f"{self.entry_name}(): input {t.name!r} (#{k})"
            if not isinstance(a, np.ndarray):
                raise TypeError(f"{what} must be a numpy.ndarray of {t.dtype}{list(t.shape)}, "
                                f"got {type(a).__name__}")
            if a.dtype != np.dtype(t.dtype):
                raise TypeError(f"{what}: expected dtype {t.dtype}, got {a.dtype}")
            if a.shape != t.shape:
                raise ValueError(f"{what}: expected shape {t.shape}, got {a.shape}")
            if not a.flags.c_contiguous or a.ctypes.data % _ARG_ALIGN:
                copy = _view(_aligned_bytes(a.nbytes), 0, a.shape, a.dtype)
                copy[...] = a
                a = copy
            out.append(a)
        return out

    def __call__(self, *inputs):
        arrays = self.check_inputs(inputs)
        with self._lock:
            if self.target == "cuda-emu":
                return self._run_emu(arrays)
            return self._run_gpu(arrays)

    def _run_emu(self, arrays):
        outputs = [_aligned_bytes(_nbytes(t.shape, t.dtype)) for t in self.outputs]
        if self.poison_storage:
            for buf in self._storage + outputs:
                buf.fill(0xFF)
        pools = {"input": [_bytes_of(a) for a in arrays], "output": outputs,
                 "const": self._consts, "storage": self._storage}
        args = [_view(pools[ref.kind][ref.index], ref.offset, shape, dtype)
                for call, params in zip(self.plan.calls, self._params)
                for ref, (_, shape, dtype) in zip(call.args, params)]
        self._emu(*args, order=self.order)
        for out, src in zip(outputs, self.plan.output_sources):
            if src is not None:
                out[...] = pools[src.kind][src.index][src.offset:src.offset + out.nbytes]
        return [_view(buf, 0, t.shape, t.dtype) for buf, t in zip(outputs, self.outputs)]

    def _run_gpu(self, arrays):
        dev = self._load()
        drv = dev.drv
        for buf, a in zip(dev.pools["input"], arrays):
            if a.nbytes:
                drv.memcpy_htod(buf, a)
        if self.poison_storage:
            for buf, n in zip(dev.pools["storage"] + dev.pools["output"], dev.sizes):
                drv.memset_d8(buf, 0xFF, n)
        for fn, pointers, grid, block in dev.launches:
            fn(*pointers, grid=grid, block=block)
        for dst, src, n in dev.copies:
            drv.memcpy_dtod(dst, src, n)
        outputs = [np.empty(t.shape, t.dtype) for t in self.outputs]
        for out, buf in zip(outputs, dev.pools["output"]):
            if out.nbytes:
                drv.memcpy_dtoh(out, buf)
        return outputs

    def _load(self):
        """The kernels loaded and the buffers allocated on the GPU, once: constants uploaded,
        every launch's pointers fixed (the buffers never move)."""
        if self._device is not None:
            return self._device
        status = cuda_status()
        if status != "ready":
            raise RuntimeError(f"{self.entry_name}(): cannot run CUDA kernels here ({status}); "
                               "install the [cuda] extra (pip install tensorc[cuda]) on a machine "
                               "with an NVIDIA GPU and driver, or compile with target='cuda-emu' "
                               "to run the same CUDA source on the CPU")
        self._device = _Device(self, self._compile()[0])
        return self._device


class _Device:
    """What a "cuda" model keeps on the GPU: loaded kernels, buffers, the launch list."""

    def __init__(self, mod, cubin):
        import pycuda.autoinit  # noqa: F401 - creates the context kernels are loaded into
        import pycuda.driver as drv
        self.drv = drv
        plan = mod.plan
        module = drv.module_from_buffer(cubin)

        def alloc(nbytes):
            return drv.mem_alloc(max(int(nbytes), 1))

        consts = []
        for _, a in plan.constants:
            a = np.ascontiguousarray(a)
            consts.append(alloc(a.nbytes))
            if a.nbytes:
                drv.memcpy_htod(consts[-1], a)
        out_sizes = [_nbytes(t.shape, t.dtype) for t in mod.outputs]
        self.pools = {"input": [alloc(_nbytes(t.shape, t.dtype)) for t in mod.inputs],
                      "output": [alloc(n) for n in out_sizes],
                      "const": consts, "storage": [alloc(n) for n in plan.storage]}
        self.sizes = [int(n) for n in plan.storage] + out_sizes

        def pointer(ref):
            return np.uintp(int(self.pools[ref.kind][ref.index]) + ref.offset)

        functions = {}
        self.launches = []
        for call in plan.calls:
            src = mod.sources[call.func]
            index = {p[0]: k for k, p in enumerate(src.params)}
            for k in src.kernels:
                if k.name not in functions:
                    functions[k.name] = module.get_function(k.name)
                self.launches.append((functions[k.name],
                                      [pointer(call.args[index[a]]) for a in k.args],
                                      tuple(k.grid), tuple(k.block)))
        self.copies = [(self.pools["output"][k], pointer(src), n)
                       for k, (src, n) in enumerate(zip(plan.output_sources, out_sizes))
                       if src is not None and n]
