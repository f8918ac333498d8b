"""Shared guard helpers for the three forms of the primitives (see base.py for the constants)."""

from __future__ import annotations

import numpy as np
import torch

from .base import CLAMP, DIV_EPS


def t_finite(x):
    """Torch: replace NaN by 0 and +-inf by +-CLAMP. Python floats pass through ``finite``."""
    if isinstance(x, torch.Tensor):
        return torch.nan_to_num(x, nan=0.0, posinf=CLAMP, neginf=-CLAMP)
    return float(finite(np.float64(x)))


def finite(x):
    """Numpy twin of ``t_finite``. (Neither call can warn: no ``errstate`` needed, which saved a
    tenth of the search driver's time.)"""
    if np.isfinite(x).all():      # the common case, ~10x cheaper than nan_to_num
        return x
    return np.nan_to_num(x, nan=0.0, posinf=CLAMP, neginf=-CLAMP)


def t_div(x, y):
    """Guarded division on torch: ``x / (y + copysign(DIV_EPS, y))``, made finite."""
    if isinstance(y, torch.Tensor):
        return t_finite(x / (y + torch.copysign(torch.full_like(y, DIV_EPS), y)))
    return t_finite(x / (y + (DIV_EPS if np.copysign(1.0, y) > 0 else -DIV_EPS)))


def np_div(x, y):
    """The numpy form of ``t_div``."""
    with np.errstate(all="ignore"):
        return finite(x / (y + np.copysign(DIV_EPS, y)))


def np_call(fn):
    """Wrap a numpy function so that overflow and domain warnings are silent and results finite."""
    def wrapped(*args):
        with np.errstate(all="ignore"):
            return finite(fn(*args))
    wrapped.__name__ = getattr(fn, "__name__", "np_fn")
    return wrapped


def as_tensor_like(x, ref):
    """A Python float as a tensor on ref's device and dtype (for ops that need two tensors)."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(ref, torch.Tensor):    # a fill on the device: no copy from the host to wait for
        return torch.full((), x, dtype=ref.dtype, device=ref.device)
    return torch.as_tensor(x, dtype=torch.float64)
