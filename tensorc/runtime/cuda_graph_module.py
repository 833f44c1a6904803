"""A compiled model on the GPU (target "cuda") or on the CPU emulator (target "cuda-emu").

``tensorc.compile(graph, target="cuda")`` gives one CUDA translation unit holding every kernel of
the model and the ``ExecutionPlan`` the CPU compiler makes; ``CudaGraphModule`` runs that plan
with the GraphModule call API (``mod(*inputs)``, ``mod.run(feed)``, outputs as numpy arrays).
Its buffers are the plan's pools: the model's inputs and outputs, the constants (uploaded once),
and one allocation per storage token; a kernel parameter views ``shape``/``dtype`` at a byte
offset of its buffer, so aliases (free reshapes) need nothing at run time, as on the CPU.

- "cuda": through pycuda, imported on the first call (``cuda_status()`` must be "ready"). The
  cubin comes from NVRTC or nvcc (``codegen.cuda_compile``; at construction when one is usable,
  so ``resource_usage`` -- ptxas's registers, shared memory and spills per kernel -- needs no
  GPU). Device buffers are allocated once; a call uploads the inputs, launches every kernel in
  plan order and downloads the outputs.
- "cuda-emu": the same source built by ``cuda_emu`` for the CPU, as ONE EmuModule whose
  parameters are every (call, kernel parameter) pair of the plan, so a single emulator call
  launches the whole model. Its buffers are host memory aligned like cudaMalloc's. ``order``
  ("forward" / "reverse") picks the order the threads of a block run in.

``mod.save(path)`` writes the model as one file and ``load_cuda_graph_module`` (or
``tensorc.load``) reads it back without compiling: a zip archive (see ``save_model``) where the
CPU model's file is its shared object, since a "cuda" model's machine code is cubins, one per
architecture, loaded by the driver rather than the dynamic linker.

``poison_storage = True`` fills the storage tokens and the outputs with 0xFF bytes (NaN for
floats) before every run, so an element no kernel writes shows up in the result.
"""
import hashlib
import io
import json
import math
import os
import re
import threading
import zipfile
from typing import NamedTuple

import numpy as np

from .cuda_module import cuda_status, require_cuda
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


