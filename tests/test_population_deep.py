"""The deep, evolving ``hsc-deep`` mock and the morphological diversity of every preset.

Templates and k-corrections against analytic cases, the evolving population against the relations
it follows, mergers / clumpy irregulars / edge-on disks against their truth, per-galaxy determinism
of rendering, and the Gini-M20 plane (slow).
"""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import galwidgets as gw
from galwidgets.data import sed
from galwidgets.data.evolution import SIZE_RELATIONS, clumpy_fraction, merger_fraction
from galwidgets.data.evolving import draw_evolving_population
from galwidgets.data.population import draw_population
from galwidgets.data.render import galaxy_band_fluxes, render_catalog


# -- templates, band passes, k-corrections --------------------------------------------------------
def test_flat_spectrum_kcorrection_is_minus_2p5_log_one_plus_z():
    """Hogg et al. (2002): a spectrum flat in f_ν has K = -2.5 log10(1 + z) in every band."""
    wave = np.linspace(200.0, 2600.0, 4000)
    z = np.array([0.0, 0.3, 1.0])  # below z = 1.2 no Lyman-series absorption reaches HSC i
    k = -2.5 * np.log10(sed.spectrum_flux_ratio(wave, wave**-2.0, "i", z))
    np.testing.assert_allclose(k, -2.5 * np.log10(1 + z), atol=1e-4)


def test_elliptical_colours_follow_the_4000_angstrom_break():
    """The E template's g-i reddens as the break crosses g and r (z 0 -> 0.8) and blues again once
    it has passed i (z > 1.2); local colours are those of SDSS ellipticals (g-i ≈ 1.2)."""
    z = np.array([0.0, 0.2, 0.4, 0.6, 0.8])
    gi = sed.kcorrection(0, "g", z) - sed.kcorrection(0, "i", z)
    assert np.all(np.diff(gi) > 0.15), gi
    assert 1.0 < gi[0] < 1.35
    late = sed.kcorrection(0, "g", 2.0) - sed.kcorrection(0, "i", 2.0)
    assert late < gi[-1] - 1.0
    # later templates are bluer at every redshift up to the break's exit from i
    for zi in (0.1, 0.5, 0.9):
        colours = [sed.kcorrection(t, "g", zi) - sed.kcorrection(t, "i", zi) for t in range(4)]
        assert np.all(np.diff(colours) < 0), (zi, colours)


def test_template_mixing_is_linear_in_flux_and_igm_blanks_the_lyman_continuum():
    half = sed.band_flux_ratio(0.5, "r", 0.7)
    assert half == pytest.approx(0.5 * (sed.band_flux_ratio(0, "r", 0.7) + sed.band_flux_ratio(1, "r", 0.7)))
    wave = np.array([300.0, 364.0, 400.0, 480.0, 510.0])  # z = 3: Lyman limit 365 nm, Lyα 486 nm
    t = sed.igm_transmission(wave, 3.0)
    assert t[0] == t[1] == 0 and t[-1] == 1
    assert t[3] == pytest.approx(np.exp(-3.6e-3 * (480 / 121.567) ** 3.46))  # Madau (1995) Lyα forest
    lyman_beta = 1.7e-3 * (400 / 102.572) ** 3.46  # 400 nm: Lyα and Lyβ forests
    assert t[2] == pytest.approx(np.exp(-3.6e-3 * (400 / 121.567) ** 3.46 - lyman_beta))
    assert sed.igm_transmission(wave, np.array([3.0, 0.1])).shape == (2, 5)
    assert sed.template_name([0.2, 1.6, 3.0]).tolist() == ["E", "Scd", "Im"]
    with pytest.raises(ValueError, match="z: expected redshifts"):
        sed.band_flux_ratio(0, "g", 4.5)
    with pytest.raises(ValueError, match="band"):
        sed.bandpass("q")


# -- the evolving population ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def deep():
    return draw_evolving_population(3000, seed=3, max_r_half=2.7, max_separation=4.8)


