"""DigitCaps prediction + dynamic routing (issue 6): tensorc against torch eager, torch.compile
and the floor of this machine, at MNIST CapsNet sizes (1152 input capsules of dim 8, 10 output
capsules of dim 16, 3 routing iterations), float32.

Everything runs in one process, interleaved round by round after warm-up, medians reported
(minima beside them), /proc/pressure/cpu printed before and after: the machine is shared.

- tensorc: ``capsule.run_predict_and_route`` (one fused kernel, compiled once per shape and
  thread count before timing).
- tensorc, W packed: the same with W packed once before timing (``capsule.pack_weight``,
  ``weight_layout="packed"``), as a compiled model holds its constant W (the graph pass
  ``choose_capsule_layout`` packs it below a batch of 4, where the kernel would otherwise
  transpose W on every call).
- torch eager, written the way public CapsNet code writes DigitCaps (the PyTorch ports in the
  style of gram-ai/capsule-networks and XifengGuo/CapsNet-Pytorch): the prediction as one
  broadcast ``torch.matmul(W, u[..., None])`` of W (1, I, J, Dout, Din) against u, per-sample
  logits b (B, I, J, 1), and per round softmax over j, ``(c * u_hat).sum(dim=1)``, squash,
  ``b = b + (u_hat * v).sum(-1)``.
- torch.compile of the same function (inductor, compiled per batch size; reported as failed
  with the error if it does not compile here).
- the floor: max(bytes / copy bandwidth, flops / FMA peak). Bytes are what the fused op must
  move: u and W read once, v written once (the prediction vectors are not counted: the floor
  is for an op that never writes them to memory). Copy bandwidth is measured in the same run
  (``np.copyto`` of a 256 MB buffer, read + write bytes per second, one thread, as numpy
  copies); the FMA peak is ``bench_peak.fma_peak`` on the same thread count (independent FMA
  chains on the widest vectors: the issue rate, not a library's attainable fraction of it, so
  a floor that no algorithm with extra work or traffic can beat). Flops:
  2·B·I·J·Dout·Din for the prediction, 2·B·I·J·Dout per weighted sum (one per round) and per
  agreement (one per round but the last).
- correctness: relative L2 error of every implementation against a float64 numpy reference of
  the paper's procedure.

With ``--model``, the whole CapsNet of tests/frontend/torch_models.py instead (conv, primary
capsules, DigitCaps with 288 input capsules; batch ``--batches``, first thread count), imported
with ``torch.jit.trace`` + ``from_torchscript`` and compiled twice: with the default graph
passes (the routing becomes one ``capsule_routing`` node) and without
``fuse_capsule_routing`` (generic fusion of the unrolled rounds); torch eager beside them, and
the per-kernel profile of both.

    python benchmarks/bench_capsule.py [--batches 1 32 128] [--threads 2 1] [--rounds 7]
    python benchmarks/bench_capsule.py --model --batches 32 --threads 2
    python benchmarks/bench_capsule.py --json results.json   # also write the figures as JSON
"""
import argparse
import statistics
import time

import numpy as np
from bench_peak import fma_peak
from common import cpu_pressure, interleaved, summarize
from records import Records

import tensorc as tc
from tensorc.ops import capsule

I, J, DIN, DOUT = 1152, 10, 8, 16
EPS = capsule.EPS


def torch_digitcaps(iterations):
    import torch

    def squash(s):
        n2 = (s ** 2).sum(dim=-1, keepdim=True)
        return n2 / (1 + n2) * s / torch.sqrt(n2 + EPS)

    def forward(u, W):
        u_hat = torch.matmul(W, u[:, :, None, :, None]).squeeze(-1)    # (B, I, J, Dout)
        b = torch.zeros(*u_hat.shape[:3], 1)
        for r in range(iterations):
            c = torch.softmax(b, dim=2)
            v = squash((c * u_hat).sum(dim=1, keepdim=True))               # (B, 1, J, Dout)
            if r < iterations - 1:
                b = b + (u_hat * v).sum(dim=-1, keepdim=True)
        return v.squeeze(1)
    return forward


