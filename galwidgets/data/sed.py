"""Galaxy spectral templates and band passes: colours and k-corrections of the evolving mock.

Colours of the ``hsc-deep`` population come from redshifted spectral templates integrated through
band passes, so colour-redshift tracks carry the real k-corrections (the 4000 Å break moving from
g through y as z goes from 0 to 1.5, the Lyman break entering g at z ≈ 3):

- **Templates**: the four empirical spectra of Coleman, Wu & Weedman (1980, ApJS 43, 393), E, Sbc,
  Scd and Im, as extended to the ultraviolet and infrared by Bolzonella, Miralles & Pelló (2000,
  A&A 363, 476) with Bruzual & Charlot models. GalSim ships them (``galsim/share/SEDs``), so nothing
  is downloaded. A fractional template index mixes two neighbours linearly in flux (at equal
  rest-frame B luminosity), as photometric-redshift codes interpolate them (Benítez 2000, BPZ).
- **Intergalactic absorption**: the Lyman-series forest of Madau (1995, ApJ 441, 18, eq. 12 and
  Table 2, Lyα to Lyδ) and no flux below the rest-frame Lyman limit.
- **Band passes**: HSC g, r, i, z, y as top-hats between the half-transmission wavelengths of the
  filters (Kawanomoto et al. 2018, PASJ 70, 66) with 8 nm-wide edges, times the quantum efficiency
  of the fully depleted HSC CCDs (Miyazaki et al. 2018, PASJ 70, S1, Fig. 13), which sets the red
  end of y. Bands without HSC filters (u, GALEX, 2MASS) are top-hats of width 0.25 λ around their
  effective wavelengths: approximate, for experiments only. Rest-frame B is a top-hat 390-490 nm
  (Bessell 1990's B: λ_eff 440 nm, FWHM 98 nm).

Magnitudes are AB for photon-counting detectors: ``m = -2.5 log10(∫ N_λ T dλ / ∫ N_λ^AB T dλ)``
with photon densities ``N_λ ∝ f_λ λ`` and ``N_λ^AB ∝ 1/λ``. The k-correction from rest-frame B to
an observed band (Hogg et al. 2002, astro-ph/0210394, eq. 13) is

    m_band = M_B + DM(z) + K_B→band(z),

computed once per process on a redshift grid and interpolated.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from scipy.special import expit

from .instruments import BAND_WAVELENGTHS

__all__ = [
    "HSC_BAND_EDGES", "TEMPLATES", "band_flux_ratio", "bandpass", "igm_transmission", "kcorrection",
    "spectrum_flux_ratio", "template_name", "template_spectrum",
]

#: Template names in order of the template index (0 = E ... 3 = Im), Coleman, Wu & Weedman (1980).
TEMPLATES: tuple[str, ...] = ("E", "Sbc", "Scd", "Im")

#: Half-transmission wavelengths (nm) of the HSC broad-band filters g, r2, i2, z, Y
#: (Kawanomoto et al. 2018, PASJ 70, 66).
HSC_BAND_EDGES: dict[str, tuple[float, float]] = {
    "g": (399.0, 547.0), "r": (543.0, 699.0), "i": (695.0, 844.0), "z": (853.0, 934.0),
    "y": (938.0, 1070.0),
}

#: Quantum efficiency of the HSC CCDs (Hamamatsu fully depleted, 200 µm), read off Miyazaki et al.
#: (2018, Fig. 13) at these wavelengths (nm).
_QE_WAVE = np.array([350, 400, 500, 600, 700, 800, 900, 950, 1000, 1050, 1100], dtype=float)
_QE = np.array([0.45, 0.70, 0.86, 0.91, 0.93, 0.92, 0.80, 0.65, 0.45, 0.20, 0.03])

_REST_B = (390.0, 490.0)  # top-hat rest-frame B, nm
_EDGE_NM = 8.0  # 10-90 % width of filter edges
_WAVE = np.arange(100.0, 2600.0, 1.0)  # integration grid, nm (observed frame)
_Z_GRID = np.round(np.arange(0.0, 4.0001, 0.005), 3)

# Madau (1995) Table 2: Lyman-series wavelengths (nm) and forest coefficients A_j of
# τ_j = A_j (λ_obs / λ_j)^3.46, for λ_obs < λ_j (1 + z).
_LYMAN = ((121.567, 3.6e-3), (102.572, 1.7e-3), (97.254, 1.2e-3), (94.974, 9.3e-4))
_LYMAN_LIMIT = 91.18


def template_name(index: float | np.ndarray) -> str | np.ndarray:
    """Name of the template nearest to a (fractional) template index: 0 ``E`` ... 3 ``Im``."""
    i = np.clip(np.rint(np.asarray(index, dtype=float)), 0, len(TEMPLATES) - 1).astype(int)
    names = np.asarray(TEMPLATES, dtype=object)[i]
    return str(names) if np.ndim(names) == 0 else names


@cache
def template_spectrum(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Rest-frame ``(wavelength nm, f_λ)`` of a Coleman, Wu & Weedman template shipped by GalSim.

    ``f_λ`` is in the file's arbitrary units (per Å).
    """
    if name not in TEMPLATES:
        raise ValueError(f"template: expected one of {TEMPLATES}, got {name!r}")
    import galsim

    path = Path(galsim.meta_data.share_dir) / "SEDs" / f"CWW_{name}_ext.sed"
    table = np.loadtxt(path, comments="#")
    return table[:, 0] / 10.0, table[:, 1]


