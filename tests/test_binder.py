"""The Binder environment (binder/requirements.txt + the package installed by postBuild) provides
every module the tutorials import, and follows the rules for an offline-friendly CPU hub."""

import ast
import importlib.metadata as metadata
import re
import sys
from pathlib import Path

import nbformat
import pytest

from .test_dependencies import IMPORT_TO_DISTRIBUTION, core_dependencies

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.ipynb"))


def _name(requirement: str) -> str:
    for sep in "<>=!~[; ":
        requirement = requirement.split(sep)[0]
    return requirement.strip().lower().replace("_", "-")


def binder_requirements() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def with_dependencies(names: set[str]) -> set[str]:
    """``names`` and everything they require (unconditional requirements, from the installed metadata)."""
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requires if "extra ==" not in r]
    return seen


def tutorial_imports(path: Path) -> set[str]:
    """Top-level modules imported by the code cells of a notebook (IPython magics skipped)."""
    found = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        source = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_binder_installs_every_module_the_tutorials_import():
    installed = {_name(r) for r in binder_requirements() if not r.startswith("-")} | core_dependencies()
    installed = with_dependencies(installed | {"galwidgets"})  # postBuild installs the package
    assert TUTORIALS
    for path in TUTORIALS:
        third_party = {m for m in tutorial_imports(path) if m not in sys.stdlib_module_names}
        missing = {m for m in third_party
                   if re.sub("[_.]", "-", IMPORT_TO_DISTRIBUTION.get(m, m).lower()) not in installed}
        assert not missing, f"{path.name} imports {sorted(missing)}, which Binder does not install"


def test_binder_takes_torch_from_the_cpu_index_and_does_not_pin_bokeh():
    requirements = binder_requirements()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in requirements
    assert any(_name(r) == "torch" for r in requirements)
    bokeh = [r for r in requirements if _name(r) == "bokeh"]
    assert bokeh == ["bokeh"], f"bokeh must not be pinned: {bokeh}"
    assert {"jupyter-bokeh", "pyviz-comms", "ipywidgets", "jupyterlab"} <= {_name(r) for r in requirements}


def test_postbuild_fails_fast_and_installs_the_package():
    lines = [line.strip() for line in (BINDER / "postBuild").read_text().splitlines()]
    assert lines[0].startswith("#!")
    commands = [line for line in lines if line and not line.startswith("#")]
    assert commands[0] == "set -e"
    assert any(c.startswith("pip install") and c.split()[-1] == "." for c in commands)
    assert (BINDER / "runtime.txt").read_text().strip().startswith("python-3.")


@pytest.mark.parametrize("path", [ROOT / "README.md"])
def test_readme_has_binder_badge_and_hub_section(path):
    text = path.read_text()
    assert "mybinder.org/badge_logo.svg" in text
    assert "JupyterHub" in text
