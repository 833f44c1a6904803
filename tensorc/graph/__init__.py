"""Model graphs: the graph IR importers produce, its passes, and the compiler to one module."""
from .ir import Graph, Node, Value
from .plan import BufferRef, ExecutionPlan, KernelCall
