"""(being written) Domain transfer: SDEdit."""

from __future__ import annotations

__all__ = ["sdedit"]


def sdedit(*args, **kwargs):
    raise NotImplementedError("sdedit is being written")
