"""target="cuda": the kernels of a PrimFunc as CUDA C, a cubin, and a call through pycuda.

Building needs no GPU: the source is generated, and compiled (NVRTC or nvcc, see
``codegen.cuda_compile``) when a compiler is usable, so that errors and ``resource_usage`` come
at once. Only a call needs a device, and pycuda (the ``[cuda]`` extra), imported then and not
before, so everything else works on machines without either.
A call copies every argument to the device, launches the kernels in order and copies the outputs
back.
"""
import functools

from .module import Function, Param


@functools.lru_cache(maxsize=None)
def cuda_status():
    """ "ready" when CUDA kernels can run here, else "pycuda missing", "no driver" or "no
    device" (probed once per process)."""
    from ..info import cuda_status as probe
    return probe()


def require_cuda(who, status):
    """Raise, naming ``who`` and the ``status`` (a ``cuda_status()``), unless it is "ready"."""
    if status != "ready":
        raise RuntimeError(f"{who}(): cannot run CUDA kernels here ({status}); install the "
                           "[cuda] extra (pip install tensorc[cuda]) on a machine with an NVIDIA "
                           "GPU and driver, or use target='cuda-emu' to run the same CUDA source "
                           "on the CPU")


class CudaModule:
    """Compiled CUDA kernels: ``f(*arrays)`` runs them on the GPU (numpy arrays in and out).

    ``cuda_source`` is the generated codegen.cuda_source.CudaSource, ``arch`` the sm_XX the cubin
    is for, ``resource_usage`` ptxas's registers, shared bytes and spills per kernel;
    ``compiler`` ("nvrtc", "nvcc" or None: ``cuda_compile.choose_compiler``'s pick) builds it.
    """

    def __init__(self, cuda_source, arch, output_params, compiler=None):
        from ..codegen.cuda_compile import compiler_available
        self.cuda_source = cuda_source
        self.name = cuda_source.name
        self.arch = arch
        self.compiler = compiler
        params = tuple(Param(name, tuple(shape), dtype, k in output_params)
                       for k, (name, shape, dtype) in enumerate(cuda_source.params))
        self._checker = Function(self.name, params, None)
        self._compiled = None
        self._loaded = None
        if compiler_available(compiler):
            self._compile()

    @property
    def params(self):
        return self._checker.params

    def __repr__(self):
        return (f"<tensorc.CudaModule {self.name}({self._checker.signature()}), "
                f"{len(self.cuda_source.kernels)} kernel(s), {self.arch}>")

    def _compile(self):
        if self._compiled is None:
            from ..codegen.cuda_compile import compile_cubin
            self._compiled = compile_cubin(self.cuda_source.text, self.arch, self.compiler)
        return self._compiled

    @property
    def resource_usage(self):
        """{kernel: {"registers", "shared_bytes", "spill_stores", "spill_loads"}} (needs NVRTC
        or nvcc, not a GPU)."""
        return self._compile()[1]

    def get_source(self, fmt="cuda"):
        if fmt != "cuda":
            raise ValueError(f"a cuda module has only 'cuda' source, not {fmt!r}")
        return self.cuda_source.text

    def __call__(self, *args):
        self._checker.check(args)
        kernels = self._load()
        import pycuda.driver as drv
        device = [drv.mem_alloc(max(a.nbytes, 1)) for a in args]
        try:
            for buf, a in zip(device, args):
                drv.memcpy_htod(buf, a)
            index = {p.name: k for k, p in enumerate(self.params)}
            for k in self.cuda_source.kernels:
                kernels[k.name](*(device[index[a]] for a in k.args), grid=tuple(k.grid),
                                block=tuple(k.block))
            for p, buf, a in zip(self.params, device, args):
                if p.output:
                    drv.memcpy_dtoh(a, buf)
        finally:
            for buf in device:
                buf.free()

    def _load(self):
        """The kernels as pycuda functions, loaded once into the current (primary) context."""
        if self._loaded is not None:
            return self._loaded
        require_cuda(self.name, cuda_status())
        import pycuda.autoinit  # noqa: F401 - creates the context kernels are loaded into
        import pycuda.driver as drv
        module = drv.module_from_buffer(self._compile()[0])
        self._loaded = {k.name: module.get_function(k.name) for k in self.cuda_source.kernels}
        return self._loaded

