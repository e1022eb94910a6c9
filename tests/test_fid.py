"""Fréchet distances, KID, the offline Inception-v3 and the Fréchet morphology distance."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

import galwidgets as gw
from galwidgets.metrics import _inception
from galwidgets.metrics.fid import _stretch

fd = gw.metrics.frechet_distance


def _spd(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# ---------------------------------------------------------------------------------------------
# Fréchet distance


@pytest.mark.parametrize("method", ["sqrtm", "eigh"])
def test_frechet_identical_statistics_is_zero(method):
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=16), _spd(16, rng)
    assert fd(mu, sigma, mu, sigma, method=method) == pytest.approx(0, abs=1e-8)


@pytest.mark.parametrize("method", ["sqrtm", "eigh"])
def test_frechet_closed_form_diagonal(method):
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    s1, s2 = rng.uniform(0.1, 3, 8), rng.uniform(0.1, 3, 8)  # standard deviations
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1**2 + s2**2 - 2 * s1 * s2)
    assert fd(mu1, np.diag(s1**2), mu2, np.diag(s2**2), method=method) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", ["sqrtm", "eigh"])
def test_frechet_closed_form_commuting_full_matrices(method):
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    a, b = rng.uniform(0.1, 4, 10), rng.uniform(0.1, 4, 10)
    sigma1, sigma2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    assert fd(mu1, sigma1, mu2, sigma2, method=method) == pytest.approx(expected, rel=1e-8)


def test_frechet_scalar_gaussians():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert fd([1.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(4 + 1)


def test_low_rank_feature_path_equals_covariance_path():
    from galwidgets.metrics.fid import _frechet_from_features

    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(7, 30)), rng.normal(size=(5, 30)) * 2 + 0.3
    exact = fd(*gw.metrics.gaussian_statistics(a), *gw.metrics.gaussian_statistics(b), method="eigh")
    assert _frechet_from_features(a, b, "eigh") == pytest.approx(exact, rel=1e-7)  # eigh: sqrt of round-off


def test_frechet_methods_agree():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(300, 64)), rng.normal(size=(300, 64)) * 1.2 + 0.1
    stats = (*gw.metrics.gaussian_statistics(x), *gw.metrics.gaussian_statistics(y))
    assert fd(*stats, method="sqrtm") == pytest.approx(fd(*stats, method="eigh"), rel=1e-6)


@pytest.mark.parametrize("method", ["sqrtm", "eigh"])
def test_frechet_singular_covariances_are_stable(method):
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(6, 40)), rng.normal(size=(5, 40)) + 0.5  # fewer samples than dimensions
    mu1, s1 = gw.metrics.gaussian_statistics(a)
    mu2, s2 = gw.metrics.gaussian_statistics(b)
    assert np.linalg.matrix_rank(s1) < 40
    value = fd(mu1, s1, mu2, s2, method=method)
    assert np.isfinite(value) and value > 0
    assert fd(mu1, s1, mu1, s1, method=method) == pytest.approx(0, abs=1e-4)
    rank_one = np.outer(np.ones(40), np.ones(40))  # singular product
    assert np.isfinite(fd(mu1, rank_one, mu2, np.eye(40), method=method))


def test_frechet_rejects_non_psd_and_bad_shapes():
    with pytest.raises(ValueError, match="imaginary"):
        fd(np.zeros(3), np.eye(3), np.zeros(3), -np.eye(3))
    with pytest.raises(ValueError, match="sigma2"):
        fd(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="mu2"):
        fd(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="sigma1"):
        fd(np.zeros(3), np.full((3, 3), np.nan), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="method"):
        fd(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3), method="svd")


def test_gaussian_statistics():
    x = np.random.default_rng(5).normal(size=(50, 4))
    mu, sigma = gw.metrics.gaussian_statistics(torch.from_numpy(x))
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False))
    with pytest.raises(ValueError, match="features"):
        gw.metrics.gaussian_statistics(x[:1])


# ---------------------------------------------------------------------------------------------
# KID


def _mmd2_loops(x: np.ndarray, y: np.ndarray) -> float:
    d, m = x.shape[1], len(x)
    k = lambda u, v: (u @ v / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    return xx + yy - 2 * xy


def test_kid_matches_definition():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.3
    mean, std = gw.metrics.kid(x, y, subsets=3, subset_size=12)  # whole sets: same value thrice
    assert mean == pytest.approx(_mmd2_loops(x, y), rel=1e-10)
    assert std == pytest.approx(0, abs=1e-10)


def test_kid_same_distribution_near_zero_and_shift_positive():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(400, 32)), rng.normal(size=(400, 32))
    mean, std = gw.metrics.kid(a, b, subsets=20, subset_size=200)
    assert abs(mean) < 0.01 and abs(mean) < 3 * std + 1e-3
    shifted, _ = gw.metrics.kid(a, b + 0.5, subsets=20, subset_size=200)
    assert shifted > 0.05 and shifted > 10 * abs(mean)
    with pytest.raises(ValueError, match="features_b"):
        gw.metrics.kid(a, b[:, :3])


# ---------------------------------------------------------------------------------------------
# Inception-v3

#: Verified against torchvision's Inception3 source (aux_logits=False).
EXPECTED_SHAPES = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.running_mean": (32,),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
    "Mixed_7a.branch7x7x3_3.conv.weight": (192, 192, 7, 1),
    "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
    "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch_pool.bn.running_var": (192,),
    "fc.weight": (1000, 2048),
    "fc.bias": (1000,),
}


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A state dict of a randomly initialised Inception-v3 saved as safetensors."""
    torch.manual_seed(0)
    net = _inception.InceptionV3()
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:  # calibrate batch norm on noise so that activations neither vanish nor explode
        bn.momentum = None
    with torch.no_grad():
        net.train()(torch.rand(4, 3, 299, 299) * 2 - 1)
    path = tmp_path_factory.mktemp("inception") / "random.safetensors"
    save_file(net.state_dict(), str(path))
    return path