class Cubin(NamedTuple):
    """A cubin for one architecture, what ptxas reported for it, and who compiled it."""
    data: bytes
    resource_usage: dict
    compiler: str


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
    "cuda" or "cuda-emu"; ``arch``: the sm_XX the cubin is for (default sm_80); ``compiler``:
    "nvrtc", "nvcc" or None for ``cuda_compile.choose_compiler``'s pick. A loaded model passes
    what its file holds instead of compiling: ``cubins`` (arch -> Cubin) or ``emu_library`` (the
    cuda-emu shared library, a ctypes library).
    """

    def __init__(self, text, sources, plan, target="cuda", arch=None, compiler=None,
                 cubins=None, emu_library=None):
        from ..codegen.cuda_compile import DEFAULT_ARCH, check_arch, compiler_available
        if target not in ("cuda", "cuda-emu"):
            raise ValueError(f"CudaGraphModule: target must be 'cuda' or 'cuda-emu', got "
                             f"{target!r}")
        self.text = text
        self.sources = dict(sources)
        self.plan = plan
        self.target = target
        self.arch = check_arch(arch or DEFAULT_ARCH)
        self.compiler = compiler
        self.entry_name = plan.name
        self.inputs = tuple(TensorInfo(n, tuple(s), d) for n, s, d in plan.inputs)
        self.outputs = tuple(TensorInfo(n, tuple(s), d) for n, s, d in plan.outputs)
        self.kernel_names = tuple(self.sources)
        self.order = "forward"
        self.poison_storage = False
        self._params = [self.sources[c.func].params for c in plan.calls]
        self._check_offsets()
        self._lock = threading.Lock()
        self._cubins = dict(cubins or {})
        self.path = None  # the file a loaded model came from
        self._device = None
        self._emu = None
        if target == "cuda-emu":
            from .cuda_emu import EmuModule, build_emu
            flat = flat_source(plan.name, text, self.sources, plan)
            # Nothing is declared written: the per-argument overlap check would refuse the
            # storage reuse between calls; ExecutionPlan.validate checked each call instead.
            self._emu = EmuModule(flat, emu_library) if emu_library else build_emu(flat, ())
            self._consts = [_aligned_bytes(np.asarray(a).nbytes) for _, a in plan.constants]
            for buf, (_, a) in zip(self._consts, plan.constants):
                buf[...] = _bytes_of(np.ascontiguousarray(a))
                buf.setflags(write=False)
            self._storage = [_aligned_bytes(n) for n in plan.storage]
        elif self.arch not in self._cubins and compiler_available(compiler):
            self._compile()

    def _check_offsets(self):
        for c, (call, params) in enumerate(zip(self.plan.calls, self._params)):
            if len(call.args) != len(params):
                raise ValueError(f"call #{c} ({call.func}) passes {len(call.args)} buffers; the "
                                 f"kernel has {len(params)} parameters")
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

    def _compile(self, arch=None):
        """The Cubin for ``arch`` (default ``self.arch``), compiled on first use."""
        arch = arch or self.arch
        if arch not in self._cubins:
            from ..codegen.cuda_compile import choose_compiler, compile_cubin
            compiler = choose_compiler(self.compiler)
            data, usage = compile_cubin(self.text, arch, compiler)
            self._cubins[arch] = Cubin(data, usage, compiler)
        return self._cubins[arch]

    @property
    def cubins(self):
        """{arch: Cubin} compiled (or loaded) so far."""
        return dict(self._cubins)

    @property
    def resource_usage(self):
        """{CUDA kernel: {"registers", "shared_bytes", "spill_stores", "spill_loads"}} from
        ptxas for ``arch`` (needs NVRTC or nvcc, not a GPU; a loaded model has it saved)."""
        return self._compile().resource_usage

    def save(self, path, archs=()):
        """Write the model as one file: the CUDA source, the launch metadata, the plan, the
        constants, and the cubins for ``arch`` plus ``archs`` ("cuda"; compiled now where
        missing) or the emulator's shared library ("cuda-emu"); returns the path.

        ``tensorc.load(path)`` loads it back without compiling.
        """
        return save_model(self, path, archs)

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
        require_cuda(self.entry_name, cuda_status())
        self._device = _Device(self, self._gpu_cubin())
        return self._device

    def _gpu_cubin(self):
        """A cubin the current GPU runs: its own architecture's, else a compatible one held,
        else one compiled for it now."""
        from ..driver import _default_arch
        device = _default_arch()
        usable = [a for a in (device, self.arch, *self._cubins)
                  if a in self._cubins and _runs_on(a, device)]
        return self._compile(usable[0] if usable else device).data


def _runs_on(arch, device):
    """Whether a cubin for ``arch`` runs on a GPU of architecture ``device`` (as the driver
    reports it: plain sm_XX). SASS runs on the same major version and a minor at least its
    own; an sm_XXa/f cubin only on XX."""
    (major, minor, suffix), (d_major, d_minor, _) = (
        re.match(r"sm_(\d+)(\d)([af]?)$", a).groups() for a in (arch, device))
    if suffix:
        return arch.rstrip("af") == device.rstrip("af")
    return major == d_major and int(minor) <= int(d_minor)


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


# -- files -------------------------------------------------------------------------------------

FORMAT = "tensorc-cuda-model"
FORMAT_VERSION = 1
_META, _SOURCE = "model.json", "kernels.cu"


def _ref(r):
    return None if r is None else [r.kind, int(r.index), int(r.offset)]


def _tensors(entries):
    return [{"name": n, "shape": [int(d) for d in s], "dtype": str(d)} for n, s, d in entries]


def save_model(mod, path, archs=()):
    """Write ``mod`` (a CudaGraphModule) to ``path`` as a zip archive of:

    - ``model.json``: format, tensorc version, target, arch, the plan (inputs, outputs,
      constants' names/shapes/dtypes, storage sizes, calls and output sources as
      ``[kind, index, offset]``) and per kernel PrimFunc its parameters and launches;
    - ``kernels.cu``: the translation unit; ``const/<k>.npy``: the constants;
    - ``cubin/<arch>.cubin`` with each one's compiler and ptxas report in ``model.json``
      ("cuda"), or ``emu/model.so``, the emulator's library ("cuda-emu").
    """
    from .. import __version__
    from ..codegen.cuda_compile import check_arch
    from .module import atomic_write
    path = os.fspath(path)
    archs = list(dict.fromkeys([mod.arch, *(check_arch(a) for a in archs)]))
    if mod.target == "cuda-emu" and archs != [mod.arch]:
        raise ValueError(f"{mod.entry_name}.save(): a cuda-emu model holds no cubins; leave "
                         "archs out, or save a target='cuda' build")
    plan = mod.plan
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "tensorc_version": __version__,
            "target": mod.target, "arch": mod.arch, "entry": plan.name,
            "inputs": _tensors(plan.inputs), "outputs": _tensors(plan.outputs),
            "constants": [], "storage": [int(n) for n in plan.storage],
            "calls": [{"func": c.func, "args": [_ref(r) for r in c.args]} for c in plan.calls],
            "output_sources": [_ref(r) for r in plan.output_sources],
            "sources": {f: {"name": src.name, "text": src.text,
                            "params": [[n, [int(d) for d in s], str(d)] for n, s, d in src.params],
                            "kernels": [{"name": k.name, "grid": [int(d) for d in k.grid],
                                         "block": [int(d) for d in k.block],
                                         "args": list(k.args), "shared_bytes": int(k.shared_bytes)}
                                        for k in src.kernels]}
                        for f, src in mod.sources.items()},
            "cubins": {}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(_SOURCE, mod.text)
        for k, (name, a) in enumerate(plan.constants):
            a = np.asarray(a)
            meta["constants"].append({"name": name, "shape": list(a.shape), "dtype": a.dtype.name,
                                      "file": f"const/{k}.npy"})
            npy = io.BytesIO()
            np.save(npy, a, allow_pickle=False)
            z.writestr(f"const/{k}.npy", npy.getvalue())
        if mod.target == "cuda":
            for arch in archs:
                cubin = mod._compile(arch)
                meta["cubins"][arch] = {"file": f"cubin/{arch}.cubin", "compiler": cubin.compiler,
                                        "resource_usage": cubin.resource_usage}
                z.writestr(f"cubin/{arch}.cubin", cubin.data)
        else:
            with open(mod._emu.library._name, "rb") as f:
                z.writestr("emu/model.so", f.read())
        z.writestr(_META, json.dumps(meta, indent=1, sort_keys=True))
    atomic_write(path, buf.getvalue())
    return path


def is_model_file(path):
    """Whether ``path`` is a file ``save_model`` wrote (a zip archive; a CPU model is ELF)."""
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load_cuda_graph_module(path):
    """A CudaGraphModule from a file ``save_model`` wrote; compiles nothing.

    Loading needs no GPU: a "cuda" model's source, plan, cubins and ``resource_usage`` are all
    there, and only a call asks for a device (raising RuntimeError, as for a fresh build, where
    none is usable). A "cuda-emu" model loads its stored library, or rebuilds it from the saved
    source when this machine cannot load that file (another CPU architecture).
    """
    from ..codegen.cuda_source import CudaSource, KernelLaunch
    from ..graph.plan import BufferRef, ExecutionPlan, KernelCall
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path}")
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path} is not a saved CUDA model ({e})") from e
    with z:
        try:
            meta = json.loads(z.read(_META))
        except KeyError:
            raise ValueError(f"{path} is a zip archive but not a saved tensorc CUDA model "
                             f"(it has no {_META})") from None
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: format {meta.get('format')!r} version "
                             f"{meta.get('format_version')!r} is not {FORMAT!r} version "
                             f"{FORMAT_VERSION}, which this tensorc reads")

        def ref(r):
            return None if r is None else BufferRef(r[0], int(r[1]), int(r[2]))

        plan = ExecutionPlan(
            meta["entry"],
            inputs=[(t["name"], tuple(t["shape"]), t["dtype"]) for t in meta["inputs"]],
            outputs=[(t["name"], tuple(t["shape"]), t["dtype"]) for t in meta["outputs"]],
            constants=[(c["name"], _read_constant(z, c, path)) for c in meta["constants"]],
            storage=list(meta["storage"]),
            calls=[KernelCall(c["func"], tuple(ref(r) for r in c["args"]))
                   for c in meta["calls"]],
            output_sources=[ref(r) for r in meta["output_sources"]])
        sources = {f: CudaSource(s["name"], s["text"], tuple(
            KernelLaunch(k["name"], tuple(k["grid"]), tuple(k["block"]), tuple(k["args"]),
                         k["shared_bytes"]) for k in s["kernels"]),
            tuple((n, tuple(shape), d) for n, shape, d in s["params"]))
            for f, s in meta["sources"].items()}
        text = z.read(_SOURCE).decode()
        cubins = {arch: Cubin(_read_cubin(z, c["file"], arch, path), c["resource_usage"],
                              c["compiler"]) for arch, c in meta["cubins"].items()}
        emu = _emu_library(z.read("emu/model.so"), path) if meta["target"] == "cuda-emu" \
            else None
    mod = CudaGraphModule(text, sources, plan, meta["target"], meta["arch"], cubins=cubins,
                          emu_library=emu)
    mod.path = path
    return mod


def _read_constant(z, c, path):
    a = np.load(io.BytesIO(z.read(c["file"])), allow_pickle=False)
    if list(a.shape) != c["shape"] or a.dtype.name != c["dtype"]:
        raise ValueError(f"{path}: constant {c['name']!r} is {a.dtype}{list(a.shape)} in "
                         f"{c['file']}, but {c['dtype']}{c['shape']} in {_META}")
    return a


def _read_cubin(z, name, arch, path):
    data = z.read(name)
    # ELF magic, 64-bit, and e_machine EM_CUDA (190)
    if data[:5] != b"\x7fELF\x02" or int.from_bytes(data[18:20], "little") != 190:
        raise ValueError(f"{path}: {name} (the {arch} kernels) is not a CUDA cubin")
    return data


def _emu_library(data, path):
    """The stored cuda-emu library, loaded from a content-named copy in the build cache (the
    file's bytes decide the name, so the dynamic linker never hands back another), or None
    when this machine cannot load it, so that the module is built again from the source."""
    import ctypes

    from .cache import cache_dir
    from .module import atomic_write
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    so = directory / f"emu-saved-{hashlib.sha256(data).hexdigest()}.so"
    if not so.exists():
        atomic_write(str(so), data)
    try:
        return ctypes.CDLL(str(so))
    except OSError:
        return None
