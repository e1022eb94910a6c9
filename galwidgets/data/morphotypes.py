"""Morphological diversity of the mock: mergers, clumpy irregulars and edge-on disks, with their truth.

Every population (every preset) gets, after its galaxies are drawn and selected:

- **Mergers and interacting pairs** (``morphology == "merger"``), with probability
  ``f_0 (1 + z)^m`` (:func:`~galwidgets.data.evolution.merger_fraction`): a second galaxy of
  1:4 to 1:1 flux ratio (uniform; a major merger, Lotz et al. 2011) at a projected separation of 2.5-15 kpc
  (log-uniform: from coalescing nuclei to a close pair sharing one isophote, the stages Gini-M20
  picks up, Lotz et al. 2008), both placed so that the light-weighted centre of the pair is the
  cutout centre; tidal tails (one or two curved streams holding 8-25 % of the pair's light, one to
  two times the separation long), a lopsided primary disk and, in both nuclei, a compact
  merger-driven starburst holding 10-30 % of each galaxy's light (gas driven to the centres by
  the interaction, Mihos & Hernquist 1996, ApJ 464, 641; the enhanced central star formation of
  close pairs, Ellison et al. 2008, AJ 135, 1877): the bright double nuclei and asymmetric light
  by which Gini-M20 and asymmetry find mergers (Lotz et al. 2004, 2008).
- **Clumpy irregulars** (``"clumpy"``, type ``Irr``) among star-forming galaxies, with probability
  ``f_0 (1 + z)^k`` (:func:`~galwidgets.data.evolution.clumpy_fraction`, Guo et al. 2015): a pure
  disk (no bulge), 3-9 giant star-forming clumps holding 20-45 % of the light (Elmegreen et al. 2007, ApJ
  658, 763; Guo et al. 2015 count clumps of >= 8 % of the light each), larger than the knots of
  ordinary spirals, on a faint disk.
- **Edge-on disks** (``"edge-on"``): disk galaxies seen at inclinations above 75 degrees, drawn as
  thin disks with a vertical sech² profile (GalSim's ``InclinedExponential``, scale height 0.2 of
  the scale length, Kregel et al. 2002, MNRAS 334, 646) and, for bulge fractions below 0.5, a dust
  lane in the mid-plane whose depth scales as λ^-1 in the rest frame. Inclinations are isotropic,
  so their share is geometric (cos 75° ≈ 26 % of disk-dominated galaxies).

Everything drawn here comes from its own random stream, after the selection, so adding diversity
leaves the rest of a seeded catalog as it was.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .evolution import clumpy_fraction, merger_fraction

__all__ = ["DISK_Q0", "EDGE_ON_INCLINATION", "EDGE_ON_Q0", "MORPHOLOGIES", "add_morphology", "hubble_type"]

#: Values of the ``morphology`` column.
MORPHOLOGIES = ("regular", "edge-on", "clumpy", "merger")

#: Intrinsic thickness of disks: their apparent axis ratio seen edge-on, in the sheared-disk model
#: ``q = sqrt((1 - q0²) cos² i + q0²)`` of inclination ``i``.
DISK_Q0 = 0.2
#: Inclination (degrees) above which a disk is drawn as an edge-on thin disk.
EDGE_ON_INCLINATION = 75.0
#: Apparent axis ratio of an edge-on thin disk (second moments of GalSim's InclinedExponential with
#: scale height 0.2 of the scale radius, seen at 90 degrees).
EDGE_ON_Q0 = 0.13
#: Scale height over scale radius of edge-on disks and of their dust lanes.
DISK_H_OVER_R, DUST_H_OVER_R = 0.2, 0.06


def hubble_type(bulge_fraction: np.ndarray) -> np.ndarray:
    """Hubble-like type from the bulge fraction: E (>= 0.6), S0 (0.4-0.6), Sbc (0.15-0.4), Scd."""
    bt = np.asarray(bulge_fraction, dtype=float)
    return np.select([bt >= 0.6, bt >= 0.4, bt >= 0.15], ["E", "S0", "Sbc"], "Scd").astype(object)


def _inclination(axis_ratio: np.ndarray) -> np.ndarray:
    """Inclination (degrees) of a disk of intrinsic thickness DISK_Q0 with apparent ``axis_ratio``."""
    q = np.asarray(axis_ratio, dtype=float)
    cos_i = np.sqrt(np.clip((q**2 - DISK_Q0**2) / (1 - DISK_Q0**2), 0, 1))
    return np.degrees(np.arccos(cos_i))


def _make_pure_disk(table: pd.DataFrame, rows: np.ndarray) -> None:
    """No bulge for ``rows``: the disk alone has the galaxy's half-light radius."""
    for unit in ("kpc", "arcsec"):
        table.loc[rows, f"r_disk_{unit}"] = table.loc[rows, f"r_half_{unit}"]
    table.loc[rows, "bulge_fraction"] = 0.0


