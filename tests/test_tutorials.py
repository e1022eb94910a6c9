"""Tutorials run top to bottom (through papermill, tiny parameters) and are committed clean."""

from pathlib import Path

import nbformat
import papermill as pm
import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("*.ipynb"))
TINY = {"n_reference": 32, "n_generated": 8, "steps": 10}


def test_tutorials_are_committed_without_outputs():
    assert TUTORIALS
    for path in TUTORIALS:
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata.kernelspec.name == "python3"
        assert all(not c.get("outputs") and c.get("execution_count") is None
                   for c in nb.cells if c.cell_type == "code"), path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_top_to_bottom(path, tmp_path):
    known = pm.inspect_notebook(str(path))
    params = {k: v for k, v in TINY.items() if k in known}
    pm.execute_notebook(str(path), str(tmp_path / path.name), parameters=params,
                        kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
