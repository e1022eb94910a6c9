"""Band translation: architecture, channel selection by band name, paired and CycleGAN training,
checkpoint round trip and :func:`translate` in flux."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import galwidgets as gw
from galwidgets.models import MODELS, BandTranslator, train_translator, translate
from galwidgets.models.translator import band_normalizer, cycle_step, paired_step

TINY = {"base_channels": 4, "n_blocks": 2}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def uvir() -> gw.data.Survey:
    """16 mock galaxies imaged in FUV NUV u g r i z K, 32x32 px."""
    return gw.data.simulate_survey(16, size=32, seed=5, instrument="uv-ir", progress=False)


def _reordered(survey: gw.data.Survey, order: list[int]) -> gw.data.Survey:
    return gw.data.Survey(images=survey.images[:, order].copy(), catalog=survey.catalog,
                          bands=tuple(survey.bands[i] for i in order), pixel_scale=survey.pixel_scale)


def test_thesis_architecture():
    model = BandTranslator(("u",), ("K",), base_channels=8)
    gen = model.generator
    convs = [m for m in gen.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == (7, 7) and convs[-1].kernel_size == (7, 7)
    assert sum(c.stride == (2, 2) for c in convs) == 1  # one down-sampling block
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in gen.modules()) == 1  # one up-sampling
    assert sum(type(m).__name__ == "ResidualBlock" for m in gen.modules()) == 9
    assert not hasattr(model, "inverse") and not hasattr(model, "discriminator_out")
    assert MODELS["BandTranslator"] is BandTranslator
    assert model.config["in_bands"] == ["u"] and model.config["out_bands"] == ["K"]


@pytest.mark.parametrize(("in_bands", "out_bands"), [(("u",), ("K",)), (("FUV", "K"), ("g", "r", "z")),
                                                     (("B", "R"), ("NUV", "FUV"))])
def test_forward_shapes(in_bands, out_bands):
    model = BandTranslator(in_bands, out_bands, **TINY)
    y = model(torch.zeros(2, len(in_bands), 16, 16))
    assert y.shape == (2, len(out_bands), 16, 16)
    with pytest.raises(ValueError, match="x: expected shape"):
        model(torch.zeros(2, len(in_bands) + 1, 16, 16))
    with pytest.raises(ValueError, match="divisible by 2"):
        model(torch.zeros(2, len(in_bands), 15, 15))


@pytest.mark.parametrize(("kwargs", "match"), [({"in_bands": ()}, "in_bands"),
                                               ({"out_bands": ("g", "g")}, "out_bands"),
                                               ({"norm": "group"}, "norm"),
                                               ({"n_downsampling": -1}, "n_downsampling"),
                                               ({"n_blocks": 0}, "n_blocks")])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BandTranslator(**kwargs)


def test_band_normalizer_picks_each_bands_scale(uvir):
    norm = gw.data.AsinhStretch.fit(uvir.images)
    sub = band_normalizer(norm, uvir.bands, ("K", "u"))
    full = norm.forward(uvir.images)
    np.testing.assert_allclose(sub.forward(uvir.images[:, [7, 2]]), full[:, [7, 2]], rtol=1e-6, atol=1e-7)
    scalar = gw.data.ClipMinMax(clip=3.0)
    assert band_normalizer(scalar, uvir.bands, ("K",)) == scalar


def test_channels_selected_by_band_name(uvir):
    """Shuffling the survey's band order changes nothing: channels are picked by name."""
    order = [7, 3, 0, 5, 2, 6, 1, 4]
    runs = []
    for survey in (uvir, _reordered(uvir, order)):
        torch.manual_seed(0)
        model = BandTranslator(("u",), ("K",), **TINY)
        runs.append(train_translator(model, survey, 3, 4, progress=False))
    np.testing.assert_array_equal(runs[0].history["loss"], runs[1].history["loss"])
    a, b = (translate(ckpt, uvir).images for ckpt in runs)
    np.testing.assert_array_equal(a, b)


