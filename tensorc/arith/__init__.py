"""Arithmetic analysis: canonical integer forms, constant bounds, proofs and simplification.

The lowering uses it to clean index expressions after split/fuse, to drop bounds guards that
always hold and to compute constant extents of regions. Integer expressions are reasoned about
through a canonical sum-of-products form (``linear``) and interval bounds (``int_bounds``);
floating-point ones are only constant-folded exactly.
"""
from .analyzer import Analyzer, can_prove, const_int_bound, simplify

__all__ = ["Analyzer", "simplify", "const_int_bound", "can_prove"]
