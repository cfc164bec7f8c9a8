"""Ablations of the recipe's settings: one knob at a time around a centre recipe, several seeds.

The axes are the settings whose annotation carries an :class:`~sftmix.config.Axis` mark
(:data:`AXES`): the Mixup settings of ``SFTMixConfig`` (``training.*``) and the split settings of
``RecipeArguments`` (``recipe.*``); the marks' values make up the default sweep. The sweep is centred on a
base :class:`~sftmix.pipeline.experiment_config.ExperimentConfig` (normally the paper's recipe:
alpha = 0.5, mu = 0.2, split at the median, confident x unconfident pairs).
:func:`run_ablation` first runs (or resumes) the base experiment, which gives

* ONE reference run, dynamics table and split, shared by every cell: the training
  dynamics do not depend on these settings, and a cell whose split settings differ from the
  centre's re-cuts its own split from the same table (no new scoring);
* the NTP baseline and the SFTMix centre for every seed: the centre value of each
  parameter is read from there instead of being trained again.

Every other cell trains SFTMix with one setting changed, through the same stage
functions as the experiment (:func:`sftmix.pipeline.stages.train_stage` / ``eval_stage``, on the
run's :class:`~sftmix.pipeline.context.RunContext`: the tokens are made once for all cells), into

    <run>/ablation/<param>=<value>/seed<k>/eval.json     (+ log_history.json, cell.json)

The base experiment's stages and the cells are one list run by
:func:`sftmix.pipeline.runner.run_stages`: a cell is a stage named
``ablation/<param>=<value>/seed<k>`` whose key chains its resolved settings with the keys of
the stages it reads (the split, or the dynamics for a cell with its own split), recorded in the run's
``stages/`` folder like the experiment's. A cell whose key matches is skipped; a changed base
configuration retrains exactly the cells downstream of the change. ``cell.json`` says what
the cell is (param, value, seed, centre). The long results table (one row per cell and seed,
plus the NTP baseline rows) goes to ``<run>/ablation/results.csv``.

A difference between two settings is a finding only when it is larger than the spread
over seeds; :func:`summarize_ablation` says so per cell with a paired 95% interval.

The paper's own numbers (its role-of-Mixup ablation among them) are in :mod:`sftmix.analysis.paper`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import typing
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..analysis.markdown import markdown_table
from ..analysis.results import METRICS
from ..analysis.stats import paired_difference
from ..config import Axis, RecipeArguments, SFTMixConfig
from ..distributed import Processes
from ..errors import ConfigError
from ..io import EVAL_FILE, LOG_HISTORY_FILE, RunDir, atomic_copy, atomic_write, atomic_write_json
from ..viz.plots import plot_ablation_sweep
from . import stages as st
from .context import open_run
from .experiment import eval_key, experiment_stages, settings_key
from .experiment_config import ExperimentConfig
from .runner import Stage, run_stages
from .stages import claim_train_dir


def _axes() -> dict[str, tuple[str, Axis]]:
    """``{param: (section, Axis)}``: the settings whose annotation marks them as an ablation axis."""
    found = {}
    for section, cls in (("training", SFTMixConfig), ("recipe", RecipeArguments)):
        hints = typing.get_type_hints(cls, include_extras=True)
        for f in dataclasses.fields(cls):
            marks = [m for m in getattr(hints.get(f.name), "__metadata__", ()) if isinstance(m, Axis)]
            if marks:
                found[f.name] = (section, marks[0])
    return found


_AXES = _axes()
#: The ablation's axes and the section of the experiment that holds each: ``{param: section}``.
#: A new axis is one ``Axis`` mark on a field of :mod:`sftmix.config`.
AXES = {param: section for param, (section, _) in _AXES.items()}
#: The knobs :func:`run_ablation` can vary.
SWEEPABLE = tuple(AXES)
#: Knobs whose values are names, not numbers: their valid names.
CATEGORICAL = {param: tuple(axis.choices) for param, (_, axis) in _AXES.items() if axis.choices is not None}
#: The sweep ``sftmix ablate`` runs when no ``--param`` is given (the centre is added): the axes'
#: default values (the paper's knobs and choices); an axis without any is swept on request.
DEFAULT_SWEEP = {param: list(axis.default) for param, (_, axis) in _AXES.items() if axis.default}
METRIC_COLUMNS = ("exact_match", "nll", "ece", "token_accuracy")
RESULT_COLUMNS = ("param", "value", "seed", *METRIC_COLUMNS, "centre")
#: ``param`` of the NTP baseline rows in the results table.
BASELINE = "ntp_baseline"
_HIGHER_IS_BETTER = {name: higher for name, (_, higher) in METRICS.items()}
_SPLIT_SETTINGS = ("split_ratio", "split_metric")


# ----------------------------------------------------------------------- the sweep
def centre_values(base) -> dict:
    """The base configuration's value of each sweepable parameter (the shared centre), read from its
    resolved SFTMix arguments (so a setting left to its default has the default's value)."""
    if "sftmix" not in base.methods:
        base = base.override({"methods": [*base.methods, "sftmix"]})
    resolved = {"training": base.training_args("sftmix", base.seeds[0], base.run_dir),
                "recipe": base.recipe_args()}
    return {p: getattr(resolved[section], p) for p, section in AXES.items()}


def parse_values(param: str, values) -> list:
    """Values of ``param`` as the sweep uses them: floats for numeric knobs, registered names for the others.

    ``values`` is a list or a comma-separated string (``"0.1,0.5,1"``). Raises
    ``ValueError`` for an unknown parameter or a value the recipe rejects.
    """
    if param not in SWEEPABLE:
        raise ValueError(f"cannot sweep {param!r}; choose one of {', '.join(SWEEPABLE)}")
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",") if v.strip()]
    values = list(values)
    if not values:
        raise ValueError(f"{param}: give at least one value")
    if param in CATEGORICAL:
        bad = [v for v in values if v not in CATEGORICAL[param]]
        if bad:
            raise ValueError(f"{param}: unknown value(s) {bad}; choose from {', '.join(CATEGORICAL[param])}")
        return [str(v) for v in values]
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError) as err:
        raise ValueError(f"{param}: values must be numbers, got {values}") from err
    probe = ExperimentConfig()  # each value is checked by the configuration that will hold it
    for value in out:
        try:
            probe.override({f"{AXES[param]}.{param}": value})
        except ConfigError as exc:
            raise ConfigError(f"{param}: value {value:g} is not valid ({exc})") from None
    return out


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def cell_dir(run: str | Path, param: str, value, seed: int) -> Path:
    """``<run>/ablation/<param>=<value>/seed<seed>``."""
    return RunDir(run).ablation_cell(f"{param}={_fmt(value)}", seed)


