"""The bands and conditional notebooks, run for real through papermill with tiny parameters.

Each run is checked on its ``metrics.json`` against an independent recomputation from the tables
it wrote, and a second run that reuses the models the first one saved must reproduce its numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import galwidgets as gw
from galwidgets.notebooks import notebook_path

TINY_BANDS = {"size": 32, "n_train": 16, "n_test": 8, "steps": 3, "batch_size": 4, "base_channels": 4,
              "n_blocks": 1, "n_show": 2, "n_hdf": 2, "n_jobs": 1}
TINY_CONDITIONAL = {"checkpoint": "no-such-model", "ddpm_steps": 2, "ddpm_base_channels": 8, "ddpm_T": 20,
                    "vae_steps": 3, "vae_base_channels": 4, "vae_latent_dim": 4, "estimator_steps": 3,
                    "n_train": 16, "batch_size": 4, "size": 32, "n_reference": 24, "n_generated": 20,
                    "redshift_edges": [0, 0.8, 3], "figure4_ranges": [[0, 0.8], [0.8, 3]], "min_per_bin": 5,
                    "sample_steps": 2, "n_show": 3, "n_jobs": 1}
TABLE1_COLUMNS = ["n", "KL isophotal area", "KL ellipticity", "KL Sérsic n", "KL total", "fitting loss",
                  "redshift loss"]
MODELS = ["real", "DDPM", "CVAE"]


def execute(name: str, parameters: dict, output_dir: Path) -> tuple[dict, str]:
    """Run notebook ``name`` on one thread; its metrics and the text it printed."""
    result = gw.run_notebook(name, {"progress": False, **parameters}, output_dir=output_dir, threads=1,
                             progress=False)
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert result.ok and metrics == result.metrics
    for file in metrics["figures"] + metrics["tables"]:
        assert (output_dir / file).stat().st_size > 0, file
    executed = nbformat.read(output_dir / f"{name}.ipynb", as_version=4)
    cells = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in cells)
    printed = "".join(o.get("text", "") for c in cells for o in c.outputs if o.output_type == "stream")
    return metrics, printed


def finite(value) -> bool:
    return value is not None and math.isfinite(value)


@pytest.mark.parametrize("name", ["bands", "conditional"])
def test_papermill_reads_every_parameter(name):
    import papermill as pm

    nb = nbformat.read(notebook_path(name), as_version=4)
    declared = [ln.split(" = ")[0] for ln in nb.cells[1].source.splitlines() if ln.strip()]
    assert list(pm.inspect_notebook(str(notebook_path(name)))) == declared
    assert declared[0] == "output_dir"


# -- bands ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_bands_scores_the_translation_and_reuses_the_translator(tmp_path):
    m, _ = execute("bands", TINY_BANDS, tmp_path / "a")
    assert m["in_bands"] == ["u"] and m["out_bands"] == ["K"] and m["baseline_bands"] == ["u"]
    gain = m["ssim_gain"]
    assert -2 <= gain["q25"] <= gain["median"] <= gain["q75"] <= 2 and 0 <= gain["fraction_positive"] <= 1
    per_galaxy = pd.read_parquet(tmp_path / "a" / "ssim_gain.parquet")
    assert len(per_galaxy) == 8 and {"redshift", "ssim_input", "ssim_output"} <= set(per_galaxy.columns)
    difference = per_galaxy.ssim_output - per_galaxy.ssim_input
    np.testing.assert_allclose(per_galaxy.ssim_gain, difference, atol=1e-6)
    assert gain["median"] == pytest.approx(float(np.nanmedian(per_galaxy.ssim_gain)))
    assert gain["q75"] == pytest.approx(float(np.nanpercentile(per_galaxy.ssim_gain, 75)))
    assert m["flux_ratio"]["median"] == pytest.approx(float(np.nanmedian(per_galaxy.flux_ratio)))
    assert m["flux_ratio"]["radius_pixels"] == 4 and finite(m["flux_ratio"]["median"])

    morphology = pd.read_parquet(tmp_path / "a" / "gini_m20.parquet")
    assert set(morphology.set) == {"input", "output", "output + noise", "target"}
    target = morphology[morphology.set == "target"]
    assert m["gini_median"]["target"] == pytest.approx(target.gini.median())
    assert 0 < m["gini_median"]["target"] < 1 and m["kl_gini_vs_target"]["target"] == 0.0
    assert m["measured"]["target"] == target.gini.notna().sum() > 0

    hdf = m["hdf"]
    assert hdf["n"] == 2 and hdf["channels"] == {"u": "B"} and hdf["comparison_channel"] == "R"
    assert hdf["output_finite"] and hdf["flux_scales"]["u"] > 0
    assert finite(hdf["mock_colour_median_target"]) and finite(hdf["colour_median"])
    translated = gw.data.Survey.load(tmp_path / "a" / "hdf_translated.fits")
    assert translated.bands == ("K",) and translated.images.shape == (2, 1, 32, 32)

    ckpt = gw.load_checkpoint(m["checkpoint"])
    assert isinstance(ckpt.model, gw.models.BandTranslator) and ckpt.model.config["n_blocks"] == 1
    assert m["steps"] == 3 and len(pd.read_parquet(tmp_path / "a" / "train_log.parquet")) == 3

    # the saved translator, reused, scores the same held-out galaxies identically
    again, _ = execute("bands", {**TINY_BANDS, "checkpoint": m["checkpoint"], "n_hdf": 0}, tmp_path / "b")
    assert again["ssim_gain"] == pytest.approx(gain) and again["hdf"] is None
    assert again["n_train"] is None and "training.png" not in again["figures"]


@pytest.mark.slow
def test_bands_from_several_bands_compares_with_the_nearest_input_band(tmp_path):
    params = {**TINY_BANDS, "in_bands": ["FUV", "K"], "out_bands": ["g", "r", "z"], "n_show": 1}
    m, _ = execute("bands", params, tmp_path)
    assert m["baseline_bands"] == ["FUV", "K", "K"]  # g is nearer FUV, r and z nearer K (in log wavelength)
    assert m["hdf"]["channels"] == {"FUV": "B", "K": "R"} and m["hdf"]["comparison_channel"] == "B"
    per_galaxy = pd.read_parquet(tmp_path / "ssim_gain.parquet")
    per_band = per_galaxy[[f"ssim_gain_{b}" for b in "grz"]].mean(axis=1)
    np.testing.assert_allclose(per_galaxy.ssim_gain, per_band, atol=1e-6)


# -- conditional ---------------------------------------------------------------------------------
def nan_equal(a: dict, b: dict) -> bool:
    return all((a[k] is None and b[k] is None) or a[k] == pytest.approx(b[k]) for k in a) and set(a) == set(b)


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory) -> tuple[dict, str, Path]:
    """The conditional notebook at tiny size on hsc-deep, its DDPM trained in it (the model is missing)."""
    out = tmp_path_factory.mktemp("conditional") / "a"
    m, printed = execute("conditional", TINY_CONDITIONAL, out)
    return m, printed, out


def test_conditional_table1_per_redshift_bin_at_the_paper_layout(conditional_run):
    m, printed, out = conditional_run
    assert "NOTE: the conditional DDPM 'no-such-model' is not available" in printed
    assert m["ddpm_trained_here"] and "trained in this notebook (2 steps" in m["ddpm_source"]
    assert m["instrument"] == "hsc-deep" and m["measure_band"] == "i"  # the preset's selection band
    assert m["redshift_edges"] == [0, 0.8, 3] and m["redshift_bins"] == ["0-0.8", "0.8-3"]
    assert m["kl_bins"] == 10 and m["kl_range"] == "pooled"
    assert {"figure4.png", "table1.png"} <= set(m["figures"]) and "table1.md" in m["tables"]

    table1 = pd.read_parquet(out / "table1.parquet")
    assert table1.index.names == ["redshift", "model"] and list(table1.columns) == TABLE1_COLUMNS
    assert list(table1.index) == [(z, model) for z in ("0-0.8", "0.8-3", "all") for model in MODELS]
    assert set(m["table1"]) == {"0-0.8", "0.8-3", "all"} and set(m["table1"]["all"]) == set(MODELS)
    cvae_loss = table1.loc[("all", "CVAE"), "redshift loss"]
    assert m["table1"]["all"]["CVAE"]["redshift_loss"] == pytest.approx(cvae_loss)
    assert m["table1"]["all"]["real"]["n"] == 20 and isinstance(m["table1"]["0-0.8"]["DDPM"]["n"], int)
    markdown = (out / "table1.md").read_text().splitlines()
    assert len(markdown) == 2 + 9 and markdown[0].startswith("| redshift | model | n | KL isophotal area")

    # recomputed from the per-galaxy table the notebook wrote
    galaxies = pd.read_parquet(out / "galaxies.parquet")
    assert galaxies.groupby("set").size().to_dict() == {"truth": 24, "real": 20, "DDPM": 20, "CVAE": 20}
    sets = {name: group.drop(columns=["set", "galaxy"]).reset_index(drop=True)
            for name, group in galaxies.groupby("set")}
    truth = gw.data.simulate_survey(24, size=32, instrument="hsc-deep", seed=12345, progress=False, n_jobs=1)
    np.testing.assert_allclose(sets["truth"].z, truth.catalog.redshift)
    for model in ("DDPM", "CVAE"):  # everyone at the same conditioning redshifts, drawn from the truth
        np.testing.assert_array_equal(sets[model].z, sets["real"].z)
    assert set(sets["real"].z) <= set(sets["truth"].z)
    assert (galaxies.redshift_bin == np.where(galaxies.z < 0.8, "0-0.8", "0.8-3")).all()
    for zbin in ("0-0.8", "0.8-3"):
        for model in MODELS:
            g = sets[model][sets[model].redshift_bin == zbin]
            row = table1.loc[(zbin, model)]
            assert row["n"] == len(g) and row["redshift loss"] == pytest.approx(
                gw.metrics.redshift_loss(g.z_est, g.z))
            np.testing.assert_allclose(row["fitting loss"], g.fit_loss.median())  # NaN when no fit
    real = sets["real"]
    real_loss = gw.metrics.redshift_loss(real.z_est, real.z)
    assert table1.loc[("all", "real"), "redshift loss"] == pytest.approx(real_loss)
    assert table1.loc[("all", "real"), "fitting loss"] == pytest.approx(real.fit_loss.median())
    kl = gw.metrics.galaxy_kl_loss(sets["truth"], real, redshift="z", redshift_bins=[0, 0.8, 3],
                                   min_galaxies=5)
    np.testing.assert_allclose(table1.xs("real", level="model")["KL total"].iloc[:2], kl.total)
    assert finite(kl.attrs["mean"]["total"]) and kl.attrs["mean"]["total"] > 0
    assert table1.loc[("all", "real"), "KL total"] == pytest.approx(kl.attrs["mean"]["total"])
    assert all(len(rows) == 2 for rows in m["kl_per_bin"].values())
    by_range = m["kl_total_by_range"]
    assert set(by_range) == {"pooled", "global", "real"} and set(by_range["real"]) == set(MODELS)
    assert nan_equal(by_range["pooled"], {model: m["table1"]["all"][model]["KL_total"] for model in MODELS})
    strict = gw.metrics.galaxy_kl_loss(sets["truth"], real, redshift="z", redshift_bins=[0, 0.8, 3],
                                       min_galaxies=5, value_range="real")
    assert by_range["real"]["real"] == pytest.approx(strict.attrs["mean"]["total"])

    # the acceptance ratios of the redshift loss
    t = sets["truth"]
    guess = gw.metrics.redshift_loss(np.full(24, np.median(t.z)), t.z)
    assert m["redshift_loss_constant_guess"] == pytest.approx(guess)
    assert m["acceptance"]["estimator_over_constant_guess"] == pytest.approx(
        gw.metrics.redshift_loss(t.z_est, t.z) / guess)
    losses = m["redshift_loss"]
    assert losses["real"] == pytest.approx(real_loss)
    assert m["acceptance"]["ddpm_over_real"] == pytest.approx(losses["DDPM"] / losses["real"])
    ok = t.r_half.notna()
    assert m["size_redshift_spearman"]["truth"] == pytest.approx(spearmanr(t.z[ok], t.r_half[ok]).statistic)
    assert finite(m["truth"]["fitting_loss"]) and 0 < m["median"]["truth"]["fit_loss"] < 1

    ckpts = {name: gw.load_checkpoint(out / f"{name}.safetensors") for name in ("ddpm", "cvae", "estimator")}
    assert ckpts["ddpm"].model.config["cond_dim"] == 1 and ckpts["ddpm"].schedule.T == 20
    assert list(ckpts["ddpm"].bands) == list("grizy") and ckpts["ddpm"].pixel_scale == pytest.approx(0.168)
    assert isinstance(ckpts["cvae"].model, gw.models.ConditionalVAE)
    assert set(ckpts["cvae"].config["redshift_scaling"]) == {"center", "scale"}
    assert isinstance(ckpts["estimator"].model, gw.models.RedshiftEstimator)


def test_conditional_rejects_a_ddpm_of_another_instrument(tmp_path):
    parameters = {**TINY_CONDITIONAL, "checkpoint": "desi-z-tiny", "progress": False}
    result = gw.run_notebook("conditional", parameters, output_dir=tmp_path, threads=1, progress=False,
                             raise_on_error=False)
    assert not result.ok and "instrument: the DDPM 'desi-z-tiny' works on grz images" in str(result.error)


@pytest.mark.slow
def test_conditional_reuses_its_saved_models(conditional_run, tmp_path):
    m, _, out = conditional_run
    # the three saved models, reused, give the same table without training anything
    reuse = {"checkpoint": str(out / "ddpm.safetensors"), "vae_checkpoint": str(out / "cvae.safetensors"),
             "estimator_checkpoint": str(out / "estimator.safetensors")}
    again, printed = execute("conditional", {**TINY_CONDITIONAL, **reuse}, tmp_path / "b")
    assert "NOTE" not in printed and not again["ddpm_trained_here"] and again["n_train"] == 0
    assert not (tmp_path / "b" / "ddpm.safetensors").exists()
    for zbin in m["table1"]:
        for model in MODELS:
            assert nan_equal(again["table1"][zbin][model], m["table1"][zbin][model]), (zbin, model)
