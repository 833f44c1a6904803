"""Target strings ("llvm -mcpu=znver3 -mattr=+avx2,+fma -fast-math") and the host they describe.

The host is asked, never assumed: "llvm" alone means whatever CPU and features LLVM detects on this
machine, so a build on an AVX-512 box uses zmm registers and the same build on an AVX2 box does not.
The canonical string (``str(target)``) spells out the resolved CPU and features; it is part of the
build-cache key, so a cached object is never reused on a machine it was not compiled for.
"""
import functools
from dataclasses import dataclass
from typing import Tuple

import llvmlite.binding as llvm

# Widest float32 vector each feature gives, widest first.
_VECTOR_FEATURES = (("avx512f", 512), ("avx2", 256), ("avx", 256), ("sse", 128), ("neon", 128), ("sve", 128),
                    ("altivec", 128), ("vsx", 128), ("simd128", 128))
# Architectural vector registers each feature gives (x86 without AVX-512 and the rest: 16).
_REGISTER_FEATURES = (("avx512f", 32), ("neon", 32), ("sve", 32))


@dataclass(frozen=True)
class Target:
    """A resolved LLVM CPU target.

    ``features`` holds LLVM feature flags with their sign ("+avx2", "-avx512f"); an empty tuple
    means "the defaults of ``cpu``".
    """
    cpu: str
    features: Tuple[str, ...]
    fast_math: bool = False
    triple: str = ""

    @property
    def feature_string(self):
        return ",".join(self.features)

    def has_feature(self, name):
        return f"+{name}" in self.features

    @property
    def vector_bits(self):
        """Native float32 vector width in bits: 512 with avx512f, 256 with AVX, else 128."""
        for feature, width in _VECTOR_FEATURES:
            if self.has_feature(feature):
                return width
        return 128

    @property
    def vector_registers(self):
        """How many vector registers a kernel's accumulators and operands share."""
        for feature, count in _REGISTER_FEATURES:
            if self.has_feature(feature):
                return count
        return 16

    @property
    def vector_lanes_float32(self):
        return self.vector_bits // 32

    def __str__(self):
        parts = ["llvm", f"-mcpu={self.cpu}"]
        if self.features:
            parts.append(f"-mattr={self.feature_string}")
        if self.fast_math:
            parts.append("-fast-math")
        return " ".join(parts)


@functools.lru_cache(maxsize=None)
def host():
    """The machine this process runs on, as LLVM detects it."""
    features = llvm.get_host_cpu_features().flatten()
    return Target(cpu=llvm.get_host_cpu_name(),
                  features=tuple(f for f in features.split(",") if f),
                  triple=llvm.get_process_triple())


def parse(target):
    """Parse a target string; "llvm" and options not given default to the host."""
    if isinstance(target, Target):
        return target
    words = str(target).split()
    if not words or words[0] != "llvm":
        raise ValueError(f"unsupported target {target!r}: the CPU backend takes 'llvm' followed by "
                         "optional -mcpu=NAME, -mattr=+a,-b and -fast-math")
    base = host()
    cpu, features, fast_math = None, None, False
    for word in words[1:]:
        if word.startswith("-mcpu="):
            cpu = word[len("-mcpu="):]
        elif word.startswith("-mattr="):
            features = tuple(f for f in word[len("-mattr="):].split(",") if f)
            bad = [f for f in features if f[0] not in "+-"]
            if bad:
                raise ValueError(f"target {target!r}: each -mattr feature needs a + or - sign, "
                                 f"got {', '.join(bad)}")
        elif word == "-fast-math":
            fast_math = True
        else:
            raise ValueError(f"target {target!r}: unknown option {word!r} (expected -mcpu=NAME, "
                             "-mattr=+a,-b or -fast-math)")
    if cpu is None or cpu == base.cpu:
        cpu = base.cpu
        features = base.features if features is None else features
    elif features is None:
        features = ()  # another CPU: LLVM knows its defaults, the host's flags would be wrong
    return Target(cpu=cpu, features=features, fast_math=fast_math, triple=base.triple)


@functools.lru_cache(maxsize=None)
def _native_initialized():
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return True


@functools.lru_cache(maxsize=None)
def target_machine(target):
    """An O3 LLVM TargetMachine emitting position-independent code for ``target``."""
    _native_initialized()
    return llvm.Target.from_triple(target.triple).create_target_machine(
        cpu=target.cpu, features=target.feature_string, opt=3, reloc="pic", codemodel="default")
