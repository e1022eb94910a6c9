"""Inpainting (Smith et al. 2022 replacement scheme, RePaint resampling): plumbing and an oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import galwidgets as gw
from galwidgets.diffusion.inpainting import InpaintResult, inpaint_flux, repaint_plan
from galwidgets.diffusion.samplers import ddim_timesteps

from .conftest import TINY_UNET

SHAPE = (2, 3, 16, 16)


def _trail_mask(shape=SHAPE, seed=0):
    n, _, h, w = shape
    return gw.data.add_satellite_trails(np.zeros((n, 1, h, w), np.float32), seed=seed, width=3.0)[1]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return gw.models.UNet(**TINY_UNET).eval(), gw.diffusion.NoiseSchedule.linear(100)


@pytest.fixture(scope="module")
def image():
    return torch.rand(SHAPE, generator=torch.Generator().manual_seed(3)) * 1.6 - 0.8


class _Counting(torch.nn.Module):
    """Wraps a model and counts its forward calls."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0
        self.config = getattr(model, "config", {})

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.model(*args, **kwargs)


class _MixtureOracle(torch.nn.Module):
    """The exact ε (or v) when the data are K images with equal weight (a Dirac mixture).

    ``E[x_0 | x_t] = Σ_k w_k x_k`` with ``w ∝ exp(-|x_t - √ᾱ_t x_k|² / 2(1 - ᾱ_t))``, the
    posterior-mean denoiser a perfectly trained network would learn on this data set.
    """

    def __init__(self, schedule, templates, prediction="eps"):
        super().__init__()
        self.schedule, self.templates = schedule, templates
        self.config = {"prediction": prediction}
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t, cond=None, drop_cond=None):
        a = self.schedule.alphas_cumprod[t].view(-1, 1).double()
        flat, k = x.double().flatten(1), self.templates.double().flatten(1)
        d2 = (flat**2).sum(1, keepdim=True) - 2 * a.sqrt() * flat @ k.T + a * (k**2).sum(1)
        w = torch.softmax(-d2 / (2 * (1 - a)), dim=1)
        x0 = (w @ k).view_as(x)
        a = a.view(-1, 1, 1, 1)
        eps = (x.double() - a.sqrt() * x0) / (1 - a).sqrt()
        out = a.sqrt() * eps - (1 - a).sqrt() * x0 if self.config["prediction"] == "v" else eps
        return out.float()


# -- plumbing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_known_pixels_equal_the_input_in_model_space(tiny, image, sampler):
    model, sched = tiny
    mask = _trail_mask()
    out = gw.samplers.inpaint(model, sched, image, mask, sampler=sampler, steps=6, progress=False,
                              generator=torch.Generator().manual_seed(0))
    assert out.shape == SHAPE and out.dtype == torch.float32 and torch.isfinite(out).all()
    known = ~torch.from_numpy(mask).expand(SHAPE)
    assert torch.equal(out[known], image[known])
    assert not torch.equal(out[~known], image[~known])
    blurred = gw.samplers.inpaint(model, sched, image, mask, sampler=sampler, steps=6, paste=False,
                                  progress=False, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(blurred[known], image[known])  # the published code's behaviour
    torch.testing.assert_close(blurred[~known], out[~known])  # the paste only touches known pixels


def test_mask_layouts_and_nan_in_occluded_pixels(tiny, image):
    model, sched = tiny
    per_band = np.zeros(SHAPE, bool)
    per_band[:, 1, 4:7] = True  # only the r band occluded, rows 4-6
    hw = np.zeros(SHAPE[-2:], bool)
    hw[:, 3] = True
    for mask in (per_band, hw, torch.from_numpy(hw.astype(np.int64))):
        img = image.clone()
        m = torch.as_tensor(np.broadcast_to(np.asarray(mask, bool), SHAPE).copy())
        img[m] = float("nan")
        out = gw.samplers.inpaint(model, sched, img, mask, steps=3, progress=False)
        assert torch.isfinite(out).all() and torch.equal(out[~m], image[~m])


def test_same_generator_same_output(tiny, image):
    model, sched = tiny
    mask = _trail_mask()
    run = lambda seed, **kw: gw.samplers.inpaint(  # noqa: E731
        model, sched, image, mask, steps=5, resample=2, progress=False,
        generator=torch.Generator().manual_seed(seed), **kw)
    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))
    assert torch.equal(run(1, sampler="ddpm"), run(1, sampler="ddpm"))