def numpy_reference(u, W, iterations):
    u_hat = np.einsum("ijdk,bik->bijd", W.astype(np.float64), u.astype(np.float64))
    b = np.zeros(u_hat.shape[:3])
    for r in range(iterations):
        c = np.exp(b - b.max(2, keepdims=True))
        c /= c.sum(2, keepdims=True)
        s = np.einsum("bij,bijd->bjd", c, u_hat)
        n2 = (s * s).sum(-1, keepdims=True)
        v = n2 / (1 + n2) * s / np.sqrt(n2 + EPS)
        if r < iterations - 1:
            b = b + np.einsum("bijd,bjd->bij", u_hat, v)
    return v


def copy_bandwidth(rounds=5):
    """Bytes read + written per second by np.copyto of a 256 MB float32 buffer."""
    a = np.ones(1 << 26, np.float32)
    b = np.empty_like(a)
    np.copyto(b, a)
    best = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best.append(time.perf_counter() - t0)
    return 2 * a.nbytes / statistics.median(best)


def floor_s(batch, iterations, bandwidth, peak):
    nbytes = 4 * (batch * I * DIN + I * J * DOUT * DIN + batch * J * DOUT)
    flops = 2 * batch * I * J * DOUT * (DIN + 2 * iterations - 1)
    return max(nbytes / bandwidth, flops / peak), nbytes, flops


def rel_l2(got, ref):
    return float(np.linalg.norm(np.asarray(got, np.float64) - ref) / np.linalg.norm(ref))