def _plan(sweep: Mapping, centre: dict, include_centre: bool) -> dict[str, list]:
    plan = {}
    for param, values in sweep.items():
        values = parse_values(param, values)
        if include_centre and not any(_same(v, centre[param]) for v in values):
            values = [centre[param]] + values  # numbers are sorted below; a name leads its axis
        if param not in CATEGORICAL:
            values = sorted(set(values))
        plan[param] = list(dict.fromkeys(values))
    return plan


# ------------------------------------------------------------------------- running
def _read_eval(path: Path) -> dict:
    result = json.loads(path.read_text())
    return {m: result.get(m, float("nan")) for m in METRIC_COLUMNS}


def run_ablation(base, sweep: Mapping[str, Sequence] | None = None, seeds: Sequence[int] | None = None, *,
                 include_centre: bool = True, keep_weights: bool = False, progress: bool = True) -> pd.DataFrame:
    """Sweep Mixup settings one at a time around ``base``, over several seeds.

    Parameters
    ----------
    base : ExperimentConfig (or a YAML path) of the centre recipe; its run directory
        holds the shared reference run, the NTP baseline and the ``ablation/`` folder.
    sweep : ``{param: values}`` over :data:`SWEEPABLE` (default :data:`DEFAULT_SWEEP`).
    seeds : training seeds of every cell (default ``base.seeds``).
    include_centre : add the base value of each parameter to its values (read from
        the base run's SFTMix models, not retrained).
    keep_weights : keep each cell's trained weights (dropped by default; a sweep of a
        large model would otherwise fill the disk).

    Returns
    -------
    DataFrame with :data:`RESULT_COLUMNS`: one row per (param, value, seed), plus one
    row per seed with ``param == "ntp_baseline"`` (value ``"ntp"``) for the baseline;
    ``centre`` marks the base recipe's rows. Also written to
    ``<run>/ablation/results.csv``.
    """
    if not isinstance(base, ExperimentConfig):
        base = ExperimentConfig.from_yaml(base)
    seeds = [int(s) for s in (seeds if seeds is not None else base.seeds)]
    centre = centre_values(base)
    plan = _plan(DEFAULT_SWEEP if sweep is None else sweep, centre, include_centre)
    data = base.data_args()
    if data.n_test == 0 and data.eval_dataset is None and data.dataset == "builtin":
        raise ValueError("the ablation compares held-out metrics: set data.n_test > 0")
    # The base experiment (reference run, dynamics, split, NTP baseline and SFTMix centre) and
    # the cells are one list of stages: a cell is keyed by the stages it reads.
    base_run = base.override({"seeds": seeds, "methods": ["ntp", "sftmix"], "embeddings": False,
                              "figures": False})
    ctx = open_run(base_run, progress=progress)
    if ctx.held_out is None:
        raise ValueError("the ablation compares held-out metrics: the base configuration has no held-out data")
    cells = [(param, value, seed) for param, values in plan.items() for value in values for seed in seeds]
    stages = experiment_stages(ctx) + [_cell_stage(ctx, p, v, s, _same(v, centre[p]), keep_weights)
                                       for p, v, s in cells]
    run_stages(stages, ctx.book, progress=progress, desc=f"{base.name}: ablation")
    rows = [{"param": BASELINE, "value": "ntp", "seed": seed, "centre": False,
             **_read_eval(ctx.rd.eval_file("ntp", seed))} for seed in seeds]
    rows += [{"param": p, "value": v, "seed": s, "centre": _same(v, centre[p]),
              **_read_eval(cell_dir(base.run_dir, p, v, s) / EVAL_FILE)} for p, v, s in cells]
    results = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    results["value"] = results["value"].astype(object)
    _write_csv(results, ctx.rd.ablation_results)
    return results


