"""The lowering pipeline: schedule -> loop program -> flat, simplified, vectorized function.

Read this file to know what lowering does; each step is one pass, a function PrimFunc ->
PrimFunc (TVM's Pass/Sequential shape). Set TENSORC_DUMP_IR=1 to print the function after
every pass (Halide's HL_DEBUG_CODEGEN habit), or pass ``dump=True`` to ``lower``.
"""
import os
import sys
import time

from ..arith import simplify
from ..schedule.schedule_ops import schedule_ops
from .loop_partition import partition_loops
from .lower_allreduce import lower_allreduce
from .storage_flatten import storage_flatten
from .thread_sync import thread_sync
from .unroll import unroll_loops
from .eager_select import eager_selects
from .inject_prefetch import drop_prefetch, inject_prefetch
from .vectorize import vectorize_loops


class Pass:
    """A named function PrimFunc -> PrimFunc."""

    def __init__(self, fn, name=None):
        self.fn = fn
        self.name = name or fn.__name__

    def __call__(self, func):
        return self.fn(func)

    def __repr__(self):
        return f"Pass({self.name})"


class Sequential(Pass):
    """Passes run in order, optionally printing the function after each."""

    def __init__(self, passes, name="sequential", dump=False):
        super().__init__(self._run, name)
        self.passes = list(passes)
        self.dump = dump

    def _run(self, func):
        for p in self.passes:
            t0 = time.perf_counter()
            func = p(func)
            if self.dump:
                ms = (time.perf_counter() - t0) * 1e3
                print(f"---- after {p.name} ({ms:.1f} ms) ----\n{func}\n", file=sys.stderr)
        return func


def simplify_pass(func):
    return func.with_body(simplify(func.body))


def default_passes():
    """The passes after storage flattening, in order."""
    return [Pass(inject_prefetch, "inject_prefetch"),
            Pass(simplify_pass, "simplify"),
            Pass(partition_loops, "partition_loops"),
            Pass(simplify_pass, "simplify_after_partition"),
            Pass(unroll_loops, "unroll_loops"),
            Pass(vectorize_loops, "vectorize_loops"),
            Pass(simplify_pass, "simplify_after_vectorize"),
            Pass(eager_selects, "eager_selects")]


def gpu_passes():
    """The passes after storage flattening for a GPU target: loops marked unrolled stay loops
    (the CUDA compiler unrolls them from ``#pragma unroll``), cross-thread reductions become
    shuffles and shared-memory trees, and barriers are placed last."""
    return [Pass(drop_prefetch, "drop_prefetch"),
            Pass(simplify_pass, "simplify"),
            Pass(partition_loops, "partition_loops"),
            Pass(simplify_pass, "simplify_after_partition"),
            Pass(vectorize_loops, "vectorize_loops"),
            Pass(simplify_pass, "simplify_after_vectorize"),
            Pass(lower_allreduce, "lower_allreduce"),
            Pass(thread_sync, "thread_sync")]


def is_gpu(target):
    """Whether a target string names a GPU backend ("cuda", "cuda -arch=sm_90", "cuda-emu")."""
    return isinstance(target, str) and target.split()[0] in ("cuda", "cuda-emu")


def lower(sch, args, name="main", dump=None, target=None):
    """Lower a schedule to a PrimFunc whose parameters are ``args`` in order; a GPU ``target``
    selects the GPU passes."""
    from ..te.tensor import Tensor
    dump = bool(os.environ.get("TENSORC_DUMP_IR")) if dump is None else dump
    for a in args:
        if not isinstance(a, Tensor):
            raise TypeError(f"lower: arguments must be tensors, got {type(a).__name__} {a!r}")
    canon = [_canonical(sch, a) for a in args]
    if len(set(canon)) != len(canon):
        raise ValueError("lower: the same tensor appears twice in the argument list")
    _check_args(sch, canon)
    body, _ = schedule_ops(sch)
    outputs = {sch[o].op.output(0) for o in sch.outputs}
    func = storage_flatten(body, canon, name, outputs)
    if dump:
        print(f"---- after schedule_ops + storage_flatten ----\n{func}\n", file=sys.stderr)
    passes = gpu_passes() if is_gpu(target) else default_passes()
    return Sequential(passes, dump=dump)(func)


def _canonical(sch, tensor):
    """The tensor a stage now computes; an input the program never reads stays as given
    (TVM accepts unused arguments, and a fixed calling convention may need them)."""
    from ..schedule.stage import ScheduleError
    from ..te.tensor import PlaceholderOp
    try:
        return sch[tensor].op.output(0)
    except ScheduleError:
        if isinstance(tensor.op, PlaceholderOp):
            return tensor
        raise


def _check_args(sch, canon):
    for st in sch.stages:
        out = st.op.output(0)
        if st.attach_type == "inline" and out in canon:
            raise ValueError(f"lower: {st.name!r} is inlined (compute_inline) and has no buffer "
                             "of its own, so it cannot be an argument; compute it at the root "
                             "or drop it from the argument list")
        if st.is_placeholder and out not in canon and any(
                not s.is_placeholder and out in s.op.input_tensors for s in sch.stages):
            raise ValueError(f"lower: placeholder {st.name!r} is read but not in the argument "
                             "list")
        if st.is_output and out not in canon:
            raise ValueError(f"lower: output {st.name!r} is not in the argument list")
