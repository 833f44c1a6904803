"""The tensor-expression language: describe what to compute, not how (TVM's classic TE API)."""
from ..ir.expr import IterVar, Var
from ..ir.op import cast, const
from ..schedule.schedule import Schedule, create_schedule
from .oracle import evaluate
from .intrin import (abs, all, any, ceil, cos, erf, exp, exp2, expm1, floor, fmod,  # noqa: A004
                     if_then_else, log, log1p, log2, max_value, min_value, pow, power, round,
                     rsqrt, sigmoid, sin, sqrt, tanh, trunc)
from .operation import (comm_reducer, compute, max, min, placeholder, prod,  # noqa: A004
                        reduce_axis, sum, thread_axis, var)
from .tensor import ComputeOp, Operation, PlaceholderOp, Tensor

__all__ = ["IterVar", "Var", "cast", "const", "Schedule", "create_schedule", "evaluate", "abs",
           "all", "any", "ceil", "cos", "erf", "exp", "exp2", "expm1", "floor", "fmod",
           "if_then_else", "log", "log1p", "log2", "max_value", "min_value", "pow", "power",
           "round", "rsqrt", "sigmoid", "sin", "sqrt", "tanh", "trunc", "comm_reducer",
           "compute", "max", "min", "placeholder", "prod", "reduce_axis", "sum", "thread_axis",
           "var", "ComputeOp", "Operation", "PlaceholderOp", "Tensor"]
