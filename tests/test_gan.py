"""DCGAN baseline: architecture, training on the shared loop, checkpoint round trip, sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import galwidgets as gw
from galwidgets.models import DCGAN, MODELS, train_dcgan

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_survey() -> gw.data.Survey:
    """64 mock galaxies, 16x16 px (1″ pixels so the PSF fits), g r z."""
    return gw.data.simulate_survey(64, size=16, pixel_scale=1.0, seed=3, progress=False)


def test_registered_and_config():
    model = DCGAN(in_channels=2, image_size=32, latent_dim=10, base_channels=4)
    assert MODELS["DCGAN"] is DCGAN
    assert model.config == {"in_channels": 2, "image_size": 32, "latent_dim": 10, "base_channels": 4}


def test_default_architecture_is_radford_dcgan():
    model = DCGAN()  # 3 x 64 x 64, z of 100, ngf = ndf = 64
    n_gen = sum(p.numel() for p in model.generator.parameters())
    assert n_gen == 3_576_704 + 3  # the reference DCGAN generator (PyTorch example), plus the output bias
    convs = [m for m in model.discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 2, 1]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.discriminator.modules())


@pytest.mark.parametrize("size", [16, 32, 64])
def test_shapes_and_range(size):
    model = DCGAN(in_channels=3, image_size=size, latent_dim=8, base_channels=4).eval()
    x = model.generate(5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, 3, size, size)
    assert x.abs().max() <= 1
    assert model.critic(x).shape == (5,)


def test_generate_is_seeded():
    model = DCGAN(3, 16, latent_dim=8, base_channels=4).eval()
    a = model.generate(3, generator=torch.Generator().manual_seed(1))
    b = model.generate(3, generator=torch.Generator().manual_seed(1))
    c = model.generate(3, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("size", [8, 24, 48, 16.0])
def test_bad_image_size(size):
    with pytest.raises((ValueError, TypeError), match="image_size"):
        DCGAN(image_size=size)


def test_bad_inputs(small_survey):
    model = DCGAN(3, 32, latent_dim=8, base_channels=4)
    with pytest.raises(ValueError, match="cond"):
        model.generate(2, cond=np.zeros((2, 1)))
    with pytest.raises(ValueError, match="32x32"):
        train_dcgan(model, small_survey, 1, 4, progress=False)
    with pytest.raises(TypeError, match="model"):
        train_dcgan(gw.models.UNet(), small_survey, 1, 4, progress=False)
    with pytest.raises(ValueError, match="x: expected shape"):
        model.critic(torch.zeros(2, 3, 16, 16))


def test_checkpoint_round_trip_and_sample(small_survey, tmp_path):
    torch.manual_seed(0)
    model = DCGAN(3, 16, latent_dim=8, base_channels=4)
    ckpt = train_dcgan(model, small_survey, 3, 8, checkpoint_dir=tmp_path, progress=False)
    assert list(ckpt.history.columns[:3]) == ["step", "loss", "loss_d"]
    assert ckpt.schedule is None and ckpt.bands == ("g", "r", "z") and ckpt.size == 16
    assert ckpt.config["training"]["trainer"] == "train_dcgan"
    loaded = gw.load_checkpoint(tmp_path / "step_0000003.safetensors", device="cpu")
    assert isinstance(loaded.model, DCGAN)
    a = ckpt.sample(4, seed=5, progress=False)
    b = loaded.sample(4, seed=5, progress=False)
    assert a.images.shape == (4, 3, 16, 16) and a.bands == ("g", "r", "z")
    np.testing.assert_array_equal(a.images, b.images)
    assert np.isfinite(a.images).all()


def test_resume_matches_uninterrupted(small_survey, tmp_path):
    def run(directory, splits):
        torch.manual_seed(0)
        model = DCGAN(3, 16, latent_dim=8, base_channels=4)
        for steps in splits:
            ckpt = train_dcgan(model, small_survey, steps, 8, checkpoint_dir=directory, progress=False)
        return ckpt

    whole = run(tmp_path / "a", [6])
    parts = run(tmp_path / "b", [3, 6])
    np.testing.assert_array_equal(whole.history["loss_d"], parts.history["loss_d"])
    for p, q in zip(whole.model.state_dict().values(), parts.model.state_dict().values()):
        assert torch.equal(p, q)


def _central_brightness(x: torch.Tensor) -> torch.Tensor:
    """Mean model-space value of the central 4x4 pixels per band."""
    c = x.shape[-1] // 2
    return x[:, :, c - 2:c + 2, c - 2:c + 2].mean(dim=(0, 2, 3))


def test_generator_moves_towards_the_data(small_survey):
    norm = gw.data.AsinhStretch.fit(small_survey.images)
    data = _central_brightness(torch.from_numpy(norm.forward(small_survey.images)))
    torch.manual_seed(0)
    model = DCGAN(3, 16, latent_dim=16, base_channels=8)
    before = _central_brightness(model.eval().generate(128, generator=torch.Generator().manual_seed(1)))
    assert (data - before).abs().min() > 0.4  # bright galaxy centres; the initial generator gives ~0
    ckpt = train_dcgan(model, small_survey, 150, 16, normalizer=norm, progress=False)
    after = _central_brightness(ckpt.model.generate(128, generator=torch.Generator().manual_seed(1)))
    assert (data - after).abs().max() < 0.2, (data, after)


def test_a_resumed_fit_keeps_its_normalizer_on_other_data(small_survey, tmp_path):
    """The comparison models' fit loop, like ``gw.train``, keeps the checkpoint's normalizer on resume."""
    torch.manual_seed(0)
    first = train_dcgan(DCGAN(3, 16, latent_dim=8, base_channels=4), small_survey, 2, 8,
                        checkpoint_dir=tmp_path, progress=False)
    brighter = small_survey.with_images(small_survey.images * 10)
    torch.manual_seed(0)
    resumed = train_dcgan(DCGAN(3, 16, latent_dim=8, base_channels=4), brighter, 3, 8,
                          checkpoint_dir=tmp_path, progress=False)
    assert resumed.normalizer == first.normalizer != gw.data.AsinhStretch.fit(brighter.images)
    with pytest.raises(ValueError, match=r"normalizer: .* differs from"):
        train_dcgan(DCGAN(3, 16, latent_dim=8, base_channels=4), brighter, 4, 8, checkpoint_dir=tmp_path,
                    normalizer=gw.data.AsinhStretch.fit(brighter.images), progress=False)
