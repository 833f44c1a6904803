"""The graph compiler: a whole model to one shared object with one entry function.

    mod = tensorc.compile(graph)          # -> GraphModule
    y, = mod(x)

Steps (``compile``):

1. shape inference (``infer.infer_shapes``), which also validates the graph;
2. the graph passes of ``passes.default_passes(target)``; with ``dump=True`` or
   TENSORC_DUMP_GRAPH=1 the graph is printed before the first and after each pass, with op counts;
3. fusion (``fuse.fuse``) into groups, each one kernel;
4. per group: its TE (a placeholder per group input, constants included, then the nodes in
   order), the default schedule of its anchor, lowering (``tensorc.lower``) to a PrimFunc
   named ``<model>_<k>_<ops>``; groups whose lowered code is identical share one kernel;
5. storage planning (``memory.plan_storage``) and the ``ExecutionPlan``;
6. ``tensorc.codegen.build_graph_module``: one LLVM module, the weights embedded.

``build_plan`` runs steps 1-5 and returns everything (kernels, plan, groups, storage plan,
timings) without compiling native code; ``compile`` adds step 6 and attaches that record to
the module as ``mod.compile_info``. A GPU target ("cuda", "cuda -arch=sm_90", "cuda-emu")
schedules each group with the default GPU schedules and ends in ``compile_cuda`` instead of
step 6: the same plan, run by a ``CudaGraphModule``.
"""
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List

import numpy as np

from .fuse import Group, fuse
from .infer import GraphError, build_node, const_array, infer_shapes
from .memory import StoragePlan, plan_storage
from .passes import dump_enabled, run_passes
from .plan import BufferRef, ExecutionPlan, KernelCall

log = logging.getLogger("tensorc.graph")

#: Groups are lowered in worker processes when there are at least this many distinct groups
#: and this many CPUs (TENSORC_GRAPH_JOBS sets the number of workers; 1 disables). On two
#: shared cores a pool measured slower than lowering in-process, hence the CPU floor.
PARALLEL_MIN_GROUPS = 8
PARALLEL_MIN_CPUS = 4

_C_KEYWORDS = {"auto", "break", "case", "char", "const", "continue", "default", "do", "double",
               "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
               "register", "restrict", "return", "short", "signed", "sizeof", "static",
               "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
               "main"}


@dataclass
class CompileInfo:
    """What the compiler did: the optimized graph, groups, kernels, plan, storage, timings."""
    graph: Any
    groups: List[Group]
    kernels: List[Any]
    plan: ExecutionPlan
    storage: StoragePlan
    group_kernels: List[str] = field(default_factory=list)   # kernel name per group ("" alias)
    timings: Dict[str, float] = field(default_factory=dict)  # seconds per phase

    def attach(self, mod, codegen_start, start, dump):
        """Finish a compile: time codegen (since ``codegen_start``) and the whole (since
        ``start``), hang this info on ``mod`` as ``compile_info``, print the summary when
        dumping; returns ``mod``."""
        self.timings["codegen"] = time.perf_counter() - codegen_start
        self.timings["total"] = time.perf_counter() - start
        mod.compile_info = self
        if dump_enabled(dump if dump else None):
            print(self.summary(), file=sys.stderr)
        return mod

    def summary(self):
        lines = [f"model {self.plan.name}: {len(self.graph.nodes)} nodes -> {len(self.groups)} "
                 f"groups -> {len(self.kernels)} kernels, {len(self.plan.calls)} calls",
                 self.storage.report()]
        for g, k in zip(self.groups, self.group_kernels):
            lines.append(f"  {k or '(alias: no kernel)'}: {g!r}")
        lines.append("  time: " + ", ".join(f"{k} {v * 1e3:.0f} ms"
                                            for k, v in self.timings.items()))
        return "\n".join(lines)


