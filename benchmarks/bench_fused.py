"""Effective bandwidth of a fused elementwise chain: tensorc against a memory copy, numpy, torch.

Three chains over a float32 activation x of shape [N, C, H, W] (or [N, C], a transformer's
[tokens, features]) and a residual r of the same shape, with a per-channel scale and bias
([1, C, 1, 1] or [1, C]), built with GraphBuilder and compiled by ``tensorc.compile``, which
must fuse each into a single kernel:

- ``cheap`` (the memory-bound case the 70% target is about): x * scale + bias, + r, relu,
  clip(0, 6), * 0.5, - 0.25: seven graph nodes, a few vector instructions per 8 elements;
- ``select``: the same with where(r > 2, 0, y) before the last multiply. ``where`` is lazy
  (the branch not taken is never read), so this shows what a select whose branches read memory
  costs inside a fused kernel;
- ``gelu``: x * scale + bias, gelu (tanh approximation), + r, clip(-6, 6), * 0.5: its tanh is a
  polynomial plus an exp and a division, ~60 FP operations per element, so on one core it is
  compute-bound rather than memory-bound. The FP operations per element are counted in the
  kernel's LLVM IR and the achieved GFLOP/s printed (Zen 3 FMA peak: about 110 GFLOP/s per
  core, which only an all-FMA loop reaches).

Effective bandwidth = bytes the fused kernel must move (x and r read once, the output written
once, plus the tiny scale and bias) / time. The copy reference is ``np.copyto`` of an array the
size of the output (2 x its bytes moved), split over the same number of threads; "% of copy" is
each bandwidth over that one. Rows:

- ``tensorc kernel``: the compiled entry writing a preallocated output (what the kernel costs);
- ``tensorc mod()``: ``mod(x, r)``, which allocates a fresh output each call (page faults
  included, as a user calling the module sees it);
- ``numpy``: the chain written as numpy expressions (one temporary per operation; numpy's
  ufuncs are single-threaded, so it is timed in the one-thread block only);
- ``torch``: the chain in eager PyTorch (``torch.set_num_threads`` = the block's threads).

tensorc's threads are set with tensorc.runtime.set_num_threads. Runs are interleaved round by
round after warm-up, medians reported, /proc/pressure/cpu printed before and after each block.

    python benchmarks/bench_fused.py [--shape 16,256,56,56] [--chains cheap,select,gelu]
                                     [--threads 1 2] [--rounds 15]
    python benchmarks/bench_fused.py --shape 4096,4096     # 64 MB per tensor
    python benchmarks/bench_fused.py --json results.json   # also write the figures as JSON
"""
import argparse
import itertools
import re
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from common import cpu_pressure, interleaved, summarize
from records import Records

import tensorc as tc
from tensorc.graph import GraphBuilder

GELU_C = float(np.sqrt(2.0 / np.pi))


def _scalar(v):
    return np.array(v, "float32")


def build_cheap(gb, x, r, scale, bias):
    y = gb.op("add", gb.op("multiply", x, scale), bias)
    y = gb.op("clip", gb.op("relu", gb.op("add", y, r)), a_min=0.0, a_max=6.0)
    return gb.op("add", gb.op("multiply", y, _scalar(0.5)), _scalar(-0.25))


def numpy_cheap(x, r, scale, bias):
    y = np.clip(np.maximum(x * scale + bias + r, 0), 0, 6)
    return y * np.float32(0.5) + np.float32(-0.25)


def torch_cheap(x, r, scale, bias):
    import torch
    y = torch.clamp(torch.relu(x * scale + bias + r), 0, 6)
    return y * 0.5 - 0.25


def build_select(gb, x, r, scale, bias):
    y = gb.op("add", gb.op("multiply", x, scale), bias)
    y = gb.op("clip", gb.op("relu", gb.op("add", y, r)), a_min=0.0, a_max=6.0)
    y = gb.op("where", gb.op("greater", r, _scalar(2.0)), _scalar(0.0), y)
    return gb.op("multiply", y, _scalar(0.5))


def numpy_select(x, r, scale, bias):
    y = np.clip(np.maximum(x * scale + bias + r, 0), 0, 6)
    return np.where(r > 2, np.float32(0), y) * np.float32(0.5)


def torch_select(x, r, scale, bias):
    import torch
    y = torch.clamp(torch.relu(x * scale + bias + r), 0, 6)
    return torch.where(r > 2, 0.0, y) * 0.5


