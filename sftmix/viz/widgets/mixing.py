"""The lambda explorer: what Mixup does to one (confident, unconfident) pair.

The Beta(alpha, alpha) distribution of lambda; the next-token distributions of the confident
example, the unconfident one and their mixed last hidden state at an aligned response
position; the probabilities of both gold tokens along lambda and the pair's Mixup loss, for
one model or several (e.g. the NTP and the SFTMix model); and a pair picker. Every number is
computed by :mod:`sftmix.analysis.mixing`, which calls the training code's alignment, mixing
and loss.
"""

from __future__ import annotations

import html
from typing import Mapping

import numpy as np
import pandas as pd

from ...analysis.mixing import lambda_curves, mixed_probs, pair_mixup_loss, pair_states
from ...analysis.selection import instruction_text, pick_pair, shorten
from ..plots import plot_lambda_curves, plot_lambda_distribution
from .base import image, new_figure, png, set_quietly, widgets_module

__all__ = ["LambdaExplorer", "lambda_explorer"]


_LAMBDA_FIGSIZE = (5.0, 3.0)
_CURVES_FIGSIZE = (10.5, 3.9)


def _choices(examples: pd.DataFrame, ids, n: int) -> list[tuple[str, str]]:
    """Up to ``n`` (label, id) options spread evenly over ``ids`` (which run most confident first)."""
    ids = [str(i) for i in ids if str(i) in examples.index]
    picks = ids if len(ids) <= n else [ids[int(round(i))] for i in np.linspace(0, len(ids) - 1, n)]
    out = []
    for eid in picks:
        row = examples.loc[eid]
        task = f"{row['task']}: " if "task" in row else ""
        out.append((f"{task}{shorten(instruction_text(row['messages']), 50)} → {shorten(row['response'], 20)}", eid))
    return out