def _mergers(rng: np.random.Generator, table: pd.DataFrame, chosen: np.ndarray,
             max_separation: float, templates: bool) -> None:
    m = len(table)
    r_half = table.r_half_arcsec.to_numpy()
    kpc_per_arcsec = (table.r_half_kpc / table.r_half_arcsec).to_numpy()
    ratio = rng.uniform(0.25, 1.0, m)  # secondary / primary flux
    r_half_2 = r_half * ratio**0.3 * rng.lognormal(0, 0.15, m)
    # projected separations from coalescing nuclei to close pairs, 3-25 kpc (Patton et al. 2000)
    separation = 10 ** rng.uniform(np.log10(3.0), np.log10(25.0), m) / kpc_per_arcsec
    # keep both galaxies' half-light regions inside the cutout: each centre (their light-weighted
    # centre is the cutout's) plus 1.5 half-light radii within 75 % of max_separation
    room = 0.75 * max_separation
    fits = np.minimum((room - 1.5 * r_half_2) * (1 + ratio), (room - 1.5 * r_half) * (1 + ratio) / ratio)
    separation = np.clip(separation, None, np.maximum(fits, 0.5 * r_half))
    reach = np.maximum(separation, 2 * r_half) * rng.uniform(1.0, 2.0, m)
    tail = np.minimum(reach, np.maximum(0.8 * max_separation - separation, r_half))
    z = table.redshift.to_numpy()

    def only(values, fill=np.nan):
        return np.where(chosen, values, fill)

    table["merger_flux_ratio"] = only(ratio)
    table["merger_separation_arcsec"] = only(separation)
    table["merger_angle"] = only(rng.uniform(0, 360, m))
    table["secondary_r_half_arcsec"] = only(r_half_2)
    table["secondary_sersic_n"] = only(np.round(rng.uniform(0.8, 4.0, m), 1))
    table["secondary_axis_ratio"] = only(rng.uniform(0.35, 1.0, m))
    table["secondary_position_angle"] = only(rng.uniform(0, 180, m))
    slope = rng.uniform(0.8, 2.6, m) + 1.5 * z
    template = rng.uniform(0.0, 3.0, m)
    table["secondary_sed_slope"] = only(slope) if not templates else np.nan
    table["secondary_template"] = only(template) if templates else np.nan
    table["tidal_fraction"] = only(rng.uniform(0.08, 0.25, m), 0.0)
    table["tidal_length_arcsec"] = only(tail)
    table["n_tails"] = np.where(chosen, np.where(rng.uniform(size=m) < 0.6, 2, 1), 0)
    table["lopsidedness"] = only(rng.uniform(0.1, 0.4, m), 0.0)
    table["nuclear_fraction"] = only(rng.uniform(0.1, 0.3, m), 0.0)


def _clumpy(rng: np.random.Generator, table: pd.DataFrame, chosen: np.ndarray, templates: bool) -> None:
    m = len(table)
    rows = np.flatnonzero(chosen)
    _make_pure_disk(table, rows)
    table.loc[rows, "has_arms"] = False
    table.loc[rows, "n_arms"] = 0
    table.loc[rows, "pitch_angle"] = np.nan
    table.loc[rows, "arm_fraction"] = 0.0
    table.loc[rows, "n_clumps"] = (3 + rng.poisson(2.5, m).clip(0, 6))[rows]
    table.loc[rows, "clump_fraction"] = rng.uniform(0.2, 0.45, m)[rows]
    table.loc[rows, "clump_scale"] = rng.uniform(0.3, 0.5, m)[rows]
    table.loc[rows, "type"] = "Irr"
    if templates:
        index = rng.uniform(2.5, 3.0, m)[rows]
        table.loc[rows, "template_index"] = index
        table.loc[rows, "template_disk"] = index
        table.loc[rows, "template_bulge"] = index
    else:
        table.loc[rows, "sed_slope_disk"] = table.loc[rows, "sed_slope_disk"] - 0.3


