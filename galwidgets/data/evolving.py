"""The deep, evolving galaxy population of the ``hsc-deep`` mock (0.05 < z < 3, i < 24.5).

A magnitude-limited population drawn from published relations (:mod:`galwidgets.data.evolution`)
with colours from redshifted spectral templates (:mod:`galwidgets.data.sed`):

1. Redshift, population and luminosity are drawn jointly from
   ``dV/dz φ_kind(M_B, z) S(m < m_lim)``: early (quiescent) and late (star-forming) galaxies, each
   with its evolving rest-frame B Schechter function, in the comoving volume of Planck18, kept when
   the observed magnitude in the selection band (rest-frame B plus distance modulus plus the
   template's k-correction) is brighter than the limit. The draw is exact rejection sampling from
   an envelope that uses the bluest template's k-correction.
2. Types within a population: early galaxies are E (bulge fraction 0.7-1, Sérsic n ≈ 4) or S0
   (0.35-0.7); late ones are clumpy irregulars (Irr, a fraction rising with z as
   :func:`~galwidgets.data.evolution.clumpy_fraction`: pure disks with 3-9 giant clumps holding
   20-45 % of the light), else Sbc (0.1-0.4) or Scd (below 0.12), with spiral arms in
   ``arm_probability`` of cases and small star-forming knots. Mergers and edge-on disks come from
   :mod:`galwidgets.data.morphotypes`.
3. Spectra: each type has a template index (0 E, 1 Sbc, 2 Scd, 3 Im; fractional values mix
   neighbours): E 0-0.2, S0 0.1-0.4, Sbc 1 ± 0.25, Scd 2 ± 0.3, Irr 2.5-3. The bulge has 0.4 times the
   galaxy's index (older, redder), the disk the galaxy's, star-forming knots the Im template.
4. Sizes from the van der Wel et al. (2014) size-mass relations of each population, with the mass
   proxied from L/L*(z); the major-axis radius is circularised with the axis ratio. Angular sizes
   use the angular diameter distance, magnitudes the luminosity distance, so surface brightness
   dims as (1 + z)^-4.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from astropy.cosmology import Planck18

from .evolution import KINDS, LUMINOSITY_FUNCTIONS, SIZE_RELATIONS, STELLAR_MASS_KNEE, clumpy_fraction
from .morphotypes import DISK_Q0, EDGE_ON_INCLINATION, EDGE_ON_Q0
from .population import check_redshift, finish_catalog, half_light_radius, select_galaxies
from .sed import TEMPLATES, band_flux_ratio, kcorrection, template_name

__all__ = ["draw_evolving_population", "galaxy_magnitude"]

#: Types of each population, their probabilities and ranges: bulge fraction (uniform), Sérsic
#: index of the bulge (mean, sd), template index (uniform low-high, or mean ± sd if "normal").
_TYPES = {
    "early": (("E", 0.55, (0.7, 1.0), (4.0, 0.5), ("uniform", 0.0, 0.2)),
              ("S0", 0.45, (0.35, 0.7), (3.2, 0.5), ("uniform", 0.1, 0.4))),
    "late": (("Sbc", 0.45, (0.1, 0.4), (2.0, 0.5), ("normal", 1.0, 0.25)),
             ("Scd", 0.55, (0.0, 0.12), (1.5, 0.4), ("normal", 2.0, 0.3))),
}
_BULGE_TEMPLATE_FACTOR = 0.4
_SF_TEMPLATE = float(len(TEMPLATES) - 1)


def _bluest_kcorrection(band: str, z: np.ndarray) -> np.ndarray:
    """Smallest k-correction over the templates (mixtures lie in between): the envelope's bound."""
    return np.min([kcorrection(k, band, z) for k in range(len(TEMPLATES))], axis=0)


def _faint_limits(z: np.ndarray, mag_limit: float | None, band: str) -> np.ndarray:
    """Faintest rest-frame B magnitude that any template could bring above the flux limit."""
    if mag_limit is None:
        return np.full(len(z), np.inf)
    return mag_limit - Planck18.distmod(z).value - _bluest_kcorrection(band, z)


