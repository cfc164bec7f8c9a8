"""Explorers of single examples: browse a map region (:class:`ExampleInspector`) and follow one
example across the reference checkpoints (:class:`ExampleExplorer`)."""

from __future__ import annotations

import html

import pandas as pd

from ...analysis.confounds import half_of
from ...analysis.selection import REGIONS, examples_html, instruction_text, region_mask, select_examples, shorten
from ...analysis.trajectories import checkpoint_columns, checkpoint_steps, mean_vs_last
from ...dynamics.sums import CHECKPOINT_METRICS
from ..plots import plot_dynamics_map, plot_trajectories
from .base import image, new_figure, observe, png, set_quietly, widgets_module

__all__ = ["ExampleExplorer", "ExampleInspector", "example_explorer", "example_inspector"]


class ExampleInspector:
    """Pick a region, a task and a noise filter; see the examples. ``selection`` holds them."""

    def __init__(self, table: pd.DataFrame, examples=None, *, region: str = "hard-to-learn", n: int = 8,
                 fraction: float = 1 / 3):
        w = widgets_module()
        self.table, self.examples, self.fraction = table, examples, fraction
        tasks = ["all"] + (sorted(table["task"].astype(str).unique()) if "task" in table else [])
        self.region_dropdown = w.Dropdown(options=list(REGIONS), value=region, description="region")
        self.task_dropdown = w.Dropdown(options=tasks, value="all", description="task")
        self.noisy_dropdown = w.Dropdown(options=["all", "clean", "noisy"], value="all", description="label",
                                         disabled="noisy" not in table)
        self.n_slider = w.IntSlider(value=n, min=1, max=50, description="show", continuous_update=False)
        self.html = w.HTML()
        self._busy = False
        for control in (self.region_dropdown, self.task_dropdown, self.noisy_dropdown, self.n_slider):
            control.observe(lambda change: None if self._busy else self.update(), names="value")
        rule = (f"<small>Regions (Dataset Cartography): easy-to-learn = top {fraction:.0%} by confidence_prob, "
                f"hard-to-learn = bottom {fraction:.0%} by confidence_prob, ambiguous = top {fraction:.0%} by "
                "variability_prob (may overlap the others).</small>")
        self.widget = w.VBox([w.HBox([self.region_dropdown, self.task_dropdown]),
                              w.HBox([self.noisy_dropdown, self.n_slider]), w.HTML(rule), self.html])
        self.update()

    def update(self, *, region: str | None = None, task: str | None = None, noisy: str | None = None,
               n: int | None = None) -> pd.DataFrame:
        """Re-select (keywords set the controls first) and redraw the table."""
        set_quietly(self, ((self.region_dropdown, region), (self.task_dropdown, task),
                            (self.noisy_dropdown, noisy), (self.n_slider, n)))
        flag = {"all": None, "clean": False, "noisy": True}[self.noisy_dropdown.value]
        self.selection = select_examples(self.table, self.examples, region=self.region_dropdown.value,
                                         task=self.task_dropdown.value, noisy=flag, n=self.n_slider.value,
                                         fraction=self.fraction)
        mask = region_mask(self.table, self.region_dropdown.value, fraction=self.fraction)
        stats = f"<p>{int(mask.sum())} examples in region <b>{html.escape(self.region_dropdown.value)}</b>"
        if "noisy" in self.table:
            stats += f", {float(self.table['noisy'].to_numpy(dtype=bool)[mask].mean()):.0%} of them noisy"
        self.html.value = stats + f"; showing {len(self.selection)}.</p>" + examples_html(self.selection)
        return self.selection


def example_inspector(table: pd.DataFrame, examples=None, **kwargs) -> ExampleInspector:
    """Browse examples by map region (see :func:`region_mask`), task and noise flag.

    ``examples``: the canonical training examples (a Dataset or DataFrame with
    ``example_id``, ``messages``, ``response``), for the texts. Options: ``region``,
    ``n``, ``fraction``.
    """
    return ExampleInspector(table, examples, **kwargs)


_EXAMPLE_FIGSIZE = (11.0, 4.2)
#: The per-checkpoint metrics an example's table shows.
_SHOWN = ("ppl", "gprob", "acc")