def _own_split(base: ExperimentConfig, cell: ExperimentConfig) -> bool:
    """Whether a cell splits the data differently from the centre (it re-cuts the split from the shared table)."""
    return any(getattr(cell.recipe_args(), k) != getattr(base.recipe_args(), k) for k in _SPLIT_SETTINGS)


def _cell_stage(ctx, param: str, value, seed: int, is_centre: bool, keep_weights: bool) -> Stage:
    """One cell (one setting, one seed) as a stage: the centre is copied from the base run's SFTMix
    model of that seed; any other cell trains SFTMix with the setting changed (on a split of its own,
    re-cut from the shared dynamics table, when the setting changes the split) and is evaluated like
    the experiment's runs."""
    out = cell_dir(ctx.rd.root, param, value, seed)
    name = f"ablation/{param}={_fmt(value)}/seed{seed}"
    info = {"param": param, "value": value, "seed": seed, "centre": is_centre}
    if is_centre:
        source = ctx.rd.train("sftmix", seed)
        return Stage(name, lambda: _copy_centre(source, out, info), key=("centre",),
                     deps=(f"eval/sftmix/seed{seed}",), outputs=[out / EVAL_FILE])
    cell = ctx.with_config(ctx.config.override({f"{AXES[param]}.{param}": value, "seeds": [seed]}))
    own_split = _own_split(ctx.config, cell.config)
    split_path = out.parent / ctx.rd.split.name if own_split else ctx.rd.split
    args = st.run_training_args(cell.config, "sftmix", seed, out, split_path, evaluating=False)
    recipe = cell.config.recipe_args()
    return Stage(name, lambda: _train_cell(cell, split_path if own_split else None, out, info, keep_weights),
                 key=(param, value, seed, settings_key(cell.config.model_args()), settings_key(args),
                      recipe.split_ratio, recipe.split_metric, eval_key(cell.config)),
                 deps=("dynamics",) if own_split else ("split",), outputs=[out / EVAL_FILE],
                 everywhere=True, before=lambda key: claim_train_dir(out, key))


