"""The generic training loop of the comparison models: losses fall, resumption is exact, errors are clear."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import galwidgets as gw
from galwidgets.training.fitting import Batch, fit


class Offsets(nn.Module):
    """Per-band offset and gain fitted to the images; dropout (global RNG), noise (batch generator)."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.config = {"in_channels": in_channels}
        self.a = nn.Parameter(torch.zeros(in_channels))
        self.b = nn.Parameter(torch.zeros(in_channels))
        self.drop = nn.Dropout(0.05)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.a[:, None, None] + self.b[:, None, None] * x)


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = Offsets()
    optimizers = {"a": torch.optim.Adam([model.a], lr=0.05),
                  "b": torch.optim.SGD([model.b], lr=0.05, momentum=0.9)}

    def step(batch: Batch) -> dict[str, float]:
        noise = 0.01 * torch.randn(batch.x.shape, generator=batch.generator)
        loss = F.mse_loss(model(batch.x + noise), batch.x)
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in optimizers.values():
            opt.step()
        return {"loss": loss.item()}

    return model, step, optimizers


@pytest.fixture()
def registered(monkeypatch):
    monkeypatch.setitem(gw.models.MODELS, "Offsets", Offsets)


def _run(survey, steps, directory=None, **kwargs):
    model, step, optimizers = _setup()
    ckpt = fit(model, step, optimizers, survey, steps, 4, checkpoint_dir=directory, checkpoint_every=2,
               progress=False, device="cpu", **kwargs)
    return model, ckpt


def test_fit_lowers_the_loss_and_returns_a_checkpoint(survey):
    model, ckpt = _run(survey, 40)
    loss = ckpt.history["loss"].to_numpy()
    assert loss[-10:].mean() < 0.5 * loss[:5].mean()
    assert ckpt.model is model and not model.training
    assert ckpt.schedule is None
    assert ckpt.config["step"] == 40 and ckpt.config["training"]["batch_size"] == 4
    assert ckpt.bands == survey.bands and ckpt.size == survey.images.shape[-1]
    assert list(ckpt.history["step"]) == list(range(1, 41))


def test_resume_reproduces_the_uninterrupted_run(survey, tmp_path, registered):
    full, full_ckpt = _run(survey, 6, tmp_path / "full")
    _run(survey, 4, tmp_path / "split")
    resumed, resumed_ckpt = _run(survey, 6, tmp_path / "split")
    for p, q in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    pd.testing.assert_series_equal(full_ckpt.history["loss"], resumed_ckpt.history["loss"])
    log = pd.read_csv(tmp_path / "split" / "train_log.csv")
    assert list(log["step"]) == [1, 2, 3, 4, 5, 6]
    loaded = gw.load_checkpoint(tmp_path / "split" / "step_0000006.safetensors", device="cpu")
    assert torch.equal(loaded.model.a, full.a) and loaded.schedule is None
    assert set(loaded.config["optimizers"]) == {"a", "b"}


def test_resume_false_starts_over_and_keep_last(survey, tmp_path):
    directory = tmp_path / "run"
    _run(survey, 6, directory, keep_last=2)
    assert sorted(p.name for p in directory.glob("step_*.safetensors")) == [
        "step_0000004.safetensors", "step_0000006.safetensors"]
    _, ckpt = _run(survey, 2, directory, resume=False, keep_last=1)
    assert len(ckpt.history) == 2
    assert [p.name for p in directory.glob("step_*.safetensors")] == ["step_0000006.safetensors"]


def test_resume_refuses_other_optimizers(survey, tmp_path):
    _run(survey, 2, tmp_path)
    model, step, optimizers = _setup()
    with pytest.raises(ValueError, match="optimizers"):
        fit(model, step, {"a": optimizers["a"]}, survey, 4, 4, checkpoint_dir=tmp_path, progress=False,
            device="cpu")


