"""Every network class a checkpoint can hold, by name: what :func:`galwidgets.load_checkpoint` rebuilds.

A checkpoint records its model's class name and constructor arguments; :data:`MODELS` maps the
name back to the class. A new network joins by adding its module's ``MODELS`` table here.
"""

from __future__ import annotations

from torch import nn

from . import gan, redshift, translator, vae
from .unet import UNet

__all__ = ["MODELS"]

#: Class name -> network class, for rebuilding checkpoints.
MODELS: dict[str, type[nn.Module]] = {"UNet": UNet, **vae.MODELS, **gan.MODELS, **translator.MODELS,
                                      **redshift.MODELS}