def test_deep_population_is_flux_limited_and_reaches_z_3(deep):
    assert (deep.mag_i_true < 24.5).all() and deep.redshift.between(0.05, 3.0).all()
    assert 0.7 < deep.redshift.median() < 1.1  # i < 24.5 surveys: median z ≈ 0.8-1
    assert 0.04 < (deep.redshift > 2).mean() < 0.2
    assert (deep.r_major_arcsec < 2.7).all()
    # the quiescent population fades out of an i-selected sample at z > 1.5 (UV-faint)
    early_low = deep[deep.redshift < 1.0].early_type.mean()
    early_high = deep[deep.redshift > 2.0].early_type.mean()
    assert early_low > 0.1 and early_high < 0.03
    assert set(deep.type) == {"E", "S0", "Sbc", "Scd", "Irr"}
    assert set(deep.template) == {"E", "Sbc", "Scd", "Im"} and (deep.sed == "template").all()


def test_deep_population_sizes_follow_van_der_wel(deep):
    """At fixed stellar mass, log R_eff falls as β log(1 + z) (-1.48 early, -0.75 late) and angular
    sizes fall with redshift."""
    for kind, early, beta in (("early", True, -1.48), ("late", False, -0.75)):  # their Table 1 fits
        rel = SIZE_RELATIONS[kind]
        rows = deep[(deep.early_type == early) & (deep.morphology == "regular")]
        r_major_kpc = rows.r_major_arcsec * rows.r_half_kpc / rows.r_half_arcsec
        residual = np.log10(r_major_kpc) - rel.log_radius(0.25, rows.log_stellar_mass)
        slope = np.polyfit(np.log10((1 + rows.redshift) / 1.25), residual, 1)[0]
        assert slope == pytest.approx(beta, abs=0.25), (kind, slope)
    # the flux limit selects ever more luminous (larger) galaxies: a weaker trend than at fixed mass
    assert spearmanr(deep.redshift, deep.r_half_arcsec).statistic < -0.25


def test_angular_size_falls_with_redshift_without_a_flux_limit():
    """As for the local mock (issue 3): z uniform, no flux limit, Spearman(z, r_half) below -0.5."""
    z = np.random.default_rng(0).uniform(0.05, 3.0, 2000)
    cat = draw_evolving_population(2000, seed=1, redshift=z, mag_limit=None)
    assert spearmanr(cat.redshift, cat.r_half_arcsec).statistic < -0.5


def test_deep_colours_carry_redshift_and_type():
    s = gw.data.simulate_survey(300, instrument="hsc-deep", seed=4, sky_sigma=1e-6, progress=False)
    cat = s.catalog
    assert s.bands == ("g", "r", "i", "z", "y") and s.zeropoint == 27 and s.pixel_scale == 0.168
    assert {"type", "template", "template_index", "early_type", "morphology"} <= set(cat.columns)
    early = cat[cat.early_type & (cat.morphology == "regular")]
    gi = early.mag_g - early.mag_i
    track = [sed.kcorrection(t, "g", z) - sed.kcorrection(t, "i", z)
             for t, z in zip(early.template_bulge, early.redshift)]
    assert np.median(np.abs(gi - np.array(track))) < 0.3  # bulge-dominated: the template's colour
    assert spearmanr(early.redshift[early.redshift < 0.9], gi[early.redshift < 0.9]).statistic > 0.6
    late = cat[~cat.early_type & (cat.redshift < 1.0)]
    assert np.median(late.mag_g - late.mag_i) < np.median(early.mag_g - early.mag_i) - 0.5
    # noise-free fluxes add up to the catalogue magnitudes (tails, nuclei and dust included)
    flux = s.images.sum(axis=(2, 3))[:, s.band_index("i")]
    big = cat.r_major_arcsec < 0.6
    np.testing.assert_allclose(flux[big], 10 ** (-0.4 * (cat.mag_i[big] - 27.0)), rtol=0.05)


def test_given_redshifts_are_kept_and_bad_redshifts_named():
    z = np.repeat([0.25, 1.25, 2.75], 20)
    cat = draw_evolving_population(60, seed=1, redshift=z)
    np.testing.assert_array_equal(cat.redshift, z)
    assert (cat.mag_i_true < 24.5).all()
    with pytest.raises(ValueError, match="redshift: the templates reach z = 4"):
        draw_evolving_population(2, redshift=(0.1, 5.0))
    with pytest.raises(ValueError, match="redshift"):
        draw_evolving_population(2, redshift=[0.5, 3.9], mag_limit=15.0)


