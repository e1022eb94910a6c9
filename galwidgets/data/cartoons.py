"""(being written) Procedural cartoon galaxies."""

from __future__ import annotations

__all__ = ["cartoons"]


def cartoons(*args, **kwargs):
    raise NotImplementedError("cartoons is being written")
