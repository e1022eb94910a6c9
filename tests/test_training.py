import numpy as np
import pandas as pd
import pytest
import torch

import galwidgets as gw

from .conftest import TINY_UNET


def _model():
    torch.manual_seed(0)
    return gw.models.UNet(**TINY_UNET)


def test_checkpoint_round_trip_gives_identical_samples(tiny_checkpoint, tmp_path):
    ckpt = gw.load_checkpoint(tiny_checkpoint)
    assert ckpt.bands == ("g", "r", "z") and ckpt.size == 32 and ckpt.config["step"] == 4
    a = ckpt.sample(3, steps=4, seed=5, progress=False)
    resaved = gw.load_checkpoint(ckpt.save(tmp_path / "copy.safetensors"))
    b = resaved.sample(3, steps=4, seed=5, progress=False)
    assert np.array_equal(a.images, b.images)
    assert a.bands == ckpt.bands and a.zeropoint == 22.5
    c = ckpt.sample(3, steps=4, seed=6, progress=False)
    assert not np.array_equal(a.images, c.images)


def test_training_writes_atomic_checkpoints_log_and_resumes_exactly(survey, tmp_path):
    sched = gw.diffusion.NoiseSchedule.linear(100)
    full = gw.train(_model(), sched, survey, steps=6, batch_size=4, checkpoint_dir=tmp_path / "a",
                    checkpoint_every=3, progress=False)
    assert sorted(p.name for p in (tmp_path / "a").glob("step_*")) == [
        "step_0000003.safetensors", "step_0000006.safetensors"]
    assert not list((tmp_path / "a").glob("*.tmp"))
    log = pd.read_csv(tmp_path / "a" / "train_log.csv")
    assert log.step.tolist() == list(range(1, 7)) and np.isfinite(log.loss).all()

    gw.train(_model(), sched, survey, steps=3, batch_size=4, checkpoint_dir=tmp_path / "b",
             checkpoint_every=3, progress=False)  # "interrupted" after 3 steps
    resumed = gw.train(_model(), sched, survey, steps=6, batch_size=4, checkpoint_dir=tmp_path / "b",
                       checkpoint_every=3, progress=False)
    assert resumed.history.loss.tolist() == full.history.loss.tolist()
    for (name, p), q in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name


def test_resume_refuses_a_different_model(survey, tmp_path):
    sched = gw.diffusion.NoiseSchedule.linear(100)
    gw.train(_model(), sched, survey, steps=1, batch_size=2, checkpoint_dir=tmp_path, progress=False)
    other = gw.models.UNet(**{**TINY_UNET, "base_channels": 16})
    with pytest.raises(ValueError, match=r"checkpoint_dir: .* different model"):
        gw.train(other, sched, survey, steps=2, batch_size=2, checkpoint_dir=tmp_path, progress=False)


def test_training_lowers_the_loss(survey):
    sched = gw.diffusion.NoiseSchedule.linear(100)
    ckpt = gw.train(_model(), sched, survey, steps=60, batch_size=8, lr=2e-3, warmup_steps=5,
                    progress=False)
    loss = ckpt.history.loss.to_numpy()
    assert loss[-10:].mean() < 0.7 * loss[:10].mean()


def test_bad_inputs(survey, tmp_path):
    sched = gw.diffusion.NoiseSchedule.linear(100)
    with pytest.raises(FileNotFoundError, match="path: no checkpoint file"):
        gw.load_checkpoint(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"path: .* not a readable"):
        gw.load_checkpoint(tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match="data: has 1 bands"):
        gw.train(_model(), sched, survey.images[:, :1], steps=1, progress=False)
    with pytest.raises(ValueError, match="steps"):
        gw.train(_model(), sched, survey, steps=0, progress=False)
    with pytest.raises(ValueError, match="cond: the model expects"):
        gw.train(gw.models.UNet(cond_dim=1, **TINY_UNET), sched, survey, steps=1, progress=False)


def test_condition_centre_and_scale_reach_the_network_and_round_trip(tmp_path, survey):
    """``cond_center``/``cond_scale`` standardise the condition inside the network: a model with
    them equals one without, fed the standardised value; the checkpoint keeps them."""
    torch.manual_seed(0)
    scaled = gw.models.UNet(in_channels=3, base_channels=8, channel_mults=(1, 2), attention_levels=(),
                            cond_dim=1, cond_center=0.07, cond_scale=0.03)
    plain = gw.models.UNet(**{**scaled.config, "cond_center": 0.0, "cond_scale": 1.0})
    plain.load_state_dict(scaled.state_dict())
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([3, 40])
    z = torch.tensor([[0.04], [0.1]])
    with torch.no_grad():
        torch.testing.assert_close(scaled(x, t, cond=z), plain(x, t, cond=(z - 0.07) / 0.03))
    from galwidgets.checkpoints import save_checkpoint

    path = save_checkpoint(tmp_path / "c.safetensors", scaled,
                           gw.diffusion.NoiseSchedule.linear(50),
                           gw.data.AsinhStretch.fit(survey.images), {"data": {}})
    loaded = gw.load_checkpoint(path, device="cpu").model
    assert loaded.config["cond_center"] == 0.07 and loaded.config["cond_scale"] == 0.03
    with pytest.raises(ValueError, match="cond_scale"):
        gw.models.UNet(cond_dim=1, cond_scale=0.0)
