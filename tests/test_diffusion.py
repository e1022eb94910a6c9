import math

import pytest
import torch

import galwidgets as gw
from galwidgets.diffusion.samplers import ddim_timesteps

from .conftest import TINY_UNET


def test_linear_schedule_endpoints_and_monotonic():
    s = gw.diffusion.NoiseSchedule.linear(1000)
    assert s.T == 1000
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    a = s.alphas_cumprod
    assert torch.all(a[1:] < a[:-1])
    assert a[-1].item() < 1e-4  # x_T is almost pure noise


def test_cosine_schedule_matches_formula():
    s = gw.diffusion.NoiseSchedule.cosine(1000, s=0.008)
    t = 500
    f = lambda u: math.cos((u / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert s.alphas_cumprod[t - 1].item() == pytest.approx(f(t) / f(0), rel=1e-6)
    assert torch.all(s.snr[1:] < s.snr[:-1])


def test_q_sample_statistics():
    s = gw.diffusion.NoiseSchedule.linear(1000)
    x0 = torch.full((20000, 1, 1, 1), 0.5)
    t = torch.full((20000,), 300)
    xt = s.q_sample(x0, t, torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)))
    a = s.alphas_cumprod[300].item()
    assert xt.mean().item() == pytest.approx(math.sqrt(a) * 0.5, abs=0.02)
    assert xt.var().item() == pytest.approx(1 - a, rel=0.03)


def test_x0_eps_round_trip_and_config():
    s = gw.diffusion.NoiseSchedule.cosine(50)
    x0, eps, t = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8), torch.tensor([0, 10, 30, 49])
    xt = s.q_sample(x0, t, eps)
    torch.testing.assert_close(s.predict_x0(xt, t, eps), x0, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(s.predict_eps(xt, t, x0), eps, atol=1e-4, rtol=1e-4)
    again = gw.diffusion.NoiseSchedule.from_config(s.to_config())
    assert torch.equal(again.betas, s.betas)


def test_unet_shapes_conditioning_and_errors():
    model = gw.models.UNet(**TINY_UNET)
    x = torch.randn(2, 3, 16, 16)
    assert model(x, torch.tensor([1, 5])).shape == x.shape
    assert model.num_parameters > 1000
    with pytest.raises(ValueError, match="divisible by 2"):
        model(torch.randn(1, 3, 15, 15), torch.tensor([1]))
    with pytest.raises(ValueError, match="cond: this model is unconditional"):
        model(x, torch.tensor([1, 5]), torch.ones(2, 1))
    cond_model = gw.models.UNet(cond_dim=1, **TINY_UNET)
    z = torch.tensor([[0.1], [0.3]])
    assert cond_model(x, torch.tensor([1, 5]), z).shape == x.shape


def test_scale_shift_blocks_scale_the_normalised_features_by_the_embedding():
    """Adaptive group normalisation: ``GroupNorm(h) (1 + s) + b``. A scale of -1 silences the block
    (its output is the skip path plus the last convolution's bias); the additive block is not."""
    from galwidgets.models.unet import ResBlock

    x, emb = torch.randn(2, 8, 6, 6), torch.randn(2, 16)
    outputs = {}
    for scale_shift in (True, False):
        torch.manual_seed(0)
        block = ResBlock(8, 8, emb_dim=16, dropout=0.0, groups=4, scale_shift=scale_shift)
        with torch.no_grad():
            torch.nn.init.normal_(block.conv2.weight)
            block.emb.weight.zero_()
            block.emb.bias.fill_(-1.0)  # scale -1 (and shift -1) in the scale-shift block
            if scale_shift:
                block.emb.bias[8:].zero_()  # shift 0
            outputs[scale_shift] = block(x, emb)
    silenced = x + block.conv2.bias[None, :, None, None]
    torch.testing.assert_close(outputs[True], silenced)
    assert (outputs[False] - silenced).abs().max() > 0.1


def test_scale_shift_is_in_the_config_only_when_used_and_survives_a_checkpoint(tmp_path):
    from galwidgets.checkpoints import save_checkpoint

    assert "scale_shift" not in gw.models.UNet(**TINY_UNET).config  # older configs stay valid
    torch.manual_seed(0)
    model = gw.models.UNet(cond_dim=1, scale_shift=True, **TINY_UNET)
    assert model.config["scale_shift"] is True
    assert model.down[0][0].emb.out_features == 2 * model.down[0][0].conv1.out_channels
    path = save_checkpoint(tmp_path / "c.safetensors", model, gw.diffusion.NoiseSchedule.cosine(50),
                           gw.data.AsinhStretch(softening=[1.0, 1.0, 1.0]), {"data": {}})
    loaded = gw.load_checkpoint(path, device="cpu").model
    x, t, z = torch.randn(2, 3, 16, 16), torch.tensor([3, 40]), torch.tensor([[0.2], [2.0]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, t, z), model(x, t, z))
    with pytest.raises(ValueError, match="scale_shift"):
        gw.models.UNet(scale_shift="yes")


def test_ddim_calls_callback_once_per_step_and_is_seeded():
    torch.manual_seed(0)
    model = gw.models.UNet(**TINY_UNET).eval()
    sched = gw.diffusion.NoiseSchedule.linear(100)
    calls = []
    out = gw.samplers.ddim(model, sched, (2, 3, 16, 16), steps=7, callback=calls.append,
                           generator=torch.Generator().manual_seed(1), progress=False)
    assert [c["i"] for c in calls] == list(range(7))
    assert [c["t"] for c in calls] == ddim_timesteps(100, 7).tolist()
    assert calls[0]["t"] == 99 and calls[-1]["t"] == 0
    assert set(calls[0]) == {"i", "t", "x", "x0_pred"}
    again = gw.samplers.ddim(model, sched, (2, 3, 16, 16), steps=7,
                             generator=torch.Generator().manual_seed(1), progress=False)
    assert torch.equal(out, again)
    with pytest.raises(ValueError, match="steps"):
        gw.samplers.ddim(model, sched, (1, 3, 16, 16), steps=500, progress=False)


def test_ddpm_runs_all_steps():
    model = gw.models.UNet(**TINY_UNET).eval()
    sched = gw.diffusion.NoiseSchedule.linear(10)
    calls = []
    out = gw.samplers.ddpm(model, sched, (1, 3, 16, 16), callback=calls.append, progress=False)
    assert len(calls) == 10 and out.shape == (1, 3, 16, 16) and torch.isfinite(out).all()


class _Oracle(torch.nn.Module):
    """The exact ε (or v) for a data set holding one image x*: ε = (x_t - √ᾱ_t x*) / √(1 - ᾱ_t)."""

    def __init__(self, schedule, target, prediction="eps"):
        super().__init__()
        self.schedule, self.target = schedule, target
        self.config = {"prediction": prediction}
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t, cond=None, drop_cond=None):
        a = self.schedule.alphas_cumprod[t].float().view(-1, 1, 1, 1)
        eps = (x - a.sqrt() * self.target) / (1 - a).sqrt()
        if self.config["prediction"] == "v":
            return a.sqrt() * eps - (1 - a).sqrt() * self.target
        return eps


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_samplers_recover_the_only_image_with_an_exact_model(kind, prediction):
    sched = getattr(gw.diffusion.NoiseSchedule, kind)(200)
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    oracle = _Oracle(sched, target, prediction)
    for eta in (0.0, 1.0):
        out = gw.samplers.ddim(oracle, sched, (2, 3, 8, 8), steps=20, eta=eta, progress=False)
        torch.testing.assert_close(out, target.expand(2, -1, -1, -1), atol=1e-5, rtol=0)
    out = gw.samplers.ddpm(oracle, sched, (2, 3, 8, 8), progress=False)
    torch.testing.assert_close(out, target.expand(2, -1, -1, -1), atol=1e-3, rtol=0)