# -- morphological diversity -----------------------------------------------------------------------
def test_diversity_leaves_the_rest_of_a_seeded_desi_catalog_unchanged():
    plain = draw_population(400, seed=9, merger_probability=0.0, clumpy_probability=0.0)
    diverse = draw_population(400, seed=9)
    for column in ("redshift", "mag_r_true", "r_half_arcsec", "position_angle", "render_seed",
                   "has_companion"):
        pd.testing.assert_series_equal(plain[column], diverse[column])
    assert (plain.morphology.isin(["regular", "edge-on"])).all()
    counts = diverse.morphology.value_counts()
    assert counts["merger"] > 5 and counts["clumpy"] > 5 and counts["edge-on"] > 40


def test_merger_and_clumpy_fractions_rise_with_redshift(deep):
    assert merger_fraction(0.0) == pytest.approx(0.05) and merger_fraction(10.0) == pytest.approx(0.3)
    low, high = deep[deep.redshift < 0.5], deep[deep.redshift > 1.5]
    assert (high.morphology == "merger").mean() > 2 * (low.morphology == "merger").mean()
    expected = merger_fraction(deep.redshift).mean()
    assert (deep.morphology == "merger").mean() == pytest.approx(expected, abs=0.02)
    late_low, late_high = low[~low.early_type], high[~high.early_type]
    assert (late_high.type == "Irr").mean() > (late_low.type == "Irr").mean() + 0.2
    # before the flux limit (which favours the blue irregulars at high z) the share is the relation's
    z = np.repeat([0.3, 2.0], 1500)
    unselected = draw_evolving_population(len(z), seed=2, redshift=z, mag_limit=None)
    for zi in (0.3, 2.0):
        late = unselected[(unselected.redshift == zi) & ~unselected.early_type]
        assert (late.type == "Irr").mean() == pytest.approx(clumpy_fraction(zi), abs=0.05)
    disks = deep[(deep.bulge_fraction < 0.6) & deep.morphology.isin(["regular", "edge-on"])]
    assert (disks.morphology == "edge-on").mean() == pytest.approx(np.cos(np.radians(75)), abs=0.05)


def _noise_free(n, seed, **kwargs):
    return gw.data.simulate_survey(n, size=64, seed=seed, sky_sigma=1e-9, progress=False, **kwargs)


def test_mergers_have_two_nuclei_and_conserve_flux():
    s = _noise_free(6, 2, merger_probability=1.0, merger_evolution=0.0, companion_probability=0.0)
    cat = s.catalog
    assert (cat.morphology == "merger").all()
    assert (cat.merger_flux_ratio.between(0.25, 1.0)).all() and (cat.tidal_fraction > 0).all()
    total = s.images.sum(axis=(2, 3))[:, s.band_index("r")]
    np.testing.assert_allclose(total, 10 ** (-0.4 * (cat.mag_r - 22.5)), rtol=0.05)
    # the pair is brighter than the primary alone, by its flux ratio plus tails
    expected = -2.5 * np.log10(1 + cat.merger_flux_ratio + cat.tidal_fraction * (1 + cat.merger_flux_ratio))
    np.testing.assert_allclose(cat.mag_r - cat.mag_r_true, expected, atol=0.05)
    single = _noise_free(6, 2, merger_probability=0.0, companion_probability=0.0)
    assert (s.images.std(axis=(1, 2, 3)) != single.images.std(axis=(1, 2, 3))).all()


