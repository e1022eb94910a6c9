"""Interactive widgets. Each is a ``traitlets.HasTraits`` state object plus a view built from it.

>>> import galwidgets as gw
>>> gw.widgets.Gallery(real_survey, generated_survey)      # last line of a notebook cell

:mod:`.gallery` (real vs generated, "real or fake?"), :mod:`.morphology` (Gini–M20 explorer),
:mod:`.redshift` (redshift-conditioned samples), :mod:`.stepper` (forward and reverse process, for
teaching), :mod:`.inpainting` (satellite trails) and :mod:`.deconvolution` (posterior viewer).
Bokeh plots load their resources inline (:func:`load_bokeh`), so they work offline.
"""

from ._bokeh import load_bokeh  # noqa: F401  (in __all__ below)
from .deconvolution import *  # noqa: F403
from .deconvolution import __all__ as _deconvolution
from .gallery import *  # noqa: F403
from .gallery import __all__ as _gallery
from .inpainting import *  # noqa: F403
from .inpainting import __all__ as _inpainting
from .morphology import *  # noqa: F403
from .morphology import __all__ as _morphology
from .redshift import *  # noqa: F403
from .redshift import __all__ as _redshift
from .stepper import *  # noqa: F403
from .stepper import __all__ as _stepper

__all__ = sorted({"load_bokeh", *_deconvolution, *_gallery, *_inpainting, *_morphology, *_redshift,
                  *_stepper})
