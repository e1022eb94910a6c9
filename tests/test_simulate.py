"""The mock survey: determinism, units, physics against the truth catalog, presets, bad input."""

import galsim
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import galwidgets as gw
from galwidgets.data.population import draw_population, half_light_radius
from galwidgets.data.render import draw_stamp, galaxy_band_fluxes, render_catalog


def test_same_seed_same_survey_and_other_seed_differs():
    a = gw.data.simulate_survey(6, size=32, seed=3, progress=False)
    b = gw.data.simulate_survey(6, size=32, seed=3, progress=False)
    c = gw.data.simulate_survey(6, size=32, seed=4, progress=False)
    assert np.array_equal(a.images, b.images)
    pd.testing.assert_frame_equal(a.catalog, b.catalog)
    assert not np.allclose(a.images, c.images)


@pytest.mark.slow
def test_parallel_rendering_gives_identical_images():
    one = gw.data.simulate_survey(24, size=32, seed=8, n_jobs=1, progress=False)
    two = gw.data.simulate_survey(24, size=32, seed=8, n_jobs=2, progress=False)
    assert np.array_equal(one.images, two.images)


def test_shape_units_and_catalog(survey):
    assert survey.images.shape == (24, 3, 32, 32)
    assert survey.images.dtype == np.float32
    assert survey.bands == ("g", "r", "z")
    assert survey.zeropoint == 22.5 and survey.pixel_scale == 0.262
    for column in ["redshift", "r_half_arcsec", "sersic_n", "bulge_fraction", "ellipticity",
                   "position_angle", "has_arms", "mag_g", "mag_r", "mag_z", "psf_fwhm_g", "psf_fwhm_r",
                   "psf_fwhm_z"]:
        assert column in survey.catalog and survey.catalog[column].notna().all(), column
    assert survey.catalog.redshift.between(0.02, 0.12).all()
    assert (survey.catalog.mag_r_true < 18.0).all()  # the flux limit (dust-free, without a merging galaxy)
    dimming = survey.catalog.mag_r - survey.catalog.mag_r_true
    dusty = survey.catalog.dust_lane > 0
    assert (dimming[~dusty] <= 1e-9).all() and (dimming[dusty].between(0, 0.5)).all()
    assert set(survey.psf_fwhm) == {"g", "r", "z"}


def test_sky_noise_level_and_colours_redden_with_bulge_fraction():
    noisy = gw.data.simulate_survey(100, size=32, seed=6, progress=False)
    clean = gw.data.simulate_survey(100, size=32, seed=6, sky_sigma=1e-9, progress=False)
    noise = (noisy.images - clean.images).std(axis=(0, 2, 3))  # same draws, only the noise differs
    np.testing.assert_allclose(noise, [noisy.meta["sky_sigma"][b] for b in noisy.bands], rtol=0.02)
    np.testing.assert_allclose(noise, [0.007, 0.0115, 0.028], rtol=0.02)  # DESI-like depths
    colour = noisy.catalog.mag_g - noisy.catalog.mag_r
    assert np.corrcoef(colour, noisy.catalog.bulge_fraction)[0, 1] > 0.5


def test_total_flux_matches_truth_magnitude():
    """Noise-free flux summed over a big stamp equals 10^(-0.4 (m - zp)) in every band."""
    s = gw.data.simulate_survey(8, size=128, seed=5, sky_sigma=1e-9, progress=False)
    flux = s.images.sum(axis=(2, 3))
    truth = 10 ** (-0.4 * (s.catalog[["mag_g", "mag_r", "mag_z"]].to_numpy() - 22.5))
    np.testing.assert_allclose(flux, truth, rtol=0.03)


def test_large_aperture_magnitudes_match_the_catalog():
    """High-S/N galaxies: magnitudes in a 60 px aperture are within 0.05 mag of the truth (median)."""
    s = gw.data.simulate_survey(40, size=128, seed=9, sky_sigma=1e-6, progress=False)
    table = gw.metrics.photometry(s, aperture_radius=60, background_method=None)
    for band in s.bands:
        offset = np.median(table[f"mag_{band}"] - s.catalog[f"mag_{band}"])
        assert abs(offset) < 0.05, (band, offset)


