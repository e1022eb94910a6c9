"""Write ``widgets.ipynb``: one notebook that shows every galwidgets widget, for the browser test.

Run ``python tests/browser/make_widgets_notebook.py`` after adding a widget. The first cell builds
tiny inputs (a 24-galaxy 32x32 mock survey, a U-Net and a redshift-conditioned U-Net trained for a
few steps, a 3-step deconvolution), prints the kernel's ``sys.prefix`` and loads Bokeh inline
(:func:`galwidgets.widgets.load_bokeh`, so the loader is this cell's output, not a widget's); then one
cell per widget whose last expression is the widget. ``tests/test_browser.py`` reads the widget
names from the cells' ``widget`` metadata, in this order.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

SETUP = '''\
import sys
import tempfile

import torch

import galwidgets as gw
from galwidgets.diffusion.operators import PSFOperator
from galwidgets.training import latest_checkpoint

torch.set_num_threads(1)
print("kernel prefix:", sys.prefix)
survey = gw.data.simulate_survey(24, size=32, seed=11, progress=False)
workdir = tempfile.mkdtemp(prefix="galwidgets-browser-")


def tiny_unet(schedule_steps, cond_dim=0, cond=None, steps=4):
    """A tiny U-Net trained for a few steps (the plumbing, not the quality)."""
    torch.manual_seed(0)
    model = gw.models.UNet(in_channels=3, base_channels=8, channel_mults=(1, 2), attention_levels=(),
                           cond_dim=cond_dim, groups=4)
    directory = f"{workdir}/cond{cond_dim}"
    gw.train(model, gw.diffusion.NoiseSchedule.linear(schedule_steps), survey, steps=steps, batch_size=4,
             cond=cond, checkpoint_dir=directory, checkpoint_every=steps, progress=False)
    return gw.load_checkpoint(latest_checkpoint(directory), device="cpu")


checkpoint = tiny_unet(100)
z_checkpoint = tiny_unet(50, cond_dim=1, cond="redshift", steps=2)
y, kernels = gw.data.observe(survey.images[:1], 0.6, 0.262, 0.02, seed=0)
deconvolved = gw.diffusion.deconvolve(checkpoint, y[0], PSFOperator(kernels, (32, 32)), 0.02, n_samples=2,
                                      n_prior=2, steps=3, reference="flux", progress=False)
gw.widgets.load_bokeh()  # BokehJS and Panel's JavaScript inline, shown by this cell (not a widget's)
print("setup done")'''

#: (widget name, code of its cell); the last expression of each cell is the widget.
WIDGETS = {
    "Gallery": "gw.widgets.Gallery(survey[:12], survey[12:], training=survey)",
    "MorphologyExplorer": "gw.widgets.MorphologyExplorer(survey[:12], survey[12:])",
    "DeconvolutionViewer": "gw.widgets.DeconvolutionViewer(deconvolved, y[0])",
    "RedshiftExplorer": "gw.widgets.RedshiftExplorer(z_checkpoint, reference=survey, n=3, steps=2)",
    "DiffusionStepper": "gw.widgets.DiffusionStepper(checkpoint, galaxies=survey[:3], steps=3, t=50)",
    "InpaintingDemo": "gw.widgets.InpaintingDemo(checkpoint, galaxies=survey[:3], n_samples=2, steps=3)",
}


def build() -> nbformat.NotebookNode:
    """The notebook: a setup cell, then one tagged cell per widget of :data:`WIDGETS`."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell(
        "# Every galwidgets widget\n\nOpened by `tests/test_browser.py` in JupyterLab + headless Chromium "
        "(written by `make_widgets_notebook.py`)."))
    nb.cells.append(nbformat.v4.new_code_cell(SETUP))
    for name, code in WIDGETS.items():
        cell = nbformat.v4.new_code_cell(f"# widget: {name}\n{code}")
        cell.metadata["tags"] = ["raises-exception"]  # "Run All" goes on to the next widget after an error
        cell.metadata["widget"] = name
        nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
    return nb


if __name__ == "__main__":
    path = Path(__file__).with_name("widgets.ipynb")
    nbformat.write(build(), path)
    print(f"wrote {path}")
