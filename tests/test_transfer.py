"""SDEdit domain transfer: gw.samplers.sdedit, domain_transfer (flux space) and the Fig. 7 layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import galwidgets as gw
from galwidgets.diffusion.samplers import ddim_timesteps
from galwidgets.diffusion.transfer import SDEditResult, domain_transfer, resolve_t_start, transfer_figure

from .conftest import TINY_UNET

SHAPE = (2, 3, 16, 16)
FAST = {"progress": False, "autocast": False}  # bf16 kernels warm up slowly on a busy CPU


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    torch.manual_seed(0)
    return gw.models.UNet(**TINY_UNET).eval()


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return (torch.rand(SHAPE, generator=g) * 1.6 - 0.8)


class Oracle(torch.nn.Module):
    """The exact ε (or v) predictor when the data is the single image ``target``."""

    def __init__(self, schedule, target: torch.Tensor, prediction: str = "eps") -> None:
        super().__init__()
        self.schedule, self.target = schedule, target
        self.config = {"prediction": prediction, "in_channels": target.shape[1]}
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t, cond=None, drop_cond=None):
        a = self.schedule.alphas_cumprod[t.cpu()].float().view(-1, 1, 1, 1)
        eps = (x - a.sqrt() * self.target) / (1 - a).sqrt()
        return a.sqrt() * eps - (1 - a).sqrt() * self.target if self.config["prediction"] == "v" else eps


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_strength_one_is_ddim_from_the_noised_input(net, image):
    """t_start = T (strength 1) is exactly a plain DDIM run started from q(x_{T-1} | image)."""
    sched = gw.diffusion.NoiseSchedule.linear(50)
    res = gw.samplers.sdedit(net, sched, image, strength=1.0, steps=8, generator=_gen(3), **FAST)
    assert isinstance(res, SDEditResult) and res.t_start == 50
    noise = torch.randn(SHAPE, generator=_gen(3))
    x_T = sched.q_sample(image, torch.tensor([49]), noise)
    ref = gw.samplers.ddim(net, sched, SHAPE, steps=8, x_T=x_T, **FAST)
    assert torch.equal(res.x, ref)
    assert torch.equal(res.x_start, x_T)
    assert res.timesteps == ddim_timesteps(50, 8).tolist() and res.steps == 8
    # ... and x_T is (almost) pure noise: √ᾱ_{T-1} of the image is left
    a_last = float(sched.alphas_cumprod[-1])
    assert (res.x_start - noise).abs().max() <= math.sqrt(a_last) + (1 - math.sqrt(1 - a_last)) * 5


def test_t_start_and_strength_agree(net, image):
    sched = gw.diffusion.NoiseSchedule.linear(50)
    a = gw.samplers.sdedit(net, sched, image, 30, steps=5, generator=_gen(), **FAST)
    b = gw.samplers.sdedit(net, sched, image, strength=0.6, steps=5, generator=_gen(), **FAST)
    assert torch.equal(a.x, b.x) and a.timesteps == b.timesteps == ddim_timesteps(30, 5).tolist()
    assert resolve_t_start(1000, strength=0.6) == 600
    assert resolve_t_start(1000, strength=0.0005) == 1  # halves round up
    assert resolve_t_start(1000, strength=0.0) == 0
    assert resolve_t_start(1000, t_start=np.int64(1000)) == 1000


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_oracle_model_returns_its_image(sampler, prediction, image):
    """With the exact predictor of a known clean image, SDEdit of any input returns that image.

    This fails if the truncated schedule's ᾱ_t or timestep indices differ from the model's.
    """
    sched = gw.diffusion.NoiseSchedule.cosine(200)
    target = torch.linspace(-0.9, 0.9, math.prod(SHAPE)).reshape(SHAPE)
    model = Oracle(sched, target, prediction)
    res = gw.samplers.sdedit(model, sched, image, 120, steps=7, sampler=sampler, generator=_gen(),
                             **FAST)
    assert torch.allclose(res.x, target, atol=2e-4)
    assert res.steps == (7 if sampler == "ddim" else 120)


def test_noised_input_has_the_schedule_snr():
    """x_start = √ᾱ x_0 + √(1-ᾱ) ε at index t_start - 1: mean and spread as the schedule says."""
    sched = gw.diffusion.NoiseSchedule.linear(1000)
    x0 = torch.full((8, 3, 32, 32), 0.5)
    model = Oracle(sched, x0)
    res = gw.samplers.sdedit(model, sched, x0, 600, steps=1, generator=_gen(5), **FAST)
    a = float(sched.alphas_cumprod[599])
    n = x0.numel()
    assert abs(res.x_start.mean().item() - math.sqrt(a) * 0.5) < 4 * math.sqrt((1 - a) / n)
    assert abs(res.x_start.std().item() / math.sqrt(1 - a) - 1) < 4 / math.sqrt(2 * n)


def test_small_strength_leaves_the_image_nearly_unchanged(net, image):
    sched = gw.diffusion.NoiseSchedule.linear(1000)
    for t_start in (1, 2):
        res = gw.samplers.sdedit(net, sched, image, t_start, generator=_gen(), **FAST)
        assert res.timesteps == list(range(t_start - 1, -1, -1))
        diff = (res.x - image).abs()
        assert diff.mean() < 0.03 and diff.max() < 0.2
    none = gw.samplers.sdedit(net, sched, image, strength=0.0, **FAST)
    assert torch.equal(none.x, image) and none.timesteps == [] and none.t_start == 0


def test_steps_reported_match_the_steps_run(net, image):
    sched = gw.diffusion.NoiseSchedule.linear(40)
    seen = []
    res = gw.samplers.sdedit(net, sched, image, 20, steps=6, callback=seen.append, **FAST)
    assert [s["t"] for s in seen] == res.timesteps == ddim_timesteps(20, 6).tolist()
    assert [s["i"] for s in seen] == list(range(6))
    assert set(seen[0]) == {"i", "t", "x", "x0_pred"} and seen[0]["x"].shape == SHAPE
    assert torch.equal(seen[0]["x"], res.x_start)
    few = gw.samplers.sdedit(net, sched, image, 4, steps=50, **FAST)  # steps capped at t_start
    assert few.timesteps == [3, 2, 1, 0]
    seen.clear()
    anc = gw.samplers.sdedit(net, sched, image, 7, sampler="ddpm", callback=seen.append, **FAST)
    assert anc.timesteps == [6, 5, 4, 3, 2, 1, 0] == [s["t"] for s in seen]


@pytest.mark.parametrize("kwargs", [{"sampler": "ddim", "eta": 0.0}, {"sampler": "ddim", "eta": 1.0},
                                    {"sampler": "ddpm"}])
def test_same_generator_same_output(net, image, kwargs):
    sched = gw.diffusion.NoiseSchedule.linear(30)
    run = lambda seed: gw.samplers.sdedit(net, sched, image, 12, steps=4, generator=_gen(seed),  # noqa: E731
                                          **FAST, **kwargs).x
    assert torch.equal(run(1), run(1))
    assert not torch.allclose(run(1), run(2))


def test_given_noise_replaces_the_draw(net, image):
    sched = gw.diffusion.NoiseSchedule.linear(30)
    noise = torch.randn(SHAPE, generator=_gen(9))
    a = gw.samplers.sdedit(net, sched, image, 12, steps=3, noise=noise, **FAST)
    b = gw.samplers.sdedit(net, sched, image, 12, steps=3, generator=_gen(9), **FAST)
    assert torch.equal(a.x, b.x)


def test_validation(net, image):
    sched = gw.diffusion.NoiseSchedule.linear(50)
    sd = gw.samplers.sdedit
    for bad in (0, 51, -3):
        with pytest.raises(ValueError, match="t_start"):
            sd(net, sched, image, bad, **FAST)
    with pytest.raises(ValueError, match=r"strength=0\.6"):
        sd(net, sched, image, 0.6, **FAST)
    for bad in (-0.1, 1.01, float("nan")):
        with pytest.raises(ValueError, match="strength"):
            sd(net, sched, image, strength=bad, **FAST)
    with pytest.raises(ValueError, match="exactly one"):
        sd(net, sched, image, 10, strength=0.2, **FAST)
    with pytest.raises(ValueError, match="exactly one"):
        sd(net, sched, image, **FAST)
    with pytest.raises(ValueError, match="image: expected 3 channels"):
        sd(net, sched, image[:, :2], 10, **FAST)
    with pytest.raises(ValueError, match="image: expected a batch"):
        sd(net, sched, image[0], 10, **FAST)
    with pytest.raises(ValueError, match="noise"):
        sd(net, sched, image, 10, noise=torch.zeros(1, 3, 16, 16), **FAST)
    with pytest.raises(ValueError, match="sampler"):
        sd(net, sched, image, 10, sampler="euler", **FAST)
    with pytest.raises(TypeError, match="schedule"):
        sd(net, "linear", image, 10, **FAST)
    with pytest.warns(RuntimeWarning, match="model space"):
        sd(net, sched, image * 50, 2, steps=1, **FAST)


@pytest.fixture(scope="module")
def ckpt(tiny_checkpoint):
    return gw.load_checkpoint(tiny_checkpoint, device="cpu")


def test_domain_transfer_in_flux_space(ckpt, survey):
    drawings = gw.data.cartoons(4, size=32)
    out = domain_transfer(ckpt, drawings, strength=0.5, steps=5, seed=3, reference=survey, **FAST)
    assert isinstance(out, gw.data.Survey) and out.images.shape == (4, 3, 32, 32)
    assert np.isfinite(out.images).all()
    assert out.meta["t_start"] == 50 and out.meta["steps"] == 5 == len(out.meta["timesteps"])
    assert out.meta["timesteps"] == ddim_timesteps(50, 5).tolist()
    assert out.catalog["kind"].tolist() == drawings.catalog["kind"].tolist()
    assert (out.catalog["t_start"] == 50).all()
    assert out.catalog["nn_index"].between(0, len(survey) - 1).all()
    assert (out.catalog["nn_distance"] > 0).all() and out.catalog["nn_ratio"].notna().all()
    again = domain_transfer(ckpt, drawings.images, strength=0.5, steps=5, seed=3, batch_size=3,
                            **FAST)
    np.testing.assert_allclose(again.images, out.images, rtol=1e-4, atol=1e-4)  # same draws per batch
    other = domain_transfer(ckpt, drawings, strength=0.5, steps=5, seed=4, **FAST)
    assert not np.allclose(other.images, out.images)


def test_domain_transfer_strength_zero_round_trips_and_converts_units(ckpt):
    nmgy = gw.data.cartoons(2, size=32)
    counts = gw.data.cartoons(2, size=32, zeropoint=27.0)  # same drawings in another flux unit
    out = domain_transfer(ckpt, counts, strength=0.0, **FAST)
    expected = ckpt.normalizer.inverse(ckpt.normalizer.forward(nmgy.images))
    np.testing.assert_allclose(out.images, expected, rtol=1e-4, atol=1e-6)
    assert out.zeropoint == ckpt.zeropoint and out.meta["steps"] == 0


def test_domain_transfer_validation(ckpt):
    with pytest.raises(ValueError, match="images: expected 32x32"):
        domain_transfer(ckpt, gw.data.cartoons(1, size=64), strength=0.5, **FAST)
    with pytest.raises(ValueError, match="images: expected 3 channels"):
        domain_transfer(ckpt, np.zeros((1, 2, 32, 32), np.float32), strength=0.5, **FAST)
    with pytest.raises(ValueError, match="t_start"):
        domain_transfer(ckpt, gw.data.cartoons(1, size=32), t_start=101, **FAST)
    with pytest.raises(TypeError, match="checkpoint"):
        domain_transfer(object(), gw.data.cartoons(1, size=32), t_start=10, **FAST)


def test_transfer_figure_layout():
    a, b = gw.data.cartoons(3, size=32, seed=1), gw.data.cartoons(3, size=32, seed=2)
    fig = transfer_figure(a, b, a, titles=a.catalog["kind"].tolist())
    assert len(fig.axes) == 9 and fig.axes[0].get_title() == "ellipse"
    assert fig.axes[0].get_ylabel() == "input" and fig.axes[6].get_ylabel() == "nearest neighbour"
    assert len(transfer_figure(a.images, b.images).axes) == 6
    with pytest.raises(ValueError, match="outputs"):
        transfer_figure(a, b.images[:2])
