"""Tutorials: committed clean, reproduced by their generators, and run top to bottom.

Each tutorial runs through papermill with the small parameters stored in its metadata
(``metadata["galwidgets"]["test_parameters"]``; ``{shared}`` in a string stands for the ``../shared``
folder of real survey data beside the checkout), in a fresh kernel inside a temporary folder.
"""

import subprocess
import sys
from pathlib import Path

import nbformat
import papermill as pm
import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.ipynb"))
BUILD = ROOT / "tutorials" / "_build"


def _cells(path):
    nb = nbformat.read(path, as_version=4)
    return [(c.cell_type, c.source, c.get("metadata", {}).get("tags")) for c in nb.cells], nb.metadata


def test_tutorials_are_committed_without_outputs():
    assert len(TUTORIALS) >= 10
    for path in TUTORIALS:
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata.kernelspec.name == "python3"
        assert all(not c.get("outputs") and c.get("execution_count") is None
                   for c in nb.cells if c.cell_type == "code"), path.name


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_matches_its_generator(path, tmp_path):
    generator = BUILD / f"{path.stem}.py"
    assert generator.is_file(), f"no generator tutorials/_build/{path.stem}.py"
    subprocess.run([sys.executable, str(generator), str(tmp_path / path.name)], check=True, cwd=BUILD)
    assert _cells(tmp_path / path.name) == _cells(path), (
        f"tutorials/{path.name} differs from its generator: run python tutorials/_build/{path.stem}.py")


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_has_goals_exercise_and_gpu_cell(path):
    text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    assert "Learning goals" in text
    assert "Exercise" in text and "<details>" in text
    assert "on a GPU" in text


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_top_to_bottom(path, tmp_path, monkeypatch):
    params = nbformat.read(path, as_version=4).metadata["galwidgets"]["test_parameters"]
    known = pm.inspect_notebook(str(path))
    unknown = set(params) - set(known)
    assert not unknown, f"test parameters not in the parameters cell: {unknown}"
    shared = str(ROOT.parent / "shared")  # real survey data beside the checkout (HSC cutouts), when present
    params = {k: v.format(shared=shared) if isinstance(v, str) else v for k, v in params.items()}
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel's torch: tiny runs gain nothing from threads
    pm.execute_notebook(str(path), str(tmp_path / path.name), parameters=params,
                        kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
