"""Where does SFTMix help? A grid of experiments over the axes that decide it.

A regulariser can only matter where plain NTP has something to overfit: few examples,
noisy labels, many epochs. :func:`run_regime` runs one full experiment (reference run,
dynamics, split, NTP and SFTMix for every seed) per cell of a grid over

    n_train x noise x num_train_epochs

from a base experiment YAML, each in its own run directory ``<runs>/<prefix>-n<N>-noise<P>-ep<E>``,
resumable like any experiment. :func:`regime_table` collects the per-seed results into one
long table and :func:`summarize_regime` compares SFTMix with NTP per cell and metric:
the paired difference over seeds, its exact 95% t-interval, a paired t-test p-value and
the Holm-adjusted p-value over *all* comparisons in the grid (the number of comparisons
is reported next to the verdicts).
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..analysis.results import METRICS
from ..analysis.stats import holm_adjust, paired_difference
from ..io import RunDir
from .experiment import run_experiment
from .experiment_config import ExperimentConfig

__all__ = ["RegimeGrid", "regime_configs", "run_regime", "regime_table", "summarize_regime"]

#: Metrics compared in the grid (name -> higher is better).
REGIME_METRICS = {m: METRICS[m][1] for m in ("exact_match", "nll", "ece")}


@dataclass
class RegimeGrid:
    """The axes of the study (values of each) and the run-directory name prefix."""

    n_train: list[int] = field(default_factory=lambda: [150, 600, 2500])
    noise: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.3])
    epochs: list[int] = field(default_factory=lambda: [3, 8])
    prefix: str = "regime"

    @property
    def cells(self) -> list[tuple[int, float, int]]:
        return list(itertools.product(self.n_train, self.noise, self.epochs))


def _cell_name(prefix: str, n: int, noise: float, epochs: int) -> str:
    return f"{prefix}-n{n}-noise{noise:g}-ep{epochs}"


def regime_configs(base: str | Path | dict, grid: RegimeGrid, *, runs_dir: str | None = None
                   ) -> list[tuple[tuple[int, float, int], ExperimentConfig]]:
    """One :class:`ExperimentConfig` per grid cell: the base with n_train, noise and epochs set.

    The reference run trains as long as the runs it splits for (the paper's reference model
    is the model being trained, trained the same way).
    """
    config = ExperimentConfig(**copy.deepcopy(base)) if isinstance(base, dict) else ExperimentConfig.from_yaml(base)
    out = []
    for n, noise, epochs in grid.cells:
        changes = {"name": _cell_name(grid.prefix, n, noise, epochs), "data.n_train": int(n),
                   "data.noise": float(noise), "training.num_train_epochs": epochs,
                   "reference_training.num_train_epochs": epochs}
        if runs_dir is not None:
            changes["runs_dir"] = runs_dir
        out.append(((n, noise, epochs), config.override(changes)))
    return out


def run_regime(base, grid: RegimeGrid, *, runs_dir: str | None = None, progress: bool = True) -> pd.DataFrame:
    """Run (or resume) every cell of the grid; return :func:`regime_table` of the results."""
    configs = regime_configs(base, grid, runs_dir=runs_dir)
    for i, ((n, noise, epochs), config) in enumerate(configs, 1):
        if progress:
            print(f"[regime {i}/{len(configs)}] n_train={n} noise={noise:g} epochs={epochs}", flush=True)
        run_experiment(config, progress=progress)
    return regime_table(configs)


def regime_table(configs) -> pd.DataFrame:
    """One row per (cell, method, seed) with the held-out metrics; cells without results are skipped."""
    rows = []
    for (n, noise, epochs), config in configs:
        path = RunDir(config.run_dir).results_json
        if not path.exists():
            continue
        per_seed = json.loads(path.read_text())["per_seed"]
        for method, by_seed in per_seed.items():
            for seed, ev in by_seed.items():
                rows.append({"n_train": n, "noise": noise, "epochs": epochs, "method": method, "seed": int(seed),
                             **{m: ev.get(m, float("nan")) for m in REGIME_METRICS}})
    return pd.DataFrame(rows, columns=["n_train", "noise", "epochs", "method", "seed", *REGIME_METRICS])


def summarize_regime(table: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """SFTMix - NTP per cell and metric, paired by seed, with Holm-adjusted p-values.

    Columns: n_train, noise, epochs, metric, n_seeds, ntp, sftmix (means), diff, lo, hi (95%
    t-interval), p (paired t-test), p_holm (adjusted over every row), verdict, and
    ``better`` (+1 SFTMix better, -1 NTP better, 0 no clear difference) after the correction.
    """
    rows = []
    for (n, noise, epochs), cell in table.groupby(["n_train", "noise", "epochs"], sort=True):
        wide = cell.pivot_table(index="seed", columns="method", values=list(REGIME_METRICS))
        for metric, higher in REGIME_METRICS.items():
            if (metric, "ntp") not in wide.columns or (metric, "sftmix") not in wide.columns:
                continue
            pair = wide[metric][["ntp", "sftmix"]].dropna()
            d = paired_difference(pair["ntp"].tolist(), pair["sftmix"].tolist(), higher_is_better=higher)
            ci = d.get("ci95") or (float("nan"), float("nan"))
            rows.append({"n_train": n, "noise": noise, "epochs": epochs, "metric": metric, "n_seeds": len(pair),
                         "ntp": pair["ntp"].mean(), "sftmix": pair["sftmix"].mean(), "diff": d["mean"],
                         "lo": ci[0], "hi": ci[1], "higher": higher,
                         "p": d["p_value"] if d.get("p_value") is not None else float("nan")})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["p_holm"] = holm_adjust(out["p"].tolist())
    sign = out["diff"].where(out["higher"], -out["diff"])  # > 0: SFTMix better
    significant = out["p_holm"] < alpha
    out["better"] = 0
    out.loc[significant & (sign > 0), "better"] = 1
    out.loc[significant & (sign < 0), "better"] = -1
    out["verdict"] = out["better"].map({1: "SFTMix better", -1: "NTP better", 0: "no clear difference"})
    out["ci_excludes_zero"] = (out["lo"] > 0) | (out["hi"] < 0)
    return out.drop(columns="higher")