def test_inception_architecture_matches_torchvision():
    net = _inception.InceptionV3()
    state = net.state_dict()
    assert len(state) == 566  # 94 BasicConv2d x (conv.weight + 5 bn entries) + fc.weight/bias
    assert sum(p.numel() for p in net.parameters()) == 23_834_568
    assert sum(p.numel() for k, p in net.named_parameters() if not k.startswith("fc.")) == 21_785_568
    for key, shape in EXPECTED_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    assert all(m.eps == 0.001 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not any(k.startswith("AuxLogits") for k in state)


def test_inception_keys_equal_torchvision_when_available():
    models = pytest.importorskip("torchvision.models")
    theirs = models.inception_v3(weights=None, aux_logits=False, init_weights=False).state_dict()
    ours = _inception.InceptionV3().state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


def test_inception_outputs_pool3_features():
    torch.manual_seed(0)
    net = _inception.InceptionV3().eval()
    with torch.inference_mode():
        feats = _inception.pool3_features(net, torch.rand(2, 3, 299, 299) * 2 - 1)
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all()


def test_weights_round_trip(tmp_path, random_weights):
    net = gw.metrics.load_inception(random_weights, device="cpu")
    state = _inception.load_state_dict_file(random_weights)
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key
    # like torchvision's google file: a .pth with AuxLogits.* and without num_batches_tracked
    legacy = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    legacy["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    torch.save(legacy, tmp_path / _inception.WEIGHTS_FILE)
    loaded = gw.metrics.load_inception(tmp_path / _inception.WEIGHTS_FILE, device="cpu")
    assert torch.equal(loaded.Mixed_7c.branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"])


def test_wrong_weights_file_raises(tmp_path):
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="weights"):
        gw.metrics.load_inception(tmp_path / "other.pth", device="cpu")


def test_missing_weights_raise_file_not_found(tmp_path, monkeypatch):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match=r"nope\.pth") as info:
        gw.metrics.load_inception(missing)
    assert _inception.WEIGHTS_URL in str(info.value)
    monkeypatch.setenv(_inception.ENV_VAR, str(tmp_path / "env.pth"))
    with pytest.raises(FileNotFoundError, match=r"env\.pth"):
        gw.metrics.load_inception()
    monkeypatch.delenv(_inception.ENV_VAR)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError) as info:
        gw.metrics.load_inception()
    assert str(tmp_path / "hub" / "checkpoints" / _inception.WEIGHTS_FILE) in str(info.value)


