"""Shared helpers of the schedule, transform and property tests.

- ``rand``: random inputs that are never zero (so a dropped term or a wrong reduction identity
  shows), with random signs where asked;
- ``poison``: an output buffer no correct run can leave as it is (NaN for floats, the bitwise
  complement of the expected value for integers and bools);
- ``check``: build a schedule, run it on random inputs into poisoned outputs, and compare every
  output with the numpy oracle ``te.evaluate`` and, when given, with a hand-written numpy
  reference.

Test files import it as ``helpers``: each puts tests/ on sys.path first, so the import works
whatever pytest's import mode.
"""
import numpy as np

import tensorc as tc
from tensorc import te

# (rtol, atol) per float dtype for results whose summation order may differ from numpy's.
TOL = {"float16": (2e-2, 2e-2), "float32": (1e-5, 1e-5), "float64": (1e-12, 1e-12)}


def rand(shape, dtype="float32", seed=0, signed=True, lo=0.5, hi=1.5):
    """Random array: floats uniform in [lo, hi) (times a random sign when ``signed``),
    integers in [1, 4] or [1, 9] with random signs, bools half true. Never zero (but bools)."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        top = 4 if dtype.itemsize == 1 else 9
        x = rng.integers(1, top, size=shape, endpoint=True)
        if signed and dtype.kind == "i":
            x = x * rng.choice(np.array([-1, 1]), size=shape)
        return x.astype(dtype)
    x = rng.uniform(lo, hi, size=shape)
    if signed:
        x = x * rng.choice(np.array([-1.0, 1.0]), size=shape)
    return x.astype(dtype)


def poison(expected):
    """A buffer shaped like ``expected`` that differs from it in every element."""
    expected = np.asarray(expected)
    if expected.dtype.kind == "f":
        return np.full(expected.shape, np.nan, expected.dtype)
    return np.ascontiguousarray(~expected)


def assert_close(actual, expected, rtol=None, atol=None, what="output"):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    if expected.dtype.kind == "f":
        r, a = TOL[expected.dtype.name]
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                                   rtol=r if rtol is None else rtol,
                                   atol=a if atol is None else atol, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


def output_tensors(s, args):
    return [a for a in args if s[a].is_output]


def make_inputs(args, outputs, seed=0, signed=True):
    """{placeholder tensor: random array} for every non-output argument."""
    feed = {}
    for k, a in enumerate(args):
        if a not in outputs:
            feed[a] = rand(a.shape, a.dtype, seed=seed + 101 * k, signed=signed)
    return feed


def check(s, args, ref=None, *, inputs=None, rtol=None, atol=None, seed=0, signed=True,
          name="f", ref_rtol=None, ref_atol=None):
    """Build ``s`` over ``args``, run it and compare its outputs with the oracle and ``ref``.

    ``ref(*input_arrays)`` (the inputs in argument order) returns the expected output, or a
    tuple of them for several outputs. ``inputs`` maps placeholders to arrays (default:
    random). Returns (module, {tensor: array}) with the arrays the module was called on.
    """
    outputs = output_tensors(s, args)
    assert outputs, "the argument list holds no output of the schedule"
    feed = make_inputs(args, outputs, seed, signed) if inputs is None else dict(inputs)
    expected = te.evaluate(outputs, feed)
    f = tc.build(s, args, target="llvm", name=name)
    arrays = {}
    for a in args:
        arrays[a] = poison(expected[outputs.index(a)]) if a in outputs else feed[a]
    f(*[arrays[a] for a in args])
    for t, e in zip(outputs, expected):
        assert_close(arrays[t], e, rtol, atol, what=f"{t.name} vs te.evaluate")
    if ref is not None:
        refs = ref(*[feed[a] for a in args if a not in outputs])
        if len(outputs) == 1:
            refs = (refs,)
        for t, r in zip(outputs, refs):
            r = np.asarray(r)
            if r.dtype != arrays[t].dtype:
                r = r.astype(arrays[t].dtype)
            assert_close(arrays[t], r, ref_rtol if ref_rtol is not None else rtol,
                         ref_atol if ref_atol is not None else atol,
                         what=f"{t.name} vs numpy reference")
    return f, arrays


def lower_text(s, args, name="main"):
    return str(tc.lower(s, args, name=name))


# ---------------------------------------------------------------------------- programs

def matmul(M, N, K, dtype="float32", name="C"):
    k = te.reduce_axis((0, K), name="k")
    A = te.placeholder((M, K), dtype=dtype, name="A")
    B = te.placeholder((K, N), dtype=dtype, name="B")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name=name)
    return A, B, C


def elementwise2d(M, N, fn=None, dtype="float32"):
    A = te.placeholder((M, N), dtype=dtype, name="A")
    fn = fn or (lambda x, i, j: x * 2 + 1)
    C = te.compute((M, N), lambda i, j: fn(A[i, j], i, j), name="C")
    return A, C
