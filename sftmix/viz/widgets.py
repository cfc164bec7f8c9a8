"""Interactive explorers for the notebooks (ipywidgets).

Three explorers, each a small class whose ``.widget`` is the container to display and
whose update methods are what the sliders call, so a test or a script can drive them
without a browser (set a slider's ``.value`` or call the method, then read the state):

* :func:`lambda_explorer` - what Mixup does to one pair: the Beta(alpha, alpha)
  distribution of lambda, and the next-token distribution of a confident example, an
  unconfident example and their mixed last hidden state at the first aligned response
  position.
* :func:`split_explorer` - the split ratio live: threshold, half sizes, the histogram,
  the dynamics map and (optionally) a projection coloured by the split.
* :func:`example_inspector` - the examples of a map region (easy-to-learn, ambiguous,
  hard-to-learn; see :func:`region_mask`) or a task, as an HTML table.

Figures are drawn by :mod:`sftmix.viz.plots` and shown as PNG images (an ``Image`` widget),
so they update in place in any front end. ipywidgets is imported only when an explorer
is built.

Which examples the explorers show is decided by the plain functions of
:mod:`sftmix.analysis.selection` (:func:`region_mask`, :func:`select_examples`,
:func:`examples_html`, :func:`pick_pair`, :func:`split_summary`), re-exported here.
"""

from __future__ import annotations

import html
import io

import numpy as np
import pandas as pd

from ..analysis.selection import (
    REGIONS,
    examples_html,
    instruction_text,
    pick_pair,
    region_mask,
    select_examples,
    shorten,
    split_summary,
)
from ..constants import IGNORE_INDEX, SPLIT_METRICS
from ..data import tokenize_examples
from ..dynamics.split import split_by_confidence
from ..loss.head import forward_hidden, output_head
from .plots import plot_confidence_hist, plot_dynamics_map, plot_lambda_distribution, plot_umap_confidence


def _widgets():
    try:
        import ipywidgets
    except ImportError as err:  # optional at import time of sftmix, needed here
        raise ImportError("the sftmix explorers need ipywidgets: pip install ipywidgets") from err
    return ipywidgets


#: Figures are rendered at twice the 72-px-per-inch scale they are shown at, so they stay
#: sharp on high-density screens; :func:`_image` fixes the shown width.
_DPI = 144
_SHOWN_PX_PER_INCH = 72


