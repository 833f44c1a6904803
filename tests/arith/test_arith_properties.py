"""Property tests: simplification keeps values, bounds contain them, proofs are never wrong.

Random integer expressions over a few variables with random ranges (negative values included)
are evaluated by a small reference evaluator (Python ints, floor division, wrap-around per
dtype) at random points of the ranges. Narrow dtypes (int8, uint8) make wrap-around common, so
the rules' overflow checks are exercised too.
"""
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tensorc.arith import can_prove, const_int_bound, simplify
from tensorc.arith.structural import KeyCache
from tensorc.ir import dtype as dt
from tensorc.ir import expr as E
from tensorc.ir import op

SETTINGS = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def wrap(v, dtype):
    if dtype == "bool":
        return int(bool(v))
    n = dt.bits(dtype)
    v &= (1 << n) - 1
    if dt.is_int(dtype) and v >= 1 << (n - 1):
        v -= 1 << n
    return v


_ARITH = {E.Add: lambda a, b: a + b, E.Sub: lambda a, b: a - b, E.Mul: lambda a, b: a * b,
          E.FloorDiv: lambda a, b: a // b, E.FloorMod: lambda a, b: a % b, E.Min: min,
          E.Max: max, E.EQ: lambda a, b: a == b, E.NE: lambda a, b: a != b,
          E.LT: lambda a, b: a < b, E.LE: lambda a, b: a <= b, E.GT: lambda a, b: a > b,
          E.GE: lambda a, b: a >= b}


def ev(e, env):
    """Value of an integer/bool expression (bools as 0/1)."""
    t = type(e)
    if t is E.IntImm:
        return e.value
    if t is E.Var:
        return env[e]
    if t in _ARITH:
        return wrap(_ARITH[t](ev(e.a, env), ev(e.b, env)), e.dtype)
    if t is E.And:
        return int(bool(ev(e.a, env)) and bool(ev(e.b, env)))
    if t is E.Or:
        return int(bool(ev(e.a, env)) or bool(ev(e.b, env)))
    if t is E.Not:
        return int(not ev(e.a, env))
    if t is E.Select:
        return ev(e.true_value if ev(e.cond, env) else e.false_value, env)
    if t is E.Cast:
        return wrap(ev(e.value, env), e.dtype)
    if t is E.Let:
        return ev(e.body, {**env, e.var: ev(e.value, env)})
    raise TypeError(t)


def const(v, dtype):
    return op.const(wrap(v, dtype), dtype)


@st.composite
def int_expr(draw, vs, dtype, depth):
    if depth == 0 or draw(st.integers(0, 4)) == 0:
        if draw(st.booleans()):
            return draw(st.sampled_from(vs))
        return const(draw(st.integers(-10, 10)), dtype)
    sub = lambda: draw(int_expr(vs, dtype, depth - 1))  # noqa: E731
    kind = draw(st.sampled_from(["add", "sub", "mulc", "mul", "div", "mod", "min", "max",
                                 "select", "divmod", "cast"]))
    if kind == "add":
        return op.add(sub(), sub())
    if kind == "sub":
        return op.sub(sub(), sub())
    if kind == "mulc":
        return op.mul(sub(), const(draw(st.integers(-9, 9)), dtype))
    if kind == "mul":
        return op.mul(sub(), sub())
    c = const(draw(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 16, 32])), dtype)
    if kind == "div":
        return op.floordiv(sub(), c)
    if kind == "mod":
        return op.floormod(sub(), c)
    if kind == "divmod":  # the split/fuse shapes
        a = sub()
        return op.add(op.mul(op.floordiv(a, c), c), op.floormod(a, c))
    if kind == "min":
        return op.minimum(sub(), sub())
    if kind == "max":
        return op.maximum(sub(), sub())
    if kind == "cast":
        other = "int16" if dtype != "int16" else "int8"
        return op.cast(dtype, op.cast(other, sub()))
    return op.select(draw(cond_expr(vs, dtype, depth - 1)), sub(), sub())


@st.composite
def cond_expr(draw, vs, dtype, depth):
    kind = draw(st.sampled_from(["cmp", "cmp", "cmp", "and", "or", "not"]))
    if kind == "cmp" or depth == 0:
        f = draw(st.sampled_from([op.lt, op.le, op.gt, op.ge, op.eq, op.ne]))
        return f(draw(int_expr(vs, dtype, depth)), draw(int_expr(vs, dtype, depth)))
    sub = lambda: draw(cond_expr(vs, dtype, depth - 1))  # noqa: E731
    if kind == "and":
        return op.logical_and(sub(), sub())
    if kind == "or":
        return op.logical_or(sub(), sub())
    return op.logical_not(sub())


@st.composite
def problem(draw, cond=False):
    """(expr, ranges, sample environments)."""
    dtype = draw(st.sampled_from(["int32", "int32", "int32", "int8", "uint8"]))
    n = draw(st.integers(2, 4))
    vs = [E.Var(name, dtype) for name in "abcd"[:n]]
    lo_min = 0 if dt.is_uint(dtype) else -20
    ranges = {}
    for v in vs:
        lo = draw(st.integers(lo_min, 20))
        ranges[v] = (lo, lo + draw(st.integers(0, 25)))
    gen = cond_expr if cond else int_expr
    e = draw(gen(vs, dtype, draw(st.integers(1, 4))))
    rng = random.Random(draw(st.integers(0, 2**32)))
    envs = [{v: lo for v, (lo, _) in ranges.items()}, {v: hi for v, (_, hi) in ranges.items()}]
    envs += [{v: rng.randint(lo, hi) for v, (lo, hi) in ranges.items()} for _ in range(30)]
    return e, ranges, envs


@SETTINGS
@given(problem())
def test_simplify_preserves_values(p):
    e, ranges, envs = p
    s = simplify(e, ranges)
    assert s.dtype == e.dtype
    for env in envs:
        assert ev(s, env) == ev(e, env), (str(e), str(s), env)


@SETTINGS
@given(problem(cond=True))
def test_simplify_preserves_conditions(p):
    e, ranges, envs = p
    s = simplify(e, ranges)
    for env in envs:
        assert ev(s, env) == ev(e, env), (str(e), str(s), env)


@SETTINGS
@given(problem())
def test_bound_contains_every_value(p):
    e, ranges, envs = p
    lo, hi = const_int_bound(e, ranges)
    for env in envs:
        assert lo <= ev(e, env) <= hi, (str(e), (lo, hi), env)


@SETTINGS
@given(problem(cond=True))
def test_can_prove_is_sound(p):
    e, ranges, envs = p
    if can_prove(e, ranges):
        assert all(ev(e, env) for env in envs), str(e)
    if can_prove(op.logical_not(e), ranges):
        assert not any(ev(e, env) for env in envs), str(e)


@SETTINGS
@given(problem())
def test_simplify_is_idempotent(p):
    e, ranges, _ = p
    s = simplify(e, ranges)
    s2 = simplify(s, ranges)
    assert KeyCache().equal(s, s2), (str(e), str(s), str(s2))
