"""A whole model for the GPU: ``tensorc.compile(graph, target="cuda" | "cuda -arch=sm_90" |
"cuda-emu")``.

The CPU compiler's front half is reused unchanged (``compiler.build_plan``: passes, fusion,
deduplication of identical groups, storage planning, the ``ExecutionPlan``); only the per-group
schedule differs -- the default GPU schedule (``ops.schedule_for_gpu``), or the best record of
``tuning_db`` for this target (``tensorc tune --target cuda``), lowered with the GPU passes.
Each distinct kernel PrimFunc ``<model>_<k>_<ops>`` becomes CUDA C
(``codegen.cuda.emit_cuda``: kernels ``<model>_<k>_<ops>_kernelN``), and all of them form one
translation unit, compiled once (NVRTC or nvcc for "cuda", see ``codegen.cuda_compile``; g++ and
the emulation header for "cuda-emu").
The plan then says which kernels to launch, in order, on which buffers; a
``runtime.cuda_graph_module.CudaGraphModule`` runs it.
"""
import functools
import time

from .infer import GraphError


def lower_group_gpu(group, name, target, config=None):
    """The PrimFunc of one group under its default GPU schedule (or the tuned ``config``, a
    ``(space, knobs)`` of ``autotune.graph_tasks``), lowered for ``target``; a group the GPU
    schedules or lowering cannot take raises GraphError naming its ops."""
    from ..ops.schedule_gpu import schedule_for_gpu
    from ..transform.pipeline import lower
    from .compiler import group_tensors
    phs, outs = group_tensors(group)
    try:
        if config is not None:
            from ..autotune.graph_tasks import GroupTask
            s, args = GroupTask(group, target, space=config[0]).instantiate(config[1])
            return lower(s, args, name=name, target=target)
        s = schedule_for_gpu(outs)
        return lower(s, phs + outs, name=name, target=target)
    except (ValueError, TypeError, NotImplementedError) as e:
        raise GraphError(f"target {target!r}: the group {group!r} has no GPU kernel: {e}") from e


def model_source(kernels, groups_of, target):
    """(one CUDA translation unit, {kernel PrimFunc name: its CudaSource}) of all kernels.

    ``groups_of``: kernel name -> a group it computes, to name the ops in an error. The
    ``<cuda_fp16.h>`` include some kernels need is hoisted to the top, once.
    """
    from ..codegen.cuda import emit_cuda
    include = "#include <cuda_fp16.h>"
    sources, texts, seen, half = {}, [], {}, False
    for func in kernels:
        try:
            src = emit_cuda(func)
        except (ValueError, TypeError) as e:
            raise GraphError(f"target {target!r}: the group {groups_of[func.name]!r} has no GPU "
                             f"kernel: {e}") from e
        for launch in src.kernels:
            if seen.setdefault(launch.name, func.name) != func.name:
                raise GraphError(f"target {target!r}: kernels of {func.name!r} and "
                                 f"{seen[launch.name]!r} are both named {launch.name!r}")
        text = src.text
        if text.startswith(include):
            half = True
            text = text[len(include):].lstrip("\n")
        texts.append(text.rstrip("\n"))
        sources[func.name] = src
    head = [include, ""] if half else []
    return "\n".join(head + ["\n\n".join(texts), ""]), sources


def compile_cuda(graph, target="cuda", tuning_db=None, dump=False, jobs=None):
    """Compile ``graph`` for a GPU target into a ``CudaGraphModule`` (see the module
    docstring); ``tuning_db``, ``dump`` and ``jobs`` as for ``compiler.compile`` (the records
    used are those measured on this target: its architecture, or the emulator)."""
    from ..driver import _default_arch, _parse_target
    from ..runtime.cuda_graph_module import CudaGraphModule
    from .compiler import build_plan
    kind, options = _parse_target(target)
    t_all = time.perf_counter()
    # Records are filed under the target's key, which resolves the architecture as the build
    # does (autotune.device_limits.cuda_target_key): pass the target as given.
    plan = functools.partial(build_plan, graph, kind, dump=dump if dump else None, jobs=jobs,
                             tuning_target=target)
    if tuning_db is not None:
        from ..autotune.dispatch import apply_history_best
        with apply_history_best(tuning_db):
            info = plan()
    else:
        info = plan()
    t0 = time.perf_counter()
    groups_of = {k: g for g, k in zip(info.groups, info.group_kernels) if k}
    text, sources = model_source(info.kernels, groups_of, kind)
    info.plan.validate(info.kernels)
    arch = options.get("arch") or (_default_arch() if kind == "cuda" else None)
    mod = CudaGraphModule(text, sources, info.plan, kind, arch)
    return info.attach(mod, t0, t_all, dump)
