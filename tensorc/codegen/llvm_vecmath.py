"""float32 exp, exp2, expm1, log, log2, log1p, tanh, sigmoid and erf as straight-line LLVM IR.

LLVM has no vector libm here: ``llvm.exp.v8f32`` is split into eight ``expf`` calls. These
versions work on any lane count with plain vector instructions: a range reduction, a minimax
polynomial and a few selects for the special values (Cephes / SLEEF style).

- Accuracy, checked exhaustively over all 2^32 float32 inputs (AVX2 + FMA, denormals included)
  against numpy's float64 result: at most 1 float32 step from that result rounded to float32,
  2 for sigmoid; in ulps of the exact result: exp 0.98, exp2 0.87, expm1 1.39, log 0.87, log2
  1.24, log1p 0.89, tanh 1.33, sigmoid 2.40, erf 0.99. Without FMA the sweeps of
  tests/codegen/test_llvm_vecmath.py give the same step counts.
- Special values as C99 / numpy: NaN in, NaN out; exp overflows to inf and underflows through the
  denormals to 0; log(0) = -inf, log(x < 0) = NaN; tanh and erf reach +-1 and keep the sign of
  zero; sigmoid is 0 at -inf and 1 at +inf (no NaN) and reaches the denormals below -87.
- No fast-math: no instruction here carries fast-math flags whatever the target says, so the
  result does not depend on ``-fast-math``. It does depend on FMA: fused multiply-adds are used
  where the target has them (one rounding per polynomial step), plain multiply and add otherwise
  (the range reductions are exact either way); both stay within the bounds above.
- Coefficients are minimax fits (linear programming on a dense grid of the reduced interval,
  weighted for relative error, rounded to float32 one coefficient at a time with the rest
  refitted).

Which float32 scalars use this code rather than libm is decided by ``SCALAR``: only where it is at
least as accurate as glibc's function. glibc's tanhf reaches 2.12 ulp on the test sweeps (this
tanh 1.33), and the old scalar sigmoid, 1 / (1 + expf(-x)), flushes to 0 below -88.7 where the
result is a denormal; glibc's expf, exp2f, expm1f, logf, log2f, log1pf and erff are within 0.5 to
0.91 ulp, better than these, so scalars keep them. float64 stays on libm.
"""
import contextlib

from .llvm_arith import call_intrinsic
from .llvm_builder import Value, const, element_type, lanes_of, with_element

FUNCTIONS = ("exp", "exp2", "expm1", "log", "log2", "log1p", "tanh", "sigmoid", "erf")
# float32 scalars (one lane) use this code only for these; the rest call libm (see the docstring).
SCALAR = ("sigmoid", "tanh")

_enabled = [True]


@contextlib.contextmanager
def disabled():
    """Within the block, codegen emits the libm-per-lane path (benchmarks and tests compare)."""
    _enabled.append(False)
    try:
        yield
    finally:
        _enabled.pop()


def target_has_fma(target):
    """Whether fused multiply-add is a native instruction of target (None: unknown, assume not)."""
    if target is None:
        return False
    if target.triple.startswith(("aarch64", "arm64")):
        return True
    return target.has_feature("fma") or target.has_feature("fma4")


def handles(name, ty):
    """Whether ``name`` on values of LLVM type ty is emitted here rather than through libm."""
    if not _enabled[-1] or name not in FUNCTIONS or element_type(ty) != "float":
        return False
    return lanes_of(ty) > 1 or name in SCALAR


def emit(fb, name, x, fma):
    """``name``(x) for float or <N x float> x; ``fma``: use fused multiply-add instructions."""
    return _EMITTERS[name](_Math(fb, x.ty, fma), x)


# Float32 constants are given by their bits where exactness matters.
_MAGIC = 12582912.0            # 1.5 * 2^23: x + MAGIC - MAGIC rounds x to an integer (|x| < 2^22)
_MAGIC_BITS = 0x4B400000
_LOG2E = 1.44269504088896341
_LN2_HI = 0.693145751953125    # 15 significant bits: k * LN2_HI is exact for |k| < 512
_LN2_LO = 1.428606765330187045e-06
_LOG2E_HI = float.fromhex("0x1.714p+0")  # log2(e) to 12 bits: f_hi * LOG2E_HI is exact
_LOG_LN2_HI = 0.693359375      # log's split (9 bits: e * LN2_HI exact for every exponent e)
_LOG_LN2_LO = -2.12194440e-4
_SQRT_HALF_BITS = 0x3F3504F3