def test_half_light_radius_of_psf_free_renders_matches_the_truth():
    """Round, noise-free, PSF-free renders: curve-of-growth r_half within 5 % of r_half_arcsec."""
    cat = draw_population(30, seed=2, max_r_half=3.0, arm_probability=0.0, merger_probability=0.0,
                          clumpy_probability=0.0)
    cat = cat.assign(axis_ratio=1.0, bulge_axis_ratio=1.0, n_clumps=0, clump_fraction=0.0,
                     x_offset=0.0, y_offset=0.0, morphology="regular", dust_lane=0.0)
    pixel_scale = 0.1
    images = render_catalog(cat, ("r",), 256, pixel_scale, 22.5, psf=False, progress=False)
    table = gw.metrics.photometry(images, bands=("r",), pixel_scale=pixel_scale,
                                  background_method=None, center=(127.5, 127.5))
    ratio = table.r_half / cat.r_half_arcsec
    assert abs(np.median(ratio) - 1) < 0.02
    assert (abs(ratio - 1) < 0.05).mean() >= 0.9


def test_half_light_radius_limits():
    assert half_light_radius(0.0, 1.0, 4.0, 2.5) == pytest.approx(2.5, rel=1e-6)
    assert half_light_radius(1.0, 1.7, 4.0, 3.0) == pytest.approx(1.7, rel=1e-6)
    assert 1.0 < half_light_radius(0.5, 1.0, 4.0, 3.0) < 3.0


def test_half_light_radius_matches_galsim_and_broadcasts():
    composite = galsim.Add([galsim.Sersic(4, half_light_radius=0.3, flux=0.4),
                            galsim.Exponential(half_light_radius=1.0, flux=0.6)])
    assert half_light_radius(0.4, 0.3, 4.0, 1.0) == pytest.approx(
        composite.calculateHLR(scale=0.004, size=2000), rel=1e-3)
    radii = half_light_radius(np.array([0.0, 0.4, 1.0]), 0.3, 4.0, 1.0)
    assert radii.shape == (3,) and radii[0] == pytest.approx(1.0) and radii[2] == pytest.approx(0.3)


@pytest.mark.parametrize("size, offset", [(64, (0.0, 0.0)), (64, (1.3, -0.7)), (33, (0.2, 0.4))])
def test_draw_stamp_matches_galsim_draw_image(size, offset):
    galaxy = galsim.Add([
        galsim.Sersic(4, half_light_radius=0.8, flux=3).shear(q=0.6, beta=0.3 * galsim.radians),
        galsim.Exponential(half_light_radius=4.0, flux=5).shear(q=0.3, beta=1.0 * galsim.radians),
    ])
    scene = galsim.Convolve(galaxy, galsim.Moffat(3.5, fwhm=1.2))
    reference = scene.drawImage(nx=size, ny=size, scale=0.262, offset=offset).array
    ours = draw_stamp(scene, size, 0.262, offset)
    # a smaller FFT box than GalSim's, with only light beyond the folding radius able to fold in
    assert np.abs(ours - reference).max() < 1e-4 * reference.max()


def test_angular_size_falls_with_redshift():
    z = np.random.default_rng(0).uniform(0.02, 1.0, 2000)
    cat = draw_population(2000, seed=1, redshift=z, mag_limit=None)
    rho = spearmanr(cat.redshift, cat.r_half_arcsec).statistic
    assert rho < -0.5, rho


def test_surface_brightness_dims_as_one_plus_z_to_the_fourth():
    """Measured from noise-free renders: ⟨SB⟩ within r_half ∝ L / R² (1 + z)^α with α = -4 ± 10 %."""
    z = np.linspace(0.05, 1.0, 12)
    cat = draw_population(len(z), seed=4, redshift=z, mag_limit=None, size_evolution=0.0,
                          arm_probability=0.0, merger_probability=0.0, clumpy_probability=0.0)
    cat = cat.assign(axis_ratio=1.0, bulge_axis_ratio=1.0, n_clumps=0, clump_fraction=0.0,
                     x_offset=0.0, y_offset=0.0, morphology="regular", dust_lane=0.0)
    pixel_scale = 0.02
    images = render_catalog(cat, ("r",), 512, pixel_scale, 22.5, psf=False, progress=False)
    table = gw.metrics.photometry(images, bands=("r",), pixel_scale=pixel_scale,
                                  aperture_radius=255, background_method=None)
    surface_brightness = 0.5 * table.flux_r / (np.pi * table.r_half**2)
    intrinsic = 10 ** (-0.4 * cat.abs_mag_r) / cat.r_half_kpc**2
    alpha = np.polyfit(np.log(1 + z), np.log(surface_brightness / intrinsic), 1)[0]
    assert alpha == pytest.approx(-4.0, rel=0.1)


