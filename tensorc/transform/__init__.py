"""Lowering passes (functions PrimFunc -> PrimFunc) and the pipeline that runs them."""
from .pipeline import Pass, Sequential, default_passes, lower
