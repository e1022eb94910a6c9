"""The package version (one place, read by ``galwidgets.__version__`` and the run records)."""

__version__ = "0.1.0"