def c_identifier(name, fallback="model"):
    s = re.sub(r"[^0-9A-Za-z_]", "_", str(name)).strip("_") or fallback
    s = re.sub(r"_+", "_", s)
    if s[0].isdigit() or s in _C_KEYWORDS or s.startswith("__"):
        s = f"{fallback}_{s}"
    return s


def _kernel_name(model, k, group, limit=48):
    ops = "_".join(group.ops)
    ops = c_identifier(ops, "op")[:limit].rstrip("_")
    return f"{model}_{k}_{ops}"


# ---------------------------------------------------------------------------- one group

def group_te(group):
    """(placeholders for the group's inputs, output tensors) of a group's TE."""
    from .. import te
    # generic names: identical groups lower to identical text (and share a kernel)
    phs = [te.placeholder(tuple(int(d) for d in v.shape), v.dtype, f"p{k}")
           for k, v in enumerate(group.inputs)]
    env = {id(v): t for v, t in zip(group.inputs, phs)}
    for n in group.nodes:
        outs = build_node(n, [env[id(v)] for v in n.inputs])
        for v, t in zip(n.outputs, outs):
            env[id(v)] = t
    return phs, [env[id(v)] for v in group.outputs]


def schedule_group(outs):
    """The default CPU schedule of a group's TE ending in ``outs``.

    ``ops.schedule_for`` handles elementwise, injective, reduction, softmax and norm groups;
    groups ending in a conv / matmul / dense / pool / resize anchor (plus epilogue) use that
    anchor's schedule from ``ops.schedule_nn`` unless schedule_for already knows its tag.
    """
    from .. import ops, te
    from ..ops import schedule_cpu
    try:
        from ..ops import schedule_nn
    except ImportError:  # pragma: no cover - the nn schedules are optional
        schedule_nn = None
    if schedule_nn is not None and len(outs) == 1:
        anchor = schedule_nn.find_group_anchor(outs[0])
        if anchor is not None and anchor.op.tag not in schedule_cpu.SCHEDULES:
            s = te.create_schedule(outs[0].op)
            schedule_nn.schedule_group(s, anchor, outs[0])
            _inline_leftovers(s)
            return s
    return ops.schedule_for(outs)


def _inline_leftovers(s):
    """Inline the injective intermediates no schedule touched (as schedule_for does)."""
    from ..ops.util import is_injective
    for st in s.stages:
        if st.is_placeholder:
            continue
        if is_injective(st.op.tag) and not st.is_output and st.attach_type == "root" and \
                not st.relations and not st.iter_var_attrs:
            st.compute_inline()


def group_tensors(group):
    """(placeholders, outputs) of a group's TE, the outputs renamed where a name would repeat
    or look like an input's: these are the kernel's parameters."""
    phs, outs = group_te(group)
    if len({t.name for t in outs}) != len(outs) or any(t.name.startswith("p") and
                                                       t.name[1:].isdigit() for t in outs):
        for k, t in enumerate(outs):  # distinct parameter names
            t.op.name = f"out{k}_{t.op.name}"
    return phs, outs


def lower_group(group, name="kernel", config=None, target=None):
    """The lowered PrimFunc of one group: parameters = group inputs, then outputs.

    ``config``: a tuned ``(space, knobs)`` of the group (see ``autotune.graph_tasks``);
    None schedules with the default schedule. A GPU ``target`` takes the default GPU
    schedule and the GPU lowering passes (``compile_cuda.lower_group_gpu``)."""
    from ..driver import lower
    from ..transform.pipeline import is_gpu
    if is_gpu(target):
        from .compile_cuda import lower_group_gpu
        return lower_group_gpu(group, name, target, config)
    if config is not None:
        from ..autotune.graph_tasks import GroupTask
        space, knobs = config
        s, args = GroupTask(group, space=space).instantiate(knobs)
        return lower(s, args, name=name)
    phs, outs = group_tensors(group)
    s = schedule_group(outs)
    return lower(s, phs + outs, name=name)


