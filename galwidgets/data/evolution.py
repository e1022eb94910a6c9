"""Published relations for how galaxy populations evolve with redshift, used by the deep mock.

Two populations, split by star-formation activity as the cited surveys split them: **early**
(quiescent, red sequence: E and S0) and **late** (star-forming: Sbc, Scd, irregular).

- **Luminosity functions** in rest-frame B (AB): Schechter (1976) functions whose characteristic
  magnitude brightens as ``M*(z) = M*_0 + a ln(1 + z)`` and whose normalisation evolves as
  ``φ*(z) = φ*_0 (1 + z)^b``, the parametrisation of Gabasch et al. (2004, A&A 421, 41) for the
  FORS Deep Field to z ≈ 5. Local values and faint-end slopes follow the colour-split B-band
  functions of DEEP2 + COMBO-17 (Willmer et al. 2006, ApJ 647, 853; Faber et al. 2007, ApJ 665,
  265): α = -0.5 for red and -1.3 for blue galaxies; M* of both brightens by about 1 mag to z = 1;
  the number density of red galaxies roughly doubles since z = 1 while that of blue ones changes
  little. The red decline continues steeply to z ≈ 3 (quiescent mass functions of Muzzin et al.
  2013, ApJ 777, 18). The coefficients below are rounded values in this spirit, not a fit.
- **Sizes**: the size-mass relation of van der Wel et al. (2014, ApJ 788, 28, eq. 2 and Table 1),
  ``R_eff = A(z) (M / 5×10^10 M_sun)^α`` with ``A ∝ (1 + z)^-1.48`` for early and ``(1 + z)^-0.75``
  for late types (log A = 0.60 and 0.86 at z = 0.25), slopes α = 0.75 (early, above 2×10^10 M_sun;
  flatter below, as their Fig. 5 shows) and 0.22 (late), intrinsic scatter 0.13 and 0.17 dex.
  ``R_eff`` is the major-axis radius at rest-frame 5000 Å.
- **Stellar mass** is not drawn separately: a galaxy's mass is proxied from its luminosity relative
  to the evolving M*, ``log M = log M_knee + 0.4 (M*(z) - M_B)``, with the knee masses of the
  quiescent and star-forming mass functions (10^10.9 and 10^10.7 M_sun; Muzzin et al. 2013;
  Davidzon et al. 2017, A&A 605, A70). Passive fading and the brightening of star-forming galaxies
  thus leave the mass at fixed L/L* unchanged, as it should be to first order.
- **Merger fraction** ``f(z) = f_0 (1 + z)^m``, capped at 30 %: f_0 = 5 %, a few per cent locally
  (close pairs of Patton et al. 2000, ApJ 536, 153; Darg et al. 2010, MNRAS 401, 1043), and
  m = 2, within the range of published major-merger and pair fractions (m ≈ 0-2 in Lotz et al.
  2011, ApJ 742, 103, depending on the method; 2-3 in Conselice et al. 2003, AJ 126, 1183, and
  Bluck et al. 2009, MNRAS 394, L51; 3.1 for the close pairs of Kartaltepe et al. 2007, ApJS 172,
  320). Lotz et al. (2008, ApJ 672, 177) measure 7-10 % of galaxies in the Gini-M20 merger region
  of HST images at 0.2 < z < 1.2.
- **Clumpy fraction** of star-forming galaxies ``f(z) = f_0 (1 + z)^k``, from about 10 % locally to
  about half at z ≈ 2 (Guo et al. 2015, ApJ 800, 39; Shibuya et al. 2016, ApJ 821, 72).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = [
    "KINDS", "LUMINOSITY_FUNCTIONS", "SIZE_RELATIONS", "STELLAR_MASS_KNEE", "LuminosityFunction",
    "SizeRelation", "clumpy_fraction", "merger_fraction",
]

#: The two populations.
KINDS = ("early", "late")

#: Brightest and faintest rest-frame B magnitudes drawn.
M_BRIGHT, M_FAINT = -25.0, -14.0


@dataclass(frozen=True)
class LuminosityFunction:
    """An evolving Schechter function in rest-frame B (AB magnitudes, φ in Mpc^-3 mag^-1)."""

    m_star0: float
    alpha: float
    phi_star0: float
    a: float  # M*(z) = m_star0 + a ln(1 + z)
    b: float  # φ*(z) = phi_star0 (1 + z)^b

    def m_star(self, z: float | np.ndarray) -> np.ndarray:
        """Characteristic magnitude at redshift ``z``."""
        return self.m_star0 + self.a * np.log1p(z)

    def phi_star(self, z: float | np.ndarray) -> np.ndarray:
        """Normalisation at redshift ``z``."""
        return self.phi_star0 * (1 + np.asarray(z, dtype=float)) ** self.b

    def density_brighter(self, z: float | np.ndarray, m_faint: float | np.ndarray) -> np.ndarray:
        """Number density (Mpc^-3) of galaxies brighter than ``m_faint`` (and fainter than -25)."""
        grid, cdf, total = _cdf(self.alpha)
        m_star = self.m_star(z)
        lo = np.interp(M_BRIGHT - m_star, grid, cdf)
        hi = np.interp(np.minimum(m_faint, M_FAINT) - m_star, grid, cdf)
        return self.phi_star(z) * total * np.clip(hi - lo, 0, None)

    def sample(self, rng: np.random.Generator, z: np.ndarray, m_faint: np.ndarray) -> np.ndarray:
        """Absolute magnitudes between -25 and ``min(m_faint, -14)``, one per redshift."""
        grid, cdf, _ = _cdf(self.alpha)
        m_star = self.m_star(z)
        lo = np.interp(M_BRIGHT - m_star, grid, cdf)
        hi = np.interp(np.minimum(m_faint, M_FAINT) - m_star, grid, cdf)
        u = lo + rng.uniform(size=len(z)) * np.clip(hi - lo, 0, None)
        return m_star + np.interp(u, cdf, grid)


@cache
def _cdf(alpha: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Cumulative Schechter function in ``x = M - M*`` (bright to faint), normalised, and its total."""
    grid = np.linspace(-8.0, 14.0, 8801)
    ratio = 10 ** (-0.4 * grid)  # L / L*
    density = 0.4 * np.log(10) * ratio ** (alpha + 1) * np.exp(-ratio)
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    return grid, cdf / cdf[-1], float(cdf[-1])


