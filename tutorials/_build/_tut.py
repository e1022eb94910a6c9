"""Shared helpers of the tutorial generators in this folder.

Each tutorial of ``tutorials/`` is written by one small script here (reviewed and diffed as Python),
reusing the cell helpers of ``notebooks/_build/_nb.py``. Regenerate one with

    python tutorials/_build/01_forward_process.py          # writes tutorials/01_forward_process.ipynb

A tutorial stores the small parameters the test suite runs it with in its metadata
(``metadata["galwidgets"]["test_parameters"]``); ``tests/test_tutorials.py`` executes every
tutorial with them and checks that the committed tutorials match their generators.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

TUTORIALS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TUTORIALS.parent / "notebooks" / "_build"))

from _nb import KERNELSPEC, code, md, parameters  # noqa: E402

__all__ = ["code", "md", "parameters", "exercise", "write"]


def exercise(question: str, solution: str) -> nbf.NotebookNode:
    """A markdown cell with an exercise and its solution folded in a ``<details>`` block."""
    return md(f"### Exercise\n{question}\n\n<details><summary>Solution (click to reveal)</summary>\n\n"
              f"{solution}\n</details>")


def write(name: str, cells: list, test_parameters: dict, argv: list[str] | None = None) -> Path:
    """Write ``cells`` as ``tutorials/<name>.ipynb`` (or the path in ``argv``).

    ``test_parameters`` are the papermill parameters the test suite runs the tutorial with (small
    sizes that keep every cell's code path). Cell ids are ``<name>-<index>``, so regenerating an
    unchanged tutorial gives an identical file.
    """
    nb = nbf.v4.new_notebook()
    for i, cell in enumerate(cells):
        cell["id"] = f"t{name[:2]}-{i:02d}"
    nb.cells = cells
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"},
                   "galwidgets": {"test_parameters": test_parameters}}
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else TUTORIALS / f"{name}.ipynb"
    nbf.validate(nb)
    nbf.write(nb, path)
    return path
