"""The galaxy population of the mock survey: physical properties drawn per galaxy, with the truth.

Ingredients, each simple but physical:

- redshifts uniform in comoving volume (Planck18) within a range, or given per galaxy;
- absolute r magnitudes from a Schechter luminosity function (M* = -21.2, α = -1.2, close to
  Blanton et al. 2003), truncated by the survey's flux limit at each redshift;
- a size-luminosity relation for the half-light radius with 0.15 dex scatter and size evolution
  ∝ (1 + z)^γ, the same at fixed luminosity for every bulge fraction, projected to arcsec with the
  angular diameter distance, so surface brightness dims as (1 + z)^-4 (the apparent magnitude
  uses the luminosity distance);
- a Sérsic bulge whose index grows with the bulge fraction, an exponential disk seen at a random
  inclination (intrinsic thickness 0.2), power-law spectra f_ν ∝ λ^β with the bulge redder than
  the disk and both reddening with redshift;
- for late types (bulge fraction < 0.5): logarithmic spiral arms and star-forming clumps carrying
  a bluer spectrum, so UV light traces star formation and IR light the bulge;
- optionally, close companion galaxies and bright stars, the contaminants of real cutouts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from astropy.cosmology import Planck18
from scipy.special import gammainc, gammaincinv

from .morphotypes import DISK_Q0, add_morphology

__all__ = ["check_redshift", "draw_population", "finish_catalog", "half_light_radius", "select_galaxies"]

_MSTAR, _ALPHA = -21.2, -1.2
_M_BRIGHT, _M_FAINT = -24.0, -16.0


def half_light_radius(
    bulge_fraction: float | np.ndarray,
    bulge_radius: float | np.ndarray,
    sersic_n: float | np.ndarray,
    disk_radius: float | np.ndarray,
) -> float | np.ndarray:
    """Half-light radius of a circular Sérsic bulge plus exponential disk.

    Solves ``B/T P(2n, b_n (r/r_b)^(1/n)) + (1 - B/T) P(2, b_1 r/r_d) = 1/2`` where ``P`` is the
    regularised lower incomplete gamma function and ``b_n`` satisfies ``P(2n, b_n) = 1/2``
    (Graham & Driver 2005), by bisection in log r (relative precision 1e-12). Arguments broadcast
    (arrays give an array). Radii are in any common unit; for sheared profiles with equal
    area-preserving shears this is the circularised radius ``sqrt(a b)``.
    """
    bt, r_b, n, r_d = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in
                                             (bulge_fraction, bulge_radius, sersic_n, disk_radius)))
    b_n = gammaincinv(2 * n, 0.5)
    b_1 = gammaincinv(2.0, 0.5)

    def enclosed(r: np.ndarray) -> np.ndarray:
        return bt * gammainc(2 * n, b_n * (r / r_b) ** (1 / n)) + (1 - bt) * gammainc(2.0, b_1 * r / r_d)

    # the composite radius lies between the component radii: bracket and bisect in log r
    lo, hi = np.log(np.minimum(r_b, r_d)), np.log(np.maximum(r_b, r_d))
    for _ in range(48):
        mid = (lo + hi) / 2
        below = enclosed(np.exp(mid)) < 0.5
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    r = np.exp((lo + hi) / 2)
    return float(r) if r.ndim == 0 else r


def _schechter_cdf() -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(_M_BRIGHT, _M_FAINT, 2048)
    x = 10 ** (0.4 * (_MSTAR - grid))
    cdf = np.cumsum(x ** (_ALPHA + 1) * np.exp(-x))
    return grid, (cdf - cdf[0]) / (cdf[-1] - cdf[0])


def _absolute_magnitudes(rng: np.random.Generator, m_max: np.ndarray) -> np.ndarray:
    """Schechter-distributed absolute magnitudes brighter than ``m_max`` (per galaxy)."""
    grid, cdf = _schechter_cdf()
    top = np.interp(np.clip(m_max, _M_BRIGHT, _M_FAINT), grid, cdf)
    return np.interp(rng.uniform(size=len(m_max)) * top, cdf, grid)


def _volume_redshifts(rng: np.random.Generator, n: int, z_range: tuple[float, float]) -> np.ndarray:
    grid = np.linspace(z_range[0], z_range[1], 1024)
    volume = Planck18.comoving_volume(grid).value
    cdf = (volume - volume[0]) / (volume[-1] - volume[0])
    return np.interp(rng.uniform(size=n), cdf, grid)


def _galaxies(rng: np.random.Generator, z: np.ndarray, m_limit: float | None,
              size_evolution: float, arm_probability: float) -> pd.DataFrame:
    """Physical properties of galaxies at redshifts ``z`` (all drawn, none selected yet)."""
    m = len(z)
    distmod = Planck18.distmod(z).value
    m_max = np.full(m, _M_FAINT) if m_limit is None else m_limit - distmod
    abs_mag = _absolute_magnitudes(rng, m_max)
    kpc_per_arcsec = 1 / Planck18.arcsec_per_kpc_proper(z).value
    r_half_kpc = 10 ** (0.45 - 0.18 * (abs_mag + 21) + rng.normal(0, 0.15, m)) * (1 + z) ** size_evolution
    bulge_fraction = rng.beta(1.0, 2.0, m)
    sersic_n = np.round(np.clip(rng.normal(1.8 + 2.6 * bulge_fraction, 0.4), 1.0, 5.5), 1)
    bulge_to_disk_radius = rng.uniform(0.2, 0.5, m)
    # scale bulge and disk together so that the composite has the drawn half-light radius
    unit = half_light_radius(bulge_fraction, bulge_to_disk_radius, sersic_n, 1.0)
    r_disk_kpc = r_half_kpc / unit
    r_bulge_kpc = r_disk_kpc * bulge_to_disk_radius
    cos_i = rng.uniform(0, 1, m)
    q_disk = np.sqrt((1 - DISK_Q0**2) * cos_i**2 + DISK_Q0**2)
    late = bulge_fraction < 0.5
    has_arms = late & (rng.uniform(size=m) < arm_probability)
    n_clumps = np.where(late, rng.poisson(6, m), 0)
    return pd.DataFrame({
        "redshift": z,
        "abs_mag_r": abs_mag,
        "mag_r_true": abs_mag + distmod,
        "r_half_kpc": r_half_kpc,
        "r_disk_kpc": r_disk_kpc,
        "r_bulge_kpc": r_bulge_kpc,
        "r_half_arcsec": r_half_kpc / kpc_per_arcsec,
        "r_disk_arcsec": r_disk_kpc / kpc_per_arcsec,
        "r_bulge_arcsec": r_bulge_kpc / kpc_per_arcsec,
        "sersic_n": sersic_n,
        "bulge_fraction": bulge_fraction,
        "axis_ratio": q_disk,
        "ellipticity": (1 - q_disk) / (1 + q_disk),
        "bulge_axis_ratio": rng.uniform(0.65, 1.0, m),
        "position_angle": rng.uniform(0, 180, m),
        "has_arms": has_arms,
        "n_arms": np.where(has_arms, np.where(rng.uniform(size=m) < 0.8, 2, 3), 0),
        "pitch_angle": np.where(has_arms, rng.uniform(12, 30, m), np.nan),
        "arm_fraction": np.where(has_arms, rng.uniform(0.1, 0.25, m), 0.0),
        "n_clumps": n_clumps,
        "clump_fraction": np.where(n_clumps > 0, rng.uniform(0.02, 0.08, m), 0.0),
        "sed_slope_bulge": 2.2 + 2.5 * z + rng.normal(0, 0.15, m),
        "sed_slope_disk": 0.9 + 1.5 * z + rng.normal(0, 0.25, m),
        "sed_slope_sf": -0.8 + 1.0 * z + rng.normal(0, 0.2, m),
    })


def _contaminants(rng: np.random.Generator, table: pd.DataFrame, companion_probability: float,
                  star_probability: float, max_separation: float) -> pd.DataFrame:
    m = len(table)
    comp = rng.uniform(size=m) < companion_probability
    dmag = rng.uniform(0.5, 3.0, m)
    sep = rng.uniform(min(2.5, 0.5 * max_separation), max_separation, m)
    angle = rng.uniform(0, 2 * np.pi, m)
    table["has_companion"] = comp
    table["companion_mag_r"] = np.where(comp, table.mag_r_true + dmag, np.nan)
    table["companion_r_half_arcsec"] = np.where(comp, table.r_half_arcsec * 10 ** (-0.2 * dmag), np.nan)
    table["companion_sersic_n"] = np.where(comp, np.round(rng.uniform(1, 4, m), 1), np.nan)
    table["companion_axis_ratio"] = np.where(comp, rng.uniform(0.3, 1.0, m), np.nan)
    table["companion_position_angle"] = np.where(comp, rng.uniform(0, 180, m), np.nan)
    table["companion_x_arcsec"] = np.where(comp, sep * np.cos(angle), np.nan)
    table["companion_y_arcsec"] = np.where(comp, sep * np.sin(angle), np.nan)
    table["companion_sed_slope"] = np.where(comp, rng.uniform(0.8, 2.6, m), np.nan)
    star = rng.uniform(size=m) < star_probability
    star_sep = rng.uniform(min(2.0, 0.5 * max_separation), max_separation, m)
    star_angle = rng.uniform(0, 2 * np.pi, m)
    table["has_star"] = star
    table["star_mag_r"] = np.where(star, rng.uniform(14.0, 20.0, m), np.nan)
    table["star_x_arcsec"] = np.where(star, star_sep * np.cos(star_angle), np.nan)
    table["star_y_arcsec"] = np.where(star, star_sep * np.sin(star_angle), np.nan)
    table["star_sed_slope"] = np.where(star, rng.uniform(-0.5, 3.0, m), np.nan)
    return table


def draw_population(
    n: int,
    seed: int = 0,
    *,
    redshift: tuple[float, float] | Sequence[float] | np.ndarray = (0.02, 0.12),
    mag_limit: float | None = 18.0,
    max_r_half: float | None = None,
    size_evolution: float = -0.75,
    arm_probability: float = 0.7,
    companion_probability: float = 0.0,
    star_probability: float = 0.0,
    max_separation: float = 6.0,
    **morphology: float,
) -> pd.DataFrame:
    """Draw the truth catalog of ``n`` galaxies of the local (z < 0.3) population.

    Parameters
    ----------
    n : int
        Number of galaxies.
    seed : int
        Seed of every draw (the same seed gives the same catalog).
    redshift : (z_min, z_max) or array of n redshifts
        A range (uniform in comoving volume, then thinned by the flux limit: the redshift
        distribution of a flux-limited survey) or one redshift per galaxy.
    mag_limit : float or None
        Keep galaxies with true total r magnitude brighter than this; None for no flux limit.
    max_r_half : float, optional
        Keep galaxies with ``r_half_arcsec`` below this (they fit the cutout).
    size_evolution : float
        γ of the disk size evolution ``(1 + z)^γ`` at fixed luminosity.
    arm_probability : float
        Fraction of late types (bulge fraction < 0.5) with spiral arms.
    companion_probability, star_probability : float
        Fractions of cutouts with a close companion galaxy or a bright star.
    max_separation : float
        Largest offset of companions, stars and merging pairs from the centre, arcsec.
    **morphology
        ``merger_probability``, ``merger_evolution``, ``clumpy_probability``, ``clumpy_evolution``
        of :func:`galwidgets.data.morphotypes.add_morphology` (mergers, clumpy irregulars,
        edge-on disks); 0 probabilities give only regular and edge-on galaxies.

    Returns
    -------
    pandas.DataFrame
        One row per galaxy: redshift, abs_mag_r, mag_r_true, sizes in kpc and arcsec
        (``r_half_arcsec`` is the circularised half-light radius of bulge + disk), sersic_n,
        bulge_fraction, axis_ratio, ellipticity, position_angle, arm and clump parameters, SED
        slopes (``sed`` is ``"power-law"``), ``type`` (E, S0, Sbc, Scd, Irr), ``morphology`` and
        the merger, clump and dust-lane columns of
        :func:`~galwidgets.data.morphotypes.add_morphology`, contaminants and ``render_seed``
        (the seed of everything drawn at render time).
    """
    rng = np.random.default_rng(seed)
    given = check_redshift(redshift, n)
    too_far = given is not None and mag_limit is not None and \
        np.any(mag_limit - Planck18.distmod(given).value < _M_BRIGHT)
    if too_far:
        raise ValueError(f"redshift: some redshifts are too far for any galaxy to be brighter "
                         f"than mag_limit={mag_limit}; raise mag_limit or pass mag_limit=None")
    table = select_galaxies(
        n, redshift if given is None else given,
        draw=lambda z: _galaxies(rng, z, mag_limit, size_evolution, arm_probability),
        volume=lambda m: _volume_redshifts(rng, m, redshift),
        magnitude="mag_r_true", mag_limit=mag_limit, max_r_half=max_r_half,
    )
    table["sed"] = "power-law"
    return finish_catalog(table, rng, seed, companion_probability=companion_probability,
                          star_probability=star_probability, max_separation=max_separation, **morphology)


def check_redshift(redshift, n: int) -> np.ndarray | None:
    """The per-galaxy redshifts (validated), or None for a valid ``(z_min, z_max)`` range."""
    if isinstance(redshift, tuple) and len(redshift) == 2:
        if not 0 < redshift[0] < redshift[1]:
            raise ValueError(f"redshift: expected (z_min, z_max) with 0 < z_min < z_max, got {redshift!r}")
        return None
    z_all = np.asarray(redshift, dtype=float).ravel()
    if len(z_all) != n or not np.all(np.isfinite(z_all)) or np.any(z_all <= 0):
        raise ValueError(f"redshift: expected a (z_min, z_max) tuple or {n} positive redshifts, "
                         f"got {len(z_all)} values")
    return z_all


def select_galaxies(n: int, redshift, *, draw: Callable[[np.ndarray], pd.DataFrame],
                    volume: Callable[[int], np.ndarray], magnitude: str, mag_limit: float | None,
                    max_r_half: float | None, size: str = "r_half_arcsec") -> pd.DataFrame:
    """Draw galaxies until ``n`` pass the flux limit (``magnitude < mag_limit``) and size cut
    (column ``size`` below ``max_r_half``).

    ``redshift`` is a range (redshifts come from ``volume(m)``, then the flux limit thins them: the
    redshift distribution of a flux-limited survey) or ``n`` redshifts, each redrawn until its galaxy
    passes. ``draw(z)`` gives the properties of galaxies at redshifts ``z``.
    """
    given = not isinstance(redshift, tuple)
    table = pd.DataFrame()
    pending = np.arange(n)  # rows still to fill (array mode) / how many are missing (range mode)
    for _ in range(200):
        m = len(pending) if given else max(4 * (n - len(table)), 64)
        z = redshift[pending] if given else volume(m)
        batch = draw(z)
        keep = np.ones(m, dtype=bool)
        if mag_limit is not None:
            keep &= batch[magnitude].to_numpy() < mag_limit
        if max_r_half is not None:
            keep &= batch[size].to_numpy() < max_r_half
        if given:
            batch.index = pending
            table = pd.concat([table, batch[keep]])
            pending = pending[~keep]
            done = len(pending) == 0
        else:
            table = pd.concat([table, batch[keep]], ignore_index=True)
            done = len(table) >= n
        if done:
            return table.sort_index().iloc[:n].reset_index(drop=True)
    raise ValueError(
        f"mag_limit: could not draw {n} galaxies brighter than mag_limit={mag_limit} that fit "
        f"max_r_half={max_r_half} arcsec; relax one of them"
    )


def finish_catalog(table: pd.DataFrame, rng: np.random.Generator, seed: int, *, companion_probability: float,
                   star_probability: float, max_separation: float, **morphology: float) -> pd.DataFrame:
    """Add morphological diversity (own stream), contaminants, ``render_seed`` and ``id``."""
    table = add_morphology(table, seed, max_separation=max_separation, **morphology)
    table = _contaminants(rng, table, companion_probability, star_probability, max_separation)
    table["render_seed"] = rng.integers(0, 2**31 - 1, len(table))
    table.insert(0, "id", np.arange(len(table)))
    return table