def _png(fig, dpi: int = _DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _image(w, figsize):
    """An Image widget shown at the figure's size (not stretched to the output's width)."""
    width = int(figsize[0] * _SHOWN_PX_PER_INCH * 1.35)
    return w.Image(format="png", layout=w.Layout(width="100%", max_width=f"{width}px", height="auto"))


def _new_figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")  # never registered with pyplot


def _set_quietly(explorer, settings) -> None:
    """Set controls from code without each change firing a redraw (the caller redraws once)."""
    explorer._busy = True
    try:
        for control, value in settings:
            if value is not None and control.value != value:
                control.value = value
    finally:
        explorer._busy = False


# ============================================================== 1. lambda explorer
_LAMBDA_FIGSIZE = (5.0, 3.0)


class LambdaExplorer:
    """Beta(alpha, alpha) and the next-token distributions of a mixed pair (see module docs).

    Attributes set by the updates: ``k``, ``positions`` and ``targets`` (the aligned
    position, its index in each sequence and each example's gold next token),
    ``lambda_figure`` (the lambda histogram),
    ``mid_mass`` (share of draws with 0.1 < lambda < 0.9), ``probs`` (dict of the
    three next-token distributions, tensors (V,)), ``top`` (dict of top-k
    ``[(token, prob), ...]``), ``mixup_loss`` (the Mixup loss at this position:
    ``lam * CE(mix, y_c) + (1 - lam) * CE(mix, y_u)``).
    """

    def __init__(self, model, tokenizer, pair, *, alpha: float = 0.5, lam: float = 0.5, top_k: int = 5,
                 max_length: int = 512):
        import torch


        w = _widgets()
        self.tokenizer, self.top_k = tokenizer, int(top_k)
        tokenized, self.texts = _tokenize_pair(pair, tokenizer, max_length)
        # Per example: the states that predict response tokens and those tokens, in order.
        # The state at t predicts the token at t + 1; response alignment pairs the k-th
        # response token of one example with the k-th of the other (k < the shorter length).
        self._states, self._targets, self._positions = [], [], []
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for row in tokenized:
                labels = torch.as_tensor(row["labels"])
                pos = (labels[1:] != IGNORE_INDEX).nonzero().flatten()
                if len(pos) == 0:
                    raise ValueError("an example of the pair has no response token left")
                ids = torch.as_tensor(row["input_ids"])[None].to(next(model.parameters()).device)
                hidden = forward_hidden(model, ids)[0].float().cpu()
                self._states.append(hidden[pos])
                self._targets.append(labels[pos + 1].tolist())
                self._positions.append(pos.tolist())
            self.head = output_head(model)
        model.train(was_training)
        self.n_aligned = min(len(t) for t in self._targets)

        self.position_slider = w.IntSlider(value=0, min=0, max=self.n_aligned - 1, description="k",
                                           continuous_update=False, disabled=self.n_aligned == 1)
        self.alpha_slider = w.FloatLogSlider(value=alpha, base=10, min=-1.5, max=1.0, step=0.05,
                                             description="α", continuous_update=False, readout_format=".2f")
        self.lambda_slider = w.FloatSlider(value=lam, min=0.0, max=1.0, step=0.05, description="λ",
                                           continuous_update=False)
        self.lambda_image = _image(w, _LAMBDA_FIGSIZE)
        self.lambda_caption = w.HTML()
        self.table = w.HTML()
        self._busy = False
        self.alpha_slider.observe(lambda change: None if self._busy else self.set_alpha(change["new"]),
                                  names="value")
        self.lambda_slider.observe(lambda change: None if self._busy else self.set_lambda(change["new"]),
                                   names="value")
        self.position_slider.observe(lambda change: None if self._busy else self.set_position(change["new"]),
                                     names="value")
        self.pair_html = w.HTML()
        # With a one-token response there is a single aligned position: say why k cannot move.
        self.position_note = w.HTML(
            "<small>k is fixed at 0: the shorter response of this pair has a single token, so there is "
            "one aligned position to mix.</small>" if self.n_aligned == 1 else "")
        self.widget = w.VBox([
            w.HTML("<b>λ ~ Beta(α, α)</b>: the weight of the confident example in each mixed pair"),
            self.alpha_slider, self.lambda_image, self.lambda_caption,
            w.HTML("<b>Mixing the last hidden states</b> of the pair at the k-th aligned response position "
                   "(k = 0: the first response token)"),
            self.pair_html, self.position_slider, self.position_note, self.lambda_slider, self.table])
        self.set_alpha(alpha)
        self.lam = float(lam)
        self.set_position(0)

    # -- updates ----------------------------------------------------------------
    def set_alpha(self, alpha: float) -> None:
        """Redraw the lambda distribution for Beta(alpha, alpha)."""

        _set_quietly(self, [(self.alpha_slider, alpha)])
        self.alpha = float(alpha)
        self.lambda_figure = plot_lambda_distribution(self.alpha, ax=_new_figure(_LAMBDA_FIGSIZE).add_subplot())
        draws = np.random.default_rng(0).beta(self.alpha, self.alpha, size=20000)
        self.mid_mass = float(((draws > 0.1) & (draws < 0.9)).mean())
        self.lambda_image.value = _png(self.lambda_figure)
        self.lambda_caption.value = (f"α = {self.alpha:.2f}: {self.mid_mass:.0%} of draws fall in 0.1 < λ < 0.9; "
                                     f"the rest leave the mixed point within 10% of one parent.")

    def set_position(self, k: int) -> None:
        """Mix at the k-th aligned response position (0 <= k < ``n_aligned``)."""
        import torch

        if not 0 <= k < self.n_aligned:
            raise ValueError(f"k must lie in [0, {self.n_aligned - 1}] (the shorter response), got {k}")
        _set_quietly(self, [(self.position_slider, k)])
        self.k = int(k)
        self.hidden = torch.stack([s[self.k] for s in self._states])  # (2, D): confident, unconfident
        self.targets = [t[self.k] for t in self._targets]
        self.positions = [p[self.k] for p in self._positions]
        self.pair_html.value = self._pair_html()
        self.set_lambda(self.lam)

    def set_lambda(self, lam: float) -> None:
        """Mix the two hidden states with weight ``lam`` on the confident one."""
        import torch

        _set_quietly(self, [(self.lambda_slider, lam)])
        self.lam = float(lam)
        mixed = self.lam * self.hidden[0] + (1 - self.lam) * self.hidden[1]
        with torch.no_grad():
            logits = self.head.logits(torch.stack([self.hidden[0], mixed, self.hidden[1]])
                                      .to(self.head.weight.dtype).to(self.head.weight.device))
            probs = torch.softmax(logits.float(), dim=-1).cpu()
        self.probs = {"confident": probs[0], "mix": probs[1], "unconfident": probs[2]}
        logp = torch.log(probs[1].clamp_min(1e-30))
        y_c, y_u = self.targets
        self.mixup_loss = float(-(self.lam * logp[y_c] + (1 - self.lam) * logp[y_u]))
        self.top = {name: [(self._token(int(i)), float(p[i]))
                           for i in torch.topk(p, min(self.top_k, p.numel())).indices]
                    for name, p in self.probs.items()}
        self.table.value = self._table_html()

    # -- rendering --------------------------------------------------------------
    def _token(self, token_id: int) -> str:
        return repr(self.tokenizer.decode([token_id]))

    def _pair_html(self) -> str:
        rows = "".join(
            f"<tr><td><b>{name}</b></td><td>{html.escape(shorten(instr, 120))}</td>"
            f"<td><code>{html.escape(shorten(resp, 60))}</code></td>"
            f"<td><code>{html.escape(self._token(y))}</code></td></tr>"
            for name, (instr, resp), y in zip(("confident", "unconfident"), self.texts, self.targets))
        return ("<table><tr><th></th><th>instruction</th><th>response</th><th>target at k</th></tr>"
                f"{rows}</table>")

    def _table_html(self) -> str:
        y_c, y_u = self.targets
        cols = []
        heads = {"confident": "confident example (λ = 1)", "mix": f"mixed state (λ = {self.lam:.2f})",
                 "unconfident": "unconfident example (λ = 0)"}
        gold = {self._token(y_c): "#0072B2", self._token(y_u): "#D55E00"}
        for name in ("confident", "mix", "unconfident"):
            items = "".join(
                f"<tr><td style='color:{gold.get(tok, 'inherit')};font-weight:"
                f"{'bold' if tok in gold else 'normal'}'><code>{html.escape(tok)}</code></td>"
                f"<td style='text-align:right'>{p:.3f}</td></tr>" for tok, p in self.top[name])
            p = self.probs[name]
            cols.append(f"<td style='vertical-align:top;padding:0 18px'><b>{heads[name]}</b><table>{items}</table>"
                        f"<small>p(y<sub>c</sub>) = {float(p[y_c]):.3f}, p(y<sub>u</sub>) = {float(p[y_u]):.3f}"
                        "</small></td>")
        note = (f"<p>Mixup loss at this position: λ·CE(mix, y<sub>c</sub>) + (1−λ)·CE(mix, y<sub>u</sub>) = "
                f"<b>{self.mixup_loss:.3f}</b>. Gold tokens: <span style='color:#0072B2'>y<sub>c</sub> = "
                f"{html.escape(self._token(y_c))}</span>, <span style='color:#D55E00'>y<sub>u</sub> = "
                f"{html.escape(self._token(y_u))}</span>.</p>")
        return f"<table><tr>{''.join(cols)}</tr></table>{note}"


def _tokenize_pair(pair, tokenizer, max_length):
    """Two tokenized rows (input_ids, labels) and their (instruction, response) texts."""
    import datasets


    rows = pair.to_list() if hasattr(pair, "to_list") else \
        pair.to_dict("records") if isinstance(pair, pd.DataFrame) else list(pair)
    if len(rows) != 2:
        raise ValueError(f"a pair has two examples (confident, unconfident), got {len(rows)}")
    if all("input_ids" in r and "labels" in r for r in rows):
        texts = [(tokenizer.decode([t for t, y in zip(r["input_ids"], r["labels"]) if y == IGNORE_INDEX]),
                  tokenizer.decode([t for t in r["labels"] if t != IGNORE_INDEX])) for r in rows]
        return rows, texts
    for r in rows:
        if "messages" not in r or "response" not in r:
            raise ValueError("pass canonical examples (with 'messages' and 'response') or tokenized ones "
                             "(with 'input_ids' and 'labels')")
    data = datasets.Dataset.from_list([{"example_id": str(r.get("example_id", i)), "messages": r["messages"],
                                        "response": r["response"]} for i, r in enumerate(rows)])
    tokenized = tokenize_examples(data, tokenizer, max_length=max_length)
    if len(tokenized) != 2:
        raise ValueError("an example of the pair lost its response to truncation; raise max_length")
    return [tokenized[0], tokenized[1]], [(instruction_text(r["messages"]), r["response"]) for r in rows]


def lambda_explorer(model, tokenizer, examples_pair, **kwargs) -> LambdaExplorer:
    """Explore Mixup on one (confident, unconfident) pair; display ``.widget``.

    ``examples_pair``: two canonical examples (dicts with ``messages`` and ``response``,
    e.g. from :func:`pick_pair`), or two tokenized ones (``input_ids`` and ``labels``).
    Options: ``alpha``, ``lam``, ``top_k``, ``max_length``.
    """
    return LambdaExplorer(model, tokenizer, examples_pair, **kwargs)


# =============================================================== 2. split explorer
class SplitExplorer:
    """The confident/unconfident split recomputed live for a split ratio.

    Attributes set by :meth:`update`: ``split`` (the dict of
    :func:`sftmix.dynamics.split_by_confidence`), ``summary`` (a DataFrame per half: n,
    mean metric, share noisy, most common task), ``figure``.
    """

    def __init__(self, table: pd.DataFrame, projection: pd.DataFrame | None = None, *, ratio: float = 0.5,
                 metric: str = "confidence", scale: str = "prob", method: str | None = None, log: bool = False):

        w = _widgets()
        self.table, self.projection, self.scale, self.method, self.log = table, projection, scale, method, log
        if projection is not None and "example_id" not in projection.columns:
            raise KeyError("the projection needs an example_id column to be coloured by the split")
        metrics = [m for m in SPLIT_METRICS if m in table.columns]
        if metric not in metrics:
            raise KeyError(f"the dynamics table has no {metric!r} column; it has {metrics}")
        self.ratio_slider = w.FloatSlider(value=ratio, min=0.05, max=0.95, step=0.05, description="ratio",
                                          continuous_update=False)
        self.metric_dropdown = w.Dropdown(options=metrics, value=metric, description="metric")
        self._figsize = (4.6 * (3 if projection is not None else 2), 3.8)
        self.image = _image(w, self._figsize)
        self.info = w.HTML()
        self._busy = False
        for control in (self.ratio_slider, self.metric_dropdown):
            control.observe(lambda change: None if self._busy else self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.ratio_slider, self.metric_dropdown]), self.info, self.image])
        self.update()

    def update(self, ratio: float | None = None, metric: str | None = None) -> dict:
        """Recompute the split (for ``ratio``/``metric``, else the widgets' values) and redraw."""

        _set_quietly(self, ((self.ratio_slider, ratio), (self.metric_dropdown, metric)))
        ratio, metric = self.ratio_slider.value, self.metric_dropdown.value
        self.split = split_by_confidence(self.table, ratio=ratio, metric=metric)
        self.summary = split_summary(self.table, self.split)
        panels = 3 if self.projection is not None else 2
        fig = _new_figure(self._figsize)
        axes = fig.subplots(1, panels)
        # log: the paper's confidence is heavy-tailed; shown as log mean perplexity.
        plot_confidence_hist(self.table, split=self.split, metric=metric, ax=axes[0],
                             log=self.log and metric == "confidence")
        plot_dynamics_map(self.table, split=self.split, color="split", scale=self.scale, ax=axes[1])
        if self.projection is not None:
            plot_umap_confidence(self.projection, color="split", split=self.split, ax=axes[2],
                                 method=self.method)
        self.figure = fig
        self.image.value = _png(fig)
        self.info.value = (f"<b>threshold</b> {metric} ≥ {self.split['threshold']:.4g} is confident · "
                           f"ratio {ratio:.2f} · " + self.summary.to_html(float_format=lambda v: f"{v:.3g}",
                                                                         border=0))
        return self.split


