"""Lazy attributes for packages (PEP 562): ``import galwidgets`` stays fast and light.

Submodules pull in torch, GalSim, photutils, Jupyter and more; they are imported on first use of a
name, so worker processes and command-line calls load only what they need.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["attach"]


def attach(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``__getattr__`` and ``__dir__`` for ``package``.

    ``names`` maps each public name to ``".module"`` (the submodule itself) or
    ``".module:attribute"``.
    """

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, _, attribute = target.partition(":")
        module = importlib.import_module(module_name, package)
        return getattr(module, attribute) if attribute else module

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