def build_gelu(gb, x, r, scale, bias):
    y = gb.op("gelu", gb.op("add", gb.op("multiply", x, scale), bias), approximate="tanh")
    y = gb.op("clip", gb.op("add", y, r), a_min=-6.0, a_max=6.0)
    return gb.op("multiply", y, _scalar(0.5))


def numpy_gelu(x, r, scale, bias):
    v = x * scale + bias
    g = np.float32(0.5) * v * (1 + np.tanh(np.float32(GELU_C) * (v + np.float32(0.044715) * v**3)))
    return np.clip(g + r, -6, 6) * np.float32(0.5)


def torch_gelu(x, r, scale, bias):
    import torch
    y = torch.nn.functional.gelu(x * scale + bias, approximate="tanh")
    return torch.clamp(y + r, -6, 6) * 0.5


CHAINS = {"cheap": (build_cheap, numpy_cheap, torch_cheap),
          "select": (build_select, numpy_select, torch_select),
          "gelu": (build_gelu, numpy_gelu, torch_gelu)}

# LLVM IR float instructions (vector or scalar) and the FP operations each performs per lane
_TYPE = r"(?:<(\d+) x float>|float)"
_FP_OPS = [(re.compile(rf"= (?:fmul|fadd|fsub|fdiv|fneg|fcmp \w+) [^<f]*{_TYPE}"), 1),
           (re.compile(rf"= select [^,]*, {_TYPE}"), 1),
           (re.compile(rf"call [^@]*{_TYPE} @llvm\.(?:fma|fmuladd)\."), 2),
           (re.compile(rf"call [^@]*{_TYPE} @llvm\.(?:minimum|maximum|minnum|maxnum|fabs|"
                       r"floor|ceil|round|copysign)\."), 1)]
_STORE = re.compile(rf"store {_TYPE}")


def fp_ops_per_element(ir, kernel):
    """FP operations per output element of ``kernel``, counted in its LLVM IR: the lanes of its
    float instructions over the lanes it stores (both arms of a branch count, so branchy code
    is overcounted); None when it stores no floats."""
    name = re.escape(kernel)
    match = re.search(rf"define [^\n]*@{name}_parallel\(.*?\n}}", ir, re.DOTALL) or \
        re.search(rf"define [^\n]*@{name}\(.*?\n}}", ir, re.DOTALL)
    body = match.group(0) if match else ""

    def lanes(pattern):
        return sum(int(n or 1) for n in pattern.findall(body))
    stored = lanes(_STORE)
    return sum(w * lanes(pat) for pat, w in _FP_OPS) / stored if stored else None


class Copy:
    """np.copyto between two arrays of its own (no other variant touches them, so none leaves
    them in cache), split into one contiguous piece per thread."""

    def __init__(self, like, threads):
        self.src = np.random.default_rng(1).standard_normal(like.size, dtype=like.dtype)
        self.dst = np.zeros_like(self.src)
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None
        cuts = np.linspace(0, self.src.size, threads + 1).astype(int)
        self.pieces = list(itertools.pairwise(cuts))

    def __call__(self):
        if self.pool is None:
            np.copyto(self.dst, self.src)
            return
        for f in [self.pool.submit(np.copyto, self.dst[a:b], self.src[a:b])
                  for a, b in self.pieces]:
            f.result()


