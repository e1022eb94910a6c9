"""The shipped checkpoint and the main job, ``galwidgets demo``."""

import json
import math

import numpy as np
import pytest

import galwidgets as gw
from galwidgets.cli import main


def test_shipped_checkpoint_is_listed_small_and_loads():
    table = gw.pretrained.available()
    row = table.set_index("name").loc["desi-tiny"]
    assert row.installed and row.megabytes < 10
    ckpt = gw.pretrained.load("desi-tiny")
    assert ckpt.bands == ("g", "r", "z") and ckpt.size == 64 and ckpt.pixel_scale == 0.262
    from galwidgets.pretrained.recipes import training_phases

    assert training_phases(ckpt.config["pretrained"]["recipe"])[-1]["steps"] == ckpt.config["step"]
    with pytest.raises(ValueError, match="name: unknown pretrained model 'nope'"):
        gw.pretrained.load("nope")


def test_as_checkpoint_takes_a_checkpoint_a_file_or_a_shipped_name(tmp_path, monkeypatch):
    ckpt = gw.pretrained.load("desi-tiny")
    assert gw.pretrained.as_checkpoint(ckpt) is ckpt
    assert gw.pretrained.as_checkpoint("desi-tiny").config == ckpt.config
    file = tmp_path / "desi-tiny"  # a file wins over the shipped name it shadows
    config = {**ckpt.config, "step": 7}
    gw.checkpoints.save_checkpoint(file, ckpt.model, ckpt.schedule, ckpt.normalizer, config)
    assert gw.pretrained.as_checkpoint(file).config["step"] == 7
    monkeypatch.chdir(tmp_path)
    assert gw.pretrained.as_checkpoint("desi-tiny").config["step"] == 7
    with pytest.raises(ValueError, match=r"model: 'missing.safetensors' is neither a checkpoint file nor an "
                                         r"installed shipped model \(name: unknown pretrained model"):
        gw.pretrained.as_checkpoint("missing.safetensors", "model")
    with pytest.raises(TypeError, match="checkpoint: expected a Checkpoint, a checkpoint file or the name"):
        gw.pretrained.as_checkpoint(3)


def test_shipped_model_draws_galaxy_like_images():
    ckpt = gw.pretrained.load("desi-tiny")
    gen = ckpt.sample(8, steps=20, seed=0, progress=False)
    img = gen.images
    centre = img[:, :, 28:36, 28:36].mean(axis=(2, 3))
    edge = np.concatenate([img[:, :, :8].reshape(8, 3, -1), img[:, :, -8:].reshape(8, 3, -1)], -1)
    assert (centre > 10 * edge.std(axis=-1)).all()  # a bright centred source above the sky noise
    table = gw.metrics.photometry(gen)
    assert (table.flag == 0).mean() >= 0.75
    assert table.mag_r.between(14, 21).mean() >= 0.75  # magnitudes of the training population


@pytest.mark.slow
def test_demo_writes_everything(tmp_path, capsys):
    code = main(["demo", "-o", str(tmp_path), "--n-generated", "16", "--n-reference", "32",
                 "--steps", "10", "-q"])
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert math.isfinite(metrics["sgd"]["total"]) and math.isfinite(metrics["sgd_baseline"]["total"])
    for name in ("evaluate.ipynb", "grid.png", "generated.fits", "reference.fits"):
        assert (tmp_path / name).is_file(), name
    out = capsys.readouterr().out
    assert "split-half" in out and str(tmp_path) in out
