"""The machine's float32 FMA peak: the ceiling every GFLOP/s figure here should be read against.

A loop of independent fused multiply-add chains on the widest vectors the host has, compiled by
the same LLVM tensorc uses (llvmlite, host CPU and features), run on 1..N threads at once. With
more chains than the FMA latency times the FMA pipes, nothing stalls, so GFLOP/s is the issue
rate: 2 flops x lanes x chains per iteration. The project machine changed twice under the
project (AVX2 Zen 3, then AVX-512 machines whose 512-bit FMAs run at full or half rate), and
a figure from another CPU misplaces every "fraction of peak".

    python benchmarks/bench_peak.py                 # 1 and 2 threads
    python benchmarks/bench_peak.py --threads 1 2 4 --chains 16
"""
import argparse
import ctypes
import threading
import time

import llvmlite.binding as llvm
from common import cpu_pressure

from tensorc.ops.schedule_cpu import vector_lanes


def kernel_ir(lanes, chains):
    """``void fma_loop(i64 n, float* out)``: ``chains`` accumulators, n FMAs each."""
    vec = f"<{lanes} x float>"

    def const(x):
        return "<" + ", ".join([f"float {x}"] * lanes) + ">"
    lines = ["define void @fma_loop(i64 %n, ptr %out) {", "entry:", "  br label %loop",
             "loop:", "  %i = phi i64 [0, %entry], [%i.next, %loop]"]
    lines += [f"  %a{c} = phi {vec} [{const(1.0)}, %entry], [%b{c}, %loop]"
              for c in range(chains)]
    lines += [f"  %b{c} = call {vec} @llvm.fma.v{lanes}f32({vec} %a{c}, {vec} {const(0.5)}, "
              f"{vec} {const(0.25)})" for c in range(chains)]
    lines += ["  %i.next = add i64 %i, 1", "  %more = icmp slt i64 %i.next, %n",
              "  br i1 %more, label %loop, label %done", "done:"]
    total = "%b0"
    for c in range(1, chains):   # keep every chain live
        lines.append(f"  %s{c} = fadd {vec} {total}, %b{c}")
        total = f"%s{c}"
    lines += [f"  store {vec} {total}, ptr %out, align 4", "  ret void", "}",
              f"declare {vec} @llvm.fma.v{lanes}f32({vec}, {vec}, {vec})"]
    return "\n".join(lines)


def compile_kernel(lanes, chains):
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_default_triple()
    machine = target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                           features=llvm.get_host_cpu_features().flatten(),
                                           opt=3)
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(kernel_ir(lanes, chains)), machine)
    engine.finalize_object()
    fn = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p)(
        engine.get_function_address("fma_loop"))
    return engine, fn


def gflops(fn, lanes, chains, threads, iterations, rounds):
    """Best of ``rounds``: ``threads`` copies of the loop run at once (ctypes releases the GIL)."""
    outs = [(ctypes.c_float * lanes)() for _ in range(threads)]
    best = 0.0
    for _ in range(rounds):
        workers = [threading.Thread(target=fn, args=(iterations, ctypes.addressof(o)))
                   for o in outs]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        seconds = time.perf_counter() - t0
        best = max(best, threads * iterations * chains * lanes * 2 / seconds / 1e9)
    return best


def fma_peak(threads, chains=12, iterations=20_000_000, rounds=5):
    """The FMA peak in flop/s on ``threads`` threads: what other benchmarks divide by."""
    lanes = vector_lanes("float32")
    engine, fn = compile_kernel(lanes, chains)   # the engine owns fn's code: keep it alive
    return gflops(fn, lanes, chains, threads, iterations, rounds) * 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--chains", type=int, default=12)
    ap.add_argument("--iterations", type=int, default=20_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    lanes = vector_lanes("float32")
    _engine, fn = compile_kernel(lanes, args.chains)
    print(f"cpu pressure before: {cpu_pressure()}")
    print(f"host {llvm.get_host_cpu_name()}, {lanes} float32 lanes, {args.chains} FMA chains")
    for threads in args.threads:
        g = gflops(fn, lanes, args.chains, threads, args.iterations, args.rounds)
        print(f"  {threads} thread(s): {g:7.1f} GFLOP/s ({g / threads:.1f} per thread)")
    print(f"cpu pressure after: {cpu_pressure()}")


if __name__ == "__main__":
    main()