def igm_transmission(wave_obs: np.ndarray, z: float | np.ndarray) -> np.ndarray:
    """Mean transmission of the intergalactic medium at observed wavelengths (nm) for a source at z.

    Madau (1995, eq. 12, Table 2): the Lyα-Lyδ forest, ``exp(-Σ_j A_j (λ/λ_j)^3.46)`` blueward of
    each line's redshifted wavelength, and zero flux below the redshifted Lyman limit. An array of
    redshifts gives one row per redshift.
    """
    wave_obs = np.asarray(wave_obs, dtype=float)
    one_plus_z = 1 + np.asarray(z, dtype=float)[..., None]
    tau = np.zeros(np.broadcast_shapes(wave_obs.shape, one_plus_z.shape))
    for line, coeff in _LYMAN:
        tau += np.where(wave_obs < line * one_plus_z, coeff * (wave_obs / line) ** 3.46, 0.0)
    out = np.where(wave_obs < _LYMAN_LIMIT * one_plus_z, 0.0, np.exp(-tau))
    return out


def _top_hat(wave: np.ndarray, lo: float, hi: float) -> np.ndarray:
    k = 4.394 / _EDGE_NM  # logistic whose 10-90 % rise spans _EDGE_NM
    return expit(k * (wave - lo)) * expit(-k * (wave - hi))


def bandpass(band: str) -> np.ndarray:
    """Total throughput of ``band`` on the grid ``100 ... 2599 nm`` (1 nm steps), peak 1.

    HSC g r i z y (filter top-hats times CCD efficiency, see the module notes); ``"B_rest"`` is the
    rest-frame B top-hat; other known bands are top-hats of width 0.25 λ_eff.
    """
    if band == "B_rest":
        throughput = _top_hat(_WAVE, *_REST_B)
    elif band in HSC_BAND_EDGES:
        qe = np.interp(_WAVE, _QE_WAVE, _QE, left=0.0, right=0.0)
        throughput = _top_hat(_WAVE, *HSC_BAND_EDGES[band]) * qe
    elif band in BAND_WAVELENGTHS:
        centre = BAND_WAVELENGTHS[band]
        throughput = _top_hat(_WAVE, 0.875 * centre, 1.125 * centre)
    else:
        raise ValueError(f"band: expected one of {list(BAND_WAVELENGTHS)}, got {band!r}")
    return throughput / throughput.max()


