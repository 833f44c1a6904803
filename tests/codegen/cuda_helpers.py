"""Helpers shared by the CUDA code generator tests."""
import shutil

import numpy as np
import pytest

from tensorc import te
from tensorc.ir.functor import post_order_visit
from tensorc.transform.thread_sync import is_barrier

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
rng = np.random.default_rng(5)


def bind(s, stage, axis, tag):
    s[stage].bind(axis, te.thread_axis(tag))


def random_inputs(args, n_out=1):
    return [rng.standard_normal(t.shape).astype("float32") for t in args[:-n_out]]


def barriers(node):
    """How many __syncthreads a lowered body holds."""
    found = []
    post_order_visit(node, lambda n: found.append(n) if is_barrier(n) else None)
    return len(found)
