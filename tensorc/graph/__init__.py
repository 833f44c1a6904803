"""Model graphs: the graph IR importers produce, its passes, and the compiler to one module."""
from .builder import GraphBuilder
from .interpret import run_graph
from .ir import Graph, Node, Value
from .plan import BufferRef, ExecutionPlan, KernelCall

__all__ = ["GraphBuilder", "run_graph", "Graph", "Node", "Value", "BufferRef", "ExecutionPlan",
           "KernelCall"]
