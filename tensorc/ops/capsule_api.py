"""The capsule ops on numpy arrays: ``run_predict``, ``run_dynamic_routing``,
``run_predict_and_route``, ``run_squash`` and ``run_em_votes`` return fresh numpy arrays.

Each call looks its kernel up by (op, input shapes, dtype, op parameters, target, thread count)
and compiles it -- the TE of ``ops.capsule`` with its default schedule, the CPU one
(``capsule_schedule``) or, for "cuda" targets and "cuda-emu", the GPU one
(``capsule_schedule_gpu``) -- only the first time: a later call with the same key reuses the
loaded module (``cache_info()`` counts hits and misses). The thread count is in the key
because the CPU schedule sizes its batch blocks by it.
Iterations, eps, axis and stride are compile-time constants of the kernel, so each value is a
kernel of its own.
"""
import functools

import numpy as np

from . import capsule
from .capsule_schedule import cpu_lanes

#: Kernels kept loaded (least recently used dropped first).
CACHE_SIZE = 64

#: The dtypes the kernels take, by numpy dtype (a dict lookup: ``dtype.name`` is a Python-level
#: property, and every microsecond of a call's own overhead shows at batch 1).
_DTYPES = {np.dtype("float32"): "float32", np.dtype("float64"): "float64"}


def _predict_and_route(u, W, iterations, eps, lanes=0, weight_layout="IJDK"):
    return capsule.capsule_routing(u, W, iterations, eps, lanes=lanes,
                                   weight_layout=weight_layout)


#: op -> (TE builder, names of its array arguments)
_OPS = {
    "predict": (capsule.predict, ("u", "W")),
    "dynamic_routing": (capsule.dynamic_routing, ("u_hat",)),
    "predict_and_route": (_predict_and_route, ("u", "W")),
    "squash": (capsule.squash, ("s",)),
    "em_votes": (capsule.em_votes, ("pose", "W")),
}


@functools.lru_cache(maxsize=CACHE_SIZE)
def _kernel(op, shapes, dtype, params, target, threads):
    """(module, output shape) for one key; ``threads`` only keys the cache."""
    import tensorc as tc
    from tensorc import te

    from .schedule_cpu import schedule_for
    from .schedule_gpu import schedule_for_gpu
    build, names = _OPS[op]
    args = [te.placeholder(shape, dtype, name) for name, shape in zip(names, shapes)]
    out = build(*args, **dict(params))
    schedule = schedule_for_gpu if _is_gpu(target) else schedule_for
    mod = tc.build(schedule(out), args + [out], target=target, name=f"capsule_{op}")
    return mod, tuple(out.shape)


def _is_gpu(target):
    """Whether ``target`` ("cuda", "cuda -arch=sm_90", "cuda-emu") takes the GPU schedules."""
    return isinstance(target, str) and target.split()[0].startswith("cuda")


def cache_info():
    """Hits, misses and size of the kernel cache (functools.lru_cache's cache_info)."""
    return _kernel.cache_info()


def cache_clear():
    _kernel.cache_clear()


def _run(op, arrays, params, target):
    from ..runtime.threads import get_num_threads
    names = _OPS[op][1]
    arrays = [_array(op, name, a) for name, a in zip(names, arrays)]
    dtype = _DTYPES[arrays[0].dtype]
    if any(a.dtype != arrays[0].dtype for a in arrays):
        listed = ", ".join(f"{n} is {a.dtype}" for n, a in zip(names, arrays))
        raise TypeError(f"capsule.run_{op}: the arrays must have one dtype ({listed})")
    if op == "predict_and_route" and not _is_gpu(target):
        params = dict(params, lanes=cpu_lanes(arrays[0].shape[0], dtype))
    mod, shape = _kernel(op, tuple(a.shape for a in arrays), dtype,
                         tuple(sorted(params.items())), target, get_num_threads())
    out = np.empty(shape, arrays[0].dtype)
    mod(*arrays, out)
    return out


def _array(op, name, a):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"capsule.run_{op}: {name} must be a numpy array, got "
                        f"{type(a).__name__}")
    if a.dtype not in _DTYPES:
        raise TypeError(f"capsule.run_{op}: {name} has dtype {a.dtype}; expected float32 or "
                        "float64")
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def run_predict(u, W, target="llvm", weight_layout="IJDK"):
    """u_hat (B, I, J, Dout) = W[i, j] @ u[b, i] for u (B, I, Din), W (I, J, Dout, Din) (or
    ``capsule.pack_weight(W)`` with ``weight_layout="packed"``)."""
    return _run("predict", (u, W), {"weight_layout": weight_layout}, target)


def run_dynamic_routing(u_hat, iterations=3, eps=capsule.EPS, target="llvm"):
    """v (B, J, Dout) from prediction vectors u_hat (B, I, J, Dout)."""
    return _run("dynamic_routing", (u_hat,), {"iterations": iterations, "eps": eps}, target)


def run_predict_and_route(u, W, iterations=3, eps=capsule.EPS, target="llvm",
                          weight_layout="IJDK"):
    """v (B, J, Dout) from u (B, I, Din) and W (I, J, Dout, Din) in one kernel that never
    writes the prediction vectors to memory outside the cache-sized blocks it works on. On
    the CPU, a batch of at least 4 runs in the batch-in-lanes layout
    (``capsule.predict_and_route_lanes``, ``capsule_schedule.cpu_lanes``). A W used for many
    calls can be packed once (``capsule.pack_weight``, ``weight_layout="packed"``): below a
    batch of 4 the kernel then reads it as it is instead of transposing it on every call."""
    return _run("predict_and_route", (u, W), {"iterations": iterations, "eps": eps,
                                              "weight_layout": weight_layout}, target)


def run_squash(s, axis=-1, eps=capsule.EPS, target="llvm"):
    return _run("squash", (s,), {"axis": axis, "eps": eps}, target)


def run_em_votes(pose, W, stride=1, target="llvm"):
    """Convolutional matrix-capsule votes; see ``capsule.em_votes`` for the shapes."""
    return _run("em_votes", (pose, W), {"stride": stride}, target)