def _kind_densities(z: np.ndarray, m_faint: np.ndarray) -> np.ndarray:
    """Envelope number densities (Mpc^-3) of each population at each z, shape (len(KINDS), len(z))."""
    return np.stack([LUMINOSITY_FUNCTIONS[k].density_brighter(z, m_faint) for k in KINDS])


def _envelope_redshifts(rng: np.random.Generator, m: int, z_range: tuple[float, float],
                        mag_limit: float | None, band: str) -> np.ndarray:
    """Redshifts from ``dV/dz`` times the envelope density of galaxies that could pass the limit."""
    grid = np.linspace(z_range[0], z_range[1], 2048)
    weight = Planck18.differential_comoving_volume(grid).value * _kind_densities(
        grid, _faint_limits(grid, mag_limit, band)).sum(axis=0)
    cdf = np.concatenate([[0.0], np.cumsum((weight[1:] + weight[:-1]) / 2)])
    if cdf[-1] <= 0:
        raise ValueError(f"mag_limit: no galaxy in redshift={z_range} can be brighter than "
                         f"{mag_limit} in {band}; raise mag_limit")
    return np.interp(rng.uniform(size=m), cdf / cdf[-1], grid)


def galaxy_magnitude(table: pd.DataFrame | dict, band: str) -> np.ndarray:
    """True observed AB magnitude in ``band`` of the bulge + disk + knots of template galaxies."""
    z = np.asarray(table["redshift"], dtype=float)
    bt = np.asarray(table["bulge_fraction"], dtype=float)
    sf = np.asarray(table["arm_fraction"], dtype=float) + np.asarray(table["clump_fraction"], dtype=float)
    ratio = (bt * band_flux_ratio(table["template_bulge"], band, z)
             + (1 - bt - sf) * band_flux_ratio(table["template_disk"], band, z)
             + sf * band_flux_ratio(_SF_TEMPLATE, band, z))
    return np.asarray(table["abs_mag_B"]) + np.asarray(table["distmod"]) - 2.5 * np.log10(ratio)


def _types(rng: np.random.Generator, kind: np.ndarray, irregular: np.ndarray) -> dict[str, np.ndarray]:
    """Type, bulge fraction, Sérsic index and template index of each galaxy of a population.

    ``irregular`` marks star-forming galaxies that are clumpy irregulars: pure disks with the
    template of an Im galaxy (index 2.5-3).
    """
    m = len(kind)
    out = {"type": np.empty(m, dtype=object), "bulge_fraction": np.empty(m),
           "sersic_n": np.empty(m), "template_index": np.empty(m)}
    u = rng.uniform(size=m)
    bt_u, n_z, t_u, t_z = (rng.uniform(size=m), rng.normal(size=m), rng.uniform(size=m), rng.normal(size=m))
    for population, types in _TYPES.items():
        which = np.searchsorted(np.cumsum([share for _, share, *_ in types])[:-1], u, side="right")
        for j, (name, _, (bt_lo, bt_hi), (n_mean, n_sd), (dist, t_a, t_b)) in enumerate(types):
            rows = (kind == population) & (which == j)
            out["type"][rows] = name
            out["bulge_fraction"][rows] = bt_lo + (bt_hi - bt_lo) * bt_u[rows]
            out["sersic_n"][rows] = np.round(np.clip(n_mean + n_sd * n_z[rows], 1.0, 6.0), 1)
            t = t_a + (t_b - t_a) * t_u[rows] if dist == "uniform" else t_a + t_b * t_z[rows]
            out["template_index"][rows] = np.clip(t, 0.0, _SF_TEMPLATE)
    irregular = irregular & (kind == "late")
    out["type"][irregular] = "Irr"
    out["bulge_fraction"][irregular] = 0.0
    out["template_index"][irregular] = 2.5 + 0.5 * t_u[irregular]
    return out


