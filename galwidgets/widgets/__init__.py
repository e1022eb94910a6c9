"""Interactive widgets. Each is a ``traitlets.HasTraits`` state object plus a view built from it.

>>> import galwidgets as gw
>>> gw.widgets.Gallery(real_survey, generated_survey)      # last line of a notebook cell
"""

from .gallery import Gallery, GalleryState, GalleryView

__all__ = ["Gallery", "GalleryState", "GalleryView"]
