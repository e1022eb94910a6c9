"""The papers' recipes (issue 19): their networks, the mock training store, the CPU dry run."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch

import galwidgets as gw
from galwidgets.pretrained import recipes
from galwidgets.pretrained.recipes import RECIPES


@pytest.mark.parametrize(("name", "bands", "size", "millions"),
                         [("smith2022", 3, 256, 61.83), ("li2024", 5, 64, 27.02)])
def test_paper_recipes_build_the_networks_of_the_model_card(name, bands, size, millions):
    recipe = RECIPES[name]
    assert recipe["survey"]["size"] == size and recipe["store"]
    model = gw.models.UNet(in_channels=bands, **recipe["model"])
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(millions, abs=0.01)
    assert f"-m galwidgets.pretrained.recipes {name}" in recipe["torchrun"]
    assert recipe["train"]["batch_size"] % recipe["gpus"] == 0
    table = gw.pretrained.available().set_index("name")
    assert not table.loc[name, "installed"]  # GPU recipes are not shipped


@pytest.fixture()
def tiny_recipe(monkeypatch):
    recipe = copy.deepcopy(RECIPES["li2024"])
    recipe["survey"] = {"n": 12, "size": 32, "instrument": "desi", "seed": 3}
    monkeypatch.setitem(RECIPES, "tiny-store", recipe)
    return "tiny-store"


def test_prepare_store_writes_the_mock_survey_into_a_store_and_reopens_it(tiny_recipe, tmp_path):
    path = tmp_path / "train_survey.h5"
    store = recipes.prepare_store(tiny_recipe, path, progress=False)
    assert len(store) == 12 and store.bands == ("g", "r", "z") and store.size == 32
    memory = gw.data.simulate_survey(12, size=32, seed=3, progress=False)  # the same survey, in memory
    assert (store[:].images == memory.images).all()
    store.close()
    again = recipes.prepare_store(tiny_recipe, path, progress=False)  # complete: nothing written
    assert len(again) == 12
    again.close()
    RECIPES[tiny_recipe]["survey"]["seed"] = 4
    with pytest.raises(ValueError, match=r"workdir: .* holds another survey than recipe 'tiny-store'"):
        recipes.prepare_store(tiny_recipe, path, progress=False)


def test_torchrun_needs_the_store_written_first(tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"workdir: the training store .* missing or incomplete.*--prepare"):
        recipes.build(tiny_recipe, tmp_path, progress=False)


@pytest.mark.slow  # ~30 s on 2 busy cores: a 27 M-parameter U-Net
def test_dry_run_streams_two_steps_and_measures_memory():
    result = recipes.dry_run("li2024", batch_size=1, n_galaxies=4, steps=2)
    assert result["parameters"] == pytest.approx(27.02e6, rel=1e-3)
    assert result["steps"] == 2 and len(result["loss"]) == 2 and result["step_seconds"] > 0
    assert 100 < result["activation_mb_per_image_fp32"] < 400
    assert result["activation_mb_per_image_bf16"] < result["activation_mb_per_image_fp32"]
    assert result["forward_gflop_per_image"] == pytest.approx(18.3, rel=0.05)
    assert result["recipe_batch_per_gpu"] == 64 and result["estimated_gpu_gb_per_rank"] > 1


@pytest.mark.parametrize("name", ["smith2022", "li2024"])
def test_dry_run_command_line_of_each_paper_recipe(name, monkeypatch, capsys):
    """The ``--dry-run`` command end to end (store, streamed steps, printout) at a reduced size: the
    recipe's bands, schedule and conditioning, a small network and 32-px stamps (quick in CI)."""
    recipe = copy.deepcopy(RECIPES[name])
    recipe["survey"]["size"] = 32
    recipe["model"].update(base_channels=8, channel_mults=[1, 2], num_res_blocks=1, attention_levels=[1])
    monkeypatch.setitem(RECIPES, name, recipe)
    recipes.main([name, "--dry-run"])
    out = capsys.readouterr().out
    bands = 3 if name == "smith2022" else 5
    params = sum(p.numel() for p in gw.models.UNet(in_channels=bands, **recipe["model"]).parameters())
    assert f"recipe {name}: {params / 1e6:.2f} M parameters" in out
    assert "activation memory per image:" in out and "(bf16 autocast)" in out
    assert "streamed 2 training steps of batch 2 from a store:" in out
    per_gpu = recipe["train"]["batch_size"] // recipe["gpus"]
    assert f"at the recipe's batch of {per_gpu} per GPU:" in out