def _galaxies(rng: np.random.Generator, z: np.ndarray, mag_limit: float | None, band: str,
              arm_probability: float, clumpy: tuple[float, float]) -> pd.DataFrame:
    """Physical properties of galaxies at redshifts ``z`` (drawn from the envelope, not yet selected)."""
    m = len(z)
    m_faint = _faint_limits(z, mag_limit, band)
    density = _kind_densities(z, m_faint)
    total = density.sum(axis=0)
    if np.any(total <= 0):
        raise ValueError(f"redshift: some redshifts are too far for any galaxy to be brighter than "
                         f"mag_limit={mag_limit} in {band}; raise mag_limit or pass mag_limit=None")
    kind = np.where(rng.uniform(size=m) < density[0] / total, KINDS[0], KINDS[1])
    abs_mag = np.empty(m)
    for k in KINDS:
        rows = kind == k
        abs_mag[rows] = LUMINOSITY_FUNCTIONS[k].sample(rng, z[rows], m_faint[rows])
    types = _types(rng, kind, rng.uniform(size=m) < clumpy_fraction(z, *clumpy))
    irregular = types["type"] == "Irr"
    bt = types["bulge_fraction"]
    log_mass = np.empty(m)
    log_r_major = np.empty(m)
    for k in KINDS:
        rows = kind == k
        m_star = LUMINOSITY_FUNCTIONS[k].m_star(z[rows])
        log_mass[rows] = STELLAR_MASS_KNEE[k] + 0.4 * (m_star - abs_mag[rows])
        relation = SIZE_RELATIONS[k]
        scatter = rng.normal(0, relation.scatter, rows.sum())
        log_r_major[rows] = relation.log_radius(z[rows], log_mass[rows]) + scatter
    cos_i = rng.uniform(0, 1, m)
    q_disk = np.sqrt((1 - DISK_Q0**2) * cos_i**2 + DISK_Q0**2)
    q_bulge = rng.uniform(0.65, 1.0, m)
    r_half_kpc = 10**log_r_major * np.sqrt(bt * q_bulge + (1 - bt) * q_disk)  # circularised
    # apparent axis ratio once edge-on disks are thin (morphotypes), for the size cut on the major axis
    edge_on = (cos_i < np.cos(np.radians(EDGE_ON_INCLINATION))) & (bt < 0.6)
    q_final = np.where(edge_on, np.sqrt(cos_i**2 + EDGE_ON_Q0**2 * (1 - cos_i**2)), q_disk)
    q_final = bt * q_bulge + (1 - bt) * q_final
    bulge_to_disk_radius = rng.uniform(0.2, 0.5, m)
    unit = half_light_radius(bt, bulge_to_disk_radius, types["sersic_n"], 1.0)
    r_disk_kpc = r_half_kpc / unit
    kpc_per_arcsec = 1 / Planck18.arcsec_per_kpc_proper(z).value
    spiral = (kind == "late") & ~irregular
    has_arms = spiral & (rng.uniform(size=m) < arm_probability)
    n_clumps = np.where(irregular, 3 + rng.poisson(2.5, m).clip(0, 6), np.where(spiral, rng.poisson(6, m), 0))
    clump_fraction = np.where(irregular, rng.uniform(0.2, 0.45, m), rng.uniform(0.02, 0.08, m))
    t = types["template_index"]
    table = pd.DataFrame({
        "redshift": z,
        "abs_mag_B": abs_mag,
        "distmod": Planck18.distmod(z).value,
        "log_stellar_mass": log_mass,
        "r_half_kpc": r_half_kpc,
        "r_disk_kpc": r_disk_kpc,
        "r_bulge_kpc": r_disk_kpc * bulge_to_disk_radius,
        "r_half_arcsec": r_half_kpc / kpc_per_arcsec,
        "r_disk_arcsec": r_disk_kpc / kpc_per_arcsec,
        "r_bulge_arcsec": r_disk_kpc * bulge_to_disk_radius / kpc_per_arcsec,
        "r_major_arcsec": r_half_kpc / kpc_per_arcsec / np.sqrt(q_final),
        "sersic_n": types["sersic_n"],
        "bulge_fraction": bt,
        "axis_ratio": q_disk,
        "ellipticity": (1 - q_disk) / (1 + q_disk),
        "bulge_axis_ratio": q_bulge,
        "position_angle": rng.uniform(0, 180, m),
        "has_arms": has_arms,
        "n_arms": np.where(has_arms, np.where(rng.uniform(size=m) < 0.8, 2, 3), 0),
        "pitch_angle": np.where(has_arms, rng.uniform(12, 30, m), np.nan),
        "arm_fraction": np.where(has_arms, rng.uniform(0.1, 0.25, m), 0.0),
        "n_clumps": n_clumps,
        "clump_fraction": np.where(n_clumps > 0, clump_fraction, 0.0),
        "clump_scale": np.where(irregular, rng.uniform(0.3, 0.5, m), 0.2),
        "type": types["type"],
        "early_type": kind == "early",
        "template_index": t,
        "template_bulge": np.where(irregular, t, _BULGE_TEMPLATE_FACTOR * t),
        "template_disk": t,
        "template_sf": np.full(m, _SF_TEMPLATE),
        "sed_slope_bulge": np.nan, "sed_slope_disk": np.nan, "sed_slope_sf": np.nan,
        "sed": "template",
    })
    table["mag_r_true"] = galaxy_magnitude(table, "r")
    if band != "r":
        table[f"mag_{band}_true"] = galaxy_magnitude(table, band)
    return table