def test_callback_once_per_network_call_and_resample_costs_more(tiny, image):
    model, sched = tiny
    mask = _trail_mask()
    counting = _Counting(model)
    calls = []
    gw.samplers.inpaint(counting, sched, image, mask, steps=7, callback=calls.append, progress=False)
    assert counting.calls == 7 and [c["i"] for c in calls] == list(range(7))
    assert [c["t"] for c in calls] == ddim_timesteps(100, 7).tolist()
    assert set(calls[0]) == {"i", "t", "x", "x0_pred"} and calls[0]["x"].shape == SHAPE
    # the x fed to the model already carries the known pixels at its noise level
    a = sched.alphas_cumprod[calls[-1]["t"]].item()
    known = ~torch.from_numpy(mask).expand(SHAPE)
    resid = (calls[-1]["x"][known] - a**0.5 * image[known]) / (1 - a) ** 0.5
    assert 0.7 < resid.std().item() < 1.3 and abs(resid.mean().item()) < 0.1

    counting.calls, calls = 0, []
    gw.samplers.inpaint(counting, sched, image, mask, steps=7, resample=3, jump_length=2,
                        callback=calls.append, progress=False)
    assert counting.calls == 21 and len(calls) == 21 and [c["i"] for c in calls] == list(range(21))
    ts = [c["t"] for c in calls]
    assert sorted(set(ts)) == sorted(ddim_timesteps(100, 7).tolist())
    assert all(ts.count(t) == 3 for t in set(ts))  # each step taken `resample` times


@pytest.mark.parametrize(("steps", "resample", "jump"), [(1, 1, 1), (5, 1, 3), (6, 3, 1), (7, 2, 3),
                                                         (10, 4, 10), (4, 2, 9)])
def test_repaint_plan_takes_every_step_resample_times(steps, resample, jump):
    moves = repaint_plan(steps, resample, jump)
    down = [p for p, q in moves if q == p + 1]
    assert sorted(down) == sorted(list(range(steps)) * resample)
    p = 0
    for a, b in moves:  # a connected walk from the noisiest position to the clean end
        assert a == p and (b == a + 1 or a - jump <= b < a)
        p = b
    assert p == steps


def test_validation_names_the_argument(tiny, image):
    model, sched = tiny
    mask = _trail_mask()
    call = lambda **kw: gw.samplers.inpaint(  # noqa: E731
        model, sched, kw.pop("image", image), kw.pop("mask", mask), **{"steps": 2, "progress": False, **kw})
    with pytest.raises(ValueError, match="mask: expected a shape broadcastable"):
        call(mask=np.zeros((2, 1, 8, 8), bool))
    with pytest.raises(ValueError, match="mask: expected a shape broadcastable"):
        call(mask=np.zeros((3, 1, 16, 16), bool))
    with pytest.raises(ValueError, match="mask: no occluded pixels"):
        call(mask=np.zeros((16, 16), bool))
    all_true = mask.copy()
    all_true[1] = True
    with pytest.raises(ValueError, match="mask: image 1 is occluded everywhere"):
        call(mask=all_true)
    with pytest.raises(TypeError, match="mask: expected a boolean"):
        call(mask=mask * 0.5)
    bad = image.clone()
    bad[0, 0, 0, 0] = float("nan")
    kept = mask.copy()
    kept[0, 0, 0, 0] = False
    with pytest.raises(ValueError, match="image: expected finite known pixels"):
        call(image=bad, mask=kept)
    with pytest.raises(ValueError, match="image: expected a non-empty"):
        call(image=image[0])
    with pytest.raises(ValueError, match="sampler"):
        call(sampler="euler")
    with pytest.raises(ValueError, match="resample"):
        call(resample=0)
    with pytest.raises(ValueError, match="steps"):
        call(steps=1000)
    with pytest.raises(ValueError, match="eta"):
        call(eta=-1.0)