class LambdaExplorer:
    """Beta(alpha, alpha) and a mixed pair under one or more models (see the module docs).

    Attributes set by the updates: ``k``, ``positions`` and ``targets`` (the aligned
    position, its index in each sequence and each example's gold next token, under the first
    model), ``lambda_figure``, ``mid_mass`` (share of draws with 0.1 < lambda < 0.9), ``probs``
    (the first model's three next-token distributions at position k, tensors (V,)), ``top``
    (top-k ``[(token, prob), ...]`` of each), ``mixup_loss`` (``{model: the pair's Mixup loss at
    lambda}``, averaged over its aligned positions as training does), ``curves`` (``{model:
    lambda_curves frame}`` over every aligned position) and ``pair`` (the two example ids).
    """

    def __init__(self, models, tokenizer, pair=None, *, examples=None, split: Mapping | None = None,
                 alpha: float = 0.5, lam: float = 0.5, top_k: int = 5, max_length: int = 512, seed: int = 0,
                 max_choices: int = 60):
        w = widgets_module()
        self.models = dict(models) if isinstance(models, Mapping) else {"model": models}
        self.tokenizer, self.top_k, self.max_length = tokenizer, int(top_k), max_length
        self._busy = False
        self.alpha_slider = w.FloatLogSlider(value=alpha, base=10, min=-1.5, max=1.0, step=0.05,
                                             description="α", continuous_update=False, readout_format=".2f")
        self.lambda_slider = w.FloatSlider(value=lam, min=0.0, max=1.0, step=0.05, description="λ",
                                           continuous_update=False)
        self.position_slider = w.IntSlider(value=0, min=0, max=1, description="k", continuous_update=False)
        self.lambda_image, self.curves_image = image(w, _LAMBDA_FIGSIZE), image(w, _CURVES_FIGSIZE)
        self.lambda_caption, self.pair_html, self.table = w.HTML(), w.HTML(), w.HTML()
        self.position_note = w.HTML()
        self.lam = float(lam)
        picker = []
        self._examples = None
        if examples is not None and split is not None:
            frame = examples.copy() if isinstance(examples, pd.DataFrame) else examples.to_pandas()
            self._examples = frame.set_index(frame["example_id"].astype(str))
            if pair is None:
                pair = pick_pair(frame, split, seed=seed)
            self.confident_dropdown = w.Dropdown(options=_choices(self._examples, split["confident"], max_choices),
                                                 description="confident", layout=w.Layout(width="95%"))
            self.unconfident_dropdown = w.Dropdown(
                options=_choices(self._examples, split["unconfident"], max_choices), description="unconfident",
                layout=w.Layout(width="95%"))
            for dropdown, row in ((self.confident_dropdown, pair[0]), (self.unconfident_dropdown, pair[1])):
                eid = str(row["example_id"])
                if eid not in [v for _, v in dropdown.options]:
                    dropdown.options = [(f"(drawn) {eid}", eid)] + list(dropdown.options)
                dropdown.value = eid
            for dropdown in (self.confident_dropdown, self.unconfident_dropdown):
                dropdown.observe(lambda change: None if self._busy else self.set_pair(
                    self.confident_dropdown.value, self.unconfident_dropdown.value), names="value")
            picker = [w.HTML("<b>The pair</b> (choices spread over each half, most confident first)"),
                      self.confident_dropdown, self.unconfident_dropdown]
        if pair is None:
            raise ValueError("give a pair, or examples= and split= to pick one from")
        self.alpha_slider.observe(lambda c: None if self._busy else self.set_alpha(c["new"]), names="value")
        self.lambda_slider.observe(lambda c: None if self._busy else self.set_lambda(c["new"]), names="value")
        self.position_slider.observe(lambda c: None if self._busy else self.set_position(c["new"]), names="value")
        self.widget = w.VBox([
            w.HTML("<b>λ ~ Beta(α, α)</b>: the weight of the confident example in each mixed pair"),
            self.alpha_slider, self.lambda_image, self.lambda_caption, *picker,
            w.HTML("<b>Mixing the last hidden states</b> of the pair at the k-th aligned response position "
                   "(k = 0: the first response token)"),
            self.pair_html, self.position_slider, self.position_note, self.lambda_slider, self.table,
            w.HTML("<b>Along λ</b>, over every aligned position of the pair"), self.curves_image])
        self.set_alpha(alpha)
        self._load_pair(pair)
        self.set_position(0)

    # -- updates ----------------------------------------------------------------
    def set_alpha(self, alpha: float) -> None:
        """Redraw the lambda distribution for Beta(alpha, alpha)."""
        set_quietly(self, [(self.alpha_slider, alpha)])
        self.alpha = float(alpha)
        self.lambda_figure = plot_lambda_distribution(self.alpha, ax=new_figure(_LAMBDA_FIGSIZE).add_subplot())
        draws = np.random.default_rng(0).beta(self.alpha, self.alpha, size=20000)
        self.mid_mass = float(((draws > 0.1) & (draws < 0.9)).mean())
        self.lambda_image.value = png(self.lambda_figure)
        self.lambda_caption.value = (f"α = {self.alpha:.2f}: {self.mid_mass:.0%} of draws fall in 0.1 < λ < 0.9; "
                                     f"the rest leave the mixed point within 10% of one parent.")

    def set_pair(self, confident_id: str, unconfident_id: str) -> None:
        """Mix another pair (ids of the examples given at construction)."""
        if self._examples is None:
            raise ValueError("set_pair needs the explorer to be built with examples= and split=")
        set_quietly(self, [(self.confident_dropdown, str(confident_id)),
                           (self.unconfident_dropdown, str(unconfident_id))])
        rows = [self._examples.loc[str(i)].to_dict() | {"example_id": str(i)} for i in (confident_id, unconfident_id)]
        self._load_pair(rows)
        self.set_position(0)

    def _load_pair(self, pair) -> None:
        rows = pair.to_list() if hasattr(pair, "to_list") else \
            pair.to_dict("records") if isinstance(pair, pd.DataFrame) else list(pair)
        self.pair = [str(r.get("example_id", i)) for i, r in enumerate(rows)] if len(rows) == 2 else None
        self.states = {label: pair_states(model, self.tokenizer, rows, max_length=self.max_length)
                       for label, model in self.models.items()}
        first = next(iter(self.states.values()))
        self.texts, self.n_aligned = first.texts, first.n_aligned
        self.curves = {label: lambda_curves(states) for label, states in self.states.items()}
        set_quietly(self, [(self.position_slider, 0)])
        self.position_slider.max = max(self.n_aligned - 1, 0)
        self.position_slider.disabled = self.n_aligned == 1
        # With a one-token response there is a single aligned position: say why k cannot move.
        self.position_note.value = (
            "<small>k is fixed at 0: the shorter response of this pair has a single token, so there is "
            "one aligned position to mix.</small>" if self.n_aligned == 1 else "")

    def set_position(self, k: int) -> None:
        """Mix at the k-th aligned response position (0 <= k < ``n_aligned``)."""
        if not 0 <= k < self.n_aligned:
            raise ValueError(f"k must lie in [0, {self.n_aligned - 1}] (the shorter response), got {k}")
        set_quietly(self, [(self.position_slider, k)])
        self.k = int(k)
        aligned = next(iter(self.states.values())).aligned
        self.targets = [int(aligned.target_a[self.k]), int(aligned.target_b[self.k])]
        self.positions = [int(aligned.pos_a[self.k]), int(aligned.pos_b[self.k])]
        self.pair_html.value = self._pair_html()
        self.set_lambda(self.lam)

    def set_lambda(self, lam: float) -> None:
        """Mix the two hidden states with weight ``lam`` on the confident one."""
        import torch

        set_quietly(self, [(self.lambda_slider, lam)])
        self.lam = float(lam)
        states = next(iter(self.states.values()))
        self.probs = {"confident": mixed_probs(states, 1.0)[self.k], "mix": mixed_probs(states, self.lam)[self.k],
                      "unconfident": mixed_probs(states, 0.0)[self.k]}
        self.mixup_loss = {label: pair_mixup_loss(s, self.lam) for label, s in self.states.items()}
        self.top = {name: [(self._token(int(i)), float(p[i]))
                           for i in torch.topk(p, min(self.top_k, p.numel())).indices]
                    for name, p in self.probs.items()}
        self.table.value = self._table_html()
        fig = plot_lambda_curves(self.curves)
        for ax in fig.axes:
            ax.axvline(self.lam, color="black", linewidth=0.8, alpha=0.6)
        self.curves_figure = fig
        self.curves_image.value = png(fig)

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
        model = next(iter(self.models))
        losses = ", ".join(f"{html.escape(label)} <b>{v:.3f}</b>" for label, v in self.mixup_loss.items())
        note = (f"<p>Distributions under <b>{html.escape(model)}</b>. The pair's Mixup loss at λ, "
                f"λ·CE(mix, y<sub>c</sub>) + (1−λ)·CE(mix, y<sub>u</sub>) averaged over its {self.n_aligned} "
                f"aligned positions: {losses}. Gold tokens at k: <span style='color:#0072B2'>y<sub>c</sub> = "
                f"{html.escape(self._token(y_c))}</span>, <span style='color:#D55E00'>y<sub>u</sub> = "
                f"{html.escape(self._token(y_u))}</span>.</p>")
        return f"<table><tr>{''.join(cols)}</tr></table>{note}"


def lambda_explorer(models, tokenizer, examples_pair=None, **kwargs) -> LambdaExplorer:
    """Explore Mixup on one (confident, unconfident) pair; display ``.widget``.

    ``models``: a model, or ``{label: model}`` (e.g. ``{"NTP": ntp, "SFTMix": sftmix}``; the
    first one's distributions are tabulated, every one's curves drawn). ``examples_pair``: two
    canonical examples (dicts with ``messages`` and ``response``, e.g. from :func:`pick_pair`)
    or two tokenized ones (``input_ids`` and ``labels``). With ``examples=`` (the canonical
    training examples) and ``split=``, two dropdowns choose the pair (default: a random one,
    ``seed``). Options: ``alpha``, ``lam``, ``top_k``, ``max_length``, ``max_choices``.
    """
    return LambdaExplorer(models, tokenizer, examples_pair, **kwargs)