def test_paired_batches_are_input_and_target_of_the_same_galaxy(uvir, monkeypatch):
    seen = []

    def spy(model, a, b, optimizer, loss):
        seen.append((a, b))
        return paired_step(model, a, b, optimizer, loss)

    monkeypatch.setattr("galwidgets.training.baselines.paired_step", spy)
    model = BandTranslator(("u",), ("K",), **TINY)
    ckpt = train_translator(model, uvir, 1, 6, augment=False, progress=False)
    x = torch.from_numpy(ckpt.normalizer.forward(uvir.images))
    a, b = seen[0]
    assert a.shape == b.shape == (6, 1, 32, 32)
    for a_i, b_i in zip(a, b):
        galaxy = int(torch.argmin((x[:, 2] - a_i[0]).abs().sum(dim=(1, 2))))
        assert torch.equal(x[galaxy, 2], a_i[0]) and torch.equal(x[galaxy, 7], b_i[0])


def test_missing_band_is_a_clear_error(uvir):
    model = BandTranslator(("u",), ("Y",), **TINY)
    with pytest.raises(ValueError, match=r"no band\(s\) \['Y'\]"):
        train_translator(model, uvir, 1, 2, progress=False)
    ckpt = train_translator(BandTranslator(("u",), ("K",), **TINY), uvir, 1, 2, progress=False)
    only_g = _reordered(uvir, [3])
    with pytest.raises(ValueError, match=r"data: .*no band\(s\) \['u'\]"):
        translate(ckpt, only_g)
    with pytest.raises(TypeError, match="Survey"):
        train_translator(model, uvir.images, 1, 2, progress=False)


def test_paired_loss_decreases(uvir):
    torch.manual_seed(0)
    model = BandTranslator(("u",), ("K",), **TINY)
    ckpt = train_translator(model, uvir, 30, 4, lr=2e-3, progress=False)
    loss = ckpt.history["loss"].to_numpy()
    assert loss[-5:].mean() < 0.6 * loss[:5].mean()


@pytest.mark.parametrize("loss", ["l1", "mse"])
def test_checkpoint_round_trip_and_translate(uvir, tmp_path, loss):
    torch.manual_seed(1)
    model = BandTranslator(("FUV", "K"), ("g", "r", "z"), **TINY)
    ckpt = train_translator(model, uvir, 2, 4, loss=loss, checkpoint_dir=tmp_path, progress=False)
    assert ckpt.config["training"]["loss"] == loss and ckpt.schedule is None
    assert ckpt.bands == uvir.bands  # the normalizer covers every band of the training survey
    loaded = gw.load_checkpoint(tmp_path / "step_0000002.safetensors", device="cpu")
    out = translate(ckpt, uvir)
    assert out.images.shape == (16, 3, 32, 32) and out.bands == ("g", "r", "z")
    assert out.pixel_scale == uvir.pixel_scale and len(out.catalog) == 16
    np.testing.assert_array_equal(translate(loaded, uvir).images, out.images)
    # flux units: the inverse of the target bands' scales, not model space
    norm_out = band_normalizer(ckpt.normalizer, ckpt.bands, ("g", "r", "z"))
    np.testing.assert_allclose(norm_out.forward(out.images),
                               ckpt.model(torch.from_numpy(band_normalizer(
                                   ckpt.normalizer, ckpt.bands, ("FUV", "K")).forward(
                                   uvir.images[:, [0, 7]]))).detach().numpy(), atol=1e-5)