# e^r = 1 + r + r^2 P(r), |r| <= ln2/2
_EXP_P = (0.5, 0.1666666567325592, 0.04166645556688309, 0.008333569392561913,
          0.001393593498505652, 0.0001974269252968952)
# 2^r = 1 + r P(r), |r| <= 1/2
_EXP2_P = (0.6931471824645996, 0.24022650718688965, 0.055504053831100464, 0.00961808580905199,
           0.0013337518321350217, 0.00015452856314368546, 1.4447135072259698e-05)
# e^r - 1 = r + r^2/2 + r^3 P(r), |r| <= ln2/2
_EXPM1_P = (0.1666666567325592, 0.041666485369205475, 0.008333541452884674,
            0.0013933235313743353, 0.00019766784680541605)
# log(1+f) = f - f^2/2 + f^3 P(f), f in [sqrt(1/2) - 1, sqrt(2) - 1]
_LOG_P = (0.3333331048488617, -0.24999994039535522, 0.20002201199531555, -0.1666865199804306,
          0.14218731224536896, -0.12396169453859329, 0.11885222047567368, -0.11721838265657425,
          0.06802999973297119)
# tanh(x) = x + x^3 P(x^2), |x| < 0.625
_TANH_P = (-0.3333333134651184, 0.13333220779895782, -0.05394817888736725,
           0.021706894040107727, -0.008190013468265533, 0.002152683911845088)
_TANH_SMALL = 0.625
# erf(x) = x + x P(x^2), |x| < 1
_ERF_SMALL_P = (0.12837916612625122, -0.3761262595653534, 0.11283578723669052,
                -0.026853347197175026, 0.005187162198126316, -0.0007997853099368513,
                7.806903886375949e-05)
# log(erfc(a)) = -a^2 + P(a - 2), 1 <= a <= 4
_ERF_LARGE_P = (-1.3649412393569946, -0.41816070675849915, 0.07624855637550354,
                -0.016467835754156113, 0.003569097025319934, -0.0007274705567397177,
                0.00014197611017152667, -2.0087127268197946e-05)
_ERF_CENTER = 2.0
_ERF_ONE = 4.0  # erf(a) rounds to 1 from about 3.92 on


class _Math:
    """Flag-free float and int32 arithmetic on values of one (vector) type."""

    def __init__(self, fb, ty, fma):
        self.fb, self.ty, self.use_fma = fb, ty, fma
        self.ity = with_element(ty, "i32")

    def c(self, v):
        return const(self.ty, v)

    def ci(self, v):
        return const(self.ity, v)

    def add(self, a, b):
        return self.fb.binop("fadd", a, b)

    def sub(self, a, b):
        return self.fb.binop("fsub", a, b)

    def mul(self, a, b):
        return self.fb.binop("fmul", a, b)

    def div(self, a, b):
        return self.fb.binop("fdiv", a, b)

    def fma(self, a, b, c):
        """a * b + c: one rounding with FMA, two without."""
        if self.use_fma:
            return call_intrinsic(self.fb, "fma", [a, b, c])
        return self.add(self.mul(a, b), c)

    def horner(self, x, coeffs):
        """coeffs[0] + coeffs[1] x + ... (Horner's rule)."""
        acc = self.c(coeffs[-1])
        for k in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, self.c(k))
        return acc

    def cmp(self, pred, a, b):
        return self.fb.fcmp(pred, a, b)

    def select(self, cond, a, b):
        return self.fb.select(cond, a, b)

    def clamp(self, x, lo, hi):
        """x limited to [lo, hi]; NaN stays NaN (both comparisons are false)."""
        x = self.select(self.cmp("ogt", x, self.c(hi)), self.c(hi), x)
        return self.select(self.cmp("olt", x, self.c(lo)), self.c(lo), x)

    def fabs(self, x):
        return call_intrinsic(self.fb, "fabs", [x])

    def copysign(self, mag, sign):
        return call_intrinsic(self.fb, "copysign", [mag, sign])

    def bits(self, x):
        return self.fb.convert("bitcast", x, self.ity)

    def from_bits(self, i):
        return self.fb.convert("bitcast", i, self.ty)

    def iop(self, op, a, b):
        return self.fb.binop(op, a, b if isinstance(b, Value) else self.ci(b))

    def to_float(self, i):
        return self.fb.convert("sitofp", i, self.ty)

    def pow2(self, k):
        """2^k for integer k in [-126, 127], built from its exponent field."""
        return self.from_bits(self.iop("shl", self.iop("add", k, 127), 23))

    def scale(self, p, k):
        """p * 2^k for k in [-252, 254], in two exact steps (one rounding only into denormals)."""
        k1 = self.iop("ashr", k, 1)
        return self.mul(self.mul(p, self.pow2(k1)), self.pow2(self.iop("sub", k, k1)))

    def round_log2e(self, x):
        """(k, ki): x / ln2 rounded to an integer, as a float and an int32 (|x| < 2^21)."""
        t = self.add(self.mul(x, self.c(_LOG2E)), self.c(_MAGIC))
        return self.sub(t, self.c(_MAGIC)), self.iop("sub", self.bits(t), _MAGIC_BITS)


