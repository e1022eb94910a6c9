import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from skimage.metrics import structural_similarity

import galwidgets as gw
from galwidgets.metrics import NN_FLAGS


def noisy(images, sigma=0.02, seed=0):
    rng = np.random.default_rng(seed)
    return (images + rng.normal(0, sigma, images.shape)).astype(np.float32)


def test_ssim_of_identical_images_is_one(survey):
    values = gw.metrics.ssim(survey, survey.images.copy())
    assert values.shape == (len(survey.images),)
    np.testing.assert_allclose(values, 1.0, atol=1e-12)
    assert gw.metrics.ssim(survey, survey, per_band=True).shape == (len(survey.images), 3)


def test_ssim_uses_target_range_with_wang_settings(survey):
    target = survey.images[:3]
    output = noisy(target)
    values = gw.metrics.ssim(output, target, per_band=True)
    for i, c in ((0, 0), (2, 1)):
        ref = structural_similarity(
            output[i, c].astype(float), target[i, c].astype(float), gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=float(np.ptp(target[i, c])),
        )
        assert values[i, c] == pytest.approx(ref, abs=1e-8)
    # the range comes from the target only: swapping the arguments changes the constants
    assert not np.allclose(values, gw.metrics.ssim(target, output, per_band=True))
    explicit = gw.metrics.ssim(output, target, data_range=np.ptp(target, axis=(2, 3)), per_band=True)
    np.testing.assert_allclose(values, explicit)


def test_ssim_is_nan_for_constant_target_or_nan_pixels(survey):
    target = survey.images[:2].copy()
    output = noisy(target)
    target[0, 1] = 0.5
    output[1, 2, 3, 3] = np.nan
    values = gw.metrics.ssim(output, target, per_band=True)
    assert np.isnan(values[0, 1]) and np.isnan(values[1, 2])
    assert np.isfinite(values[0, [0, 2]]).all() and np.isfinite(values[1, :2]).all()
    assert np.isnan(gw.metrics.ssim(output, target)).all()


def test_ssim_gain_positive_for_a_perfect_model_and_zero_for_identity(survey):
    target = survey.images
    degraded = noisy(target, sigma=0.05)
    table = gw.metrics.ssim_gain(target, degraded, target)
    assert isinstance(table, pd.DataFrame) and len(table) == len(target)
    assert list(table.columns) == ["ssim_input", "ssim_output", "ssim_gain"]
    np.testing.assert_allclose(table.ssim_output, 1.0)
    assert (table.ssim_gain > 0).all()
    np.testing.assert_allclose(table.ssim_gain, table.ssim_output - table.ssim_input)
    identity = gw.metrics.ssim_gain(degraded, degraded, survey, per_band=True)
    assert (identity.filter(like="ssim_gain") == 0).all().all()
    assert {"ssim_gain_g", "ssim_input_r", "ssim_output_z"} <= set(identity.columns)
    assert identity.attrs["mean_gain"] == 0


def test_ssim_gain_better_output_gains_more(survey):
    target = survey.images
    degraded = noisy(target, sigma=0.05, seed=1)
    half_way = (target + degraded) / 2
    table = gw.metrics.ssim_gain(half_way, degraded, target)
    assert (table.ssim_gain > 0).all() and (table.ssim_output < 1).all()


def test_ssim_validation_names_the_argument(survey):
    with pytest.raises(ValueError, match="input"):
        gw.metrics.ssim_gain(survey, survey.images[:, :2], survey)
    with pytest.raises(ValueError, match="output"):
        gw.metrics.ssim(np.zeros((1, 1, 8, 8)), np.zeros((1, 1, 8, 8)))
    with pytest.raises(ValueError, match="data_range"):
        gw.metrics.ssim(survey, survey, data_range=-1.0)
    with pytest.raises(ValueError, match="win_size"):
        gw.metrics.ssim(survey, survey, gaussian_weights=False, win_size=4)


def random_stamps(n, seed, shape=(3, 16, 16)):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)


