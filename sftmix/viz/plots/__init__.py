"""Figures for SFTMix experiments.

Training-dynamics maps, confidence histograms, projections of the representation space,
training curves, ablations and results tables as bar charts.

Every ``plot_*`` function takes data and an optional ``ax`` and returns a
:class:`matplotlib.figure.Figure`. None of them changes matplotlib's global style,
writes a file or calls ``plt.show()``: :func:`save_figure` is the one function here
that writes. Figures are created through pyplot and closed at once, so a loop that
draws hundreds of them leaks nothing, and Jupyter shows each figure once, from the
returned value.

The package's modules, each imported here so ``sftmix.viz.plots.plot_x`` names every figure:

* :mod:`~sftmix.viz.plots.dynamics` - one mark per example: the training-dynamics map,
  confidence histograms (overall, by group, by task), the projection of the
  representation space;
* :mod:`~sftmix.viz.plots.fit` - the reference run's training vs held-out NLL per checkpoint;
* :mod:`~sftmix.viz.plots.training` - training runs and their outcomes: loss curves, the
  Beta(alpha, alpha) distribution of the Mixup weight, ablation sweeps, per-task results;
* :mod:`~sftmix.viz.plots._style` - colours, axis labels and figure helpers they share, and
  :func:`save_figure`.
"""
from __future__ import annotations

from ._style import CMAP, OKABE_ITO, SPLIT_COLORS, save_figure
from .dynamics import plot_confidence_by_task, plot_confidence_hist, plot_dynamics_map, plot_umap_confidence
from .fit import plot_fit
from .training import plot_ablation, plot_lambda_distribution, plot_results, plot_training_curves

__all__ = ["CMAP", "OKABE_ITO", "SPLIT_COLORS", "plot_ablation", "plot_confidence_by_task", "plot_confidence_hist",
           "plot_dynamics_map", "plot_fit", "plot_lambda_distribution", "plot_results", "plot_training_curves",
           "plot_umap_confidence", "save_figure"]
