"""The IR: expression and statement nodes, typed constructors, traversal and printing."""
from . import dtype
from .expr import *  # noqa: F401,F403
from .expr import Expr, IterVar, Range, Var
from .functor import IRMutator, IRVisitor, free_vars, post_order_visit, substitute
from .op import cast, const, convert
from .stmt import *  # noqa: F401,F403
from .stmt import PrimFunc, Stmt, seq