def _exp(m, x):
    """e^x: x = k ln2 + r, e^r by a polynomial, scaled by 2^k; |x| clamped so k stays small."""
    x = m.clamp(x, -104.0, 89.0)  # beyond: 0 and inf, which the scaling produces by itself
    k, ki = m.round_log2e(x)
    r = m.fma(k, m.c(-_LN2_HI), x)  # exact
    r = m.fma(k, m.c(-_LN2_LO), r)
    p = m.fma(m.mul(r, r), m.horner(r, _EXP_P), r)
    return m.scale(m.add(p, m.c(1.0)), ki)


def _exp2(m, x):
    x = m.clamp(x, -151.0, 129.0)
    t = m.add(x, m.c(_MAGIC))
    k = m.sub(t, m.c(_MAGIC))
    ki = m.iop("sub", m.bits(t), _MAGIC_BITS)
    r = m.sub(x, k)  # exact
    return m.scale(m.fma(r, m.horner(r, _EXP2_P), m.c(1.0)), ki)


def _expm1(m, x):
    """e^x - 1 = 2^k (expm1(r) + 1 - 2^-k), with r carried as r + c for the cancellation."""
    xc = m.clamp(x, -25.0, 89.0)  # below -25 the result rounds to -1
    k, ki = m.round_log2e(xc)
    r_hi = m.fma(k, m.c(-_LN2_HI), xc)  # exact
    r_lo = m.mul(k, m.c(-_LN2_LO))
    r = m.add(r_hi, r_lo)
    c = m.add(m.sub(r_hi, r), r_lo)  # what rounding r lost
    q = m.fma(r, m.horner(r, _EXPM1_P), m.c(0.5))
    em = m.add(m.fma(m.mul(r, r), q, c), r)  # expm1(r + c), to first order in c
    kc = m.select(m.fb.icmp("sgt", ki, m.ci(30)), m.ci(30), ki)  # 1 - 2^-k is 1 beyond
    one_minus = m.sub(m.c(1.0), m.pow2(m.iop("sub", m.ci(0), kc)))  # exact for |k| <= 24
    y = m.scale(m.add(em, one_minus), ki)
    return m.select(m.cmp("oeq", x, m.c(0.0)), x, y)  # -0 stays -0


def _log_reduce(m, x):
    """(e, f) with x = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt(2)), for positive normal x."""
    ix = m.iop("sub", m.bits(x), _SQRT_HALF_BITS)
    e = m.iop("ashr", ix, 23)
    mant = m.from_bits(m.iop("add", m.iop("and", ix, 0x7FFFFF), _SQRT_HALF_BITS))
    return e, m.sub(mant, m.c(1.0))  # exact


def _log1p_tail(m, f):
    """log(1+f) - f = -f^2/2 + f^3 P(f)."""
    f2 = m.mul(f, f)
    return m.fma(m.c(-0.5), f2, m.mul(m.mul(f2, f), m.horner(f, _LOG_P)))


def _log_specials(m, x, y, zero_at):
    """log-like specials: NaN below ``zero_at`` (and for NaN), -inf at it, +inf at +inf."""
    y = m.select(m.cmp("oeq", x, m.c(float("inf"))), m.c(float("inf")), y)
    y = m.select(m.cmp("oeq", x, m.c(zero_at)), m.c(float("-inf")), y)
    return m.select(m.cmp("ult", x, m.c(zero_at)), m.c(float("nan")), y)


