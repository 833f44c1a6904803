"""Readable text for expressions, statements and functions (the form `tc.lower` prints)."""
from . import expr as E
from . import stmt as S

_BIN = {E.Add: "+", E.Sub: "-", E.Mul: "*", E.Div: "/", E.FloorDiv: "//", E.FloorMod: "%",
        E.EQ: "==", E.NE: "!=", E.LT: "<", E.LE: "<=", E.GT: ">", E.GE: ">=", E.And: "&&",
        E.Or: "||"}
_PREC = {E.Or: 1, E.And: 2, E.EQ: 3, E.NE: 3, E.LT: 3, E.LE: 3, E.GT: 3, E.GE: 3, E.Add: 4,
         E.Sub: 4, E.Mul: 5, E.Div: 5, E.FloorDiv: 5, E.FloorMod: 5}


def expr_str(e, prec=0):
    t = type(e)
    if t in _BIN:
        p = _PREC[t]
        s = f"{expr_str(e.a, p)} {_BIN[t]} {expr_str(e.b, p + 1)}"
        return f"({s})" if p < prec else s
    if t is E.IntImm:
        if e.dtype == "bool":
            return "True" if e.value else "False"
        return str(e.value) if e.dtype in ("int32",) else f"{e.dtype}({e.value})"
    if t is E.FloatImm:
        return f"{e.value!r}f" if e.dtype == "float32" else f"{e.dtype}({e.value!r})"
    if t is E.Var:
        return e.name
    if t is E.IterVar:
        return e.var.name
    if t is E.Min:
        return f"min({expr_str(e.a)}, {expr_str(e.b)})"
    if t is E.Max:
        return f"max({expr_str(e.a)}, {expr_str(e.b)})"
    if t is E.Not:
        return f"!{expr_str(e.a, 9)}"
    if t is E.Select:
        return f"select({expr_str(e.cond)}, {expr_str(e.true_value)}, {expr_str(e.false_value)})"
    if t is E.Cast:
        return f"{e.dtype}({expr_str(e.value)})"
    if t is E.Call:
        return f"{e.name}({', '.join(expr_str(a) for a in e.args)})"
    if t is E.Let:
        return f"(let {e.var.name} = {expr_str(e.value)} in {expr_str(e.body)})"
    if t is E.Ramp:
        return f"ramp({expr_str(e.base)}, {expr_str(e.stride)}, {e.lanes})"
    if t is E.Broadcast:
        return f"x{e.lanes}({expr_str(e.value)})"
    if t is E.Load:
        return f"{e.buffer.name}[{expr_str(e.index)}]"
    if t is E.ProducerLoad:
        return f"{e.producer.name}[{', '.join(expr_str(i) for i in e.indices)}]"
    if t is E.Reduce:
        axes = ", ".join(f"{iv.var.name}:[{expr_str(iv.dom.min)}, {expr_str(iv.dom.extent)})"
                         for iv in e.axis)
        cond = "" if E.IntImm is type(e.condition) and e.condition.value else \
            f", where={expr_str(e.condition)}"
        return f"{e.combiner.name}({expr_str(e.source)}, axis=[{axes}]{cond})"
    return f"<{t.__name__}>"


def _lines(s, ind, out):
    pad = "  " * ind
    t = type(s)
    if t is S.SeqStmt:
        for x in s.seq:
            _lines(x, ind, out)
    elif t is S.For:
        kind = "" if s.kind == "serial" else f"  # {s.kind}"
        if s.thread_tag:
            kind = f"  # bind {s.thread_tag}"
        rng = f"{expr_str(s.extent)}" if E.IntImm is type(s.min) and s.min.value == 0 \
            else f"{expr_str(s.min)}, {expr_str(s.min)} + {expr_str(s.extent)}"
        out.append(f"{pad}for {s.loop_var.name} in range({rng}):{kind}")
        _lines(s.body, ind + 1, out)
    elif t is S.Store:
        out.append(f"{pad}{s.buffer.name}[{expr_str(s.index)}] = {expr_str(s.value)}")
    elif t is S.ProducerStore:
        idx = ", ".join(expr_str(i) for i in s.indices)
        out.append(f"{pad}{s.producer.name}[{idx}] = {expr_str(s.value)}")
    elif t is S.ProducerRealize:
        b = ", ".join(f"{expr_str(r.min)}:{expr_str(r.min)} + {expr_str(r.extent)}"
                      for r in s.bounds)
        out.append(f"{pad}realize {s.producer.name}[{b}] in {s.scope}:")
        _lines(s.body, ind + 1, out)
    elif t is S.Allocate:
        out.append(f"{pad}{s.buffer.name} = allocate({s.dtype}[{s.extent}], {s.scope})")
        _lines(s.body, ind, out)
    elif t is S.IfThenElse:
        out.append(f"{pad}if {expr_str(s.cond)}:")
        _lines(s.then_case, ind + 1, out)
        if s.else_case is not None:
            out.append(f"{pad}else:")
            _lines(s.else_case, ind + 1, out)
    elif t is S.LetStmt:
        out.append(f"{pad}{s.var.name} = {expr_str(s.value)}")
        _lines(s.body, ind, out)
    elif t is S.Evaluate:
        out.append(f"{pad}{expr_str(s.value)}")
    elif t is S.AttrStmt:
        name = getattr(s.node, "name", s.node)
        out.append(f"{pad}# {s.key} {name}" + ("" if s.value is None else f" = {s.value}"))
        _lines(s.body, ind, out)
    elif t is S.Prefetch:
        out.append(f"{pad}prefetch {s.buffer.name}[{expr_str(s.index)}]")
    elif t is S.ThreadAllReduce:
        threads = ", ".join(v.name for v in s.threads)
        out.append(f"{pad}{s.buffer.name}[0] = {s.combiner.name}({expr_str(s.value)}) "
                   f"across threads {threads}")
    else:
        out.append(f"{pad}<{t.__name__}>")


def stmt_str(s, indent=0):
    out = []
    _lines(s, indent, out)
    return "\n".join(out)


def func_str(f):
    params = ", ".join(f"{p.name}: {p.dtype}[{', '.join(map(str, p.shape))}]" for p in f.params)
    return f"def {f.name}({params}):\n{stmt_str(f.body, 1)}"