def add_morphology(
    table: pd.DataFrame,
    seed: int,
    *,
    merger_probability: float = 0.05,
    merger_evolution: float = 2.0,
    clumpy_probability: float = 0.08,
    clumpy_evolution: float = 1.6,
    max_separation: float = 6.0,
) -> pd.DataFrame:
    """Give a drawn population its mergers, clumpy irregulars and edge-on disks (in place, returned).

    Parameters
    ----------
    table : pandas.DataFrame
        A catalog of :func:`~galwidgets.data.population.draw_population` before contaminants.
    seed : int
        Seed of this step's own random stream.
    merger_probability, merger_evolution : float
        Merger fraction ``min(0.3, p (1 + z)^m)``: a few per cent locally, rising with z.
    clumpy_probability, clumpy_evolution : float
        Clumpy fraction of star-forming (Sbc, Scd) galaxies, ``min(0.6, p (1 + z)^k)``; galaxies
        that the population already typed ``Irr`` are clumpy whatever these are.
    max_separation : float
        Largest offset from the centre, arcsec: pairs and tails are kept inside it.

    Returns
    -------
    pandas.DataFrame
        ``table`` with ``morphology`` (one of :data:`MORPHOLOGIES`), ``type``, ``inclination``
        (degrees), ``dust_lane`` (fraction of the disk light the mid-plane dust removes at rest-frame
        550 nm, 0 without; scaling as λ^-1), ``clump_scale``
        (clump σ in disk scale lengths) and the merger columns (NaN, or 0, for other galaxies):
        ``merger_flux_ratio`` (secondary / primary), ``merger_separation_arcsec``, ``merger_angle``
        (degrees), ``secondary_*`` shape and spectrum, ``tidal_fraction`` (tail light over the pair's),
        ``tidal_length_arcsec``, ``n_tails``, ``lopsidedness`` (offset of the primary disk in units of
        its half-light radius), ``nuclear_fraction`` (share of each galaxy's light in its nuclear
        starburst, which has the star-forming spectrum).
    """
    rng = np.random.default_rng([int(seed), 2])
    m = len(table)
    templates = "sed" in table and bool((table["sed"] == "template").all())
    z = table.redshift.to_numpy()
    if "type" not in table:
        table["type"] = hubble_type(table.bulge_fraction.to_numpy())
    if "clump_scale" not in table:
        table["clump_scale"] = 0.2
    table["inclination"] = _inclination(table.axis_ratio.to_numpy())
    merger = rng.uniform(size=m) < merger_fraction(z, merger_probability, merger_evolution)
    star_forming = table["type"].isin(["Sbc", "Scd"]).to_numpy()
    drawn = ~merger & star_forming & (rng.uniform(size=m) < clumpy_fraction(z, clumpy_probability,
                                                                           clumpy_evolution))
    _mergers(rng, table, merger, max_separation, templates)
    _clumpy(rng, table, drawn, templates)
    clumpy = ~merger & (table["type"] == "Irr").to_numpy()  # drawn here or by the population
    disky = table.bulge_fraction.to_numpy() < 0.6
    edge_on = ~merger & ~clumpy & disky & (table.inclination.to_numpy() > EDGE_ON_INCLINATION)
    cos_i = np.cos(np.radians(table.inclination.to_numpy()))
    table["axis_ratio"] = np.where(edge_on, np.sqrt(cos_i**2 + EDGE_ON_Q0**2 * (1 - cos_i**2)),
                                   table.axis_ratio)
    table["ellipticity"] = (1 - table.axis_ratio) / (1 + table.axis_ratio)
    dusty = edge_on & (table.bulge_fraction.to_numpy() < 0.5)
    table["dust_lane"] = np.where(dusty, rng.uniform(0.1, 0.2, m), 0.0)
    table["morphology"] = np.select([merger, clumpy, edge_on], ["merger", "clumpy", "edge-on"],
                                    "regular").astype(object)
    return table
