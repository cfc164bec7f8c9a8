"""The split explorer: move the split and see who changes side.

A ratio slider and a metric dropdown recompute the split. Beside the histogram, the map and
(optionally) a projection coloured by it, the explorer reports against the *reference split*
(the one it started from, normally the pipeline's median split): how many examples changed
side and which, each task's share of the confident half then and now, and the unconfident
half as a detector of corrupted answers (precision and recall).
"""

from __future__ import annotations

import html

import pandas as pd

from ...analysis.confounds import noise_precision_recall, side_changes, split_by_task
from ...analysis.selection import split_summary
from ...dynamics.split import split_by_confidence
from ...recipe import SPLIT_METRICS, SUMMARIES
from ..plots import plot_confidence_hist, plot_dynamics_map, plot_umap_confidence
from .base import image, new_figure, observe, png, set_quietly, widgets_module

__all__ = ["SplitExplorer", "split_explorer"]


class SplitExplorer:
    """The confident/unconfident split recomputed live for a split ratio.

    Attributes set by :meth:`update`: ``split`` (the dict of
    :func:`sftmix.dynamics.split_by_confidence`), ``summary`` (a DataFrame per half: n,
    mean metric, share noisy, most common task), ``changes`` (the examples whose side differs
    from ``reference``, :func:`sftmix.analysis.confounds.side_changes`), ``by_task`` (per task:
    share of the confident half now and in the reference), ``noise`` (precision and recall of
    the unconfident half for the corrupted answers) and ``figure``. ``reference`` is the split
    the explorer started with.
    """

    def __init__(self, table: pd.DataFrame, projection: pd.DataFrame | None = None, *, ratio: float = 0.5,
                 metric: str = "confidence", scale: str = "prob", method: str | None = None, log: bool = False,
                 reference: dict | None = None, n_shown: int = 8):
        w = widgets_module()
        self.table, self.projection, self.scale, self.method, self.log = table, projection, scale, method, log
        self.n_shown = int(n_shown)
        if projection is not None and "example_id" not in projection.columns:
            raise KeyError("the projection needs an example_id column to be coloured by the split")
        metrics = [m for m in SPLIT_METRICS if m in table.columns]
        if metric not in metrics:
            raise KeyError(f"the dynamics table has no {metric!r} column; it has {metrics}")
        self.reference = reference or split_by_confidence(table, ratio=ratio, metric=metric)
        self.ratio_slider = w.FloatSlider(value=ratio, min=0.05, max=0.95, step=0.05, description="ratio",
                                          continuous_update=False)
        self.metric_dropdown = w.Dropdown(options=metrics, value=metric, description="metric")
        self._figsize = (4.6 * (3 if projection is not None else 2), 3.8)
        self.image = image(w, self._figsize)
        self.info, self.details = w.HTML(), w.HTML()
        self._busy = False
        observe(self, (self.ratio_slider, self.metric_dropdown), self.update)
        self.widget = w.VBox([w.HBox([self.ratio_slider, self.metric_dropdown]), self.info, self.image,
                              self.details])
        self.update()

    def update(self, ratio: float | None = None, metric: str | None = None) -> dict:
        """Recompute the split (for ``ratio``/``metric``, else the widgets' values) and redraw."""
        set_quietly(self, ((self.ratio_slider, ratio), (self.metric_dropdown, metric)))
        ratio, metric = self.ratio_slider.value, self.metric_dropdown.value
        self.split = split_by_confidence(self.table, ratio=ratio, metric=metric)
        self.summary = split_summary(self.table, self.split)
        self.changes = side_changes(self.table, self.reference, self.split)
        self.noise = noise_precision_recall(self.table, self.split)
        if "task" in self.table:
            now = split_by_task(self.table, self.split)["share_confident"]
            before = split_by_task(self.table, self.reference)["share_confident"]
            self.by_task = pd.DataFrame({"confident share now": now, "in the reference split": before.reindex(
                now.index)}).assign(change=lambda f: f.iloc[:, 0] - f.iloc[:, 1])
        else:
            self.by_task = None
        panels = 3 if self.projection is not None else 2
        fig = new_figure(self._figsize)
        axes = fig.subplots(1, panels)
        # log: a summary that is minus a perplexity is heavy-tailed; shown as log perplexity.
        plot_confidence_hist(self.table, split=self.split, metric=metric, ax=axes[0],
                             log=self.log and SUMMARIES[metric].perplexity is not None)
        plot_dynamics_map(self.table, split=self.split, color="split", scale=self.scale, ax=axes[1])
        if self.projection is not None:
            plot_umap_confidence(self.projection, color="split", split=self.split, ax=axes[2], method=self.method)
        self.figure = fig
        self.image.value = png(fig)
        self.info.value = self._info_html(ratio, metric)
        self.details.value = self._details_html()
        return self.split

    def _info_html(self, ratio, metric) -> str:
        moved = self.changes
        up = int((moved["to"] == "confident").sum()) if len(moved) else 0
        noise = ""
        if self.noise["n_corrupted"]:
            noise = (f" · corrupted answers in the unconfident half: <b>{self.noise['n_caught']} of "
                     f"{self.noise['n_corrupted']}</b> (recall {self.noise['recall']:.0%}, precision "
                     f"{self.noise['precision']:.0%})")
        ref = f"{self.reference['metric']} at ratio {self.reference['ratio']:.2f}"
        return (f"<b>threshold</b> {html.escape(metric)} ≥ {self.split['threshold']:.4g} is confident · "
                f"ratio {ratio:.2f}{noise}<br>against the reference split ({html.escape(ref)}): "
                f"<b>{len(moved)}</b> examples changed side ({up} became confident, {len(moved) - up} unconfident)"
                + self.summary.to_html(float_format=lambda v: f"{v:.3g}", border=0))

    def _details_html(self) -> str:
        parts = []
        if self.by_task is not None:
            parts.append("<b>Each task's share of the confident half</b>" + self.by_task.to_html(
                formatters={"change": lambda v: f"{v:+.0%}"}, float_format=lambda v: f"{v:.0%}", border=0))
        if len(self.changes):
            shown = self.changes.head(self.n_shown)
            parts.append(f"<b>Examples that changed side</b> (first {len(shown)} of {len(self.changes)})"
                         + shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0))
        return "<div style='display:flex;gap:24px;align-items:flex-start'>" + "".join(
            f"<div>{p}</div>" for p in parts) + "</div>"


def split_explorer(table: pd.DataFrame, projection: pd.DataFrame | None = None, **kwargs) -> SplitExplorer:
    """A split-ratio slider that recomputes the split and re-colours the map (and projection).

    Options: ``ratio``, ``metric`` (one of :data:`sftmix.recipe.SPLIT_METRICS`), ``scale`` of the map
    (``"prob"`` or ``"perplexity"``), ``method`` (the projection's name on its axes, e.g. ``"PCA"``;
    default: its ``attrs`` or "UMAP"), ``log`` (histogram of a summary that is minus a perplexity, such
    as the heavy-tailed ``confidence``, as log10 perplexity),
    ``reference`` (the split to compare with; default: the one at the starting ratio and
    metric), ``n_shown`` (how many examples that changed side are listed).
    """
    return SplitExplorer(table, projection, **kwargs)