def _freeze(x):
    if isinstance(x, np.ndarray):
        import hashlib
        return ("array", x.shape, x.dtype.str, hashlib.sha256(x.tobytes()).hexdigest())
    if isinstance(x, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__,) + tuple(_freeze(v) for v in x)
    return repr(x)


def group_signature(group):
    """A key equal for two groups exactly when they build the same TE (same ops, attributes,
    wiring, input shapes and dtypes): such groups lower to the same kernel, so only one is
    lowered."""
    pos = {id(v): ("in", k) for k, v in enumerate(group.inputs)}
    parts = [tuple((tuple(v.shape), v.dtype) for v in group.inputs)]
    for j, n in enumerate(group.nodes):
        parts.append((n.op, _freeze(n.attrs), tuple(pos[id(v)] for v in n.inputs)))
        for i, v in enumerate(n.outputs):
            pos[id(v)] = ("n", j, i)
    parts.append(tuple(pos[id(v)] for v in group.outputs))
    return repr(parts)


def _lower_worker(args):
    group, name, config, target = args
    return lower_group(group, name, config, target)


def _strip(group):
    """The group without constant data (a worker needs shapes only): cheap to pickle."""
    from .ir import Node, Value
    vmap = {}

    def v(x):
        if id(x) not in vmap:
            vmap[id(x)] = Value(x.name, tuple(x.shape), x.dtype)
        return vmap[id(x)]
    nodes = [Node(n.op, [v(x) for x in n.inputs], [v(x) for x in n.outputs], dict(n.attrs),
                  n.name) for n in group.nodes]
    return Group(nodes, group.kind, None, [v(x) for x in group.inputs],
                 [v(x) for x in group.outputs])


def _rename(func, name):
    from ..ir.stmt import PrimFunc
    return PrimFunc(name, func.params, func.body, func.attrs)


def _jobs(n_groups):
    env = os.environ.get("TENSORC_GRAPH_JOBS")
    if env:
        return max(1, int(env))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cpus = os.cpu_count() or 1
    return min(cpus, 8) if n_groups >= PARALLEL_MIN_GROUPS and cpus >= PARALLEL_MIN_CPUS else 1


def lower_groups(groups, jobs=None, configs=None, target=None):
    """Lowered PrimFunc (named "kernel") per group, in a process pool when there are many.
    ``configs``: per group, a tuned config or None (default schedule); ``target``: see
    ``lower_group``."""
    configs = configs or [None] * len(groups)
    jobs = _jobs(len(groups)) if jobs is None else jobs
    if jobs > 1 and len(groups) > 1:
        work = [(_strip(g), "kernel", c, target) for g, c in zip(groups, configs)]
        import concurrent.futures as cf
        import multiprocessing as mp
        import pickle
        import warnings
        try:
            ctx = mp.get_context("fork") if sys.platform.startswith("linux") else None
            with warnings.catch_warnings():  # workers only lower: no threads needed in them
                warnings.simplefilter("ignore", DeprecationWarning)
                with cf.ProcessPoolExecutor(max_workers=min(jobs, len(work)),
                                            mp_context=ctx) as pool:
                    return list(pool.map(_lower_worker, work))
        except (OSError, ImportError, RuntimeError, TypeError, AttributeError,
                pickle.PickleError) as e:
            # unpicklable IR or no processes: lower here instead
            log.info("parallel lowering unavailable (%s); lowering serially", e)
    return [lower_group(g, "kernel", c, target) for g, c in zip(groups, configs)]


# ---------------------------------------------------------------------------- the plan

def _output_names(graph):
    names, taken = [], set()
    for v in graph.outputs:
        name, k = v.name, 1
        while name in taken:
            name = f"{v.name}_{k}"
            k += 1
        taken.add(name)
        names.append(name)
    return names


def _tuned_configs(groups, target):
    """Per group, the tuned config of the active ``apply_history_best`` context (None: the
    default schedule); all None without a context. Records are looked up for ``target``, so
    a GPU build takes GPU records only."""
    from ..autotune.dispatch import current_context, lookup_best
    if current_context() is None:
        return [None] * len(groups)
    from ..autotune.graph_tasks import tuned_config
    configs = [tuned_config(g, target, lookup_best) for g in groups]
    log.info("compile: %d of %d kernels use tuned schedules",
             sum(c is not None for c in configs), len(groups))
    return configs


