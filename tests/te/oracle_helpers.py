"""What the numpy-oracle tests share: random data for them."""
import numpy as np


def rand(shape, dtype="float32", lo=-2.0, hi=2.0, seed=0):
    """Random data without zeros, so a wrong identity or a dropped term shows."""
    rng = np.random.default_rng(seed + sum(shape) * 7919)
    if np.dtype(dtype).kind in "iu":
        x = rng.integers(int(lo), int(hi), size=shape, endpoint=True)
        x[x == 0] = 1
        return x.astype(dtype)
    x = rng.uniform(lo, hi, size=shape)
    x[np.abs(x) < 1e-3] = 0.5
    return x.astype(dtype)