@pytest.mark.slow
def test_morphology_follows_the_truth():
    """statmorph: Gini higher for bulge- than disk-dominated galaxies; asymmetry higher with arms."""
    statmorph = pytest.importorskip("statmorph")
    from photutils.segmentation import detect_sources

    s = gw.data.simulate_survey(100, size=64, seed=12, progress=False)
    r = s.images[:, s.band_index("r")].astype(float)
    sigma = s.meta["sky_sigma"]["r"]
    gini, asym = [], []
    for img in r:
        segm = detect_sources(img, 3 * sigma, n_pixels=10)
        label = segm.data[32, 32] if segm is not None else 0
        if label == 0:
            gini.append(np.nan)
            asym.append(np.nan)
            continue
        m = statmorph.SourceMorphology(img, segm, label, gain=1e4, skybox_size=16)
        gini.append(m.gini if m.flag <= 1 else np.nan)
        asym.append(m.asymmetry if m.flag <= 1 else np.nan)
    cat = s.catalog.assign(gini=gini, asymmetry=asym)
    bulgy = cat[cat.bulge_fraction > 0.6].gini.median()
    disky = cat[cat.bulge_fraction < 0.3].gini.median()
    assert bulgy - disky > 0.05, (bulgy, disky)
    structured = cat[cat.has_arms].asymmetry.median()
    smooth = cat[~cat.has_arms & (cat.n_clumps == 0)].asymmetry.median()
    assert structured > smooth, (structured, smooth)


def test_presets_and_band_physics():
    hsc = gw.data.simulate_survey(4, size=64, seed=1, instrument="hsc", progress=False)
    assert hsc.bands == ("g", "r", "i", "z", "y")
    assert hsc.zeropoint == 27.0 and hsc.pixel_scale == 0.168
    row = draw_population(50, seed=3, arm_probability=1.0, merger_probability=0.0,
                          clumpy_probability=0.0).query("bulge_fraction < 0.4").iloc[0]
    fuv, r, k = (galaxy_band_fluxes(row, b, 22.5) for b in ("FUV", "r", "K"))
    assert fuv["sf"] / sum(fuv.values()) > max(0.5, 2 * r["sf"] / sum(r.values()))  # UV: star formation
    assert k["bulge"] / sum(k.values()) > r["bulge"] / sum(r.values())  # IR traces the bulge


def test_kolmogorov_psf_and_poisson_noise():
    clean = gw.data.simulate_survey(4, size=48, seed=2, sky_sigma=1e-9, psf_profile="kolmogorov",
                                    progress=False)
    noisy = gw.data.simulate_survey(4, size=48, seed=2, sky_sigma=1e-9, psf_profile="kolmogorov",
                                    poisson_gain=50.0, progress=False)
    residual = noisy.images - clean.images
    bright = clean.images > np.percentile(clean.images, 99)
    faint = (clean.images > 0) & (clean.images < np.percentile(clean.images, 50))
    assert residual[bright].var() > 10 * residual[faint].var()  # variance grows with flux
    assert noisy.meta["psf_profile"] == "kolmogorov"


def test_companions_and_stars_are_drawn_and_recorded():
    s = gw.data.simulate_survey(6, size=64, seed=4, companion_probability=1.0, star_probability=1.0,
                                sky_sigma=1e-9, progress=False)
    assert s.catalog.has_companion.all() and s.catalog.has_star.all()
    plain = gw.data.simulate_survey(6, size=64, seed=4, sky_sigma=1e-9, progress=False)
    extra = (s.images - plain.images).sum(axis=(1, 2, 3))
    assert (extra > 0).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "n: expected a positive integer"),
        ({"n": 2, "bands": ("g", "q")}, "bands: unknown band"),
        ({"n": 2, "bands": ("g", "K")}, "bands: .* not bands of instrument 'desi'"),
        ({"n": 2, "instrument": "sdss"}, "instrument: unknown preset 'sdss'"),
        ({"n": 2, "size": 8}, "size: 8 px"),
        ({"n": 2, "size": 16, "psf_fwhm": 2.0}, "size: 16 px .* too small for a 2.00″ PSF"),
        ({"n": 2, "pixel_scale": -1.0}, "pixel_scale"),
        ({"n": 2, "redshift": (0.3, 0.1)}, "redshift"),
        ({"n": 2, "redshift": [0.1, 0.2, 0.3]}, "redshift: expected .* 2 positive redshifts"),
        ({"n": 2, "psf_fwhm": {"g": 1.0}}, "psf_fwhm: missing"),
        ({"n": 2, "star_probability": 2.0}, "star_probability"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gw.data.simulate_survey(progress=False, **kwargs)
