"""(being written) Linear forward models of observations."""

from __future__ import annotations

__all__: list[str] = []
