"""tensorc: a tensor compiler. Describe a computation with `te`, schedule it, build it."""
__version__ = "0.1.0"

from . import te  # noqa: E402
from .driver import build, lower  # noqa: E402


def __getattr__(name):
    # The runtime pulls in llvmlite; load it on first use so `import tensorc` stays light.
    if name == "runtime":
        import importlib
        return importlib.import_module(".runtime", __name__)
    raise AttributeError(f"module 'tensorc' has no attribute {name!r}")
