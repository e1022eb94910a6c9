"""The parameterised notebooks, run for real through papermill with tiny parameters."""

import json
import math

import nbformat
import pytest
import torch

import galwidgets as gw
from galwidgets.cli import main, parse_value
from galwidgets.notebooks import available_notebooks, notebook_path


@pytest.fixture(scope="module")
def survey_files(tmp_path_factory, survey):
    root = tmp_path_factory.mktemp("surveys")
    return str(survey[:12].save(root / "a.fits")), str(survey[12:].save(root / "b.fits"))


def test_every_notebook_follows_the_conventions():
    assert "evaluate" in available_notebooks()
    for name in available_notebooks():
        nb = nbformat.read(notebook_path(name), as_version=4)
        assert nb.metadata.kernelspec.name == "python3", name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), name
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name} has outputs"
        lines = [ln for ln in code[0].source.splitlines() if ln.strip()]
        assert lines[0].startswith("output_dir = ")
        assert all("  # " in ln for ln in lines), f"{name}: every parameter needs a comment"


def test_evaluate_notebook_writes_metrics_and_figures(survey_files, tmp_path):
    generated, reference = survey_files
    result = gw.run_notebook("evaluate", {"generated": generated, "reference": reference},
                             output_dir=tmp_path, progress=False)
    assert result.ok
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == result.metrics
    assert set(metrics["sgd"]) == {"g", "r", "z", "g-r", "r-z", "r_half", "total"}
    assert all(math.isfinite(v) and v > 0 for v in metrics["sgd"].values())
    assert math.isfinite(metrics["sgd_baseline"]["total"])
    assert metrics["n_generated"] == 12 and metrics["n_reference"] == 12
    for name in ("grid.png", "distributions.png", "evaluate.ipynb", "photometry_generated.parquet"):
        assert (tmp_path / name).is_file(), name
    executed = nbformat.read(tmp_path / "evaluate.ipynb", as_version=4)
    ran = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in ran)  # every cell ran


def test_evaluate_samples_from_a_checkpoint(tiny_checkpoint, tmp_path):
    result = gw.run_notebook("evaluate", {"checkpoint": str(tiny_checkpoint), "n_generated": 4,
                                          "n_reference": 8, "steps": 2}, output_dir=tmp_path,
                             progress=False)
    assert result.metrics["n_generated"] == 4 and result.metrics["source_generated"] == str(tiny_checkpoint)


def test_evaluate_conditions_on_reference_redshifts_and_checks_memorisation(survey, survey_files, tmp_path):
    from galwidgets.checkpoints import save_checkpoint

    from .conftest import TINY_UNET

    torch.manual_seed(0)
    model = gw.models.UNet(**TINY_UNET, cond_dim=1, cond_center=0.07, cond_scale=0.03)
    config = {"data": {"bands": list(survey.bands), "pixel_scale": survey.pixel_scale,
                       "zeropoint": survey.zeropoint, "size": survey.size}}
    path = save_checkpoint(tmp_path / "cond.safetensors", model, gw.diffusion.NoiseSchedule.linear(100),
                           gw.data.AsinhStretch.fit(survey.images), config)
    result = gw.run_notebook("evaluate", {"checkpoint": str(path), "n_generated": 6, "n_reference": 10,
                                          "steps": 2, "bootstrap": 0, "training": survey_files[0],
                                          "n_training": 5}, output_dir=tmp_path / "run", progress=False)
    metrics = result.metrics
    rho = metrics["size_redshift_spearman"]
    assert set(rho) == {"generated", "reference", "difference"}
    assert rho["difference"] == pytest.approx(rho["generated"] - rho["reference"])
    assert metrics["nearest_neighbours"]["n_training"] == 5
    assert set(metrics["flux_scale"]) == set(survey.bands)
    assert metrics["fid"] is None  # no Inception weights on disk: skipped, not failed
    assert metrics["projection"] in ("PCA", "UMAP")
    for name in ("size_redshift.png", "neighbours.png", "flux_scale.png", "projection.png",
                 "nearest_neighbours.parquet", "flux_scale.parquet"):
        assert (tmp_path / "run" / name).is_file(), name


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vae", "dcgan"])
def test_evaluate_trains_and_scores_a_baseline_generator(model, tmp_path):
    parameters = {"model": model, "n_train": 8, "train_steps": 2, "train_size": 32,
                  "n_generated": 6, "n_reference": 12, "bootstrap": 0}
    result = gw.run_notebook("evaluate", parameters, output_dir=tmp_path, progress=False, threads=1)
    assert result.metrics["model"] == model and result.metrics["n_generated"] == 6
    # two VAE steps already draw measurable blobs; two DCGAN steps draw noise that photometry
    # mostly flags, so only the VAE's SGD is asserted finite
    assert "total" in result.metrics["sgd"] and 0 <= result.metrics["flagged_generated"] <= 6
    if model == "vae":
        assert math.isfinite(result.metrics["sgd"]["total"])
        # the seed fixes the baseline's initial weights too: a second run in a fresh folder agrees
        again = gw.run_notebook("evaluate", parameters, output_dir=tmp_path / "again", progress=False,
                                threads=1)
        assert again.metrics["sgd"] == result.metrics["sgd"]
    assert (tmp_path / "training").is_dir()  # the baseline's checkpoints


def test_cli_run_with_parameters(survey_files, tmp_path, capsys):
    generated, reference = survey_files
    code = main(["run", "evaluate", "-p", "generated", generated, "-p", "reference", reference,
                 "-p", "n_show", "4", "-o", str(tmp_path), "-q"])
    assert code == 0
    printed = capsys.readouterr().out
    assert '"sgd"' in printed and (tmp_path / "metrics.json").is_file()


def test_unknown_notebook_and_parameter_are_named(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"name: unknown notebook 'evaluat'.*evaluate"):
        gw.run_notebook("evaluat", output_dir=tmp_path)
    with pytest.raises(ValueError, match=r"parameters: notebook 'evaluate' has no parameter\(s\) \['nope'\]"):
        gw.run_notebook("evaluate", {"nope": 1}, output_dir=tmp_path)
    assert main(["run", "nonexistent"]) == 2
    assert "unknown notebook 'nonexistent'" in capsys.readouterr().err


def test_failed_cell_is_reported_with_the_notebook_kept(tmp_path):
    with pytest.raises(RuntimeError, match="notebook 'evaluate' failed: FileNotFoundError"):
        gw.run_notebook("evaluate", {"generated": str(tmp_path / "missing.fits")},
                        output_dir=tmp_path, progress=False)
    assert (tmp_path / "evaluate.ipynb").is_file()


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("desi-tiny") == "desi-tiny" and parse_value("[1, 2]") == [1, 2]