def test_translate_arrays_and_bare_models(uvir):
    ckpt = train_translator(BandTranslator(("u",), ("K",), **TINY), uvir, 1, 4, progress=False)
    expected = translate(ckpt, uvir).images
    u_only = uvir.images[:, [2]]
    np.testing.assert_array_equal(translate(ckpt, u_only).images, expected)  # bands default to in_bands
    batched = translate(ckpt, uvir.images, bands=uvir.bands, batch_size=3).images  # other batch: rounding
    np.testing.assert_allclose(batched, expected, rtol=1e-5, atol=1e-6)
    ckpt.model.train()  # translate evaluates in eval mode (BatchNorm running statistics) and restores it
    bare = translate(ckpt.model, uvir, normalizer=ckpt.normalizer, batch_size=32)
    np.testing.assert_array_equal(bare.images, expected)
    assert ckpt.model.training
    with pytest.raises(ValueError, match="normalizer"):
        translate(ckpt.model, uvir)
    with pytest.raises(TypeError, match="checkpoint_or_model"):
        translate(gw.models.UNet(), uvir)


def test_cycle_builds_and_trains(uvir, tmp_path):
    torch.manual_seed(0)
    paired = BandTranslator(("u",), ("K",), **TINY)
    model = BandTranslator(("u",), ("K",), cycle=True, **TINY)
    assert sum(p.numel() for p in model.parameters()) > 2 * sum(p.numel() for p in paired.parameters())
    with pytest.raises(ValueError, match="cycle"):
        train_translator(paired, uvir, 1, 4, cycle=True, progress=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ckpt = train_translator(model, uvir, 2, 4, cycle=True, checkpoint_dir=tmp_path, progress=False)
    for part in ("generator", "inverse", "discriminator_in", "discriminator_out"):
        key = next(k for k in before if k.startswith(part) and k.endswith("weight"))
        assert not torch.equal(before[key], model.state_dict()[key]), part
    hist = ckpt.history
    assert {"loss_d", "adversarial", "cycle", "identity", "l1_paired"} <= set(hist.columns)
    assert (hist["identity"] > 0).all()  # one band each way: the identity term applies
    loaded = gw.load_checkpoint(tmp_path / "step_0000002.safetensors", device="cpu")
    np.testing.assert_array_equal(translate(loaded, uvir).images, translate(ckpt, uvir).images)


def test_cycle_identity_skipped_when_band_counts_differ(uvir):
    torch.manual_seed(0)
    model = BandTranslator(("FUV", "K"), ("g", "r", "z"), cycle=True, **TINY)
    ckpt = train_translator(model, uvir, 1, 4, cycle=True, progress=False)
    assert (ckpt.history["identity"] == 0).all()


def test_cycle_pairs_are_shuffled(uvir, monkeypatch):
    """In unpaired training the targets of a batch are not the inputs' own galaxies."""
    seen = []

    def spy(model, a, b, optimizers, lambda_cycle, lambda_identity, b_paired=None):
        seen.append((b, b_paired))
        return cycle_step(model, a, b, optimizers, lambda_cycle, lambda_identity, b_paired)

    monkeypatch.setattr("galwidgets.training.baselines.cycle_step", spy)
    model = BandTranslator(("u",), ("K",), cycle=True, **TINY)
    train_translator(model, uvir, 1, 8, cycle=True, augment=False, progress=False)
    b, b_paired = seen[0]
    assert (b != b_paired).flatten(1).any(dim=1).all()  # a derangement: no galaxy keeps its own target
    assert torch.equal(b.sum(dim=(1, 2, 3)).sort().values, b_paired.sum(dim=(1, 2, 3)).sort().values)


def test_cycle_needs_large_enough_images():
    small = gw.data.simulate_survey(4, size=16, pixel_scale=1.0, seed=0, instrument="uv-ir", progress=False)
    model = BandTranslator(("u",), ("K",), cycle=True, **TINY)
    with pytest.raises(ValueError, match="patch_layers"):
        train_translator(model, small, 1, 2, cycle=True, progress=False)
    model = BandTranslator(("u",), ("K",), cycle=True, patch_layers=2, **TINY)
    train_translator(model, small, 1, 2, cycle=True, progress=False)