#: Rest-frame B luminosity functions of the two populations (see the module notes).
LUMINOSITY_FUNCTIONS: dict[str, LuminosityFunction] = {
    "early": LuminosityFunction(m_star0=-20.7, alpha=-0.5, phi_star0=4.0e-3, a=-1.5, b=-1.5),
    "late": LuminosityFunction(m_star0=-20.5, alpha=-1.3, phi_star0=3.0e-3, a=-1.6, b=-0.3),
}

#: log10 of the knee of the stellar mass function (M_sun): the mass of an L* galaxy.
STELLAR_MASS_KNEE = {"early": 10.9, "late": 10.7}


@dataclass(frozen=True)
class SizeRelation:
    """``log R_eff / kpc = log_a + beta log10((1 + z) / (1 + z_ref)) + slope log10(M / 5e10)``."""

    log_a: float
    z_ref: float
    beta: float
    slope: float
    slope_low: float  # below ``mass_break``
    mass_break: float  # log10 M_sun
    scatter: float  # dex

    def log_radius(self, z: np.ndarray, log_mass: np.ndarray) -> np.ndarray:
        """Mean log10 major-axis half-light radius (kpc) at redshift ``z`` and log stellar mass."""
        x = np.asarray(log_mass, dtype=float) - np.log10(5e10)
        knee = self.mass_break - np.log10(5e10)
        mass_term = np.where(x > knee, self.slope * x, self.slope * knee + self.slope_low * (x - knee))
        return self.log_a + self.beta * np.log10((1 + np.asarray(z)) / (1 + self.z_ref)) + mass_term


#: van der Wel et al. (2014) size-mass relations.
SIZE_RELATIONS: dict[str, SizeRelation] = {
    "early": SizeRelation(log_a=0.60, z_ref=0.25, beta=-1.48, slope=0.75, slope_low=0.25,
                          mass_break=np.log10(2e10), scatter=0.13),
    "late": SizeRelation(log_a=0.86, z_ref=0.25, beta=-0.75, slope=0.22, slope_low=0.22,
                         mass_break=np.log10(3e9), scatter=0.17),
}


def merger_fraction(z: float | np.ndarray, local: float = 0.05, evolution: float = 2.0,
                    ceiling: float = 0.3) -> np.ndarray:
    """Fraction of galaxies in a major merger, ``local (1 + z)^evolution``; the growth stops at
    ``max(ceiling, local)``."""
    return np.minimum(max(ceiling, local), local * (1 + np.asarray(z, dtype=float)) ** evolution)


def clumpy_fraction(z: float | np.ndarray, local: float = 0.08, evolution: float = 1.6,
                    ceiling: float = 0.6) -> np.ndarray:
    """Fraction of star-forming galaxies that are clumpy, ``local (1 + z)^evolution``; the growth
    stops at ``max(ceiling, local)``."""
    return np.minimum(max(ceiling, local), local * (1 + np.asarray(z, dtype=float)) ** evolution)
