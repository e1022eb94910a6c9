"""Every sampler in one namespace, ``gw.samplers``: the reverse-process integrators and the guided ones.

The plain samplers (``ddpm``, ``ddim`` and the rest, with their shared pieces such as ``denoise``)
are defined in :mod:`galwidgets.diffusion.samplers`; the guided ones in
:mod:`galwidgets.diffusion.repaint` (``inpaint``), :mod:`galwidgets.diffusion.editing` (``sdedit``)
and :mod:`galwidgets.diffusion.posterior` (``dps``). This module only gathers them, on the floor
of the guided samplers.

>>> import galwidgets as gw
>>> ckpt = gw.pretrained.load("desi-tiny")
>>> x = gw.samplers.ddim(ckpt.model, ckpt.schedule, (4, 3, 64, 64), steps=20)
>>> x = gw.samplers.dpm_solver_3m_sde(ckpt.model, ckpt.schedule, (4, 3, 64, 64))  # the default sampler

``DEFAULT_SAMPLER`` and ``DEFAULT_STEPS`` name the sampler and steps used where none is given
(``Checkpoint.sample``, ``galwidgets demo``, the widgets); ``SAMPLERS`` maps names to samplers.
"""

from __future__ import annotations

from .diffusion.editing import sdedit  # noqa: F401  (in __all__)
from .diffusion.posterior import dps  # noqa: F401
from .diffusion.repaint import inpaint  # noqa: F401
from .diffusion.samplers import *  # noqa: F403
from .diffusion.samplers import __all__ as _plain

__all__ = sorted({*_plain, "dps", "inpaint", "sdedit"})
