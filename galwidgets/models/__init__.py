"""Neural networks: the ε-prediction U-Net and the comparison models of the published work.

:mod:`.unet` (the diffusion prior), :mod:`.vae` (VAE and redshift-conditional VAE),
:mod:`.gan` (DCGAN), :mod:`.translator` (band-to-band image translation) and :mod:`.redshift`
(a CNN redshift estimator). ``MODELS`` maps class names to classes, so checkpoints can rebuild
any of them.
"""

from . import gan, redshift, translator, vae
from .gan import *  # noqa: F403
from .redshift import *  # noqa: F403
from .translator import *  # noqa: F403
from .unet import UNet, timestep_embedding  # noqa: F401  (re-exported)
from .vae import *  # noqa: F403

MODELS = {"UNet": UNet, **vae.MODELS, **gan.MODELS, **translator.MODELS, **redshift.MODELS}

__all__ = sorted({"MODELS", "UNet", "timestep_embedding", *vae.__all__, *gan.__all__,
                  *translator.__all__, *redshift.__all__})