def test_flux_space_samples_mean_and_spread(tiny_checkpoint, survey):
    ckpt = gw.load_checkpoint(tiny_checkpoint)
    images = survey.images[:3]
    trailed, mask = gw.data.add_satellite_trails(images, seed=5)
    trailed[np.broadcast_to(mask, trailed.shape) & (np.arange(3)[:, None, None, None] == 0)] = np.nan
    result = inpaint_flux(ckpt, trailed, mask, n_samples=3, steps=4, seed=0, batch_size=4,
                          progress=False)
    assert isinstance(result, InpaintResult) and result.n_samples == 3
    assert result.samples.shape == (3, 3, 3, 32, 32) and result.samples.dtype == np.float32
    assert result.mean.shape == result.std.shape == images.shape
    assert result.mean.dtype == result.std.dtype == np.float32
    known = ~np.broadcast_to(mask, images.shape)
    for s in range(3):
        assert np.array_equal(result.samples[:, s][known], trailed[known])  # exact, bit for bit
    assert np.array_equal(result.mean[known], trailed[known]) and np.all(result.std[known] == 0)
    assert np.isfinite(result.samples).all() and np.all(result.std[~known] >= 0)
    assert result.std[~known].max() > 0
    np.testing.assert_allclose(result.mean, result.samples.mean(1), rtol=1e-5, atol=1e-6)
    again = inpaint_flux(ckpt, trailed, mask, n_samples=3, steps=4, seed=0, batch_size=4,
                         progress=False)
    assert np.array_equal(again.samples, result.samples)
    one = inpaint_flux(ckpt, survey[:1], mask[:1],  # a Survey works too
                       n_samples=1, steps=2, progress=False)
    assert np.isnan(one.std[~known[:1]]).all() and np.all(one.std[known[:1]] == 0)
    with pytest.raises(ValueError, match="images: expected 3 channels"):
        inpaint_flux(ckpt, images[:, :2], mask, steps=2, progress=False)
    with pytest.raises(ValueError, match="mask"):
        inpaint_flux(ckpt, images, mask[:2, :, :16], steps=2, progress=False)


# -- the scheme recovers what a perfect prior knows ---------------------------------------------
@pytest.mark.parametrize(("sampler", "prediction", "resample"),
                         [("ddim", "eps", 1), ("ddim", "v", 1), ("ddpm", "eps", 2)])
def test_exact_prior_recovers_the_occluded_pixels(survey, sampler, prediction, resample):
    """A perfect denoiser for a set of K galaxies, shown one of them under a trail, must fill the
    trail with that galaxy; without the replacement it draws a random one of the K."""
    sched = gw.diffusion.NoiseSchedule.cosine(100)
    norm = gw.data.AsinhStretch.fit(survey.images)
    templates = torch.as_tensor(norm.forward(survey.images[:8]))
    oracle = _MixtureOracle(sched, templates, prediction)
    trailed, mask = gw.data.add_satellite_trails(survey.images[:8], seed=2, width=(3.0, 6.0))
    occluded = torch.from_numpy(np.broadcast_to(mask, trailed.shape).copy())
    x = torch.as_tensor(norm.forward(trailed))
    out = gw.samplers.inpaint(oracle, sched, x, mask, sampler=sampler, steps=20, resample=resample,
                              generator=torch.Generator().manual_seed(0), progress=False)
    err = (out - templates).abs()
    assert err[occluded].max() < 1e-3, err[occluded].max()
    assert torch.equal(out[~occluded], x[~occluded])
    free = gw.samplers.ddim(oracle, sched, x.shape, steps=20, progress=False,
                            generator=torch.Generator().manual_seed(0))
    right = ((free - templates).abs().flatten(1).max(1).values < 1e-3).float().mean()
    assert right < 0.5  # unconditional draws pick their own galaxy only by chance (1/8)
