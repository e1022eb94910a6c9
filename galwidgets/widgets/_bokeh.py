"""Offline Bokeh for the widgets: HoloViews/Panel resources loaded inline, never from a CDN."""

from __future__ import annotations

from typing import Any

__all__ = ["holoviews_widget", "load_bokeh", "panel_widget"]

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


def holoviews_widget(obj: Any) -> tuple[Any, Any]:
    """A HoloViews object as a live ipywidget: ``(pane, widget)``.

    The widget is a ``jupyter_bokeh.BokehModel`` (an ipywidgets ``DOMWidget``) holding a Panel
    ``HoloViews`` pane, so it can sit in ``ipywidgets`` boxes, HoloViews streams (selection, tap)
    reach Python through the widget's comm, and assigning ``pane.object`` redraws it in place.
    """
    load_bokeh()
    import panel as pn

    pane = pn.pane.HoloViews(obj)
    return pane, panel_widget(pane)


def panel_widget(pane: Any) -> Any:
    """A Panel object as an ipywidget (``jupyter_bokeh.BokehModel``) with its stylesheets inline.

    ``pn.ipywidget`` skips Panel's inline-stylesheet patching, so every plot would fetch Panel's CSS
    from cdn.holoviz.org (blocked offline: the plots render but lose their styling). The CSS URLs
    are replaced by the stylesheets shipped in Panel's package, and the patched document is sent.
    """
    load_bokeh()
    import panel as pn
    from bokeh.models import UIElement
    from panel.io.notebook import patch_inline_stylesheets

    widget = pn.ipywidget(pane)
    for model in widget._model.select({"type": UIElement}):
        patch_inline_stylesheets(model)
    widget.render_bundle = widget._model_to_traits(widget._model)
    return widget
