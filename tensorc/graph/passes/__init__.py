"""Graph passes: each a pure function Graph -> Graph (the input graph is never changed).

- ``fold_constants``: evaluate nodes whose inputs are all constants (with ``te.evaluate``);
  ``shape`` nodes fold from static shapes; static operands given as constant inputs
  (``reshape(x, shape_tensor)``) become attributes, so Shape -> Gather -> Concat -> Reshape
  chains disappear;
- ``simplify``: identity-like nodes removed (reshape to the same shape, identity transpose,
  cast to the same dtype, zero padding, ...), reshape-like ops (flatten, squeeze, unsqueeze)
  canonicalised to ``reshape`` and chains of them (and of transposes) collapsed to one;
- ``fold_batch_norm``: conv / dense / gemm / matmul followed by an inference batch_norm
  becomes the same op with scaled weights plus a bias;
- ``choose_winograd`` (CPU targets only): stride-1 3x3 conv2d on large enough planes is
  computed by Winograd F(4x4, 3x3), its constant kernel transformed once
  (``weight_layout="winograd"``);
- ``choose_conv_layout``: conv2d with a constant weight reads it pre-packed in the blocked
  layout of the CPU conv schedule (``weight_layout="packed"``), so no kernel repacks it per call;
- ``fuse_capsule_routing``: the unrolled dynamic-routing loop of an imported CapsNet
  (softmax / multiply / sum / squash rounds, and the prediction matmul before them) becomes
  one ``capsule_routing`` node, compiled with the fused capsule schedule;
- ``choose_capsule_layout`` (CPU targets only): a ``capsule_routing`` node with a batch of at
  least 4 computes with the batch in the vector lanes (``capsule.predict_and_route_lanes``);
  below that, its constant W is packed once (``weight_layout="packed"``);
- ``eliminate_dead_code``: nodes no graph output depends on are dropped.

``run_passes(graph, passes, dump=...)`` runs a list of them, printing the graph before the
first and after each one (with op counts and time) when ``dump`` is true or
TENSORC_DUMP_GRAPH=1. ``default_passes(target)`` is the compiler's pipeline.
"""
import os
import sys
import time

from .batch_norm import fold_batch_norm
from .capsule import choose_capsule_layout, fuse_capsule_routing
from .common import GraphPass, op_count_line
from .conv_layout import choose_conv_layout, choose_winograd
from .dce import eliminate_dead_code
from .fold import fold_constants
from .simplify import simplify


def default_passes(target="llvm"):
    """The compiler's graph pipeline for ``target``, in order."""
    from ...transform.pipeline import is_gpu
    gpu = is_gpu(target)
    return [GraphPass(fold_constants), GraphPass(simplify), GraphPass(fold_batch_norm),
            GraphPass(fold_constants, "fold_constants_after_bn"),
            GraphPass(fuse_capsule_routing), GraphPass(eliminate_dead_code),
            *([] if gpu else [GraphPass(choose_winograd)]), GraphPass(choose_conv_layout),
            *([] if gpu else [GraphPass(choose_capsule_layout)]),
            GraphPass(eliminate_dead_code, "eliminate_dead_code_final")]


def dump_enabled(dump=None):
    if dump is None:
        return os.environ.get("TENSORC_DUMP_GRAPH", "") not in ("", "0")
    return bool(dump)


def run_passes(graph, passes=None, dump=None, file=None, target="llvm"):
    """Run ``passes`` (default: ``default_passes(target)``) in order; returns the final
    graph."""
    passes = default_passes(target) if passes is None else [
        p if isinstance(p, GraphPass) else GraphPass(p) for p in passes]
    dump = dump_enabled(dump)
    out = file or sys.stderr
    if dump:
        print(f"==== graph {graph.name}: before {passes[0].name if passes else 'passes'} "
              f"({op_count_line(graph)}) ====\n{graph}\n", file=out)
    for p in passes:
        t0 = time.perf_counter()
        graph = p(graph)
        if dump:
            ms = (time.perf_counter() - t0) * 1e3
            print(f"==== graph {graph.name}: after {p.name} ({ms:.1f} ms; "
                  f"{op_count_line(graph)}) ====\n{graph}\n", file=out)
    return graph


__all__ = ["GraphPass", "run_passes", "default_passes", "fold_constants", "simplify",
           "fold_batch_norm", "choose_conv_layout", "fuse_capsule_routing",
           "choose_capsule_layout", "eliminate_dead_code", "op_count_line"]
