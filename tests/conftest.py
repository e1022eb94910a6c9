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


@pytest.fixture(scope="module")
def z_checkpoint(tmp_path_factory, survey):
    """A tiny redshift-conditioned U-Net trained for two steps (plumbing, not quality)."""
    from galwidgets.training import latest_checkpoint

    directory = tmp_path_factory.mktemp("z-ckpt")
    torch.manual_seed(0)
    model = gw.models.UNet(in_channels=3, base_channels=8, channel_mults=(1, 2), attention_levels=(),
                           cond_dim=1, groups=4)
    gw.train(model, gw.diffusion.NoiseSchedule.linear(50), survey, steps=2, batch_size=4, cond="redshift",
             checkpoint_dir=directory, checkpoint_every=2, progress=False)
    return gw.load_checkpoint(latest_checkpoint(directory))


@pytest.fixture(scope="module")
def guided_z_checkpoint(z_checkpoint):
    """``z_checkpoint`` recording a default guidance of 1.5, as a recipe's ``"sampling"`` would."""
    import copy

    return gw.Checkpoint(z_checkpoint.model, z_checkpoint.schedule, z_checkpoint.normalizer,
                         {**copy.deepcopy(z_checkpoint.config), "sampling": {"guidance": 1.5}})


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    """The tiny checkpoint loaded on the CPU (a module may override ``tiny`` with its own)."""
    return gw.load_checkpoint(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of tiny networks: threads gain nothing there, and on the
    shared 2-core machine they spin. Use with ``pytestmark = pytest.mark.usefixtures(...)``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