def test_v_target_and_inverse():
    s = gw.diffusion.NoiseSchedule.cosine(100)
    x0, eps, t = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4), torch.tensor([0, 50, 99])
    xt = s.q_sample(x0, t, eps)
    x0_back, eps_back = s.from_v(xt, t, s.v_target(x0, t, eps))
    torch.testing.assert_close(x0_back, x0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(eps_back, eps, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n", [0, -2])
def test_every_sampling_entry_point_rejects_n_below_one(tiny, n):
    """Asking for no galaxies is an error that names ``n`` (it once said "need at least one array
    to concatenate")."""
    with pytest.raises(ValueError, match=r"^n: expected a positive integer"):
        tiny.sample(n, steps=2, progress=False)
    vae = gw.models.VAE(in_channels=3, image_size=32, base_channels=8, latent_dim=4)
    dcgan = gw.models.DCGAN(in_channels=3, image_size=32, base_channels=8, latent_dim=4)
    for model in (vae, dcgan):
        with pytest.raises(ValueError, match=r"^n: expected a positive integer"):
            model.generate(n)
    with pytest.raises(ValueError, match=r"^shape: expected \(N, C, H, W\) with N"):
        gw.samplers.ddim(tiny.model, tiny.schedule, (n, 3, 32, 32), steps=2, progress=False)
    with pytest.raises(ValueError, match=r"^shape: expected \(N, C, H, W\) with N"):
        gw.samplers.ddpm(tiny.model, tiny.schedule, (n, 3, 32, 32), progress=False)