def _train_cell(cell, own_split: Path | None, out: Path, info: dict, keep_weights: bool) -> None:
    """Train and evaluate one cell (one seed); on a split re-cut from the shared table into ``own_split``."""
    procs = Processes()
    if own_split is not None:
        procs.on_main(lambda: st.split_stage(cell, own_split), "re-cutting the split")
    st.train_stage(cell, "sftmix", cell.config.seeds[0], out, own_split or cell.rd.split, evaluating=False)

    def evaluate():
        st.eval_stage(dataclasses.replace(cell, bars=False), out)
        if not keep_weights:
            _drop_weights(out)
        atomic_write_json(out / "cell.json", info)

    procs.on_main(evaluate, f"evaluating {out}")


def _copy_centre(source: Path, out: Path, info: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in (EVAL_FILE, LOG_HISTORY_FILE):
        if (source / name).exists():
            atomic_copy(source / name, out / name)
    atomic_write_json(out / "cell.json", {**info, "copied_from": str(source)})


def _drop_weights(out: Path) -> None:
    for pattern in ("*.safetensors", "*.bin", "checkpoint-*"):
        for p in out.glob(pattern):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def load_ablation(run: str | Path) -> pd.DataFrame:
    """Read ``<run>/ablation/results.csv`` back, or a results CSV given by its path (such as the
    shipped ``figures/ablation.csv``); values as numbers where they are numbers."""
    path = Path(run)
    frame = pd.read_csv(path if path.suffix == ".csv" else RunDir(run).ablation_results)
    numeric = pd.to_numeric(frame["value"], errors="coerce")
    frame["value"] = [n if not np.isnan(n) else v for v, n in zip(frame["value"], numeric)]
    frame["value"] = frame["value"].astype(object)
    return frame


# ---------------------------------------------------------------------- reporting
def baseline_band(results: pd.DataFrame, metric: str) -> dict | None:
    """The NTP baseline of a results table as ``plot_ablation``'s ``baseline`` argument."""
    values = results.loc[results["param"] == BASELINE, metric].to_numpy(dtype=float)
    if len(values) == 0:
        return None
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "label": f"NTP baseline (n={len(values)})"}


def summarize_ablation(results: pd.DataFrame, metric: str = "exact_match") -> pd.DataFrame:
    """Per (param, value): mean ± std over seeds and the paired difference to the centre.

    The difference is taken per seed (same seed, same base weights) against the centre
    recipe; ``verdict`` is ``"centre"``, ``"within noise"`` when the 95% t-interval of
    the difference covers zero, ``"better"``/``"worse"`` otherwise (by ``metric``'s
    direction), and ``"no claim (1 seed)"`` with a single seed.
    """
    higher = _HIGHER_IS_BETTER.get(metric, True)
    rows = []
    cells = results[results["param"] != BASELINE]
    for param, group in cells.groupby("param", sort=False):
        centre = group[group["centre"].astype(bool)].set_index("seed")[metric]
        for value in dict.fromkeys(group["value"]):
            cell = group[group["value"].map(lambda v: _same(v, value))].set_index("seed")[metric]
            row = {"param": param, "value": value, "n_seeds": len(cell), "mean": float(cell.mean()),
                   "std": float(cell.std(ddof=1)) if len(cell) > 1 else 0.0}
            seeds = sorted(set(cell.index) & set(centre.index))
            if bool(group.loc[group["value"].map(lambda v: _same(v, value)), "centre"].any()):
                row.update(diff=0.0, ci95_low=0.0, ci95_high=0.0, verdict="centre")
            elif seeds:
                d = paired_difference(centre.loc[seeds], cell.loc[seeds], higher_is_better=higher)
                if d["n"] < 2:  # no interval from one seed
                    row.update(diff=d["mean"], ci95_low=float("nan"), ci95_high=float("nan"),
                               verdict="no claim (1 seed)")
                elif d["ci95"] is None:  # a non-finite value: no claim either way
                    row.update(diff=float("nan"), ci95_low=float("nan"), ci95_high=float("nan"),
                               verdict="undefined")
                else:
                    verdict = ("within noise" if d["verdict"] == "no clear difference" else
                               "better" if d["verdict"] == "SFTMix better" else "worse")
                    row.update(diff=d["mean"], ci95_low=d["ci95"][0], ci95_high=d["ci95"][1], verdict=verdict)
            else:
                row.update(diff=float("nan"), ci95_low=float("nan"), ci95_high=float("nan"),
                           verdict="no centre")
            rows.append(row)
    return pd.DataFrame(rows, columns=["param", "value", "n_seeds", "mean", "std", "diff", "ci95_low",
                                       "ci95_high", "verdict"])