def test_module_command_runs_without_runpy_warning():
    """``python -m galwidgets.pretrained.recipes`` (the documented command) must not be imported by its
    package first, which makes runpy warn of "unpredictable behaviour"."""
    import subprocess
    import sys

    command = [sys.executable, "-W", "error::RuntimeWarning", "-m", "galwidgets.pretrained.recipes", "--help"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "RuntimeWarning" not in run.stderr and "smith2022" in run.stdout


def test_an_anneal_phase_continues_the_run_at_its_own_settings(tmp_path, monkeypatch):
    """A recipe with ``"anneal"`` trains to ``train.steps``, then on to ``anneal.steps`` at the lower
    learning rate in the same checkpoint folder; building again resumes and re-exports the same model."""
    recipe = copy.deepcopy(RECIPES["hsc-z-tiny"])
    recipe["survey"] = {"n": 16, "size": 32, "instrument": "hsc-deep", "seed": 3}
    recipe["model"].update(base_channels=8, channel_mults=[1, 2], attention_levels=[])
    recipe["train"].update(steps=3, batch_size=4, warmup_steps=1, checkpoint_every=2)
    recipe["anneal"] = {"steps": 5, "lr": 1e-5, "ema_decay": 0.9}
    del recipe["oversample"]
    monkeypatch.setitem(RECIPES, "tiny-anneal", recipe)
    assert [p["steps"] for p in recipes.training_phases(recipe)] == [3, 5]
    out = recipes.build("tiny-anneal", tmp_path, output=tmp_path / "a.safetensors", progress=False)
    ckpt = gw.load_checkpoint(out)
    assert ckpt.config["step"] == 5 and ckpt.config["training"]["lr"] == 1e-5
    assert ckpt.config["pretrained"]["recipe"]["anneal"]["steps"] == 5
    log = pd.read_csv(tmp_path / "checkpoints" / "train_log.csv")
    assert log["step"].tolist() == [1, 2, 3, 4, 5]
    assert log["lr"].tolist() == pytest.approx([recipe["train"]["lr"]] * 3 + [1e-5] * 2)
    again = gw.load_checkpoint(recipes.build("tiny-anneal", tmp_path, output=tmp_path / "b.safetensors",
                                             progress=False))
    assert again.config["step"] == 5
    for key, value in ckpt.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key])
    recipe["anneal"]["steps"] = 3
    with pytest.raises(ValueError, match="recipe: anneal steps 3 must exceed the train phase's 3"):
        recipes.training_phases(recipe)


def test_an_oversample_phase_trains_on_with_part_of_the_survey_repeated(tmp_path, monkeypatch):
    """``"oversample"`` continues the run at the anneal settings on the survey plus ``factor - 1``
    more copies of the galaxies in the redshift range, with the first phase's normalizer."""
    recipe = copy.deepcopy(RECIPES["hsc-z-tiny"])
    assert [p["steps"] for p in recipes.training_phases(recipe)] == [6000, 11000, 17000]
    recipe["survey"] = {"n": 16, "size": 32, "instrument": "hsc-deep", "seed": 3}
    recipe["model"].update(base_channels=8, channel_mults=[1, 2], attention_levels=[])
    recipe["train"].update(steps=2, batch_size=4, warmup_steps=1, checkpoint_every=2)
    recipe["anneal"] = {"steps": 3, "lr": 1e-5, "ema_decay": 0.9}
    recipe["oversample"] = {"steps": 5, "column": "redshift", "range": [0.0, 1.0], "factor": 3}
    monkeypatch.setitem(RECIPES, "tiny-oversample", recipe)
    phases = recipes.training_phases(recipe)
    assert [p["steps"] for p in phases] == [2, 3, 5] and phases[2]["lr"] == 1e-5
    assert phases[2]["oversample"] == {"column": "redshift", "range": [0.0, 1.0], "factor": 3}
    out = recipes.build("tiny-oversample", tmp_path, output=tmp_path / "a.safetensors", progress=False)
    ckpt = gw.load_checkpoint(out)
    z = gw.data.Survey.load(tmp_path / "train_survey.fits").catalog["redshift"]
    low = int((z < 1.0).sum())
    assert 0 < low < 16
    assert ckpt.config["step"] == 5 and ckpt.config["data"]["n_train"] == 16 + 2 * low
    first = gw.data.AsinhStretch.fit(gw.data.Survey.load(tmp_path / "train_survey.fits").images)
    assert ckpt.normalizer == first  # not refitted to the oversampled set
    log = pd.read_csv(tmp_path / "checkpoints" / "train_log.csv")
    assert log["step"].tolist() == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(("change", "message"), [
    ({"factor": 1}, "factor must be an integer >= 2"),
    ({"range": [0.5, 0.2]}, "range \\[low, high\\) with low < high"),
    ({"steps": 11000}, "oversample steps 11000 must exceed the anneal phase's 11000"),
])
def test_an_oversample_phase_is_checked(change, message):
    recipe = copy.deepcopy(RECIPES["hsc-z-tiny"])
    recipe["oversample"].update(change)
    with pytest.raises(ValueError, match=f"recipe: .*{message}"):
        recipes.training_phases(recipe)


