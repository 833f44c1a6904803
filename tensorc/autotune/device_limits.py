"""What a CUDA kernel may use on a device, and the check that keeps a tuner from running a
candidate that cannot launch.

A launch that asks for more than the device has -- threads per block, registers per block,
shared memory -- fails with "too many resources requested" at best, and it is known before
the run: the launch configuration is fixed by the code generator and ptxas reports each
kernel's registers and shared memory. So the builder checks every candidate against a
``DeviceLimits`` record and files one that does not fit as an error naming the kernel, the
resource and the limit, without spending a run on it.

The limits come from the device (through pycuda) when one is ready, else from a table per
architecture: the target's ``-arch``, or sm_80 (the architecture ``tc.build`` compiles for
when no GPU says otherwise). The per-block limits below are the same from sm_70 to sm_90; the
table keeps them per architecture so that one that differs is a line, not a special case.
"""
import dataclasses
import re
from dataclasses import dataclass

#: Threads of a warp, and the unit (registers per warp) in which registers are allocated.
WARP = 32
REGISTER_UNIT = 256


@dataclass(frozen=True)
class DeviceLimits:
    """Per-block limits of one device or architecture; ``source`` says where they come from
    (a device's name, or "table")."""
    arch: str
    max_threads_per_block: int = 1024
    max_block_dims: tuple = (1024, 1024, 64)
    max_grid_dims: tuple = (2 ** 31 - 1, 65535, 65535)
    max_registers_per_thread: int = 255
    max_registers_per_block: int = 65536
    max_shared_per_block: int = 48 * 1024  # static __shared__, what the generated code uses
    source: str = "table"

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


#: Architecture -> its limits (CUDA C++ Programming Guide, "Compute Capabilities").
ARCH_LIMITS = {arch: DeviceLimits(arch) for arch in ("sm_70", "sm_75", "sm_80", "sm_86",
                                                     "sm_87", "sm_89", "sm_90")}


def cuda_arch(target):
    """The ``-arch`` of a "cuda ..." target string (checked), or None when it names none."""
    from ..codegen.cuda_compile import check_arch
    words = str(target).split()
    arch = None
    for word in words[1:]:
        key, _, value = word.lstrip("-").partition("=")
        if key != "arch" or not value or words[0] != "cuda":
            raise ValueError(f"autotune: unknown option {word!r} in target {target!r}; "
                             "target cuda takes -arch=sm_XX, cuda-emu takes none")
        arch = check_arch(value)
    return arch


def cuda_target_key(target):
    """The canonical form of a CUDA target, which tuning records are filed under: "cuda
    -arch=sm_XX" with the architecture resolved as ``tc.build`` resolves it (the target's,
    else the GPU's, else the default), and "cuda-emu" as it is (its times are the CPU's)."""
    kind = str(target).split()[0]
    arch = cuda_arch(target)
    if kind == "cuda-emu":
        return kind
    if arch is None:
        from ..driver import _default_arch
        arch = _default_arch()
    return f"cuda -arch={arch}"


def limits_for_arch(arch):
    """The table's limits of ``arch`` ("sm_80"); a "sm_90a"-style variant takes its base's."""
    base = re.sub(r"[af]$", "", arch)
    if base not in ARCH_LIMITS:
        raise ValueError(f"autotune: no device limits known for {arch}; known: "
                         f"{', '.join(ARCH_LIMITS)} (pass MeasureOption(device_limits="
                         "DeviceLimits(...)) to give them)")
    return ARCH_LIMITS[base].replace(arch=arch)


def device_limits():
    """The limits of GPU 0, asked through pycuda (which must be usable: ``cuda_status()``)."""
    import pycuda.driver as drv
    drv.init()
    dev = drv.Device(0)
    a = drv.device_attribute
    major, minor = dev.compute_capability()
    return DeviceLimits(
        arch=f"sm_{major}{minor}",
        max_threads_per_block=dev.get_attribute(a.MAX_THREADS_PER_BLOCK),
        max_block_dims=tuple(dev.get_attribute(getattr(a, f"MAX_BLOCK_DIM_{c}")) for c in "XYZ"),
        max_grid_dims=tuple(dev.get_attribute(getattr(a, f"MAX_GRID_DIM_{c}")) for c in "XYZ"),
        max_registers_per_block=dev.get_attribute(a.MAX_REGISTERS_PER_BLOCK),
        max_shared_per_block=dev.get_attribute(a.MAX_SHARED_MEMORY_PER_BLOCK),
        source=f"device 0 ({dev.name()})")


