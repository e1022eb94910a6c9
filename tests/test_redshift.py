"""Redshift loss (analytic cases), the CNN redshift estimator and the conditional redshift loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import galwidgets as gw
from galwidgets.metrics import conditional_redshift_loss, redshift_loss
from galwidgets.models import RedshiftEstimator, predict_redshift, train_redshift_estimator

TINY = {"in_channels": 3, "base_channels": 8, "n_blocks": 2, "hidden": 16}


def test_redshift_loss_analytic_cases():
    z = np.array([0.05, 0.3, 1.0, 2.5])
    assert redshift_loss(z, z) == 0.0
    # Δz = (z_pred - z_true) / (1 + z_true) = γ costs exactly 1/2, for any z_true and γ
    assert redshift_loss(z + 0.15 * (1 + z), z) == pytest.approx(0.5)
    assert redshift_loss(z - 0.05 * (1 + z), z, gamma=0.05) == pytest.approx(0.5)
    assert redshift_loss([1.3], [1.0]) == pytest.approx(0.5)
    # catastrophic outliers cost almost 1; the loss is bounded
    assert 0.999 < redshift_loss([50.0], [0.1]) < 1
    # the mean over galaxies: Δz = 0, γ, 2γ (cost 4/5), 3γ (cost 9/10)
    dz = np.array([0, 1, 2, 3]) * 0.15
    assert redshift_loss(z + dz * (1 + z), z) == pytest.approx((0 + 0.5 + 0.8 + 0.9) / 4)
    assert gw.metrics.redshift_loss is redshift_loss


def test_redshift_loss_bad_input():
    with pytest.raises(ValueError, match="z_pred"):
        redshift_loss([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="z_true"):
        redshift_loss([0.1], [np.nan])
    with pytest.raises(ValueError, match="z_true"):
        redshift_loss([0.1], [-1.0])
    with pytest.raises(ValueError, match="gamma"):
        redshift_loss([0.1], [0.1], gamma=0)
    with pytest.raises(ValueError, match="z_pred"):
        redshift_loss([], [])


def test_estimator_shapes():
    torch.manual_seed(0)
    model = RedshiftEstimator(**TINY).eval()
    for size in (16, 32, 48):
        x = torch.rand(3, 3, size, size) * 2 - 1
        z = model(x)
        assert z.shape == (3,) and (z >= 0).all()
        torch.testing.assert_close(z, torch.expm1(model.log1p_redshift(x)).clamp(min=0))
    assert model.config == {**TINY, "dropout": 0.0}
    with pytest.raises(ValueError, match="dropout"):
        RedshiftEstimator(dropout=1.0)


def test_training_round_trip_and_prediction(survey, tmp_path):
    torch.manual_seed(0)
    model = RedshiftEstimator(**TINY)
    ckpt = train_redshift_estimator(model, survey, steps=40, batch_size=8, lr=3e-3, warmup_steps=5,
                                    checkpoint_dir=tmp_path, checkpoint_every=40, progress=False,
                                    device="cpu")
    loss = ckpt.history["loss"].to_numpy()
    assert loss[-10:].mean() < loss[:5].mean()
    assert ckpt.history["lr"].iloc[-1] < 3e-3 * 0.01  # cosine decay to ~0
    assert ckpt.config["target"] == {"column": "redshift", "transform": "log1p"}
    loaded = gw.load_checkpoint(tmp_path / "step_0000040.safetensors", device="cpu")
    z_ckpt = predict_redshift(ckpt, survey)
    np.testing.assert_array_equal(z_ckpt, predict_redshift(loaded, survey.images))
    np.testing.assert_allclose(predict_redshift(loaded, survey.images, batch_size=5), z_ckpt, rtol=1e-5)
    assert z_ckpt.shape == (len(survey),) and z_ckpt.dtype == np.float64
    model.train()
    np.testing.assert_array_equal(predict_redshift(model, survey, normalizer=ckpt.normalizer), z_ckpt)
    assert model.training  # left as it was
    # a different normalizer changes the inputs, hence the estimates
    other = gw.data.ClipMinMax(clip=1.0)
    assert not np.array_equal(predict_redshift(ckpt, survey, normalizer=other), z_ckpt)

    z_true = survey.catalog["redshift"].to_numpy()
    expected = redshift_loss(z_ckpt, z_true)
    assert conditional_redshift_loss(survey.images, z_true, ckpt) == pytest.approx(expected)
    assert conditional_redshift_loss(survey, None, loaded) == pytest.approx(expected)
    sampled = gw.data.Survey(images=survey.images, catalog=pd.DataFrame({"cond_0": z_true + 0.1}),
                             bands=survey.bands, pixel_scale=survey.pixel_scale)
    shifted = redshift_loss(z_ckpt, z_true + 0.1)
    assert conditional_redshift_loss(sampled, None, ckpt) == pytest.approx(shifted)


def test_prediction_and_training_errors(survey):
    model = RedshiftEstimator(**TINY)
    with pytest.raises(ValueError, match="normalizer"):
        predict_redshift(model, survey)
    norm = gw.data.AsinhStretch.fit(survey.images)
    with pytest.raises(ValueError, match="images"):
        predict_redshift(model, survey.images[:, :2], normalizer=norm)
    with pytest.raises(TypeError, match="estimator"):
        predict_redshift(gw.models.VAE(image_size=32), survey, normalizer=norm)
    with pytest.raises(ValueError, match="cond_redshift"):
        conditional_redshift_loss(survey.images, None, model, normalizer=norm)
    with pytest.raises(ValueError, match="lr_schedule"):
        train_redshift_estimator(model, survey, steps=1, batch_size=2, lr_schedule="step", progress=False)
    with pytest.raises(TypeError, match="model"):
        train_redshift_estimator(gw.models.VAE(image_size=32), survey, steps=1, batch_size=2, progress=False)
    with pytest.raises(ValueError, match="columns"):
        train_redshift_estimator(model, survey, steps=1, batch_size=2, column="z_spec", progress=False)
