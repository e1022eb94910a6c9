"""Shared fixtures: small mock surveys and a tiny trained checkpoint, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import galwidgets as gw

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY_UNET = {"base_channels": 8, "channel_mults": (1, 2), "attention_levels": (1,), "groups": 4, "heads": 2}


@pytest.fixture(scope="session")
def survey() -> gw.data.Survey:
    """24 mock galaxies, 32x32, g r z."""
    return gw.data.simulate_survey(24, size=32, seed=11, progress=False)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, survey) -> Path:
    """A checkpoint of a tiny U-Net trained for a few steps (the plumbing, not the quality)."""
    directory = tmp_path_factory.mktemp("tiny-ckpt")
    torch.manual_seed(0)
    model = gw.models.UNet(**TINY_UNET)
    gw.train(model, gw.diffusion.NoiseSchedule.linear(100), survey, steps=4, batch_size=4,
             checkpoint_dir=directory, checkpoint_every=4, progress=False)
    return directory / "step_0000004.safetensors"
