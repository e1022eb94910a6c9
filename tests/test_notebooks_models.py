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
                    "n_bins": 2, "min_per_bin": 5, "sample_steps": 2, "n_show": 3, "n_jobs": 1}
TABLE1_COLUMNS = ["KL isophotal area", "KL ellipticity", "KL Sérsic n", "KL total", "fitting loss",
                  "redshift loss", "Fréchet morphology distance", "Spearman r_half-z"]


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


@pytest.mark.slow
def test_conditional_table1_with_a_fallback_ddpm_and_reused_models(tmp_path):
    m, printed = execute("conditional", TINY_CONDITIONAL, tmp_path / "a")
    assert "NOTE: the conditional DDPM 'no-such-model' is not available" in printed
    assert m["ddpm_trained_here"] and "trained in this notebook (2 steps" in m["ddpm_source"]

    table1 = pd.read_parquet(tmp_path / "a" / "table1.parquet")
    assert list(table1.index) == ["DDPM", "CVAE"] and list(table1.columns) == TABLE1_COLUMNS
    assert set(m["table1"]) == {"DDPM", "CVAE"} and len(m["table1"]["CVAE"]) == len(TABLE1_COLUMNS)
    assert m["table1"]["CVAE"]["redshift_loss"] == pytest.approx(table1.loc["CVAE", "redshift loss"])
    for name in ("truth", "DDPM", "CVAE", "mock at z_cond"):
        assert 0 <= m["redshift_loss"][name] < 1 and -1 <= m["redshift_spearman"][name] <= 1
    assert 0 <= m["redshift_loss_constant_guess"] < 1

    # recomputed from the per-galaxy table the notebook wrote
    galaxies = pd.read_parquet(tmp_path / "a" / "galaxies.parquet")
    counts = {"truth": 24, "DDPM": 20, "CVAE": 20, "mock at z_cond": 20}
    assert galaxies.groupby("set").size().to_dict() == counts
    sets = {name: group.drop(columns=["set", "galaxy"]).reset_index(drop=True)
            for name, group in galaxies.groupby("set")}
    truth = gw.data.simulate_survey(24, size=32, seed=12345, progress=False)
    np.testing.assert_allclose(sets["truth"].z, truth.catalog.redshift)
    np.testing.assert_array_equal(sets["DDPM"].z, sets["CVAE"].z)
    assert set(sets["DDPM"].z) <= set(sets["truth"].z)  # conditioning redshifts drawn from the truth
    ddpm = sets["DDPM"]
    assert m["redshift_loss"]["DDPM"] == pytest.approx(gw.metrics.redshift_loss(ddpm.z_est, ddpm.z))
    ok = sets["truth"].r_half.notna()
    rho = spearmanr(sets["truth"].z[ok], sets["truth"].r_half[ok]).statistic
    assert m["size_redshift_spearman"]["truth"] == pytest.approx(rho)
    kl = gw.metrics.galaxy_kl_loss(sets["truth"], sets["mock at z_cond"], redshift="z", redshift_bins=2,
                                   min_galaxies=5)
    perfect = m["reference"]["perfect_model"]["KL_total"]
    assert finite(perfect) and perfect > 0 and perfect == pytest.approx(kl.attrs["mean"]["total"])
    assert all(len(rows) == 2 for rows in m["kl_per_bin"].values())
    assert finite(m["reference"]["truth"]["fitting_loss"]) and 0 < m["median"]["truth"]["fit_loss"] < 1

    ckpts = {name: gw.load_checkpoint(tmp_path / "a" / f"{name}.safetensors")
             for name in ("ddpm", "cvae", "estimator")}
    assert ckpts["ddpm"].model.config["cond_dim"] == 1 and ckpts["ddpm"].schedule.T == 20
    assert isinstance(ckpts["cvae"].model, gw.models.ConditionalVAE)
    assert set(ckpts["cvae"].config["redshift_scaling"]) == {"center", "scale"}
    assert isinstance(ckpts["estimator"].model, gw.models.RedshiftEstimator)

    # the three saved models, reused, give the same table without training anything
    reuse = {"checkpoint": str(tmp_path / "a" / "ddpm.safetensors"),
             "vae_checkpoint": str(tmp_path / "a" / "cvae.safetensors"),
             "estimator_checkpoint": str(tmp_path / "a" / "estimator.safetensors")}
    again, printed = execute("conditional", {**TINY_CONDITIONAL, **reuse}, tmp_path / "b")
    assert "NOTE" not in printed and not again["ddpm_trained_here"] and again["n_train"] == 0
    assert not (tmp_path / "b" / "ddpm.safetensors").exists()
    for model in ("DDPM", "CVAE"):
        assert nan_equal(again["table1"][model], m["table1"][model]), model
