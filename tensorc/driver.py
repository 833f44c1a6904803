"""The user entry points of the classic TE flow: lower a schedule, build it into a module."""
from .ir.stmt import PrimFunc
from .transform.pipeline import lower as _lower


def lower(sch, args, name="main", simple_mode=True, dump=None):
    """The lowered function for a schedule (printing it shows the loop program)."""
    return _lower(sch, args, name=name, dump=dump)


def build(sch_or_func, args=None, target="llvm", name="default_function"):
    """Compile a schedule (with its argument tensors) or a lowered PrimFunc into a Module."""
    from .codegen import build_module
    if isinstance(sch_or_func, PrimFunc):
        func = sch_or_func
    else:
        if args is None:
            raise TypeError("build: give the argument tensors, e.g. build(s, [A, B, C])")
        func = _lower(sch_or_func, args, name=name)
    _check_target(func, target)
    return build_module([func], entry=func.name, target=target)


def _check_target(func, target):
    from .ir.functor import post_order_visit
    from .ir.stmt import For
    kind = target.split()[0] if isinstance(target, str) else target
    if kind != "llvm":
        raise ValueError(f"build: unknown target {target!r}; available: 'llvm'")
    bound = []
    post_order_visit(func.body, lambda n: bound.append(n) if isinstance(n, For) and
                     n.kind == "thread_binding" else None)
    if bound:
        raise ValueError(f"build: loop {bound[0].loop_var.name!r} is bound to "
                         f"{bound[0].thread_tag}, which only a GPU target can run; "
                         "build for target='cuda' or remove the bind")
