"""Write ``multi_widgets.ipynb``: several Bokeh widgets in one notebook, for the browser test.

Run ``python tests/browser/make_multi_widgets_notebook.py`` after changing it. Three
``RedshiftExplorer`` (one drawn before it is shown, as tutorial 05 does, one drawn after, one
untouched), two ``MorphologyExplorer`` and a ``DeconvolutionViewer`` of an observation on a finer
pixel grid than the model's (HSC-like 0.168″ pixels against 0.262″). The last cell prints, per
widget cell, the length of the ``ColumnDataSource`` of every Bokeh glyph renderer the kernel holds
(one JSON line), which ``tests/test_browser.py`` compares with the glyphs drawn in the page.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

SETUP = '''\
import json
import sys
import tempfile

import numpy as np
import torch

import galwidgets as gw
from galwidgets.diffusion.operators import PSFOperator
from galwidgets.training import latest_checkpoint

torch.set_num_threads(1)
print("kernel prefix:", sys.prefix)
survey = gw.data.simulate_survey(24, size=32, seed=11, progress=False)
workdir = tempfile.mkdtemp(prefix="galwidgets-browser-multi-")


def tiny_unet(schedule_steps, cond_dim=0, cond=None, steps=2):
    """A tiny U-Net trained for a few steps (the plumbing, not the quality)."""
    torch.manual_seed(0)
    model = gw.models.UNet(in_channels=3, base_channels=8, channel_mults=(1, 2), attention_levels=(),
                           cond_dim=cond_dim, groups=4)
    directory = f"{workdir}/cond{cond_dim}"
    gw.train(model, gw.diffusion.NoiseSchedule.linear(schedule_steps), survey, steps=steps, batch_size=4,
             cond=cond, checkpoint_dir=directory, checkpoint_every=steps, progress=False)
    return gw.load_checkpoint(latest_checkpoint(directory), device="cpu")


checkpoint = tiny_unet(50)
z_checkpoint = tiny_unet(50, cond_dim=1, cond="redshift")
# an observation on HSC-like 0.168" pixels of a model stamp of 32 x 0.262" pixels: 50 x 50 pixels
fine = PSFOperator(gw.data.psf_kernel(0.7, 0.168, size=15), (32, 32), model_pixel_scale=0.262,
                   obs_pixel_scale=0.168)
with torch.no_grad():
    clean = fine(torch.from_numpy(survey.images[:1])).numpy()[0]
y_fine = (clean + np.random.default_rng(0).normal(0, 0.02, clean.shape)).astype(np.float32)
deconvolved = gw.diffusion.deconvolve(checkpoint, y_fine, fine, 0.02, n_samples=2, n_prior=2, steps=2,
                                      reference="flux", progress=False)
gw.widgets.load_bokeh()  # BokehJS and Panel's JavaScript inline, shown by this cell (not a widget's)
print("observation", y_fine.shape, "model", deconvolved.mean.shape)
print("setup done")'''

#: (cell name, code); the last expression of each cell is the widget, kept in ``widgets[name]``.
WIDGETS = {
    "RedshiftExplorer-drawn": """\
widgets = {}
explorer = gw.widgets.RedshiftExplorer(z_checkpoint, reference=survey, n=3, steps=2, threaded=False)
for z in (0.05, 0.1):
    explorer.state.redshift = z
    explorer.state.draw()
widgets["RedshiftExplorer-drawn"] = explorer
explorer""",
    "RedshiftExplorer-plain": """\
widgets["RedshiftExplorer-plain"] = plain = gw.widgets.RedshiftExplorer(z_checkpoint, reference=survey[:20],
                                                                         n=2, steps=2, threaded=False)
plain""",
    "RedshiftExplorer-later": """\
widgets["RedshiftExplorer-later"] = later = gw.widgets.RedshiftExplorer(z_checkpoint, reference=survey[4:],
                                                                         n=4, steps=2, threaded=False)
display(later)
later.state.draw();  # after it is shown: the plots update in place""",
    "MorphologyExplorer-a": """\
widgets["MorphologyExplorer-a"] = gini_m20 = gw.widgets.MorphologyExplorer(survey[:12], survey[12:])
gini_m20""",
    "MorphologyExplorer-b": """\
widgets["MorphologyExplorer-b"] = sizes = gw.widgets.MorphologyExplorer(survey[:16], survey[16:],
                                                                        plane="size_magnitude")
sizes""",
    "DeconvolutionViewer": """\
widgets["DeconvolutionViewer"] = viewer = gw.widgets.DeconvolutionViewer(deconvolved, y_fine, operator=fine)
viewer""",
}

#: Last cell: per widget cell, ``{glyph renderer id: rows of its ColumnDataSource}`` in the kernel.
CENSUS = '''\
from bokeh.models import GlyphRenderer


def bokeh_models(root):
    """The jupyter_bokeh widgets (their Bokeh root models) inside an ipywidget tree."""
    stack, found = [root], []
    while stack:
        widget = stack.pop()
        if hasattr(widget, "render_bundle") and hasattr(widget, "_model"):
            found.append(widget._model)
        stack.extend(getattr(widget, "children", ()) or ())
    return found


def rows(source):
    return len(next(iter(source.data.values()), ()))


census = {name: {r.id: rows(r.data_source) for model in bokeh_models(w.view)
                 for r in model.select({"type": GlyphRenderer})} for name, w in widgets.items()}
print("GLYPH CENSUS " + json.dumps(census))'''


def build() -> nbformat.NotebookNode:
    """The notebook: a setup cell, one tagged cell per widget of :data:`WIDGETS`, the census cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell(
        "# Several Bokeh widgets in one notebook\n\nOpened by `tests/test_browser.py` in JupyterLab + "
        "headless Chromium (written by `make_multi_widgets_notebook.py`)."))
    nb.cells.append(nbformat.v4.new_code_cell(SETUP))
    for name, code in WIDGETS.items():
        cell = nbformat.v4.new_code_cell(f"# widget: {name}\n{code}")
        cell.metadata["widget"] = name
        nb.cells.append(cell)
    nb.cells.append(nbformat.v4.new_code_cell(CENSUS))
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
    return nb


if __name__ == "__main__":
    path = Path(__file__).with_name("multi_widgets.ipynb")
    nbformat.write(build(), path)
    print(f"wrote {path}")