def split_explorer(table: pd.DataFrame, projection: pd.DataFrame | None = None, **kwargs) -> SplitExplorer:
    """A split-ratio slider that recomputes the split and re-colours the map (and projection).

    Options: ``ratio``, ``metric`` (``"confidence"``, ``"confidence_prob"``,
    ``"correctness"``), ``scale`` of the map (``"prob"`` or ``"perplexity"``), ``method``
    (the projection's name on its axes, e.g. ``"PCA"``; default: its ``attrs`` or "UMAP"),
    ``log`` (histogram of the heavy-tailed ``confidence`` as log10 mean perplexity).
    """
    return SplitExplorer(table, projection, **kwargs)


# ============================================================ 3. example inspector
class ExampleInspector:
    """Pick a region, a task and a noise filter; see the examples. ``selection`` holds them."""

    def __init__(self, table: pd.DataFrame, examples=None, *, region: str = "hard-to-learn", n: int = 8,
                 fraction: float = 1 / 3):
        w = _widgets()
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
        _set_quietly(self, ((self.region_dropdown, region), (self.task_dropdown, task),
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


__all__ = ["REGIONS", "LambdaExplorer", "SplitExplorer", "ExampleInspector", "lambda_explorer", "split_explorer",
           "example_inspector", "pick_pair", "region_mask", "select_examples", "examples_html", "split_summary"]