def _ab_flux(wave: np.ndarray, flam: np.ndarray, band: str, z: np.ndarray) -> np.ndarray:
    """``∫ N_λ T dλ / ∫ N_λ^AB T dλ`` of the spectrum ``f_λ(wave)`` redshifted to each ``z``.

    The observed photon density of a redshifted spectrum is ``N_obs(λ) = N_rest(λ / (1 + z))``
    (per unit rest-frame luminosity and with the distance in the distance modulus), with
    ``N ∝ f_λ λ``; the AB reference is ``N_λ^AB ∝ 1 / λ``.
    """
    through = bandpass(band)
    keep = through > 1e-6 * through.max()
    lam, through = _WAVE[keep], through[keep]
    z = np.atleast_1d(np.asarray(z, dtype=float))
    photons = np.interp(lam[None, :] / (1 + z[:, None]), wave, flam * wave, left=0.0, right=0.0)
    photons = photons * igm_transmission(lam, z)
    return (photons * through).sum(axis=-1) / (through / lam).sum()


def spectrum_flux_ratio(wave: np.ndarray, flam: np.ndarray, band: str, z: float | np.ndarray) -> np.ndarray:
    """``10^(-0.4 K_B→band(z))`` of any rest-frame spectrum ``f_λ`` tabulated at ``wave`` (nm)."""
    return _ab_flux(wave, flam, band, z) / _ab_flux(wave, flam, "B_rest", 0.0)


@cache
def _ratio_table(band: str) -> np.ndarray:
    """``10^(-0.4 K)`` for every template (rows) at every redshift of ``_Z_GRID`` (columns)."""
    return np.stack([spectrum_flux_ratio(*template_spectrum(name), band, _Z_GRID) for name in TEMPLATES])


def band_flux_ratio(template_index: float | np.ndarray, band: str, z: float | np.ndarray) -> np.ndarray:
    """Observed flux in ``band`` per unit rest-frame B flux, ``10^(-0.4 K_B→band(z))``.

    Parameters
    ----------
    template_index : float or array
        0 (E) ... 3 (Im); fractional values mix the two neighbouring templates linearly in flux.
    band : str
        Observed band.
    z : float or array
        Redshift, 0 ... 4 (broadcast against ``template_index``).

    Returns
    -------
    numpy.ndarray
        The flux ratio: a source of rest-frame B absolute AB magnitude ``M_B`` at distance modulus
        ``DM`` has observed flux ``10^(-0.4 (M_B + DM - zp)) * ratio`` at zeropoint ``zp``.
    """
    t, z = np.broadcast_arrays(np.asarray(template_index, dtype=float), np.asarray(z, dtype=float))
    if np.any((z < 0) | (z > _Z_GRID[-1])):
        raise ValueError(f"z: expected redshifts in [0, {_Z_GRID[-1]}], got {z.min()} ... {z.max()}")
    table = _ratio_table(band)
    t = np.clip(t, 0, len(TEMPLATES) - 1)
    lo = np.minimum(np.floor(t).astype(int), len(TEMPLATES) - 2)
    w = t - lo
    pos = z / (_Z_GRID[1] - _Z_GRID[0])
    j = np.minimum(np.floor(pos).astype(int), len(_Z_GRID) - 2)
    f = pos - j

    def at(k):
        return table[k, j] * (1 - f) + table[k, j + 1] * f

    return (1 - w) * at(lo) + w * at(lo + 1)


def kcorrection(template_index: float | np.ndarray, band: str, z: float | np.ndarray) -> np.ndarray:
    """K-correction ``K_B→band(z)`` in magnitudes (Hogg et al. 2002, eq. 13), rest-frame B to ``band``.

    A flat-f_ν spectrum gives ``-2.5 log10(1 + z)`` in every band.
    """
    return -2.5 * np.log10(band_flux_ratio(template_index, band, z))