def test_batches_carry_catalog_values_and_the_config(survey):
    model, _, optimizers = _setup()
    seen = []

    def step(batch: Batch) -> dict[str, float]:
        seen.append(batch)
        return {}

    ckpt = fit(model, step, optimizers, survey, 3, 5, columns="redshift", augment=False, progress=False,
               device="cpu", config={"training": {"lr": 0.1}, "note": "x"})
    assert [b.step for b in seen] == [0, 1, 2]
    redshifts = survey.catalog["redshift"].to_numpy(np.float32)
    norm = gw.data.AsinhStretch.fit(survey.images)
    x_all = torch.from_numpy(norm.forward(survey.images))
    for b in seen:
        assert b.x.shape == (5, 3, 32, 32) and b.values.shape == (5, 1) and b.values.dtype == torch.float32
        for x, z in zip(b.x, b.values[:, 0], strict=True):
            idx = int(torch.argmin(((x_all - x) ** 2).sum(dim=(1, 2, 3))))
            assert torch.allclose(x_all[idx], x) and redshifts[idx] == z
    assert ckpt.config["training"]["lr"] == 0.1 and ckpt.config["note"] == "x"
    assert ckpt.config["training"]["columns"] == ["redshift"]


def test_bad_arguments_name_the_argument(survey):
    model, step, optimizers = _setup()
    good = {"model": model, "step": step, "optimizers": optimizers, "data": survey, "steps": 2,
            "batch_size": 2}
    cases = [
        ({"steps": 0}, ValueError, "steps"),
        ({"batch_size": "4"}, TypeError, "batch_size"),
        ({"optimizers": {}}, TypeError, "optimizers"),
        ({"optimizers": {"a/b": optimizers["a"]}}, ValueError, "optimizers"),
        ({"model": nn.Linear(2, 2)}, TypeError, "model"),
        ({"step": "not callable"}, TypeError, "step"),
        ({"step": lambda batch: 1.0}, TypeError, "step"),
        ({"columns": "no_such_column"}, ValueError, "columns"),
        ({"columns": 3}, TypeError, "columns"),
        ({"data": survey.images, "columns": "redshift"}, ValueError, "columns"),
        ({"data": survey.images[:, :2]}, ValueError, "data"),
        ({"keep_last": 0}, ValueError, "keep_last"),
        ({"checkpoint_every": 1.5}, TypeError, "checkpoint_every"),
        ({"seed": 0.5}, TypeError, "seed"),
        ({"normalizer": "asinh"}, TypeError, "normalizer"),
    ]
    for change, error, name in cases:
        with pytest.raises(error, match=name):
            fit(**{**good, **change}, progress=False, device="cpu")


def test_fit_streams_a_store_with_catalog_values_and_resumes_exactly(survey, tmp_path, registered):
    store = gw.data.open_store(survey.save(tmp_path / "survey.h5"))
    full, full_ckpt = _run(store, 6, tmp_path / "full", num_workers=2)
    _run(store, 4, tmp_path / "split", num_workers=0)
    resumed, resumed_ckpt = _run(store, 6, tmp_path / "split", num_workers=2)
    for p, q in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    pd.testing.assert_series_equal(full_ckpt.history["loss"], resumed_ckpt.history["loss"])
    assert resumed_ckpt.config["training"]["data_position"]["epoch"] == 1  # 24 galaxies, batches of 4

    model, _, optimizers = _setup()
    seen = []

    def step(batch: Batch) -> dict[str, float]:
        seen.append(batch)
        return {}

    fit(model, step, optimizers, store, 12, 4, columns="redshift", augment=False, progress=False,
        device="cpu", num_workers=0)
    norm = gw.data.AsinhStretch.fit(survey.images)
    x_all = torch.from_numpy(norm.forward(survey.images))
    redshifts = survey.catalog["redshift"].to_numpy(np.float32)
    found = []
    for b in seen:
        for x, z in zip(b.x, b.values[:, 0], strict=True):
            idx = int(torch.argmin(((x_all - x) ** 2).sum(dim=(1, 2, 3))))
            assert torch.allclose(x_all[idx], x) and redshifts[idx] == z
            found.append(idx)
    assert sorted(found[:24]) == list(range(24)) and sorted(found[24:]) == list(range(24))  # two epochs
