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


def test_a_resumed_run_keeps_its_normalizer_when_the_data_changes(survey, tmp_path):
    """Resuming on other data (a later phase oversampling part of the survey) must not refit the
    normalizer: the network would go on learning in another model space."""
    sched = gw.diffusion.NoiseSchedule.linear(100)
    first = gw.train(_model(), sched, survey, steps=2, batch_size=4, checkpoint_dir=tmp_path, progress=False)
    brighter = survey[np.arange(len(survey))]
    brighter.images = brighter.images * 10
    assert gw.data.AsinhStretch.fit(brighter.images) != first.normalizer  # a refit would differ
    resumed = gw.train(_model(), sched, brighter, steps=3, batch_size=4, checkpoint_dir=tmp_path,
                       progress=False)
    assert resumed.normalizer == first.normalizer and resumed.config["step"] == 3
    assert resumed.config["normalizer"] == first.normalizer.to_config()
    with pytest.raises(ValueError, match=r"normalizer: AsinhStretch.* differs from .*step_0000003"):
        gw.train(_model(), sched, brighter, steps=4, batch_size=4, checkpoint_dir=tmp_path, progress=False,
                 normalizer=gw.data.AsinhStretch.fit(brighter.images))
    fresh = gw.train(_model(), sched, brighter, steps=1, batch_size=4, checkpoint_dir=tmp_path,
                     progress=False, resume=False)
    assert fresh.normalizer != first.normalizer  # without resuming, fitted to the data given


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


# -- streaming from an on-disk store -------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(survey, tmp_path_factory):
    """The session survey (24 galaxies, 32x32, g r z) as an on-disk store."""
    return gw.data.open_store(survey.save(tmp_path_factory.mktemp("store") / "survey.h5"))


def test_sharded_batches_cover_each_epoch_once_across_ranks():
    from galwidgets.data.streaming import ShardedBatchSampler

    n, batch = 50, 12  # 4 batches per epoch; 2 galaxies left out of each epoch
    ranks = [list(ShardedBatchSampler(n, batch, rank=r, world_size=3, seed=7, stop=8)) for r in range(3)]
    single = list(ShardedBatchSampler(n, batch, seed=7, stop=8))
    for b in range(8):
        parts = [ranks[r][b] for r in range(3)]
        assert all(len(p) == 4 for p in parts)
        assert np.array_equal(np.concatenate(parts), single[b])  # rank slices make the global batch
    for epoch in range(2):
        seen = np.concatenate([single[b] for b in range(4 * epoch, 4 * epoch + 4)])
        assert len(seen) == 48 and len(np.unique(seen)) == 48  # no galaxy twice in an epoch
    assert not np.array_equal(np.sort(single[0]), np.sort(single[4]))  # a new permutation per epoch
    resumed = list(ShardedBatchSampler(n, batch, seed=7, start=5, stop=8))
    assert all(np.array_equal(a, b) for a, b in zip(resumed, single[5:]))
    with pytest.raises(ValueError, match="batch_size: the global batch of 12 must be divisible by the 5"):
        ShardedBatchSampler(n, batch, world_size=5)
    with pytest.raises(ValueError, match="batch_size: 60 is larger than the 50 galaxies"):
        ShardedBatchSampler(n, 60)


def _dropout_model():
    torch.manual_seed(0)
    return gw.models.UNet(**TINY_UNET, dropout=0.2)  # dropout masks come from the global generator