def effects_table(results: pd.DataFrame, metric: str = "exact_match") -> pd.DataFrame:
    """:func:`summarize_ablation` with one more row first: NTP (no Mixup at all) against the recipe,
    paired by seed (``param`` ``"ntp_baseline"``, ``value`` ``"ntp"``)."""
    summary = summarize_ablation(results, metric)
    higher = _HIGHER_IS_BETTER.get(metric, True)
    centre = results[results["centre"].astype(bool)].drop_duplicates("seed").set_index("seed")[metric]
    ntp = results[results["param"] == BASELINE].set_index("seed")[metric]
    seeds = sorted(set(centre.index) & set(ntp.index))
    if not seeds:
        return summary
    d = paired_difference(centre.loc[seeds], ntp.loc[seeds], higher_is_better=higher)
    ci = d["ci95"] or (float("nan"), float("nan"))
    verdict = ("no claim (1 seed)" if d["n"] < 2 else "within noise" if d["verdict"] == "no clear difference"
               else "better" if d["verdict"] == "SFTMix better" else "worse")
    row = {"param": BASELINE, "value": "ntp", "n_seeds": len(seeds), "mean": float(ntp.loc[seeds].mean()),
           "std": float(ntp.loc[seeds].std(ddof=1)) if len(seeds) > 1 else 0.0, "diff": d["mean"],
           "ci95_low": ci[0], "ci95_high": ci[1], "verdict": verdict}
    return pd.concat([pd.DataFrame([row]), summary], ignore_index=True)


def plot_sweep(results: pd.DataFrame, metric: str = "exact_match", *, params: Sequence[str] | None = None,
               error: str = "std"):
    """One :func:`sftmix.viz.plots.plot_ablation` panel per parameter, with the NTP band; a Figure."""
    params = list(params or [p for p in dict.fromkeys(results["param"]) if p != BASELINE])
    return plot_ablation_sweep(results, metric, params=params, baseline=baseline_band(results, metric),
                               categorical=[p for p in params if p in CATEGORICAL], error=error)


def summary_markdown(results: pd.DataFrame, metrics: Sequence[str] = ("exact_match", "nll")) -> str:
    """The summaries of :func:`effects_table` (NTP and every cell against the recipe) as Markdown tables."""
    lines = []
    for metric in metrics:
        summary = effects_table(results, metric)
        band = baseline_band(results, metric)
        lines += [f"## {metric} ({'higher' if _HIGHER_IS_BETTER.get(metric, True) else 'lower'} is better)", ""]
        if band:
            lines += [f"NTP baseline: {band['mean']:.4f} ± {band['std']:.4f} ({band['label']})", ""]
        rows = []
        for r in summary.itertuples():
            ci = "" if r.verdict in ("centre", "no claim (1 seed)") else f" [{r.ci95_low:+.4f}, {r.ci95_high:+.4f}]"
            rows.append([r.param, _fmt(r.value), r.n_seeds, f"{r.mean:.4f} ± {r.std:.4f}", f"{r.diff:+.4f}{ci}",
                         r.verdict])
        lines += markdown_table(["param", "value", "seeds", "mean ± std", "Δ vs centre [95% CI]", "verdict"], rows)
        lines.append("")
    lines.append("Differences inside the spread over seeds (verdict 'within noise') are not findings.")
    return "\n".join(lines) + "\n"
