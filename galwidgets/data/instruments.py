"""Instrument presets for the mock survey: small declarative tables of bands, pixels, PSF and noise.

Each preset says what a cutout from that survey looks like: its bands (bluest first), pixel scale,
flux unit (AB zeropoint), seeing range, PSF profile and per-pixel sky noise per band. The simulator
reads everything instrument-specific from here, so a new survey is one more table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["BAND_WAVELENGTHS", "INSTRUMENTS", "POPULATIONS", "Instrument", "get_instrument"]

#: Effective wavelength (nm) of every band the simulator knows (GALEX, SDSS/DECam/HSC, 2MASS).
BAND_WAVELENGTHS: dict[str, float] = {
    "FUV": 153.0, "NUV": 231.0, "u": 355.0, "g": 475.0, "r": 622.0, "i": 763.0,
    "z": 905.0, "y": 1000.0, "J": 1250.0, "H": 1650.0, "K": 2190.0,
}


@dataclass(frozen=True)
class Instrument:
    """What cutouts from one survey look like.

    Attributes
    ----------
    name : str
        Preset name.
    bands : tuple of str
        Bands, bluest first (keys of :data:`BAND_WAVELENGTHS`).
    pixel_scale : float
        Arcsec per pixel.
    zeropoint : float
        AB zeropoint of the flux unit (22.5: nanomaggies; 27: HSC counts).
    seeing : (float, float)
        Range of the r-band PSF FWHM in arcsec; other bands scale as λ^-0.2 (Kolmogorov).
    sky_sigma : dict
        Per-pixel 1σ sky noise per band, in the preset's flux unit and pixel scale.
    psf_profile : {"moffat", "kolmogorov"}
        PSF shape (Moffat with β = 3.5, or the Kolmogorov atmospheric profile).
    redshift : (float, float)
        Default redshift range of the mock galaxies (for the local population, chosen so that they
        fill a 64-pixel cutout).
    mag_limit : float
        Default flux limit (true total magnitude in ``mag_band``).
    mag_band : str
        Band of the flux limit (``"r"`` for the local population, whose luminosity function is in r).
    population : {"local", "evolving"}
        Galaxy population: ``"local"`` (z < 0.3: an r-band luminosity function and power-law
        spectra, :func:`galwidgets.data.population.draw_population`) or ``"evolving"`` (to z = 3:
        evolving luminosity functions, sizes and template spectra,
        :func:`galwidgets.data.evolving.draw_evolving_population`).
    seeing_ratio : dict
        PSF FWHM in a band over the r-band FWHM, where it departs from Kolmogorov's λ^-0.2 (e.g.
        surveys that take their best seeing in one band).
    description : str
        Where the numbers come from.
    """

    name: str
    bands: tuple[str, ...]
    pixel_scale: float
    zeropoint: float
    seeing: tuple[float, float]
    sky_sigma: Mapping[str, float] = field(default_factory=dict)
    psf_profile: str = "moffat"
    redshift: tuple[float, float] = (0.02, 0.12)
    mag_limit: float = 18.0
    mag_band: str = "r"
    population: str = "local"
    seeing_ratio: Mapping[str, float] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        unknown = [b for b in self.bands if b not in BAND_WAVELENGTHS]
        if unknown:
            raise ValueError(f"bands: unknown band(s) {unknown}; known: {list(BAND_WAVELENGTHS)}")
        missing = [b for b in self.bands if b not in self.sky_sigma]
        if missing:
            raise ValueError(f"sky_sigma: no value for band(s) {missing} of instrument {self.name!r}")
        if self.psf_profile not in ("moffat", "kolmogorov"):
            raise ValueError(f"psf_profile: expected 'moffat' or 'kolmogorov', got {self.psf_profile!r}")
        if self.population not in POPULATIONS:
            raise ValueError(f"population: expected one of {POPULATIONS}, got {self.population!r}")
        if self.population == "local" and self.mag_band != "r":
            raise ValueError(f"mag_band: the local population is flux-limited in r, got {self.mag_band!r}")
        if self.mag_band not in BAND_WAVELENGTHS:
            raise ValueError(f"mag_band: unknown band {self.mag_band!r}; known: {list(BAND_WAVELENGTHS)}")

    def fwhm_ratio(self, band: str) -> float:
        """PSF FWHM in ``band`` over that in r: the preset's ``seeing_ratio`` or Kolmogorov's λ^-0.2."""
        if band in self.seeing_ratio:
            return float(self.seeing_ratio[band])
        return (BAND_WAVELENGTHS[band] / BAND_WAVELENGTHS["r"]) ** -0.2


#: Galaxy populations a preset can draw.
POPULATIONS = ("local", "evolving")


INSTRUMENTS: dict[str, Instrument] = {
    "desi": Instrument(
        name="desi",
        bands=("g", "r", "z"),
        pixel_scale=0.262,
        zeropoint=22.5,
        seeing=(1.1, 1.4),
        # 5σ point-source depths ≈ 24.0, 23.5, 22.5 mag at 0.262″/px, in nanomaggies
        sky_sigma={"g": 0.007, "r": 0.0115, "z": 0.028},
        psf_profile="moffat",
        description="DESI Legacy Imaging Surveys (DECaLS/BASS/MzLS) coadd cutouts, nanomaggies",
    ),
    "hsc": Instrument(
        name="hsc",
        bands=("g", "r", "i", "z", "y"),
        pixel_scale=0.168,
        zeropoint=27.0,
        seeing=(0.6, 0.8),
        # robust sky noise of the PDR3 UltraDeep (COSMOS) cutouts, counts at zeropoint 27
        sky_sigma={"g": 0.010, "r": 0.014, "i": 0.015, "z": 0.020, "y": 0.035},
        psf_profile="kolmogorov",
        redshift=(0.03, 0.3),
        mag_limit=20.0,
        description="Hyper Suprime-Cam SSP PDR3 UltraDeep coadds, counts with FLUXMAG0 = 10^10.8",
    ),
    "hsc-deep": Instrument(
        name="hsc-deep",
        bands=("g", "r", "i", "z", "y"),
        pixel_scale=0.168,
        zeropoint=27.0,
        # PDR3 Wide median seeing ≈ 0.77″ in g and r, 0.61″ in i (taken in the best conditions),
        # 0.68″ in z and y (Aihara et al. 2022, PASJ 74, 247); r drawn in 0.65-0.85″
        seeing=(0.65, 0.85),
        seeing_ratio={"g": 1.03, "r": 1.0, "i": 0.81, "z": 0.9, "y": 0.9},
        # white sky noise that gives the PDR3 Wide full-depth 5σ point-source limits g 26.5, r 26.5,
        # i 26.2, z 25.2, y 24.4 (Aihara et al. 2022) for optimal (PSF-weighted) photometry with a
        # Kolmogorov PSF of the median seeing: σ = F_5σ / (5 √N_eff), N_eff = 1 / Σ p² (42-69 px)
        sky_sigma={"g": 0.038, "r": 0.040, "i": 0.065, "z": 0.146, "y": 0.305},
        psf_profile="kolmogorov",
        redshift=(0.05, 3.0),
        mag_limit=24.5,
        mag_band="i",
        population="evolving",
        description=(
            "Hyper Suprime-Cam SSP PDR3 Wide-like depth and seeing, counts at zeropoint 27: a deep, "
            "evolving population to z = 3 with template colours (galwidgets.data.evolving)"
        ),
    ),
    "uv-ir": Instrument(
        name="uv-ir",
        bands=("FUV", "NUV", "u", "g", "r", "i", "z", "K"),
        pixel_scale=0.4,
        zeropoint=22.5,
        seeing=(1.1, 1.4),
        sky_sigma={"FUV": 0.003, "NUV": 0.003, "u": 0.02, "g": 0.01, "r": 0.015, "i": 0.02,
                   "z": 0.04, "K": 0.1},
        psf_profile="moffat",
        redshift=(0.01, 0.06),
        mag_limit=17.0,
        description=(
            "GALEX FUV/NUV, SDSS ugriz and 2MASS K resampled to one 0.4″ grid at matched resolution, "
            "nanomaggies: paired images for band translation, not a real survey"
        ),
    ),
}


def get_instrument(name: str | Instrument) -> Instrument:
    """The preset called ``name`` (``"desi"``, ``"hsc"``, ``"hsc-deep"``, ``"uv-ir"``), or ``name``
    if already one."""
    if isinstance(name, Instrument):
        return name
    if not isinstance(name, str):
        raise TypeError(f"instrument: expected a preset name {sorted(INSTRUMENTS)} or an Instrument, "
                        f"got {type(name).__name__}")
    if name not in INSTRUMENTS:
        raise ValueError(f"instrument: unknown preset {name!r}; presets are {sorted(INSTRUMENTS)}")
    return INSTRUMENTS[name]