def test_streamed_training_reads_in_workers_and_resumes_exactly(store, tmp_path):
    sched = gw.diffusion.NoiseSchedule.linear(100)
    kwargs = dict(batch_size=8, progress=False, autocast=False)
    _model = _dropout_model
    here = gw.train(_model(), sched, store, steps=6, num_workers=0, **kwargs)
    workers = gw.train(_model(), sched, store, steps=6, num_workers=2, **kwargs)
    assert workers.history.loss.tolist() == here.history.loss.tolist()
    for (name, p), q in zip(here.model.state_dict().items(), workers.model.state_dict().values()):
        assert torch.equal(p, q), name
    gw.train(_model(), sched, store, steps=4, checkpoint_dir=tmp_path, checkpoint_every=2, **kwargs)
    resumed = gw.train(_model(), sched, store, steps=6, checkpoint_dir=tmp_path, checkpoint_every=2, **kwargs)
    assert resumed.history.loss.tolist() == here.history.loss.tolist()
    for (name, p), q in zip(here.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name
    position = resumed.config["training"]["data_position"]  # 24 galaxies, 3 batches per epoch
    assert position == {"epoch": 2, "batch_in_epoch": 0, "batches_per_epoch": 3, "n_galaxies": 24,
                        "batch_size": 8, "seed": 0}
    assert resumed.config["data"]["n_train"] == 24 and resumed.config["data"]["size"] == 32


def test_streamed_batches_are_the_store_galaxies_without_replacement(store, survey):
    """What the model sees: each epoch every galaxy once, normalised, flipped or turned."""
    from galwidgets.training.streaming import store_batches

    norm = gw.data.AsinhStretch.fit(survey.images)
    loader, _ = store_batches(store, norm, 8, seed=3, stop=6, num_workers=2)
    rows = [r.numpy() for _, r in loader]
    for epoch in range(2):
        assert sorted(np.concatenate(rows[3 * epoch:3 * epoch + 3]).tolist()) == list(range(24))
    loader, _ = store_batches(store, norm, 8, seed=3, stop=1, num_workers=0)
    x, r = next(iter(loader))
    np.testing.assert_allclose(x.numpy(), norm.forward(survey.images[r.numpy()]), rtol=1e-6)


def test_streaming_rejects_stores_the_model_cannot_use(survey, store, tmp_path):
    sched = gw.diffusion.NoiseSchedule.linear(100)
    two_bands = gw.data.Survey(survey.images[:, :2], survey.catalog, ("g", "r"), survey.pixel_scale)
    with pytest.raises(ValueError, match=r"data: the store gr.h5 has 2 bands \('g', 'r'\) but the model"):
        gw.train(_model(), sched, gw.data.open_store(two_bands.save(tmp_path / "gr.h5")), steps=1,
                 batch_size=4, progress=False)
    odd = survey.with_images(survey.images[:, :, :31, :31], survey.catalog)
    with pytest.raises(ValueError, match="data: 31-px stamps cannot pass the U-Net's 1 halvings"):
        gw.train(_model(), sched, gw.data.open_store(odd.save(tmp_path / "odd.h5")), steps=1, batch_size=4,
                 progress=False)
    five = gw.data.AsinhStretch(softening=[0.01] * 5, upper=[1.0] * 5)
    with pytest.raises(ValueError, match="normalizer: does not fit the store's 3 bands"):
        gw.train(_model(), sched, store, steps=1, batch_size=4, normalizer=five, progress=False)
    with pytest.raises(ValueError, match="batch_size: 32 is larger than the 24 galaxies"):
        gw.train(_model(), sched, store, steps=1, batch_size=32, progress=False)
    gw.train(_model(), sched, store, steps=1, batch_size=4, checkpoint_dir=tmp_path / "c", progress=False)
    fewer = gw.data.open_store(survey[:20].save(tmp_path / "fewer.h5"))
    with pytest.raises(ValueError, match="data: the checkpoint in checkpoint_dir streamed a store of 24"):
        gw.train(_model(), sched, fewer, steps=2, batch_size=4, checkpoint_dir=tmp_path / "c", progress=False)
    other_bands = gw.data.Survey(survey.images, survey.catalog, ("g", "r", "i"), survey.pixel_scale)
    with pytest.raises(ValueError, match=r"data: the checkpoint .* trained on bands \['g', 'r', 'z'\]"):
        gw.train(_model(), sched, gw.data.open_store(other_bands.save(tmp_path / "gri.h5")), steps=2,
                 batch_size=4, checkpoint_dir=tmp_path / "c", progress=False)


def test_fixed_size_models_refuse_a_store_of_another_stamp_size(store, tmp_path):
    """A VAE built for 16-px stamps given the 32-px store, through train_vae and gw.train's checks."""
    vae = gw.models.VAE(in_channels=3, image_size=16, base_channels=4, latent_dim=4)
    with pytest.raises(ValueError, match="data: expected 16x16 images for this model, got 32x32"):
        gw.training.train_vae(vae, store, steps=1, batch_size=4, progress=False)
    five_bands = gw.models.VAE(in_channels=5, image_size=32, base_channels=4, latent_dim=4)
    with pytest.raises(ValueError, match=r"data: the store survey.h5 has 3 bands .* but the model expects 5"):
        gw.training.train_vae(five_bands, store, steps=1, batch_size=4, progress=False)
    assert len(store) == 24  # the store is only read


def test_dihedral_augmentation_turns_and_flips_each_image_as_drawn():
    from galwidgets.training.common import apply_dihedral, dihedral_draws, random_dihedral

    x = torch.arange(4 * 2 * 3 * 3, dtype=torch.float32).reshape(4, 2, 3, 3)
    k, flip = torch.tensor([0, 1, 2, 3]), torch.tensor([False, False, True, True])
    out = apply_dihedral(x, k, flip)
    assert torch.equal(out[0], x[0]) and torch.equal(out[1], torch.rot90(x[1], 1, dims=(-2, -1)))
    assert torch.equal(out[3], torch.rot90(x[3].flip(-1), 3, dims=(-2, -1)))
    wide = torch.ones(2, 1, 3, 5).cumsum(-1)  # not square: flips only, never turned
    turned = apply_dihedral(wide, torch.tensor([1, 1]), torch.tensor([True, False]))
    assert torch.equal(turned[0], wide[0].flip(-1)) and torch.equal(turned[1], wide[1])
    drawn = apply_dihedral(x, *dihedral_draws(4, torch.Generator().manual_seed(7)))
    assert torch.equal(random_dihedral(x, torch.Generator().manual_seed(7)), drawn)  # in memory = streamed
    assert sorted(out.flatten().tolist()) == sorted(x.flatten().tolist())
