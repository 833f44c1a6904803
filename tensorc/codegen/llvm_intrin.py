"""Math intrinsics (``Call`` nodes) lowered to LLVM intrinsics, instructions or libm.

LLVM intrinsics are preferred because they are vector-typed: floor, sqrt and friends become single
vector instructions, and the rest are scalarized to libm by the backend. erf, log1p and expm1 have
no LLVM intrinsic and are called from libm lane by lane. float16 is computed in float32.

float32 vectors of exp, exp2, expm1, log, log2, log1p, tanh, sigmoid and erf (and a few float32
scalars) do not go to libm at all: llvm_vecmath emits them as straight-line vector code.
"""
from . import llvm_vecmath
from .llvm_arith import call_intrinsic, fmod_floor, in_float32
from .llvm_builder import Value, const, element_type, lanes_of

_LLVM_UNARY = {"exp": "exp", "exp2": "exp2", "log": "log", "log2": "log2", "sqrt": "sqrt",
               "floor": "floor", "ceil": "ceil", "round": "roundeven", "trunc": "trunc",
               "fabs": "fabs", "sin": "sin", "cos": "cos", "tanh": "tanh"}
_LIBM_UNARY = ("erf", "log1p", "expm1")
_ARITY = {"pow": 2, "fmod": 2, "fmod_floor": 2}

INTRINSICS = tuple(_LLVM_UNARY) + _LIBM_UNARY + tuple(_ARITY) + ("rsqrt", "sigmoid")


def emit_call(em, e):
    if e.name not in INTRINSICS:
        raise TypeError(f"LLVM codegen: unknown intrinsic {e.name!r}; known: "
                        f"{', '.join(sorted(INTRINSICS))}")
    arity = _ARITY.get(e.name, 1)
    if len(e.args) != arity:
        raise TypeError(f"LLVM codegen: {e.name} takes {arity} argument(s), got {len(e.args)}")
    args = [em.expr(a) for a in e.args]
    if element_type(args[0].ty) not in ("half", "float", "double"):
        raise TypeError(f"LLVM codegen: {e.name} needs floating-point arguments, got {e.dtype}")
    fb = em.fb
    fma = llvm_vecmath.target_has_fma(getattr(em, "target", None))
    return in_float32(fb, lambda *xs: _compute(fb, e.name, xs, em.call_flags, fma), *args)


def _compute(fb, name, xs, flags, fma=False):
    x = xs[0]
    if llvm_vecmath.handles(name, x.ty):
        return llvm_vecmath.emit(fb, name, x, fma)
    if name in _LLVM_UNARY:
        return call_intrinsic(fb, _LLVM_UNARY[name], [x], flags=flags)
    if name in _LIBM_UNARY:
        return _libm_by_lane(fb, name, x)
    arith_flags = flags or "contract"
    one = const(x.ty, 1.0)
    if name == "rsqrt":
        return fb.binop("fdiv", one, call_intrinsic(fb, "sqrt", [x], flags=flags), arith_flags)
    if name == "sigmoid":
        e = call_intrinsic(fb, "exp", [fb.inst(x.ty, f"fneg {x}")], flags=flags)
        return fb.binop("fdiv", one, fb.binop("fadd", one, e, arith_flags), arith_flags)
    if name == "pow":
        return call_intrinsic(fb, "pow", list(xs), flags=flags)
    if name == "fmod":
        return fb.binop("frem", xs[0], xs[1])
    return fmod_floor(fb, xs[0], xs[1])


def _libm_by_lane(fb, name, x):
    elem = element_type(x.ty)
    fname = name + ("f" if elem == "float" else "")
    fb.module.declare(fname, elem, [elem], attrs="nounwind willreturn memory(none)")
    if lanes_of(x.ty) == 1:
        return fb.call(elem, fname, [x])
    out = Value(x.ty, "poison")
    for lane in range(lanes_of(x.ty)):
        out = fb.insert(out, fb.call(elem, fname, [fb.extract(x, lane)]), lane)
    return out
