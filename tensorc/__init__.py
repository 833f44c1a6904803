"""tensorc: a tensor compiler. Describe a computation with `te`, schedule it, build it."""
__version__ = "0.1.0"

from . import te  # noqa: E402
from .driver import build, lower  # noqa: E402


def compile(graph, target="llvm", tuning_db=None, dump=False):  # noqa: A001
    """Compile a model graph (``tensorc.graph.Graph``) into one GraphModule: one shared object
    whose entry runs the whole model, weights inside. See ``tensorc.graph.compiler``."""
    from .graph.compiler import compile as _compile
    return _compile(graph, target=target, tuning_db=tuning_db, dump=dump)


def load(path):
    """Load a model saved with ``GraphModule.save`` (= ``tensorc.runtime.load_graph_module``)."""
    from .runtime.graph_module import load_graph_module
    return load_graph_module(path)


def __getattr__(name):
    # The runtime pulls in llvmlite; load it on first use so `import tensorc` stays light.
    if name == "runtime":
        import importlib
        return importlib.import_module(".runtime", __name__)
    raise AttributeError(f"module 'tensorc' has no attribute {name!r}")
