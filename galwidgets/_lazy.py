"""Lazy name tables for packages (PEP 562): ``import galwidgets`` stays fast and light.

A package's ``__init__`` names what the package offers and where each name is defined; the
defining module is imported on first use of the name. Worker processes and command-line calls
thus load only what they need, and an ``__init__`` never imports across floors (see
``docs/architecture.md``): it is a table, not code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["attach"]


def attach(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``__getattr__`` and ``__dir__`` for ``package``.

    ``names`` maps each public name to ``".module"`` (the submodule itself) or
    ``".module:attribute"``; modules are resolved relative to ``package`` (``"..other:name"``
    reaches a sibling package).
    """
    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, _, attribute = target.partition(":")
        found = importlib.import_module(module_name, package)
        return getattr(found, attribute) if attribute else found

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
