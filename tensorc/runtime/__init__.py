"""Running compiled code: loaded modules, argument checking, timing, the thread count."""
from .graph_module import GraphModule, KernelTiming, TensorInfo, load_graph_module
from .module import Function, Module, TimingResult, load_module
from .threads import get_num_threads, set_num_threads

__all__ = ["Function", "Module", "TimingResult", "load_module", "get_num_threads",
           "set_num_threads", "GraphModule", "KernelTiming", "TensorInfo", "load_graph_module"]