def limits_for_target(target):
    """The limits candidates of ``target`` are checked against: the GPU's when one is ready
    for a "cuda" target (it is where they run), else the table's for the target's ``-arch``
    or the default architecture."""
    from ..codegen.cuda_compile import DEFAULT_ARCH
    from ..runtime.cuda_module import cuda_status
    if str(target).split()[0] == "cuda" and cuda_status() == "ready":
        return device_limits()
    return limits_for_arch(cuda_arch(target) or DEFAULT_ARCH)


def registers_per_block(registers, threads):
    """Registers a block of ``threads`` threads holds: allocated per warp, in units of
    REGISTER_UNIT, so a partial warp or an odd count costs a whole unit."""
    warps = -(-threads // WARP)
    return warps * (-(-registers * WARP // REGISTER_UNIT) * REGISTER_UNIT)


def launch_violations(source, limits):
    """Why the kernels of a ``CudaSource`` cannot be launched on ``limits`` (one line per
    limit exceeded; empty when they can), from the launch configuration alone."""
    out = []
    for k in source.kernels:
        block, grid = _dims(k.block), _dims(k.grid)
        threads = block[0] * block[1] * block[2]
        if threads > limits.max_threads_per_block:
            out.append(f"kernel {k.name}: {threads} threads per block "
                       f"({'x'.join(map(str, block))}), over the limit of "
                       f"{limits.max_threads_per_block} on {_where(limits)}")
        for what, dims, most in (("block", block, limits.max_block_dims),
                                 ("grid", grid, limits.max_grid_dims)):
            for c, n, m in zip("xyz", dims, most):
                if n > m:
                    out.append(f"kernel {k.name}: {what} dimension {c} of {n}, over the limit "
                               f"of {m} on {_where(limits)}")
        if k.shared_bytes > limits.max_shared_per_block:
            out.append(_shared(k.name, k.shared_bytes, limits))
    return out


def usage_violations(source, usage, limits, reject_spills=True):
    """Why the kernels cannot run (or, with ``reject_spills``, should not be timed), from
    ptxas's ``resource_usage``: registers per thread and per block, shared memory, spills."""
    out = []
    for k in source.kernels:
        use = usage.get(k.name)
        if use is None:
            continue
        threads = _dims(k.block)[0] * _dims(k.block)[1] * _dims(k.block)[2]
        regs = use["registers"]
        if regs > limits.max_registers_per_thread:
            out.append(f"kernel {k.name}: {regs} registers per thread, over the limit of "
                       f"{limits.max_registers_per_thread} on {_where(limits)}")
        need = registers_per_block(regs, threads)
        if need > limits.max_registers_per_block:
            out.append(f"kernel {k.name}: {threads} threads x {regs} registers take {need} "
                       f"registers per block, over the limit of "
                       f"{limits.max_registers_per_block} on {_where(limits)}")
        if use["shared_bytes"] > limits.max_shared_per_block:
            out.append(_shared(k.name, use["shared_bytes"], limits))
        if reject_spills and (use["spill_stores"] or use["spill_loads"]):
            out.append(f"kernel {k.name}: spills registers to local memory "
                       f"({use['spill_stores']} bytes stored, {use['spill_loads']} bytes "
                       f"loaded) with {regs} registers per thread; not timed "
                       "(MeasureOption.reject_spills)")
    return out


def _shared(name, nbytes, limits):
    return (f"kernel {name}: {nbytes} bytes of shared memory per block, over the limit of "
            f"{limits.max_shared_per_block} on {_where(limits)}")


def _where(limits):
    return limits.arch if limits.source == "table" else f"{limits.arch}, {limits.source}"


def _dims(dims):
    dims = tuple(int(d) for d in dims)
    return dims + (1,) * (3 - len(dims))


__all__ = ["ARCH_LIMITS", "DeviceLimits", "cuda_arch", "cuda_target_key", "device_limits",
           "launch_violations", "limits_for_arch", "limits_for_target", "registers_per_block",
           "usage_violations"]