def draw_evolving_population(
    n: int,
    seed: int = 0,
    *,
    redshift: tuple[float, float] | Sequence[float] | np.ndarray = (0.05, 3.0),
    mag_limit: float | None = 24.5,
    mag_band: str = "i",
    max_r_half: float | None = None,
    arm_probability: float = 0.7,
    companion_probability: float = 0.0,
    star_probability: float = 0.0,
    max_separation: float = 6.0,
    **morphology: float,
) -> pd.DataFrame:
    """Draw the truth catalog of ``n`` galaxies of the deep, evolving population.

    Parameters
    ----------
    n : int
        Number of galaxies.
    seed : int
        Seed of every draw.
    redshift : (z_min, z_max) or array of n redshifts
        A range (the redshift distribution of the flux-limited survey follows) or one redshift per
        galaxy (each galaxy is then drawn at its redshift until it passes the limit); z ≤ 4.
    mag_limit : float or None
        Keep galaxies whose true magnitude in ``mag_band`` (bulge, disk and knots; without merging
        companions) is brighter than this; None for no limit.
    mag_band : str
        Selection band.
    max_r_half : float, optional
        Keep galaxies whose major-axis half-light radius ``r_major_arcsec`` is below this, so that
        edge-on disks too stay mostly inside the cutout.
    arm_probability, companion_probability, star_probability, max_separation, **morphology
        As for :func:`galwidgets.data.population.draw_population`.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`~galwidgets.data.population.draw_population` (``sed`` is
        ``"template"``; ``abs_mag_r`` and the SED slopes are replaced by) plus ``abs_mag_B``
        (rest-frame B, AB), ``distmod``, ``log_stellar_mass`` (the proxy of the size relation),
        ``r_major_arcsec`` (major-axis half-light radius, van der Wel's R_eff),
        ``early_type`` (quiescent population), ``template`` (nearest template name) and
        ``template_index``, ``template_bulge``, ``template_disk``, ``template_sf`` (indices of
        :data:`galwidgets.data.sed.TEMPLATES`), ``mag_r_true`` and ``mag_<mag_band>_true``.
    """
    rng = np.random.default_rng(seed)
    given = check_redshift(redshift, n)
    if given is not None and given.max() > 4:
        raise ValueError(f"redshift: the templates reach z = 4, got up to {given.max()}")
    if given is None and redshift[1] > 4:
        raise ValueError(f"redshift: the templates reach z = 4, got {redshift!r}")
    magnitude = "mag_r_true" if mag_band == "r" else f"mag_{mag_band}_true"
    clumpy = (morphology.pop("clumpy_probability", 0.08), morphology.pop("clumpy_evolution", 1.6))
    table = select_galaxies(
        n, redshift if given is None else given,
        draw=lambda z: _galaxies(rng, z, mag_limit, mag_band, arm_probability, clumpy),
        volume=lambda m: _envelope_redshifts(rng, m, redshift, mag_limit, mag_band),
        magnitude=magnitude, mag_limit=mag_limit, max_r_half=max_r_half, size="r_major_arcsec",
    )
    table = finish_catalog(table, rng, seed, companion_probability=companion_probability,
                           star_probability=star_probability, max_separation=max_separation,
                           clumpy_probability=0.0, **morphology)  # clumpy irregulars are a type here
    table["template"] = template_name(table["template_index"].to_numpy())
    return table
