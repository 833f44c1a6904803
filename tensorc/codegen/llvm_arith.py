"""Arithmetic on LLVM values with the IR's value semantics (docs/semantics.md).

Everything here works on scalars and vectors alike, so the expression emitter never has to
scalarize arithmetic. Integer division is guarded rather than trapping: a zero or -1 divisor the
compiler cannot see would otherwise raise SIGFPE and take the Python process with it.
"""
from ..ir import dtype as dt
from ..ir import expr as E
from .llvm_builder import (Value, const, element_type, intrinsic_suffix, llvm_type,
                           scalar_type, with_element, zero)

_FLOAT_OPS = {E.Add: "fadd", E.Sub: "fsub", E.Mul: "fmul", E.Div: "fdiv"}
_INT_OPS = {E.Add: "add", E.Sub: "sub", E.Mul: "mul"}
_FCMP = {E.EQ: "oeq", E.NE: "une", E.LT: "olt", E.LE: "ole", E.GT: "ogt", E.GE: "oge"}
_SCMP = {E.EQ: "eq", E.NE: "ne", E.LT: "slt", E.LE: "sle", E.GT: "sgt", E.GE: "sge"}
_UCMP = {E.EQ: "eq", E.NE: "ne", E.LT: "ult", E.LE: "ule", E.GT: "ugt", E.GE: "uge"}


def call_intrinsic(fb, base, args, ret=None, flags="", overloads=None):
    """Call ``llvm.<base>.<suffixes>``; the suffixes default to the first argument's type."""
    ret = ret or args[0].ty
    types = overloads or [args[0].ty]
    name = f"llvm.{base}." + ".".join(intrinsic_suffix(t) for t in types)
    fb.module.declare(name, ret, [a.ty for a in args])
    return fb.call(ret, name, args, flags)


def in_float32(fb, fn, *values):
    """Apply fn with float16 operands widened to float32 and a float result rounded back.

    This is the per-operation float16 rule of the semantics page (and what numpy does).
    """
    if element_type(values[0].ty) != "half":
        return fn(*values)
    wide = [fb.convert("fpext", v, with_element(v.ty, "float")) for v in values]
    result = fn(*wide)
    if element_type(result.ty) == "float":
        result = fb.convert("fptrunc", result, with_element(result.ty, "half"))
    return result


def binary(fb, cls, dtype, a, b, fflags, b_const=None):
    """a <cls> b for operands of ``dtype``; ``b_const`` is b's value when it is a known constant."""
    if cls in _FCMP:
        return compare(fb, cls, dtype, a, b, fflags)
    if dt.is_float(dtype):
        return in_float32(fb, lambda x, y: _float_binary(fb, cls, x, y, fflags), a, b)
    if dt.is_bool(dtype):
        ops = {E.And: "and", E.Or: "or", E.Min: "and", E.Max: "or"}
        if cls not in ops:
            raise TypeError(f"LLVM codegen: {cls.__name__} is not defined on bool operands")
        return fb.binop(ops[cls], a, b)
    if cls in _INT_OPS:
        return fb.binop(_INT_OPS[cls], a, b)
    signed = dt.is_int(dtype)
    if cls in (E.Min, E.Max):
        name = ("s" if signed else "u") + ("min" if cls is E.Min else "max")
        return call_intrinsic(fb, name, [a, b])
    if cls in (E.Div, E.FloorDiv, E.FloorMod):
        return int_floor_divmod(fb, a, b, signed, cls is E.FloorMod, b_const)
    raise TypeError(f"LLVM codegen: {cls.__name__} is not defined on {dtype} operands")


def _float_binary(fb, cls, a, b, fflags):
    if cls in _FLOAT_OPS:
        return fb.binop(_FLOAT_OPS[cls], a, b, fflags)
    if cls in (E.Min, E.Max):
        return call_intrinsic(fb, "minimum" if cls is E.Min else "maximum", [a, b])
    if cls is E.FloorDiv:
        return call_intrinsic(fb, "floor", [fb.binop("fdiv", a, b, fflags)])
    if cls is E.FloorMod:
        return fmod_floor(fb, a, b)
    raise TypeError(f"LLVM codegen: {cls.__name__} is not defined on floating-point operands")