def test_nearest_neighbours_finds_planted_copies():
    training = random_stamps(300, 0)
    generated = random_stamps(50, 1)
    generated[7] = training[123]
    generated[20] = training[299]
    table = gw.metrics.nearest_neighbours(generated, training, k=3, batch_size=64, progress=False)
    assert len(table) == 50
    assert table.index_1[7] == 123 and table.distance_1[7] == 0.0 and table.ratio[7] == 0.0
    assert table.index_1[20] == 299 and table.distance_1[20] == 0.0
    fresh = table.drop(index=[7, 20])
    assert (fresh.ratio > 0.8).all() and (fresh.flag == 0).all()
    # agrees with brute force
    d = cdist(generated.reshape(50, -1).astype(float), training.reshape(300, -1).astype(float))
    indices = table[["index_1", "index_2", "index_3"]].to_numpy()
    np.testing.assert_array_equal(indices, np.argsort(d, 1)[:, :3])
    np.testing.assert_allclose(table[["distance_1", "distance_2", "distance_3"]].to_numpy(),
                               np.sort(d, 1)[:, :3], rtol=1e-5)
    flat = training.reshape(300, -1)
    own = np.sort(cdist(flat.astype(float), flat.astype(float)), axis=1)[:, 1]
    assert table.attrs["reference_distance"] == pytest.approx(np.median(own), rel=1e-5)


def test_nearest_neighbours_l2_normalised_catches_a_rescaled_copy_and_flags_nan():
    training = random_stamps(100, 2)
    generated = random_stamps(5, 3)
    generated[1] = 3.0 * training[42]
    generated[3, 0, 0, 0] = np.nan
    raw = gw.metrics.nearest_neighbours(generated, training, progress=False, reference=None)
    assert "ratio" not in raw.columns and raw.distance_1[1] > 10
    table = gw.metrics.nearest_neighbours(generated, training, normalise="l2", progress=False)
    assert table.index_1[1] == 42 and table.distance_1[1] < 1e-5
    assert table.index_1[3] == -1 and np.isnan(table.distance_1[3])
    assert table.flag[3] == NN_FLAGS["nonfinite_pixels"]


def test_training_nn_distances_exclude_the_galaxy_itself():
    training = random_stamps(40, 4)
    training[10] = training[30]
    table = gw.metrics.training_nn_distances(training, n=None, progress=False)
    assert (table["index"] != table["nn_index"]).all()
    assert table.distance[10] == 0 and table.nn_index[10] == 30 and table.nn_index[30] == 10
    assert (table.drop(index=[10, 30]).distance > 0).all()
    subset = gw.metrics.training_nn_distances(training, n=5, progress=False, seed=1)
    assert len(subset) == 5
    pd.testing.assert_frame_equal(subset.reset_index(drop=True),
                                  table.iloc[subset["index"]].reset_index(drop=True))


def test_nearest_neighbours_validation():
    training = random_stamps(4, 5)
    with pytest.raises(ValueError, match="k"):
        gw.metrics.nearest_neighbours(training, training, k=5, progress=False)
    with pytest.raises(ValueError, match="training"):
        gw.metrics.nearest_neighbours(training, training[:, :2], progress=False)
    with pytest.raises(ValueError, match="normalise"):
        gw.metrics.nearest_neighbours(training, training, normalise="max", progress=False)
    bad = training.copy()
    bad[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="training"):
        gw.metrics.nearest_neighbours(training, bad, progress=False)
    with pytest.raises(ValueError, match="training"):
        gw.metrics.training_nn_distances(training[:1], progress=False)


def test_nearest_neighbours_stream_stores(tmp_path, monkeypatch):
    import galwidgets.metrics.chunked as chunked

    monkeypatch.setattr(chunked, "STORE_CHUNK", 20)  # generated galaxies searched 20 at a time
    training = random_stamps(300, 0)
    generated = random_stamps(50, 1)
    generated[7], generated[40] = training[123], 2.0 * training[5]
    def as_store(images, name):
        survey = gw.data.Survey(images, None, ("g", "r", "z"), 0.262)
        return gw.data.open_store(survey.save(tmp_path / name))

    train_store, gen_store = as_store(training, "train.h5"), as_store(generated, "gen.h5")
    for normalise in (None, "l2"):
        expected = gw.metrics.nearest_neighbours(generated, training, k=2, batch_size=64, normalise=normalise,
                                                 progress=False)
        for gen in (generated, gen_store):
            table = gw.metrics.nearest_neighbours(gen, train_store, k=2, batch_size=64, normalise=normalise,
                                                  progress=False)
            pd.testing.assert_frame_equal(table, expected)
            assert table.attrs == expected.attrs
    assert expected.index_1[40] == 5 and expected.distance_1[7] == 0  # l2: the rescaled copy too
    pd.testing.assert_frame_equal(gw.metrics.training_nn_distances(train_store, n=30, progress=False),
                                  gw.metrics.training_nn_distances(training, n=30, progress=False))
    with pytest.raises(ValueError, match="training: expected stamps shaped like generated"):
        gw.metrics.nearest_neighbours(generated[:, :, :8, :8], train_store, progress=False)
