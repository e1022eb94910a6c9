"""(being written) Diffusion Posterior Sampling."""

from __future__ import annotations

__all__ = ["dps"]


def dps(*args, **kwargs):
    raise NotImplementedError("dps is being written")