def build_plan(graph, target="llvm", dump=None, jobs=None, tuning_target=None):
    """Passes, fusion, lowering and planning: a ``CompileInfo`` (no native code yet).
    ``tuning_target``: the target whose tuning records are looked up (default ``target``;
    a GPU build passes its full target string, whose -arch ``target`` leaves out)."""
    from ..graph.ir import Graph
    if not isinstance(graph, Graph):
        raise TypeError(f"compile: expected a tensorc.graph.Graph, got {type(graph).__name__}")
    times = {}
    t0 = time.perf_counter()
    names = [v.name for v in graph.inputs]
    dup = [n for n in names if names.count(n) > 1]
    if dup:
        raise GraphError(f"graph {graph.name!r} has two inputs named {dup[0]!r}")
    out_names = _output_names(graph)
    g = infer_shapes(graph)
    times["infer"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dump = dump_enabled(dump)
    g = run_passes(g, dump=dump, target=target)
    times["passes"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    groups = fuse(g)
    times["fuse"] = time.perf_counter() - t0
    if dump:
        print(f"==== graph {g.name}: fused into {len(groups)} groups ====", file=sys.stderr)
        for k, grp in enumerate(groups):
            print(f"  #{k} {grp!r}", file=sys.stderr)

    model = c_identifier(g.name)
    t0 = time.perf_counter()
    compiled = [grp for grp in groups if grp.kind != "alias"]
    sigs = [group_signature(grp) for grp in compiled]
    unique = {}
    for grp, sig in zip(compiled, sigs):
        unique.setdefault(sig, grp)
    configs = _tuned_configs(list(unique.values()), tuning_target or target)
    lowered = dict(zip(unique, lower_groups(list(unique.values()), jobs, configs, target)))
    funcs = [lowered[sig] for sig in sigs]
    times["lower"] = time.perf_counter() - t0

    # dedupe: identical lowered text -> one kernel
    kernels, by_text, group_kernels = [], {}, []
    it = iter(funcs)
    for grp in groups:
        if grp.kind == "alias":
            group_kernels.append("")
            continue
        f = next(it)
        text = str(f)
        name = by_text.get(text)
        if name is None:
            name = _kernel_name(model, len(kernels), grp)
            by_text[text] = name
            kernels.append(_rename(f, name))
        group_kernels.append(name)

    t0 = time.perf_counter()
    plan, storage = make_plan(g, model, groups, group_kernels, out_names)
    times["plan"] = time.perf_counter() - t0
    info = CompileInfo(g, groups, kernels, plan, storage, group_kernels, times)
    if dump:
        print(info.storage.report(), file=sys.stderr)
    return info


def make_plan(g, model, groups, group_kernels, out_names):
    """The ExecutionPlan of the fused graph, with its storage plan."""
    inputs = {id(v): k for k, v in enumerate(g.inputs)}
    first_out = {}
    for k, v in enumerate(g.outputs):
        first_out.setdefault(id(v), k)
    # aliases: a reshape group views its input's bytes
    alias_of, out_home = {}, {}
    for grp in groups:
        if grp.kind == "alias":
            alias_of[id(grp.outputs[0])] = grp.inputs[0]
            if id(grp.outputs[0]) in first_out:  # the input lives in the output buffer
                out_home[id(grp.inputs[0])] = first_out[id(grp.outputs[0])]

    def root(v):
        while id(v) in alias_of:
            v = alias_of[id(v)]
        return v

    values = {}
    for grp in groups:
        for v in grp.inputs + grp.outputs:
            values[id(v)] = v
    # storage values: written by kernels, neither model inputs nor outputs (nor constants)
    sizes = {}
    steps = []
    for grp, kname in zip(groups, group_kernels):
        if not kname:
            continue
        reads = [id(root(v)) for v in grp.inputs]
        writes = [id(v) for v in grp.outputs]
        steps.append((reads, writes))
        for v in grp.outputs:
            if id(v) not in first_out and id(v) not in out_home:
                sizes[id(v)] = int(np.prod(v.shape, dtype=np.int64)) * np.dtype(v.dtype).itemsize
    storage = plan_storage(steps, sizes)

    constants, const_index = [], {}

    def const_ref(v):
        if id(v) not in const_index:
            const_index[id(v)] = len(constants)
            constants.append((v.name, const_array(v)))
        return BufferRef("const", const_index[id(v)])

    def ref(v):
        v = root(v)
        if v.is_const:
            return const_ref(v)
        if id(v) in inputs:
            return BufferRef("input", inputs[id(v)])
        if id(v) in first_out:
            return BufferRef("output", first_out[id(v)])
        if id(v) in out_home:
            return BufferRef("output", out_home[id(v)])
        tok, off = storage.assignment[id(v)]
        return BufferRef("storage", tok, off)

    calls = []
    for grp, kname in zip(groups, group_kernels):
        if kname:
            calls.append(KernelCall(kname, tuple(ref(v) for v in grp.inputs + grp.outputs)))
    written = {id(v) for grp, k in zip(groups, group_kernels) if k for v in grp.outputs}
    written |= {id(grp.outputs[0]) for grp in groups
                if grp.kind == "alias" and id(grp.inputs[0]) in out_home}
    sources = []
    for k, v in enumerate(g.outputs):
        if first_out[id(v)] != k:
            sources.append(BufferRef("output", first_out[id(v)]))
        elif id(v) in written:
            sources.append(None)
        else:  # an input or a constant returned as it is
            r = ref(v)
            if r.kind not in ("input", "const"):  # pragma: no cover - fusion never does this
                raise GraphError(f"graph output %{v.name} is not written by any kernel")
            sources.append(r)
    plan = ExecutionPlan(
        model,
        inputs=[(v.name, tuple(v.shape), v.dtype) for v in g.inputs],
        outputs=[(n, tuple(v.shape), v.dtype) for n, v in zip(out_names, g.outputs)],
        constants=constants, storage=list(storage.token_sizes), calls=calls,
        output_sources=sources)
    return plan, storage


def compile(graph, target="llvm", tuning_db=None, dump=False, jobs=None):  # noqa: A001
    """Compile ``graph`` into one GraphModule (one shared object, weights inside).

    ``tuning_db``: a tuning database (path or ``autotune.TuningDatabase``) whose best records
    schedule the kernels they were tuned for (see ``autotune.extract_tasks``); kernels without
    a record, or whose best record is the default schedule, keep the default schedule. An
    enclosing ``autotune.apply_history_best`` context is consulted the same way.
    ``dump``: print the graph before/after each pass (also TENSORC_DUMP_GRAPH=1).
    ``jobs``: worker processes for lowering (default: automatic; 1 lowers in this process).
    A GPU ``target`` ("cuda", "cuda -arch=sm_90", "cuda-emu") gives a ``CudaGraphModule``
    (see ``compile_cuda``).
    """
    from ..codegen.llvm_graph import build_graph_module
    from ..transform.pipeline import is_gpu
    if is_gpu(target):
        from .compile_cuda import compile_cuda
        return compile_cuda(graph, target, tuning_db=tuning_db, dump=dump, jobs=jobs)
    t_all = time.perf_counter()
    if tuning_db is not None:
        from ..autotune.dispatch import apply_history_best
        with apply_history_best(tuning_db):
            info = build_plan(graph, target, dump=dump if dump else None, jobs=jobs)
    else:
        info = build_plan(graph, target, dump=dump if dump else None, jobs=jobs)
    t0 = time.perf_counter()
    mod = build_graph_module(info.kernels, info.plan, target)
    return info.attach(mod, t0, t_all, dump)
