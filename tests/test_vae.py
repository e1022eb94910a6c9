"""VAE and redshift-conditional VAE: the loss, conditioning, training and checkpoint round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import galwidgets as gw
from galwidgets.models.vae import ConditionalVAE, interpolate, latent_traversal, vae_loss
from galwidgets.training.baselines import train_vae

TINY = {"in_channels": 3, "image_size": 32, "base_channels": 8, "latent_dim": 8}


def test_shapes_and_model_space_range():
    torch.manual_seed(0)
    model = gw.models.VAE(**TINY).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    recon, mu, logvar = model(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (2, 8)
    images = model.generate(5, generator=torch.Generator().manual_seed(1))
    assert images.shape == (5, 3, 32, 32) and images.abs().max() <= 1
    assert model.config == TINY and gw.models.MODELS["VAE"] is gw.models.VAE
    with pytest.raises(ValueError, match="image_size"):
        gw.models.VAE(image_size=48)


def test_vae_loss_analytic_cases():
    x = torch.rand(4, 3, 8, 8)
    zeros = torch.zeros(4, 6)
    total, recon, kl = vae_loss(x, x, zeros, zeros, kl_weight=0.5)
    assert recon.item() == 0 and kl.item() == 0 and total.item() == 0
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dimension; 6 dimensions
    total, recon, kl = vae_loss(x + 0.1, x, zeros + 1, zeros, kl_weight=0.5)
    assert kl.item() == pytest.approx(3.0) and recon.item() == pytest.approx(0.01)
    assert total.item() == pytest.approx(0.01 + 1.5)
    # KL(N(0, e) || N(0, 1)) = 1/2 (e - 1 - 1) per dimension
    _, _, kl = vae_loss(x, x, zeros, zeros + 1, kl_weight=0.5)
    assert kl.item() == pytest.approx(3 * (np.e - 2))
    with pytest.raises(ValueError, match="kl_weight"):
        vae_loss(x, x, zeros, zeros, kl_weight=-1)
    with pytest.raises(ValueError, match="recon"):
        vae_loss(x[:2], x, zeros, zeros)


def test_conditional_vae_depends_on_the_condition():
    torch.manual_seed(0)
    model = ConditionalVAE(**TINY).eval()
    low = model.generate(3, cond=[0.02, 0.02, 0.02], generator=torch.Generator().manual_seed(4))
    high = model.generate(3, cond=torch.full((3, 1), 0.5), generator=torch.Generator().manual_seed(4))
    same = model.generate(3, cond=0.02, generator=torch.Generator().manual_seed(4))
    assert torch.equal(low, same) and not torch.allclose(low, high)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    assert not torch.allclose(model.encode(x, 0.02)[0], model.encode(x, 0.5)[0])
    with pytest.raises(ValueError, match="cond"):
        model.generate(2)
    with pytest.raises(ValueError, match="cond"):
        model.generate(2, cond=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="cond"):
        gw.models.VAE(**TINY).generate(2, cond=[0.1, 0.2])


@pytest.mark.parametrize("conditional", [False, True])
def test_training_and_checkpoint_round_trip(survey, tmp_path, conditional):
    torch.manual_seed(0)
    model = ConditionalVAE(**TINY) if conditional else gw.models.VAE(**TINY)
    ckpt = train_vae(model, survey, steps=30, batch_size=8, lr=3e-3, checkpoint_dir=tmp_path,
                     checkpoint_every=30, progress=False, device="cpu")
    history = ckpt.history
    assert list(history.columns[:4]) == ["step", "loss", "reconstruction", "kl"]
    assert history["reconstruction"][-5:].mean() < history["reconstruction"][:5].mean()
    assert ckpt.config["cond"]["columns"] == (["redshift"] if conditional else None)
    loaded = gw.load_checkpoint(tmp_path / "step_0000030.safetensors", device="cpu")
    assert type(loaded.model) is type(model) and loaded.schedule is None
    cond = np.array([0.03, 0.05, 0.08, 0.1]) if conditional else None
    x = torch.from_numpy(ckpt.normalizer.forward(survey.images[:4]))
    c = None if cond is None else torch.from_numpy(cond).float()[:, None]
    assert torch.equal(loaded.model(x, c)[0], ckpt.model(x, c)[0])
    a = ckpt.sample(4, seed=3, cond=cond, progress=False)
    b = loaded.sample(4, seed=3, cond=cond, progress=False)
    assert a.images.shape == (4, 3, 32, 32) and np.isfinite(a.images).all()
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, loaded.sample(4, seed=4, cond=cond, progress=False).images)


def test_latent_traversal_and_interpolation():
    torch.manual_seed(0)
    model = gw.models.VAE(**TINY).eval()
    images = latent_traversal(model, 2, np.linspace(-2, 2, 5))
    assert images.shape == (5, 3, 32, 32)
    z = torch.zeros(5, 8)
    z[:, 2] = torch.linspace(-2, 2, 5)
    torch.testing.assert_close(images, model.decode(z))
    assert not torch.allclose(images[0], images[-1])
    z0, z1 = torch.randn(8), torch.randn(8)
    path = interpolate(model, z0, z1, n=4)
    torch.testing.assert_close(path[[0, -1]], model.decode(torch.stack([z0, z1])))
    with pytest.raises(ValueError, match="dim"):
        latent_traversal(model, 8, [0.0])
    with pytest.raises(ValueError, match="z1"):
        interpolate(model, z0, torch.zeros(3))


def test_train_vae_bad_arguments(survey):
    model = gw.models.VAE(**TINY)
    with pytest.raises(ValueError, match="cond"):
        train_vae(model, survey, steps=1, batch_size=2, cond="redshift", progress=False)
    with pytest.raises(ValueError, match="lr"):
        train_vae(model, survey, steps=1, batch_size=2, lr=0.0, progress=False)
    with pytest.raises(ValueError, match="data"):
        train_vae(gw.models.VAE(**{**TINY, "image_size": 16}), survey, steps=1, batch_size=2, progress=False)
    with pytest.raises(TypeError, match="model"):
        train_vae(torch.nn.Linear(2, 2), survey, steps=1, batch_size=2, progress=False)
    with pytest.raises(ValueError, match="cond"):
        train_vae(ConditionalVAE(**TINY), survey, steps=1, batch_size=2, cond=["redshift", "mag_r"],
                  progress=False)
