"""A conditional model records the range of conditions it learnt from and warns beyond it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import galwidgets as gw
from galwidgets.checkpoints import ExtrapolationWarning, trained_condition_range, warn_if_extrapolating

from .conftest import TINY_UNET


@pytest.fixture(scope="module")
def trained(survey, tmp_path_factory):
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("zcond")
    model = gw.models.UNet(**TINY_UNET, cond_dim=1)
    ckpt = gw.train(model, gw.diffusion.NoiseSchedule.linear(50), survey, steps=2, batch_size=4,
                    cond="redshift", checkpoint_dir=directory, checkpoint_every=2, progress=False)
    return ckpt, directory


@pytest.fixture(scope="module")
def conditional(trained):
    return trained[0]


def test_training_records_the_condition_range(trained, survey):
    ckpt, directory = trained
    z = survey.catalog["redshift"]
    assert trained_condition_range(ckpt.config) == [[pytest.approx(z.min()), pytest.approx(z.max())]]
    saved = gw.load_checkpoint(sorted(directory.glob("step_*.safetensors"))[-1], device="cpu")
    assert trained_condition_range(saved.config) == trained_condition_range(ckpt.config)


def test_warns_only_outside_the_trained_range(conditional):
    (low, high), = trained_condition_range(conditional.config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_extrapolating(conditional.config, np.array([low, (low + high) / 2, high]))
    with pytest.warns(ExtrapolationWarning, match=r"cond: 1 of 2 redshift values \(.*\) lie outside"):
        warn_if_extrapolating(conditional.config, np.array([low, high + 1.0]))


def test_unrecorded_range_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_extrapolating({"cond": {"columns": ["redshift"], "dim": 1}}, np.array([99.0]))


def test_sampling_beyond_the_trained_range_warns(conditional):
    (low, high), = trained_condition_range(conditional.config)
    with pytest.warns(ExtrapolationWarning, match=r"cond: 1 of 2 redshift values .* lie outside") as record:
        survey = conditional.sample(2, sampler="ddim", steps=2, cond=[low, high + 1.0], progress=False)
    assert survey.images.shape[0] == 2
    assert record[0].filename == __file__  # points at the caller of Checkpoint.sample
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conditional.sample(2, sampler="ddim", steps=2, cond=[low, high], progress=False)
