"""Converters of matrix products: MatMul, Gemm (its alpha/beta/trans flags) and Einsum
(ellipses spelled out with free letters, as static shapes allow)."""
import string

from .onnx_registry import converter, rank_of


@converter("MatMul")
def _matmul(ctx, n):
    a, b = n.input(0), n.input(1)
    if rank_of(a) == 1 and rank_of(b) == 1:
        return ctx.emit("sum", [ctx.emit("multiply", [a, b])], axis=0)
    return ctx.emit("matmul", [a, b])


@converter("Gemm")
def _gemm(ctx, n):
    a, b, c = n.input(0), n.input(1), n.input(2)
    attrs = dict(alpha=float(n.attr("alpha", 1.0)), beta=float(n.attr("beta", 1.0)),
                 trans_a=bool(n.attr("transA", 0)), trans_b=bool(n.attr("transB", 0)))
    return ctx.emit("gemm", [a, b] + ([c] if c is not None else []), **attrs)


@converter("Einsum")
def _einsum(ctx, n):
    xs = [v for v in n.inputs if v is not None]
    eq = expand_ellipsis(n, n.attr("equation").replace(" ", ""), [v.shape for v in xs])
    lhs, _, rhs = eq.partition("->")
    subs = lhs.split(",")
    # 0-d operands (empty subscripts) are scalar factors: einsum takes the others
    scalars = [v for v, sub in zip(xs, subs) if sub == ""]
    rest = [(v, sub) for v, sub in zip(xs, subs) if sub != ""]
    if rest:
        y = ctx.emit("einsum", [v for v, _ in rest],
                     subscripts=",".join(sub for _, sub in rest) + "->" + rhs)
    else:
        y = scalars.pop(0)
    for v in scalars:
        y = ctx.emit("multiply", [y, v])
    return y


def expand_ellipsis(n, eq, shapes):
    """Einsum subscripts with '...' replaced by explicit letters (static shapes)."""
    if "..." not in eq:
        return eq
    lhs, arrow, rhs = eq.partition("->")
    ins = lhs.split(",")
    used = set(c for c in eq if c.isalpha())
    free = [c for c in string.ascii_letters if c not in used]
    nell = 0
    for sub, shape in zip(ins, shapes):
        if "..." in sub:
            nell = max(nell, len(shape) - (len(sub) - 3))
    letters = "".join(free[:nell])
    new_ins = []
    for sub, shape in zip(ins, shapes):
        if "..." in sub:
            k = len(shape) - (len(sub) - 3)
            sub = sub.replace("...", letters[nell - k:])
        new_ins.append(sub)
    if arrow:
        rhs = rhs.replace("...", letters)
    else:
        single = sorted(c for c in used if lhs.count(c) == 1)
        rhs = letters + "".join(single)
    return ",".join(new_ins) + "->" + rhs
