"""Unrolling: loops marked "unrolled" with a constant extent become straight-line copies."""
from ..ir import stmt as S
from ..ir.expr import IntImm
from ..ir.functor import IRMutator, substitute
from ..ir.op import const

MAX_UNROLL = 512  # iterations; beyond this the copies cost more in code size than they save


class _Unroll(IRMutator):
    def visit_For(self, f):
        f = self.generic(f)
        if f.kind != "unrolled" or not isinstance(f.extent, IntImm) or \
                f.extent.value > MAX_UNROLL:
            if f.kind == "unrolled":
                return S.For(f.loop_var, f.min, f.extent, "serial", f.body)
            return f
        copies = [substitute(f.body, {f.loop_var: f.min + const(i, f.loop_var.dtype)})
                  for i in range(f.extent.value)]
        return S.seq(*copies) if copies else S.Evaluate(const(0))


def unroll_loops(func):
    return func.with_body(_Unroll().visit(func.body))
