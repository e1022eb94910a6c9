"""Shared helpers of the notebook generators in this folder.

Each parameterised notebook of ``notebooks/`` is written by one small script here, so that the
notebooks can be reviewed (and diffed) as Python code. Regenerate one with

    python notebooks/_build/train.py                 # writes notebooks/train.ipynb
    python notebooks/_build/train.py /tmp/x.ipynb    # or anywhere else

``tests/test_notebooks_guided.py`` checks that the committed notebooks match their generators.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

NOTEBOOKS = Path(__file__).resolve().parents[1]
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def md(source: str) -> nbf.NotebookNode:
    """A markdown cell."""
    return nbf.v4.new_markdown_cell(source)


def code(source: str) -> nbf.NotebookNode:
    """A code cell (committed without outputs)."""
    return nbf.v4.new_code_cell(source)


def parameters(source: str) -> nbf.NotebookNode:
    """The first code cell, tagged ``parameters`` for papermill: one ``name = default  # comment`` a line."""
    return nbf.v4.new_code_cell(source, metadata={"tags": ["parameters"]})


def write(name: str, cells: list, argv: list[str] | None = None) -> Path:
    """Write ``cells`` as notebook ``name`` (to ``notebooks/<name>.ipynb`` or the path in ``argv``).

    Cell ids are ``<name>-<index>`` rather than random, so regenerating an unchanged notebook
    gives an identical file.
    """
    nb = nbf.v4.new_notebook()
    for i, cell in enumerate(cells):
        cell["id"] = f"{name}-{i:02d}"
    nb.cells = cells
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else NOTEBOOKS / f"{name}.ipynb"
    nbf.validate(nb)
    nbf.write(nb, path)
    return path
