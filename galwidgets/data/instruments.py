"""Instrument presets for the mock survey: small declarative tables of bands, pixels, PSF and noise.

Each preset says what a cutout from that survey looks like: its bands (bluest first), pixel scale,
flux unit (AB zeropoint), seeing range, PSF profile and per-pixel sky noise per band. The simulator
reads everything instrument-specific from here, so a new survey is one more table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["BAND_WAVELENGTHS", "INSTRUMENTS", "Instrument", "get_instrument"]

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
        Default redshift range of the mock galaxies (chosen so they fill a 64-pixel cutout).
    mag_limit : float
        Default flux limit (true total r magnitude).
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
    """The preset called ``name`` (``"desi"``, ``"hsc"``, ``"uv-ir"``), or ``name`` if already one."""
    if isinstance(name, Instrument):
        return name
    if name not in INSTRUMENTS:
        raise ValueError(f"instrument: unknown preset {name!r}; presets are {sorted(INSTRUMENTS)}")
    return INSTRUMENTS[name]