def compare(fb, cls, dtype, a, b, fflags=""):
    if dt.is_float(dtype):
        return fb.fcmp(_FCMP[cls], a, b, fflags if fflags == "fast" else "")
    table = _SCMP if dt.is_int(dtype) else _UCMP
    return fb.icmp(table[cls], a, b)


def int_floor_divmod(fb, a, b, signed, want_mod, b_const):
    """Floor division / modulo (Python semantics) from LLVM's truncating sdiv/srem.

    A divisor that is not a constant other than 0 and -1 is made safe first: 0 (undefined by the
    semantics) must not trap, and INT_MIN / -1 must wrap as numpy does instead of trapping.
    """
    guarded = b_const is None or b_const == 0 or (signed and b_const == -1)
    is_neg1 = None
    if guarded:
        bad = fb.icmp("eq", b, zero(b.ty))
        if signed:
            is_neg1 = fb.icmp("eq", b, const(b.ty, -1))
            bad = fb.binop("or", bad, is_neg1)
        b = fb.select(bad, const(b.ty, 1), b)
    if not signed:
        return fb.binop("urem" if want_mod else "udiv", a, b)
    r = fb.binop("srem", a, b)
    # The truncated result is one off when the remainder is nonzero and its sign differs from b's.
    nonzero = fb.icmp("ne", r, zero(r.ty))
    signs_differ = fb.icmp("slt", fb.binop("xor", r, b), zero(r.ty))
    fix = fb.binop("and", nonzero, signs_differ)
    if want_mod:
        return fb.binop("add", r, fb.select(fix, b, zero(b.ty)))
    q = fb.binop("sub", fb.binop("sdiv", a, b), fb.convert("zext", fix, a.ty))
    if is_neg1 is not None:
        q = fb.select(is_neg1, fb.binop("sub", zero(a.ty), a), q)
    return q


def fmod_floor(fb, a, b):
    """Python's float ``a % b``: fmod with the sign moved to the divisor's, ``-0.0/+0.0`` by b."""
    r = fb.binop("frem", a, b)
    z = zero(r.ty)
    fix = fb.binop("and", fb.fcmp("one", r, z),
                   fb.binop("xor", fb.fcmp("olt", r, z), fb.fcmp("olt", b, z)))
    adjusted = fb.select(fix, fb.binop("fadd", r, b), r)
    signed_zero = call_intrinsic(fb, "copysign", [r, b])
    return fb.select(fb.fcmp("oeq", r, z), signed_zero, adjusted)


def cast(fb, v, src, dst):
    """Convert v from dtype src to dtype dst: C conversions, except float -> int saturates."""
    if src == dst:
        return v
    ty = llvm_type(dst)
    if dt.element_of(src) == "handle" or dt.element_of(dst) == "handle":
        raise TypeError(f"LLVM codegen: cannot cast {src} to {dst}")
    if dt.is_bool(dst):
        if dt.is_float(src):
            return fb.fcmp("une", v, zero(v.ty))
        return fb.icmp("ne", v, zero(v.ty))
    if dt.is_bool(src):
        return fb.convert("uitofp" if dt.is_float(dst) else "zext", v, ty)
    if dt.is_float(src) and dt.is_float(dst):
        return fb.convert("fpext" if dt.bits(dst) > dt.bits(src) else "fptrunc", v, ty)
    if dt.is_float(dst):
        return fb.convert("sitofp" if dt.is_int(src) else "uitofp", v, ty)
    if dt.is_float(src):
        if dt.element_of(src) == "float16":
            v = fb.convert("fpext", v, with_element(v.ty, "float"))
        op = "fptosi.sat" if dt.is_int(dst) else "fptoui.sat"
        return call_intrinsic(fb, op, [v], ret=ty, overloads=[ty, v.ty])
    sbits, dbits = dt.bits(src), dt.bits(dst)
    if dbits < sbits:
        return fb.convert("trunc", v, ty)
    if dbits > sbits:
        return fb.convert("sext" if dt.is_int(src) else "zext", v, ty)
    return Value(ty, v.ref)


def to_i64(fb, v, dtype):
    """Widen an index to i64 for address arithmetic (sign-extending signed indices)."""
    target = with_element(v.ty, "i64")
    if scalar_type(dtype) == "i64":
        return v
    return fb.convert("sext" if dt.is_int(dtype) else "zext", v, target)