def cores_used(fn, calls=3):
    """Process CPU time over wall time of a few calls: how many cores the threads really got
    (about 1 at two threads means other work held the second core)."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


def compile_chain(name, shape, scale, bias):
    gb = GraphBuilder(f"fused_{name}")
    x, r = gb.input("x", shape), gb.input("r", shape)
    gb.output(CHAINS[name][0](gb, x, r, gb.const("scale", scale), gb.const("bias", bias)))
    graph = gb.graph()
    mod = tc.compile(graph)
    if len(mod.kernel_names) != 1:
        raise SystemExit(f"chain {name!r} compiled to {len(mod.kernel_names)} kernels "
                         f"({', '.join(mod.kernel_names)}), not one fused kernel")
    return graph, mod


def bench_chain(name, shape, threads_list, rounds, torch, records):
    rng = np.random.default_rng(0)
    per_channel = (1, shape[1]) + (1,) * (len(shape) - 2)
    x = rng.standard_normal(shape, dtype=np.float32)
    r = rng.standard_normal(shape, dtype=np.float32)
    scale = rng.uniform(0.5, 1.5, per_channel).astype("float32")
    bias = rng.uniform(-0.5, 0.5, per_channel).astype("float32")
    graph, mod = compile_chain(name, shape, scale, bias)
    kernel = mod.kernel_names[0]
    flops = fp_ops_per_element(mod.get_source("llvm"), kernel)
    _, numpy_fn, torch_fn = CHAINS[name]
    entry = mod.get_function(mod.entry_name)
    out = mod.new_outputs()[0]
    entry(x, r, out)
    np.testing.assert_allclose(out, numpy_fn(x, r, scale, bias), rtol=1e-4, atol=1e-5)
    moved = x.nbytes + r.nbytes + out.nbytes + scale.nbytes + bias.nbytes
    print(f"\nchain {name}: {' -> '.join(n.op for n in graph.nodes)} over float32{list(shape)} "
          f"({x.nbytes / 1e6:.1f} MB per tensor, {moved / 1e6:.1f} MB moved); one kernel "
          f"{kernel}; {'n/a' if flops is None else f'{flops:.0f}'} FP ops per element (IR)")
    print(f"{'threads':>7} {'variant':<16} {'median ms':>10} {'min ms':>8} {'GB/s':>6} "
          f"{'% of copy':>9} {'GFLOP/s':>8}")
    tx, tr, ts, tb = (torch.from_numpy(a) for a in (x, r, scale, bias)) if torch else [None] * 4
    for threads in threads_list:
        tc.runtime.set_num_threads(threads)
        copy = Copy(out, threads)
        fns = {"copy (np.copyto)": copy, "tensorc kernel": lambda: entry(x, r, out),
               "tensorc mod()": lambda: mod(x, r)}
        if threads == 1:
            fns["numpy"] = lambda: numpy_fn(x, r, scale, bias)
        if torch:
            torch.set_num_threads(threads)
            fns["torch"] = lambda: torch_fn(tx, tr, ts, tb)
        before = cpu_pressure()
        stats = summarize(interleaved(fns, rounds, warmup=2))
        after = cpu_pressure()
        cores = cores_used(fns["tensorc kernel"])
        copy_bw = 2 * out.nbytes / stats["copy (np.copyto)"]["median_ms"] / 1e6
        for variant, st in stats.items():
            ms = st["median_ms"]
            bw = (2 * out.nbytes if variant.startswith("copy") else moved) / ms / 1e6
            gflops = "" if variant.startswith("copy") or flops is None \
                else f" {flops * out.size / ms / 1e6:>8.1f}"
            print(f"{threads:>7} {variant:<16} {ms:>10.2f} {st['min_ms']:>8.2f} {bw:>6.1f} "
                  f"{100 * bw / copy_bw:>8.0f}%{gflops}")
            records.add(f"{name} {'x'.join(map(str, shape))}", variant, threads, ms,
                        st["min_ms"])
        print(f"{'':>7} tensorc kernel used {cores:.2f} cores (process CPU time / wall time)")
        print(f"{'':>7} cpu pressure before: {before}\n{'':>7} cpu pressure after:  {after}")
        if copy.pool:
            copy.pool.shutdown()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="16,256,56,56",
                    help="N,C[,...]: scale and bias run along axis 1 (default 16,256,56,56)")
    ap.add_argument("--chains", default=",".join(CHAINS), help="comma list of " +
                    ", ".join(CHAINS))
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", help="also write the figures to this JSON file (run_all.py)")
    args = ap.parse_args()
    records = Records("fused", "tensorc kernel")
    shape = tuple(int(d) for d in args.shape.split(","))
    if len(shape) < 2:
        raise SystemExit(f"--shape {args.shape!r}: expected at least two dims (N,C,...)")
    try:
        import torch
    except ImportError:
        torch = None
        print("torch is not installed: the torch rows are skipped (pip install 'tensorc[torch]')")
        records.note("torch is not installed: no torch rows")
    for name in args.chains.split(","):
        if name not in CHAINS:
            raise SystemExit(f"--chains: unknown chain {name!r}; known: {', '.join(CHAINS)}")
        bench_chain(name, shape, args.threads, args.rounds, torch, records)
    records.write(args.json)


if __name__ == "__main__":
    main()
