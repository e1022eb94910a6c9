"""Metrics on flux images: photometry, distances, morphology, Fréchet distances, structure, trust.

Metrics take flux images (or a Survey), never model-space tensors, and return pandas tables or
dicts; a value that cannot be measured for one galaxy is NaN with a flag, never an exception.

Modules: :mod:`.photometry` (aperture magnitudes, colours, half-light radius), :mod:`.distances`
(Synthetic Galaxy Distance, Cohen's d, binned KL), :mod:`.segmentation` (the central source of a
stamp), :mod:`.morphology` (statmorph in a process pool), :mod:`.nonparametric` (fast batched
Gini/M20), :mod:`.shapes` (isophotal area, ellipticity, fit residuals), :mod:`.fid` (Fréchet
distances, FID, KID), :mod:`.structural` (SSIM, SSIM gain, nearest neighbours) and
:mod:`.hallucination` (posterior variance ratio), :mod:`.recovery` (inpainted flux) and
:mod:`.redshift` (the redshift loss), :mod:`.fluxscale` (the flux-scale check of Smith et al.).
"""

from .._lazy import attach
from .distances import *  # noqa: F403
from .distances import __all__ as _distances
from .fid import *  # noqa: F403
from .fid import __all__ as _fid
from .fluxscale import *  # noqa: F403
from .fluxscale import __all__ as _fluxscale
from .hallucination import *  # noqa: F403
from .hallucination import __all__ as _hallucination
from .morphology import *  # noqa: F403
from .morphology import __all__ as _morphology
from .nonparametric import *  # noqa: F403
from .nonparametric import __all__ as _nonparametric
from .photometry import *  # noqa: F403
from .photometry import __all__ as _photometry
from .recovery import *  # noqa: F403
from .recovery import __all__ as _recovery
from .redshift import *  # noqa: F403
from .redshift import __all__ as _redshift
from .segmentation import *  # noqa: F403
from .segmentation import __all__ as _segmentation
from .shapes import *  # noqa: F403
from .shapes import __all__ as _shapes
from .structural import *  # noqa: F403
from .structural import __all__ as _structural

# The redshift loss of a conditional generator needs a trained estimator, so it lives with the
# models (a floor higher); it is named here too, where users look for the redshift loss.
__getattr__, _ = attach(__name__, {
    "conditional_redshift_loss": "..models.redshift:conditional_redshift_loss",
})

__all__ = sorted(
    {
        *_distances, *_fid, *_fluxscale, *_hallucination, *_morphology, *_nonparametric, *_photometry,
        *_recovery,
        *_redshift,
        *_segmentation, *_shapes, *_structural, "conditional_redshift_loss",
    }
)