def test_stretch_maps_flux_to_unit_interval():
    flux = torch.tensor([-1.0, -0.06, 0.0, 0.02, 1.0, 20.0, 100.0]).reshape(1, 1, 1, -1)
    u = _stretch(flux, torch.tensor([0.02]), torch.tensor([20.0]))[0, 0, 0]
    assert u[0] == 0 and u[1] == 0 and u[-2] == 1 and u[-1] == 1
    assert torch.all(u[1:-1].diff() > 0) and 0 < u[2] < 0.5


def test_fid_per_band_with_random_weights(random_weights):
    a = gw.data.simulate_survey(2, size=32, seed=0, progress=False)
    b = gw.data.simulate_survey(3, size=32, seed=1, progress=False)
    feats = gw.metrics.inception_features(b, weights=random_weights, batch_size=9, device="cpu",
                                          progress=False)
    assert set(feats) == {"g", "r", "z"} and feats["r"].shape == (3, 2048)
    result = gw.metrics.fid(a, feats, weights=random_weights, batch_size=6, device="cpu",
                            progress=False, kid=True, method="eigh")
    assert set(result) >= {"g", "r", "z", "mean", "kid_g", "kid_std_g", "kid_mean"}
    assert all(np.isfinite(v) for v in result.values()) and result["mean"] > 0
    assert not np.allclose(feats["g"], feats["z"])  # bands are scored separately
    assert result["mean"] == pytest.approx(np.mean([result[k] for k in "grz"]))
    same = gw.metrics.fid(feats, feats, method="eigh")
    assert same["mean"] < 1e-6 * result["mean"]
    with pytest.raises(ValueError, match="b"):
        gw.metrics.fid(a, np.zeros((2, 3, 32)), weights=random_weights, progress=False)


# ---------------------------------------------------------------------------------------------
# Fréchet morphology distance


@pytest.fixture(scope="module")
def mock():
    return gw.data.simulate_survey(60, size=48, seed=3, progress=False)


def test_morphology_features(mock):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = gw.metrics.morphology_features(mock)
    assert any("dropped" in str(w.message) for w in caught) == (table.attrs["n_dropped"] > 0)
    expected = ["mag_g", "mag_r", "mag_z", "g-r", "r-z", "r_half"]
    assert list(table.columns[:6]) == expected
    assert table.notna().all().all() and table.attrs["n_total"] == 60
    assert len(table) == 60 - table.attrs["n_dropped"]
    if hasattr(gw.metrics, "gini_m20"):
        assert {"gini", "m20"} <= set(table.columns)


@pytest.mark.filterwarnings("ignore:morphology_features. dropped")
def test_feature_table_from_measurements_equals_measuring_again(mock):
    phot = gw.metrics.photometry(mock)
    morph = gw.metrics.gini_m20(mock, band="r", progress=False)
    table = gw.metrics.morphology_feature_table(phot, morph)
    pd.testing.assert_frame_equal(table, gw.metrics.morphology_features(mock))
    first, second = mock.split_indices(0.5, seed=4)  # a split-half baseline from the same table
    halves = [table.loc[table.index.intersection(part)] for part in (first, second)]
    expected = gw.metrics.frechet_morphology_distance(*mock.split(0.5, seed=4))
    assert gw.metrics.frechet_morphology_distance(*halves) == pytest.approx(expected, rel=1e-9)
    assert list(gw.metrics.morphology_feature_table(phot, None).columns)[-1] == "r_half"
    with pytest.raises(ValueError, match="gini_m20: expected columns gini and m20 for the 60"):
        gw.metrics.morphology_feature_table(phot, morph[:10])
    with pytest.raises(ValueError, match="photometry: expected the columns"):
        gw.metrics.morphology_feature_table(phot[["flag"]], morph)
    with pytest.raises(TypeError, match="photometry: expected a DataFrame"):
        gw.metrics.morphology_feature_table(mock.images, morph)


