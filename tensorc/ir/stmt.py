"""Statement nodes: small immutable records, the loop program that lowering rewrites."""
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from .expr import Expr, Range, Var


class Stmt:
    """Base of all statement nodes; compares by identity."""
    __slots__ = ()

    def __str__(self):
        from .printer import stmt_str
        return stmt_str(self)

    __repr__ = __str__


def _node(cls):
    return dataclass(frozen=True, eq=False, repr=False)(cls)


FOR_KINDS = ("serial", "parallel", "vectorized", "unrolled", "thread_binding")


@_node
class For(Stmt):
    """for loop_var in [min, min + extent): body.

    ``kind`` is one of FOR_KINDS. A "thread_binding" loop is not a loop on the GPU: its variable
    is the hardware index named by ``thread_tag`` and its extent becomes a launch dimension.
    """
    loop_var: Var
    min: Expr
    extent: Expr
    kind: str
    body: Stmt
    thread_tag: str = ""


@_node
class Store(Stmt):
    """buffer[index] = value on a flat buffer; index and value may be vectors."""
    buffer: Var
    value: Expr
    index: Expr


@_node
class ProducerStore(Stmt):
    """tensor[indices] = value before storage flattening."""
    producer: Any
    value: Expr
    indices: Tuple[Expr, ...]


@_node
class ProducerRealize(Stmt):
    """Storage for the region ``bounds`` of ``producer`` is live inside body.

    Indices into the tensor inside body are absolute; flattening subtracts each bound's min.
    """
    producer: Any
    bounds: Tuple[Range, ...]
    body: Stmt
    scope: str = "global"


@_node
class Allocate(Stmt):
    """A flat buffer of ``extent`` elements of dtype, addressed through ``buffer``, live in body."""
    buffer: Var
    dtype: str
    extent: int
    body: Stmt
    scope: str = "global"


@_node
class IfThenElse(Stmt):
    """if cond: then_case else: else_case (else_case may be None)."""
    cond: Expr
    then_case: Stmt
    else_case: Optional[Stmt] = None


@_node
class SeqStmt(Stmt):
    """Statements run one after another."""
    seq: Tuple[Stmt, ...]


@_node
class LetStmt(Stmt):
    """Binds var to value in body."""
    var: Var
    value: Expr
    body: Stmt


@_node
class Evaluate(Stmt):
    """Evaluates an expression for its effect (a no-op for pure expressions)."""
    value: Expr


@_node
class AttrStmt(Stmt):
    """Annotation ``key`` = value on ``node`` for the statements in body (e.g. "produce")."""
    node: Any
    key: str
    value: Any
    body: Stmt


@_node
class Prefetch(Stmt):
    """A hint that the cache line holding ``buffer[index]`` (elements of ``dtype``) will be
    read soon. It never faults, even past the buffer's end, and never changes a result; the
    CPU backend emits llvm.prefetch. Made by transform/inject_prefetch.py from
    ``Stage.prefetch``."""
    buffer: Var
    dtype: str
    index: Expr


@_node
class ThreadAllReduce(Stmt):
    """Every thread of the loops ``threads`` (variables of enclosing loops bound to threadIdx)
    contributes its ``value``; each of them gets all the values combined with ``combiner``
    (a CommReducer) in ``buffer[0]``, a one-element "local" buffer.

    This is how a reduction whose axis is bound to a thread index (TVM's rfactor + bind
    pattern) is written before a GPU target lowers it (transform/lower_allreduce.py) into warp
    shuffles and, across warps, a shared-memory tree with barriers, so every thread of the
    block must reach it.
    """
    combiner: Any
    value: Expr
    buffer: Var
    threads: Tuple[Var, ...]


def seq(*stmts):
    """Sequence of the given statements, flattening nested sequences and dropping None."""
    out = []
    for s in stmts:
        if s is None:
            continue
        if isinstance(s, SeqStmt):
            out.extend(s.seq)
        else:
            out.append(s)
    if len(out) == 1:
        return out[0]
    return SeqStmt(tuple(out))


@dataclass(frozen=True, eq=False)
class BufferDecl:
    """A function argument buffer: name, shape and element dtype behind the pointer ``data``."""
    name: str
    shape: Tuple[int, ...]
    dtype: str
    data: Var


@dataclass(frozen=True, eq=False)
class PrimFunc:
    """A lowered function: its argument buffers in call order and its body."""
    name: str
    params: Tuple[BufferDecl, ...]
    body: Stmt
    attrs: Tuple[Tuple[str, Any], ...] = ()

    def with_body(self, body):
        if body is self.body:
            return self
        return PrimFunc(self.name, self.params, body, self.attrs)

    def __str__(self):
        from .printer import func_str
        return func_str(self)

    __repr__ = __str__
