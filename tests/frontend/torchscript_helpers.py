"""What the TorchScript importer tests share: converting a module by trace or script,
importing it with the example's shapes and dtypes, and comparing outputs with torch eager
(relative L2 error for floats, exact for integers and bools, dtypes and shapes equal).
"""
import numpy as np
import torch

from frontend_importers import from_torchscript

TOL = 1e-4


def rel_l2(got, want):
    want = np.asarray(want, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def shapes_dtypes(ins):
    return [tuple(i.shape) for i in ins], [str(i.dtype).replace("torch.", "") for i in ins]


def convert(module, mode, ins):
    if mode == "trace":
        return torch.jit.trace(module, ins, check_trace=False)
    return torch.jit.script(module)


def import_module(module, mode, ins):
    shapes, dtypes = shapes_dtypes(ins)
    return from_torchscript(convert(module, mode, ins), shapes, dtypes)


def as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def check_outputs(got, want, tol=TOL):
    want = [w.detach().numpy() for w in as_tuple(want)]
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"output {k}: shape {g.shape} != {w.shape}"
        assert g.dtype == w.dtype, f"output {k}: dtype {g.dtype} != {w.dtype}"
        if w.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w, err_msg=f"output {k}")
        else:
            err = rel_l2(g, w)
            assert err < tol, f"output {k}: relative L2 error {err:.3g}"