@pytest.mark.filterwarnings("ignore:morphology_features. dropped")
def test_frechet_morphology_distance(mock):
    table = gw.metrics.morphology_features(mock)
    assert gw.metrics.frechet_morphology_distance(table, table) == pytest.approx(0, abs=1e-6)
    brighter = gw.metrics.frechet_morphology_distance(mock.images * 2.0, table)
    slightly = gw.metrics.frechet_morphology_distance(mock.images * 1.1, table)
    assert brighter > slightly > 0.01 and brighter > 1
    with pytest.raises(ValueError, match="b"):
        gw.metrics.frechet_morphology_distance(table, table[["mag_g"]])


def test_frechet_morphology_distance_of_unmeasurable_sets_is_nan(mock):
    noise = np.random.default_rng(0).normal(0, 1e-3, (6, 3, 64, 64)).astype(np.float32)
    with pytest.warns(UserWarning, match="need at least 2 on each side"):
        value = gw.metrics.frechet_morphology_distance(noise, mock)
    assert np.isnan(value)


@pytest.mark.filterwarnings("ignore:morphology_features. dropped")
def test_frechet_morphology_distance_streams_stores(mock, tmp_path, monkeypatch):
    import galwidgets.metrics.chunked as chunked

    monkeypatch.setattr(chunked, "STORE_CHUNK", 16)
    a, b = mock[:30], mock[30:]
    store_a = gw.data.open_store(a.save(tmp_path / "a.h5"))
    store_b = gw.data.open_store(b.save(tmp_path / "b.h5"))
    assert gw.metrics.frechet_morphology_distance(store_a, store_b) == \
        gw.metrics.frechet_morphology_distance(a, b)


def test_fid_streams_stores_with_running_statistics(mock, random_weights, tmp_path, monkeypatch):
    import galwidgets.metrics.chunked as chunked

    monkeypatch.setattr(chunked, "STORE_CHUNK", 2)  # running mean and covariance over 3 chunks
    from galwidgets.metrics.fid import _store_statistics

    opts = {"weights": random_weights, "batch_size": 15, "device": "cpu", "progress": False}
    small = gw.data.open_store(mock[:5].save(tmp_path / "small.h5"))
    running = _store_statistics(small, None, opts, kid_sample=3)
    features = gw.metrics.inception_features(mock[:5], **opts)
    for band in "grz":
        mean, cov = running[band].statistics(band)
        expected_mean, expected_cov = gw.metrics.gaussian_statistics(features[band])
        np.testing.assert_allclose(mean, expected_mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(cov, expected_cov, rtol=1e-7, atol=1e-10)
        assert len(np.concatenate(running[band].sample)) == 3  # the KID sample


@pytest.mark.slow  # ~40 s on 2 busy cores: two eigendecompositions of 2048x2048 covariances
def test_fid_of_two_stores_equals_the_in_memory_distance(mock, random_weights, tmp_path, monkeypatch):
    import galwidgets.metrics.chunked as chunked

    monkeypatch.setattr(chunked, "STORE_CHUNK", 2)
    opts = {"weights": random_weights, "batch_size": 15, "device": "cpu", "progress": False}
    features = gw.metrics.inception_features(mock[:5], **opts)
    one_band = gw.data.Survey(mock.images[5:9, 1:2], None, ("r",), mock.pixel_scale)
    r_store = gw.data.open_store(one_band.save(tmp_path / "r.h5"))
    r_small = gw.data.open_store(gw.data.Survey(mock.images[:5, 1:2], None, ("r",),
                                                mock.pixel_scale).save(tmp_path / "r5.h5"))
    streamed = gw.metrics.fid(r_small, r_store, method="eigh", kid=True, kid_sample=3, **opts)
    fb = gw.metrics.inception_features(one_band, **opts)["r"]
    exact = gw.metrics.frechet_distance(*gw.metrics.gaussian_statistics(features["r"]),
                                        *gw.metrics.gaussian_statistics(fb), method="eigh")
    assert streamed["r"] == pytest.approx(exact, rel=1e-6) and np.isfinite(streamed["kid_r"])
