"""The user entry points of the classic TE flow: lower a schedule, build it into a module.

Targets: "llvm" (the host CPU), "cuda" (CUDA C kernels, compiled by nvcc and run through pycuda;
"cuda -arch=sm_90" picks the architecture) and "cuda-emu" (the same CUDA C compiled for the CPU
with an emulation of blocks, threads and barriers, to check kernels without a GPU).
"""
from .ir.stmt import PrimFunc
from .transform.pipeline import is_gpu
from .transform.pipeline import lower as _lower

TARGETS = ("llvm", "cuda", "cuda-emu")


def lower(sch, args, name="main", simple_mode=True, dump=None, target=None):
    """The lowered function for a schedule (printing it shows the loop program); a GPU target
    gives the form its code generator takes (barriers placed, unrolled loops kept)."""
    return _lower(sch, args, name=name, dump=dump, target=target)


def build(sch_or_func, args=None, target="llvm", name="default_function"):
    """Compile a schedule (with its argument tensors) or a lowered PrimFunc into a module."""
    kind, options = _parse_target(target)
    if isinstance(sch_or_func, PrimFunc):
        func = sch_or_func
        if is_gpu(kind):
            from .transform.thread_sync import thread_sync
            func = thread_sync(func)  # idempotent: a function lowered for the GPU keeps its own
    else:
        if args is None:
            raise TypeError("build: give the argument tensors, e.g. build(s, [A, B, C])")
        func = _lower(sch_or_func, args, name=name, target=kind)
    if kind == "llvm":
        _check_cpu(func)
        from .codegen import build_module
        return build_module([func], entry=func.name, target=target)
    from .codegen.cuda import emit_cuda
    source = emit_cuda(func)
    if kind == "cuda-emu":
        from .runtime.cuda_emu import build_emu
        return build_emu(source, dict(func.attrs).get("output_params", ()))
    from .runtime.cuda_module import CudaModule
    return CudaModule(source, options.get("arch", _default_arch()),
                      dict(func.attrs).get("output_params", ()))


def _parse_target(target):
    """(kind, {option: value}) of a target string such as "cuda -arch=sm_90"."""
    parts = target.split() if isinstance(target, str) else [target]
    kind = parts[0] if parts else target
    if kind not in TARGETS:
        raise ValueError(f"build: unknown target {target!r}; available: "
                         f"{', '.join(map(repr, TARGETS))}")
    options = {}
    if kind == "cuda":
        from .codegen.cuda_compile import check_arch
        for opt in parts[1:]:
            key, _, value = opt.lstrip("-").partition("=")
            if key != "arch" or not value:
                raise ValueError(f"build: unknown option {opt!r} in target {target!r}; "
                                 "target cuda takes -arch=sm_XX")
            options["arch"] = check_arch(value)
    return kind, options


def _default_arch():
    """The first GPU's architecture when one can run kernels, else sm_80."""
    from .codegen.cuda_compile import DEFAULT_ARCH
    from .runtime.cuda_module import cuda_status
    if cuda_status() != "ready":
        return DEFAULT_ARCH
    import pycuda.driver as drv
    drv.init()
    major, minor = drv.Device(0).compute_capability()
    return f"sm_{major}{minor}"


def _check_cpu(func):
    from .ir.functor import post_order_visit
    from .ir.stmt import For
    bound = []
    post_order_visit(func.body, lambda n: bound.append(n) if isinstance(n, For) and
                     n.kind == "thread_binding" else None)
    if bound:
        raise ValueError(f"build: loop {bound[0].loop_var.name!r} is bound to "
                         f"{bound[0].thread_tag}, which only a GPU target can run; "
                         "build for target='cuda' or remove the bind")
