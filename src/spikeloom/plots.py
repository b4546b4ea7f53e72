"""Deprecated location: the run plots live in :mod:`spikeloom.train.plots`."""

from .train.plots import plot_curves, plot_firing_rates, plot_raster, plot_run

__all__ = ["plot_run", "plot_curves", "plot_firing_rates", "plot_raster"]
