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

* :mod:`~sftmix.viz.plots.dynamics` - the training-dynamics map (one dot per example);
* :mod:`~sftmix.viz.plots.confidence` - confidence histograms (overall, by group) and by task,
  with the split threshold;
* :mod:`~sftmix.viz.plots.projection` - the representation space in 2-D (UMAP, t-SNE, PCA);
* :mod:`~sftmix.viz.plots.marks` - colour groups, colour scales and overlays those three share;
* :mod:`~sftmix.viz.plots.trajectories` - examples across the reference checkpoints, the
  mean-vs-last-checkpoint split, what the split also splits (tasks, lengths, noise);
* :mod:`~sftmix.viz.plots.data` - the data a run trains on: prompt and response lengths in tokens;
* :mod:`~sftmix.viz.plots.fit` - the reference run's training vs held-out NLL per checkpoint;
* :mod:`~sftmix.viz.plots.halves` - why it should work: fit per half of the split, and the
  probabilities of a mixed pair along lambda;
* :mod:`~sftmix.viz.plots.training` - training runs and their outcomes: loss curves, the
  Beta(alpha, alpha) distribution of the Mixup weight, per-task results with intervals;
* :mod:`~sftmix.viz.plots.ablation` - ablation sweeps and their paired effects;
* :mod:`~sftmix.viz.plots.regime`, :mod:`~sftmix.viz.plots.claims` - the regime map and the
  paper's claims measured on the toy;
* :mod:`~sftmix.viz.plots.study` - the base-model study: two families' confidence ranks, every
  (cell, seed) result paired by seed;
* :mod:`~sftmix.viz.plots._style` - colours, axis labels and figure helpers they share, and
  :func:`save_figure`.
"""
from __future__ import annotations

from ._style import CMAP, OKABE_ITO, SPLIT_COLORS, save_figure
from .ablation import plot_ablation, plot_ablation_effects, plot_ablation_sweep
from .claims import plot_paper_claims
from .confidence import plot_confidence_by_task, plot_confidence_hist
from .data import plot_lengths
from .dynamics import plot_dynamics_map
from .fit import plot_fit
from .halves import plot_half_fit, plot_lambda_curves
from .projection import plot_projection_grid, plot_umap_confidence
from .regime import plot_regime_map
from .study import plot_cells, plot_confidence_agreement
from .training import plot_lambda_distribution, plot_results, plot_training_curves
from .trajectories import plot_mean_vs_last, plot_split_composition, plot_trajectories

__all__ = ["CMAP", "OKABE_ITO", "SPLIT_COLORS", "plot_ablation", "plot_ablation_effects", "plot_ablation_sweep",
           "plot_cells", "plot_confidence_agreement", "plot_confidence_by_task", "plot_confidence_hist",
           "plot_dynamics_map", "plot_fit", "plot_half_fit",
           "plot_lambda_curves", "plot_lambda_distribution", "plot_lengths", "plot_mean_vs_last",
           "plot_paper_claims", "plot_projection_grid", "plot_regime_map", "plot_results", "plot_split_composition",
           "plot_training_curves",
           "plot_trajectories", "plot_umap_confidence", "save_figure"]