def test_an_oversample_phase_names_a_missing_column_or_an_empty_range(tmp_path, monkeypatch):
    recipe = copy.deepcopy(RECIPES["hsc-z-tiny"])
    recipe["survey"] = {"n": 8, "size": 32, "instrument": "hsc-deep", "seed": 3}
    recipe["model"].update(base_channels=8, channel_mults=[1, 2], attention_levels=[])
    recipe["train"].update(steps=1, batch_size=4, warmup_steps=1)
    recipe["anneal"]["steps"] = 2
    recipe["oversample"].update(steps=3, column="stellar_mass")
    with pytest.raises(ValueError, match="recipe: oversample column 'stellar_mass' is not in the training"):
        recipes.build("x", tmp_path, progress=False, recipe=recipe)
    recipe["oversample"].update(column="redshift", range=[5.0, 6.0])
    with pytest.raises(ValueError, match=r"recipe: no training galaxy has 5.0 <= redshift < 6.0"):
        recipes.build("x", tmp_path, progress=False, recipe=recipe)


def test_with_overrides_changes_a_copy_and_drops_the_anneal_a_shorter_run_would_overshoot():
    with pytest.warns(UserWarning, match=r"overrides: train steps changed.*anneal phase to step 8000"):
        short = recipes.with_overrides("desi-tiny", {"train": {"steps": 20}, "survey": {"n": 64}})
    assert short["train"]["steps"] == 20 and short["survey"]["n"] == 64 and "anneal" not in short
    assert recipes.training_phases(short) == [short["train"]]
    assert RECIPES["desi-tiny"]["train"]["steps"] == 6000 and "anneal" in RECIPES["desi-tiny"]
    kept = recipes.with_overrides("desi-tiny", {"train": {"steps": 20}, "anneal": {"steps": 30}})
    assert [p["steps"] for p in recipes.training_phases(kept)] == [20, 30]
    assert recipes.with_overrides("desi-tiny", {"train": {"lr": 1e-4}})["anneal"]["steps"] == 8000
    with pytest.raises(ValueError, match=r"no section 'optimizer' to change in recipe 'desi-tiny'"):
        recipes.with_overrides("desi-tiny", {"optimizer": {"lr": 1}})
    with pytest.raises(TypeError, match="overrides: expected a dict"):
        recipes.with_overrides("desi-tiny", [("train", {"steps": 2})])
    with pytest.raises(ValueError, match=r"anneal steps 10 must exceed"):
        recipes.with_overrides("desi-tiny", {"train": {"steps": 20}, "anneal": {"steps": 10}})
    with pytest.warns(UserWarning, match=r"anneal steps changed.*oversample phase to step 17000") as record:
        shorter = recipes.with_overrides("hsc-z-tiny", {"anneal": {"steps": 7000}})
    assert len(record) == 1 and [p["steps"] for p in recipes.training_phases(shorter)] == [6000, 7000]


def test_build_takes_a_changed_copy_without_registering_it(tmp_path):
    """``build(name, ..., recipe=with_overrides(...))`` trains the copy and records it under ``name``,
    leaving :data:`RECIPES` alone; a redshift range written as a JSON list reaches the survey."""
    before = copy.deepcopy(RECIPES)
    with pytest.warns(UserWarning, match="(anneal|oversample) phase"):
        spec = recipes.with_overrides("hsc-z-tiny", {
            "survey": {"n": 8, "size": 32, "redshift": [0.5, 0.6]},
            "model": {"base_channels": 8, "channel_mults": [1, 2], "attention_levels": []},
            "train": {"steps": 2, "batch_size": 4, "warmup_steps": 1, "checkpoint_every": 2}})
    out = recipes.build("hsc-z-tiny", tmp_path, output=tmp_path / "m.safetensors", progress=False,
                        recipe=spec)
    assert RECIPES == before
    ckpt = gw.load_checkpoint(out)
    assert ckpt.config["step"] == 2 and ckpt.config["pretrained"]["name"] == "hsc-z-tiny"
    assert ckpt.config["pretrained"]["recipe"]["survey"]["redshift"] == [0.5, 0.6]
    assert ckpt.config["sampling"] == RECIPES["hsc-z-tiny"]["sampling"]
    assert ckpt.default_sampler == ("ddim", 25)
    z = gw.data.Survey.load(tmp_path / "train_survey.fits").catalog["redshift"]
    assert len(z) == 8 and z.between(0.5, 0.6).all()
    default = recipes.build("hsc-z-tiny", tmp_path, progress=False, recipe=spec)  # resumes: nothing to train
    assert default == tmp_path / "hsc-z-tiny.safetensors"  # not over the shipped file
    with pytest.raises(TypeError, match="recipe: expected a recipe dict"):
        recipes.build("hsc-z-tiny", tmp_path, recipe="desi-tiny")
    with pytest.raises(ValueError, match=r"recipe: 'hsc-z-tiny' has no section\(s\) \['train'\]"):
        recipes.build("hsc-z-tiny", tmp_path, recipe={k: v for k, v in spec.items() if k != "train"})
