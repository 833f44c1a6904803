"""Running compiled code: loaded modules, argument checking, timing, the thread count."""
from .module import Function, Module, TimingResult, load_module
from .threads import get_num_threads, set_num_threads

__all__ = ["Function", "Module", "TimingResult", "load_module", "get_num_threads",
           "set_num_threads"]
