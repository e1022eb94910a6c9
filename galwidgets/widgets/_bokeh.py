"""Offline Bokeh for the widgets: HoloViews/Panel resources loaded inline, never from a CDN."""

from __future__ import annotations

from typing import Any

__all__ = ["holoviews_widget", "load_bokeh"]

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
    return pane, pn.ipywidget(pane)