def bench_model(batch, threads, rounds, records):
    """The imported CapsNet with and without the capsule pass, against torch eager."""
    import os
    import sys
    import warnings

    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "frontend"))
    import torch_models
    from frontend_importers import from_torchscript

    from tensorc.graph import passes

    module, _ = torch_models.make_capsnet()
    x = torch.randn(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = module(x).numpy().astype(np.float64)
        graph = from_torchscript(torch.jit.trace(module, (x,), check_trace=False),
                                 [tuple(x.shape)])
    tc.runtime.set_num_threads(threads)
    torch.set_num_threads(threads)
    default = passes.default_passes
    mods = {}
    for name, keep in (("tensorc", lambda p: True),
                       ("tensorc, no capsule pass", lambda p: p.name != "fuse_capsule_routing")):
        passes.default_passes = lambda target="llvm", keep=keep: [
            p for p in default(target) if keep(p)]
        try:
            t0 = time.perf_counter()
            mods[name] = (tc.compile(graph), time.perf_counter() - t0)
        finally:
            passes.default_passes = default
    xa = x.numpy()
    fns = {name: (lambda m=m: m(xa)) for name, (m, _) in mods.items()}
    with torch.no_grad():
        fns["torch eager"] = lambda: module(x)
        times = summarize(interleaved(fns, rounds=rounds, warmup=2))
    for name, (m, build) in mods.items():
        info = m.compile_info
        prof = m.profile(xa)
        print(f"{name}: {info.summary().splitlines()[0]}; compile {build:.1f} s; rel L2 "
              f"{rel_l2(m(xa), ref):.1e}; kernels (median ms): " +
              ", ".join(f"{k.kernel.split('_', 1)[1][:28]} {k.median * 1e3:.2f}" for k in prof))
    print(f"batch {batch} threads {threads}: " + ", ".join(
        f"{k} {t['median_ms']:.2f} ms (min {t['min_ms']:.2f})" for k, t in times.items()))
    for k, t in times.items():
        records.add(f"capsnet batch {batch}", k, threads, t["median_ms"], t["min_ms"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32, 128])
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--model", action="store_true",
                    help="the imported CapsNet with and without the capsule graph pass")
    ap.add_argument("--json", help="also write the figures to this JSON file (run_all.py)")
    args = ap.parse_args()
    records = Records("capsule", "tensorc")
    if args.model:
        print(f"cpu pressure before: {cpu_pressure()}")
        for batch in args.batches:
            bench_model(batch, args.threads[0], args.rounds, records)
        print(f"cpu pressure after: {cpu_pressure()}")
        records.write(args.json)
        return
    import torch

    print(f"cpu pressure before: {cpu_pressure()}")
    eager = torch_digitcaps(args.iterations)
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((I, J, DOUT, DIN)) * 0.05).astype(np.float32)
    Wt = torch.from_numpy(W)[None]
    Wp = capsule.pack_weight(W)
    bandwidth = copy_bandwidth()
    print(f"copy bandwidth (np.copyto 256 MB, read + write): {bandwidth / 1e9:.1f} GB/s")
    rows = []
    compiled = {}
    for batch in args.batches:
        u = rng.standard_normal((batch, I, DIN)).astype(np.float32)
        ut = torch.from_numpy(u)
        ref = numpy_reference(u, W, args.iterations)
        if not args.no_compile:
            try:
                fn = torch.compile(eager)
                t0 = time.perf_counter()
                with torch.no_grad():
                    fn(ut, Wt)
                compiled[batch] = (fn, time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001 -- report any compile failure and go on
                compiled[batch] = (None, f"{type(e).__name__}: {str(e).splitlines()[0][:120]}")
        for threads in args.threads:
            tc.runtime.set_num_threads(threads)
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            v = capsule.run_predict_and_route(u, W, iterations=args.iterations)
            build = time.perf_counter() - t0
            fns = {"tensorc": lambda u=u: capsule.run_predict_and_route(u, W, args.iterations),
                   "tensorc, W packed": lambda u=u: capsule.run_predict_and_route(
                       u, Wp, args.iterations, weight_layout="packed")}
            errs = {"tensorc": rel_l2(v, ref), "tensorc, W packed": rel_l2(
                capsule.run_predict_and_route(u, Wp, args.iterations, weight_layout="packed"),
                ref)}
            with torch.no_grad():
                errs["torch eager"] = rel_l2(eager(ut, Wt).numpy(), ref)
                fns["torch eager"] = lambda ut=ut: eager(ut, Wt)
                fn, info = compiled.get(batch, (None, "skipped (--no-compile)"))
                if fn is not None:
                    errs["torch.compile"] = rel_l2(fn(ut, Wt).numpy(), ref)
                    fns["torch.compile"] = lambda fn=fn, ut=ut: fn(ut, Wt)
                times = summarize(interleaved(fns, rounds=args.rounds, warmup=2))
            peak = fma_peak(threads)
            floor, nbytes, flops = floor_s(batch, args.iterations, bandwidth, peak)
            rows.append((batch, threads, times, errs, floor, nbytes, flops, peak, build, info))
            case = f"digitcaps batch {batch}"
            for k, t in times.items():
                records.add(case, k, threads, t["median_ms"], t["min_ms"])
            records.add(case, "floor (bytes / copy bandwidth, flops / FMA peak)", threads,
                        floor * 1e3)
            records.note(f"{case}: torch.compile " +
                         (info if isinstance(info, str) else f"compile {info:.1f} s"))
            print(f"batch {batch} threads {threads}: " + ", ".join(
                f"{k} {t['median_ms']:.2f} ms (min {t['min_ms']:.2f}, rel L2 {errs[k]:.1e})"
                for k, t in times.items()) +
                f"; floor {floor * 1e3:.2f} ms ({nbytes / 1e6:.1f} MB, {flops / 1e6:.0f} MFLOP,"
                f" FMA peak {peak / 1e9:.0f} GFLOP/s); tensorc build {build:.1f} s; torch.compile: "
                f"{info if isinstance(info, str) else f'{info:.1f} s'}")
    print(f"cpu pressure after: {cpu_pressure()}")
    print()
    print("Ratios as tensorc / tensorc with W packed.")
    print("| batch | threads | tensorc ms | W packed ms | torch eager ms | torch.compile ms | "
          "floor ms | tensorc / floor | eager / tensorc | compile / tensorc | rel L2 tensorc |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for batch, threads, times, errs, floor, *_ in rows:
        t = times["tensorc"]["median_ms"]
        p = times["tensorc, W packed"]["median_ms"]
        e = times["torch eager"]["median_ms"]
        c = times.get("torch.compile", {}).get("median_ms")
        cs = f"{c:.2f}" if c else "n/a"
        cr = f"{c / t:.1f} / {c / p:.1f}" if c else "n/a"
        f = floor * 1e3
        print(f"| {batch} | {threads} | {t:.2f} | {p:.2f} | {e:.2f} | {cs} | {f:.2f} | "
              f"{t / f:.1f} / {p / f:.1f} | {e / t:.1f} / {e / p:.1f} | {cr} | "
              f"{errs['tensorc']:.1e} / {errs['tensorc, W packed']:.1e} |")
    records.write(args.json)


if __name__ == "__main__":
    main()