class ExampleExplorer:
    """Pick an example, by id or from a map region, and see its score at every checkpoint.

    Controls: a region (with a task filter) whose most typical examples fill the example
    dropdown, and an id box that takes any example id. Shown: the example's text, its half
    of the split (by the mean over checkpoints and by the last checkpoint), a table of its
    perplexity, geometric-mean probability and token accuracy per checkpoint, its
    trajectory beside every example's spread, and where it sits on the dynamics map.
    ``example_id`` and ``scores`` (the per-checkpoint table) hold the current example.
    """

    def __init__(self, table: pd.DataFrame, examples=None, *, split: dict | None = None,
                 region: str = "hard-to-learn", example_id: str | None = None, n: int = 25):
        w = widgets_module()
        self.table, self.split, self.n = table, split, int(n)
        self._rows = table.set_index(table["example_id"].astype(str))
        self._texts = None
        if examples is not None:
            frame = examples if isinstance(examples, pd.DataFrame) else examples.to_pandas()
            self._texts = frame.set_index(frame["example_id"].astype(str))
        self._sides = mean_vs_last(table, ratio=(split or {}).get("ratio", 0.5)) \
            if len(checkpoint_columns(table, "ppl")) > 1 else None
        tasks = ["all"] + (sorted(table["task"].astype(str).unique()) if "task" in table else [])
        self.region_dropdown = w.Dropdown(options=list(REGIONS), value=region, description="region")
        self.task_dropdown = w.Dropdown(options=tasks, value="all", description="task")
        self.example_dropdown = w.Dropdown(options=[], description="example", layout=w.Layout(width="95%"))
        self.id_text = w.Text(description="or id", placeholder="an example_id, then Enter",
                              continuous_update=False)
        self.html, self.image = w.HTML(), image(w, _EXAMPLE_FIGSIZE)
        self._busy = False
        observe(self, (self.region_dropdown, self.task_dropdown), self._refill)
        observe(self, (self.example_dropdown,), lambda: self.show(self.example_dropdown.value))
        observe(self, (self.id_text,), lambda: self.show(self.id_text.value.strip()) if self.id_text.value.strip()
                else None)
        self.widget = w.VBox([w.HBox([self.region_dropdown, self.task_dropdown]), self.example_dropdown,
                              self.id_text, self.html, self.image])
        self._refill(show=example_id is None)
        if example_id is not None:
            self.show(example_id)

    def _refill(self, show: bool = True) -> None:
        picked = select_examples(self.table, None, region=self.region_dropdown.value, task=self.task_dropdown.value,
                                 n=self.n)
        options = [(f"{r.example_id} · {getattr(r, 'task', '')} · conf. prob {r.confidence_prob:.3f}"
                    + (" · corrupted" if bool(getattr(r, "noisy", False)) else ""), str(r.example_id))
                   for r in picked.itertuples()]
        self._busy = True
        try:
            self.example_dropdown.options = options
        finally:
            self._busy = False
        if show and options:
            self.show(options[0][1])

    def show(self, example_id: str) -> pd.DataFrame:
        """Show one example (any id of the table); returns its per-checkpoint scores."""
        example_id = str(example_id)
        if example_id not in self._rows.index:
            self.html.value = f"<p><b>{html.escape(example_id)}</b> is not an example id of this table.</p>"
            raise KeyError(f"example id {example_id!r} is not in the dynamics table")
        if example_id in [v for _, v in self.example_dropdown.options]:
            set_quietly(self, [(self.example_dropdown, example_id)])
        self.example_id = example_id
        row = self._rows.loc[example_id]
        steps = checkpoint_steps(self.table)
        self.scores = pd.DataFrame({CHECKPOINT_METRICS[m].label: row[checkpoint_columns(self.table, m)].to_numpy(
            dtype=float) for m in _SHOWN}, index=pd.Index(steps, name="step"))
        self.html.value = self._html(row)
        fig = new_figure(_EXAMPLE_FIGSIZE)
        left, ax = fig.subplots(1, 2, width_ratios=[1.4, 1.0])
        label = "corrupted answer" if "noisy" in row and bool(row["noisy"]) else "this example"
        plot_trajectories(self.table, {label: example_id}, split=self.split, ax=left)
        left.set_title("its perplexity at every checkpoint", fontsize=9)
        plot_dynamics_map(self.table, color="correctness", ax=ax, noisy=False)
        ax.scatter([row["variability_prob"]], [row["confidence_prob"]], s=160, facecolors="none",
                   edgecolors="black", linewidths=2, zorder=6)
        ax.set_title("where it sits on the map (circled)", fontsize=9)
        self.figure = fig
        self.image.value = png(fig)
        return self.scores

    def _html(self, row) -> str:
        parts = [f"<p><b>{html.escape(self.example_id)}</b>"]
        if "task" in row:
            parts.append(f" · task <b>{html.escape(str(row['task']))}</b>")
        if "noisy" in row:
            parts.append(" · <span style='color:#D55E00'>⚠ corrupted answer</span>" if bool(row["noisy"])
                         else " · clean answer")
        if self.split is not None:
            half = half_of(self.table[self.table["example_id"].astype(str) == self.example_id], self.split).iloc[0]
            parts.append(f" · in the <b>{half}</b> half (mean over checkpoints)")
        if self._sides is not None:
            side = self._sides.set_index("example_id").loc[self.example_id]
            parts.append(f"; by the last checkpoint alone: <b>{side['side_last']}</b>"
                         + (" (it changes side)" if side["changed"] else ""))
        parts.append("</p>")
        if self._texts is not None and self.example_id in self._texts.index:
            text = self._texts.loc[self.example_id]
            answer = ""
            if "answer" in text and str(text["answer"]) != str(text["response"]):
                answer = f"<br>correct answer: <code>{html.escape(shorten(text['answer'], 80))}</code>"
            parts.append(f"<p>{html.escape(shorten(instruction_text(text['messages']), 160))}<br>trained response: "
                         f"<code>{html.escape(shorten(text['response'], 80))}</code>{answer}</p>")
        parts.append(self.scores.to_html(float_format=lambda v: f"{v:.4g}", border=0))
        return "".join(parts)


def example_explorer(table: pd.DataFrame, examples=None, **kwargs) -> ExampleExplorer:
    """Pick an example by id or from a map region; see its per-checkpoint scores (display ``.widget``).

    ``examples``: the canonical training examples, for the texts. Options: ``split`` (to say
    its half), ``region``, ``example_id`` (shown first), ``n`` (examples per region list).
    """
    return ExampleExplorer(table, examples, **kwargs)