def test_edge_on_dust_lane_darkens_the_mid_plane_more_in_blue():
    cat = draw_population(400, seed=5, merger_probability=0.0, clumpy_probability=0.0)
    rows = cat[(cat.morphology == "edge-on") & (cat.dust_lane > 0)].head(3)
    rows = rows.assign(bulge_fraction=0.0, arm_fraction=0.0, clump_fraction=0.0, n_clumps=0,
                       has_arms=False, inclination=90.0, position_angle=0.0, x_offset=0.0, y_offset=0.0,
                       axis_ratio=0.13, r_disk_arcsec=1.5, r_half_arcsec=1.5)
    dusty = render_catalog(rows, ("g", "z"), 96, 0.05, 22.5, psf=False, progress=False)
    clean = render_catalog(rows.assign(dust_lane=0.0), ("g", "z"), 96, 0.05, 22.5, psf=False,
                           progress=False)
    column = slice(40, 56)  # across the mid-plane near the centre (major axis along x)
    depth = 1 - dusty[:, :, 47:49, column].sum(axis=(2, 3)) / clean[:, :, 47:49, column].sum(axis=(2, 3))
    assert (depth[:, 0] > 0.2).all() and (depth[:, 0] > depth[:, 1]).all()  # g deeper than z
    assert dusty.min() > -1e-3 * dusty.max()  # no negative light
    fluxes = galaxy_band_fluxes(rows.iloc[0].to_dict(), "g", 22.5)
    assert fluxes["dust"] < 0 < sum(fluxes.values())


def test_rendering_is_deterministic_per_galaxy_whatever_the_chunk():
    cat = draw_evolving_population(12, seed=7, merger_probability=0.5, merger_evolution=0.0,
                                   max_separation=4.8)
    for band in ("g", "i"):
        cat[f"psf_fwhm_{band}"] = 0.6
    cat = cat.assign(x_offset=0.0, y_offset=0.0)
    whole = render_catalog(cat, ("g", "i"), 48, 0.168, 27.0, psf_profile="kolmogorov",
                           sky_sigma=[0.04, 0.06], progress=False)
    part = render_catalog(cat.iloc[5:9], ("g", "i"), 48, 0.168, 27.0, psf_profile="kolmogorov",
                          sky_sigma=[0.04, 0.06], progress=False)
    np.testing.assert_array_equal(whole[5:9], part)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"instrument": "hsc-wide"}, r"instrument: unknown preset 'hsc-wide'; presets are \['desi', 'hsc', "
                                     r"'hsc-deep', 'uv-ir'\]"),
        ({"instrument": 3}, "instrument: expected a preset name"),
        ({"merger_probability": 1.5}, "merger_probability"),
        ({"clumpy_probability": -0.1}, "clumpy_probability"),
        ({"merger_evolution": float("nan")}, "merger_evolution: expected a finite number"),
        ({"instrument": "hsc-deep", "redshift": (0.1, 4.5)}, "redshift: the templates reach z = 4"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gw.data.simulate_survey(2, progress=False, **kwargs)


# -- the Gini-M20 plane ---------------------------------------------------------------------------
def _gini_m20_regions(survey, band):
    table = gw.metrics.gini_m20(survey, band=band, progress=False)
    ok = table.gini.notna() & table.m20.notna()
    (ms, mi), (bs, bi) = gw.metrics.LOTZ_2008["merger"], gw.metrics.LOTZ_2008["bulge"]
    merger = (table.gini > ms * table.m20 + mi)[ok]
    bulge = (table.gini > bs * table.m20 + bi)[ok]
    return merger, bulge, survey.catalog[ok]


@pytest.mark.slow
@pytest.mark.parametrize("instrument, band", [("desi", "r"), ("hsc-deep", "i")])
def test_default_populations_populate_the_merger_region(instrument, band):
    """Issue 18: 2-15 % of measured galaxies above the Lotz et al. (2008) merger line, galaxies on
    both sides of the bulge/disk line, and the mergers of the truth catalogue are what lands there."""
    s = gw.data.simulate_survey(1200, instrument=instrument, seed=18, n_jobs=2, progress=False)
    merger, bulge, cat = _gini_m20_regions(s, band)
    assert 0.015 <= merger.mean() <= 0.15, merger.mean()
    assert bulge[~merger].mean() > 0.005 and (~bulge[~merger]).mean() > 0.5
    is_merger = (cat.morphology == "merger").to_numpy()
    assert merger[is_merger].mean() > 5 * merger[~is_merger].mean()
