"""Bokeh for the widgets: resources loaded inline (offline), plots drawn on a 2D canvas (not WebGL).

**Why not WebGL.** HoloViews asks Bokeh for WebGL output by default, and BokehJS (3.x) draws every
WebGL plot of a page through one hidden, shared WebGL canvas. Its ``global_webgl()`` caches the
*result* of the asynchronous set-up rather than the pending promise, so when several plots start
at once (two Bokeh documents rendering together, as the two panels of a ``RedshiftExplorer`` do)
two hidden canvases are made, while ``get_regl()`` of bokeh-gl keeps one ReGL wrapper bound to the
first canvas's context. Every plot handed the second canvas then draws its glyphs into the first
and copies the empty second one onto the page: axes, grid, legend and spans (2D canvas) appear,
the data (scatter points, histograms, lines, images) does not, with no error anywhere. The widgets'
plots hold at most a few thousand glyphs, where the 2D canvas is as fast, so they use it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["canvas_renderer", "holoviews_widget", "load_bokeh", "panel_widget", "refresh_bokeh"]

_LOADED = False


def load_bokeh() -> None:
    """Load HoloViews' Bokeh backend (and Panel) with inline resources, once per kernel.

    HoloViews and Panel load BokehJS from a CDN by default; with no network (this machine, many
    HPC hubs) every Bokeh plot then stays blank while the page looks fine. ``inline=True`` embeds
    the JavaScript in the notebook instead.
    """
    global _LOADED
    if _LOADED:
        return
    import holoviews as hv
    import panel as pn

    hv.extension("bokeh", inline=True, logo=False)
    pn.extension(inline=True)
    _LOADED = True


def canvas_renderer() -> Any:
    """HoloViews' Bokeh renderer drawing on a 2D canvas (``output_backend="canvas"``, not WebGL; see
    the module docstring). A copy of the session's renderer: the user's own plots keep its settings."""
    load_bokeh()
    import holoviews as hv

    return hv.renderer("bokeh").instance(webgl=False)


def holoviews_widget(obj: Any) -> tuple[Any, Any]:
    """A HoloViews object as a live ipywidget: ``(pane, widget)``.

    The widget is a ``jupyter_bokeh.BokehModel`` (an ipywidgets ``DOMWidget``) holding a Panel
    ``HoloViews`` pane, so it can sit in ``ipywidgets`` boxes, HoloViews streams (selection, tap)
    reach Python through the widget's comm, and assigning ``pane.object`` redraws it in place.
    Its plots, also those redrawn later by the pane or by a ``DynamicMap``, are drawn on a 2D
    canvas (:func:`canvas_renderer`), so that several widgets render together in one notebook.
    """
    load_bokeh()
    import panel as pn

    pane = pn.pane.HoloViews(obj, renderer=canvas_renderer())
    return pane, panel_widget(pane)


def panel_widget(pane: Any) -> Any:
    """A Panel object as an ipywidget (``jupyter_bokeh.BokehModel``) with its stylesheets inline.

    ``pn.ipywidget`` skips Panel's inline-stylesheet patching, so every plot would fetch Panel's CSS
    from cdn.holoviz.org (blocked offline: the plots render but lose their styling). The CSS URLs
    are replaced by the stylesheets shipped in Panel's package, and the patched document is sent.
    """
    load_bokeh()
    import panel as pn

    widget = pn.ipywidget(pane)
    _send_document(widget)
    return widget


def _send_document(widget: Any) -> None:
    """Patch the stylesheets of ``widget``'s Bokeh document inline and put the whole document in
    its ``render_bundle`` (what a view rendered from now on draws)."""
    from bokeh.models import UIElement
    from panel.io.notebook import patch_inline_stylesheets

    for model in widget._model.select({"type": UIElement}):
        patch_inline_stylesheets(model)
    widget.render_bundle = widget._model_to_traits(widget._model)


def refresh_bokeh(root: Any) -> Any:
    """Bring every Bokeh plot inside the ipywidget tree ``root`` up to date for a new view; return ``root``.

    A ``jupyter_bokeh.BokehModel`` sends later changes of its document as patches to the views
    already on the page; a view created afterwards draws the ``render_bundle`` of the widget's
    construction. So a widget changed before it is shown (``w.state.draw(); w`` in one cell) would
    show its first state. Called by each widget's ``_repr_mimebundle_``.
    """
    stack = [root]
    while stack:
        widget = stack.pop()
        if hasattr(widget, "render_bundle") and hasattr(widget, "_model"):
            _send_document(widget)
        stack.extend(getattr(widget, "children", ()) or ())
    return root