def _log_parts(m, x):
    """(float e, f, tail) with log(x) = e ln2 + f + tail; denormal x are scaled up first."""
    tiny = m.cmp("olt", x, m.c(2.0 ** -126))
    xs = m.select(tiny, m.mul(x, m.c(2.0 ** 23)), x)
    e, f = _log_reduce(m, xs)
    e = m.iop("sub", e, m.select(tiny, m.ci(23), m.ci(0)))
    return m.to_float(e), f, _log1p_tail(m, f)


def _log(m, x):
    ef, f, tail = _log_parts(m, x)
    y = m.add(f, m.fma(ef, m.c(_LOG_LN2_LO), tail))
    return _log_specials(m, x, m.fma(ef, m.c(_LOG_LN2_HI), y), 0.0)


def _log2(m, x):
    ef, f, tail = _log_parts(m, x)
    # log2(x) = e + (f + tail) log2(e), with f * log2(e) split so that only tail's part rounds
    f_hi = m.from_bits(m.iop("and", m.bits(f), -4096))  # 12 significant bits
    f_lo = m.sub(f, f_hi)
    lo = m.fma(f_lo, m.c(_LOG2E), m.mul(tail, m.c(_LOG2E)))
    lo = m.fma(f_hi, m.c(_LOG2E - _LOG2E_HI), lo)
    prod = m.mul(f_hi, m.c(_LOG2E_HI))  # exact
    hi = m.add(ef, prod)
    lo = m.add(lo, m.add(m.sub(ef, hi), prod))  # what hi lost (exact: |prod| < 1 <= |e|)
    return _log_specials(m, x, m.add(hi, lo), 0.0)


def _log1p(m, x):
    """log(u) for u = 1 + x rounded, plus (x - (u - 1)) / u for what the rounding lost."""
    u = m.add(x, m.c(1.0))
    e, f = _log_reduce(m, u)
    ef = m.to_float(e)
    lost = m.div(m.sub(x, m.sub(u, m.c(1.0))), u)
    tail = m.add(_log1p_tail(m, f), m.fma(ef, m.c(_LOG_LN2_LO), lost))
    y = m.fma(ef, m.c(_LOG_LN2_HI), m.add(f, tail))
    y = _log_specials(m, x, y, -1.0)
    return m.select(m.cmp("oeq", x, m.c(0.0)), x, y)  # -0 stays -0


def _tanh(m, x):
    """x + x^3 P(x^2) near 0, else 1 - 2 / (e^2|x| + 1); the sign put back last."""
    a = m.fabs(x)
    z = m.mul(a, a)
    small = m.fma(m.mul(a, z), m.horner(z, _TANH_P), a)
    e = _exp(m, m.add(a, a))
    large = m.sub(m.c(1.0), m.div(m.c(2.0), m.add(e, m.c(1.0))))
    return m.copysign(m.select(m.cmp("olt", a, m.c(_TANH_SMALL)), small, large), x)


def _sigmoid(m, x):
    """1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below: e^-|x| never overflows."""
    e = _exp(m, m.fb.inst(m.ty, f"fneg {m.fabs(x)}"))
    num = m.select(m.cmp("olt", x, m.c(0.0)), e, m.c(1.0))
    return m.div(num, m.add(e, m.c(1.0)))


def _erf(m, x):
    """x + x P(x^2) for |x| < 1; 1 - e^(-a^2 + Q(a)) above, Q fitting log erfc(a) + a^2."""
    a = m.fabs(x)
    small = m.fma(a, m.horner(m.mul(a, a), _ERF_SMALL_P), a)
    ac = m.select(m.cmp("ogt", a, m.c(_ERF_ONE)), m.c(_ERF_ONE), a)
    q = m.horner(m.sub(ac, m.c(_ERF_CENTER)), _ERF_LARGE_P)
    t = m.fma(m.fb.inst(m.ty, f"fneg {ac}"), ac, q)
    large = m.sub(m.c(1.0), _exp(m, t))
    return m.copysign(m.select(m.cmp("olt", a, m.c(1.0)), small, large), x)


_EMITTERS = {"exp": _exp, "exp2": _exp2, "expm1": _expm1, "log": _log, "log2": _log2,
             "log1p": _log1p, "tanh": _tanh, "sigmoid": _sigmoid, "erf": _erf}
