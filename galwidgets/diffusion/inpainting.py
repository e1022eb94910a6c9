"""(being written) Inpainting with a diffusion prior."""

from __future__ import annotations

__all__ = ["inpaint"]


def inpaint(*args, **kwargs):
    raise NotImplementedError("inpaint is being written")
