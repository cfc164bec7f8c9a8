"""The committed results of the real-model experiment: tables, figures and a small data bundle.

:func:`write_real_report` reads a finished run directory of the real experiment
(``configs/real/sharegpt-smollm2.yaml``: SmolLM2-135M on ShareGPT first exchanges, several
seeds) and writes into ``out`` (``figures/real/``):

* ``results.md`` / ``results.csv``: per-seed held-out metrics of NTP and SFTMix and the paired
  SFTMix - NTP differences with exact 95% t-intervals; the noise AUROC beside the toy's; how
  far the confident and unconfident halves separate beyond topic
  (:func:`sftmix.analysis.separation.split_separation`); the fit of the reference run; the
  least and most confident training examples; held-out prompts with both models' answers;
  wall times, peak memory and the run directory's size;
* figures (PNG): the dynamics map, confidence by corrupted/clean answer, the fit per
  checkpoint, and the representation space -- t-SNE as the paper draws it, and UMAP --
  coloured by confidence and by split;
* ``data/``: the small files notebook 06 reads (dynamics table, split, projections, fit,
  results, generations), so it opens in seconds without the run directory.

Everything is as measured; the verdict column says "no clear difference" whenever the
interval covers zero.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.markdown import frame_table, markdown_document, markdown_table
from ..analysis.noise import noise_auroc
from ..analysis.projection import project_tsne
from ..analysis.separation import split_separation
from ..analysis.stats import format_interval, mean_std, paired_difference
from ..dynamics import load_dynamics, load_split
from ..io import GENERATIONS_FILE, RunDir, atomic_copy, atomic_write, atomic_write_json, atomic_write_text, dir_size_mb
from ..recipe import SPLIT_METRICS
from ..viz.plots import (
    plot_confidence_hist,
    plot_dynamics_map,
    plot_fit,
    plot_projection_grid,
    save_figure,
)

__all__ = ["METRICS", "comparison_table", "read_real_results", "write_real_report"]

#: Held-out metrics compared: key in eval.json -> (label, higher is better).
METRICS = {"nll": ("held-out NLL, trained tokens", False), "content_nll": ("held-out NLL, content tokens", False),
           "token_accuracy": ("token accuracy", True), "ece": ("ECE", False)}


INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff "  # zero-width characters (and the space joining them)


def _short(text: str, width: int = 110) -> str:
    """One table cell: whitespace collapsed, pipes escaped; an answer of only invisible
    characters (ShareGPT has answers that are a lone zero-width space) is named, not left blank."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    if text and not text.strip(INVISIBLE):
        return "(only " + ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(text)) + ")"
    return text if len(text) <= width else text[: width - 1] + "…"


def _per_seed(run: RunDir, seeds) -> pd.DataFrame:
    rows = []
    for method in ("ntp", "sftmix"):
        for seed in seeds:
            path = run.eval_file(method, seed)
            if path.exists():
                ev = json.loads(path.read_text())
                rows.append({"method": method, "seed": seed, **{m: ev.get(m) for m in METRICS},
                             "n_generations_cut": ev.get("n_generations_cut"), "n_examples": ev.get("n_examples")})
    return pd.DataFrame(rows)


def comparison_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """One row per metric: NTP and SFTMix mean and std over seeds, the paired difference and verdict."""
    rows = []
    seeds = sorted(set(per_seed.loc[per_seed.method == "ntp", "seed"]) & set(per_seed.loc[per_seed.method ==
                                                                                        "sftmix", "seed"]))
    for metric, (label, higher) in METRICS.items():
        a = [per_seed.query("method == 'ntp' and seed == @s")[metric].item() for s in seeds]
        b = [per_seed.query("method == 'sftmix' and seed == @s")[metric].item() for s in seeds]
        diff = paired_difference(a, b, higher_is_better=higher)
        (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
        rows.append({"metric": label, "key": metric, "higher_is_better": higher, "ntp_mean": ma, "ntp_std": sa,
                     "sftmix_mean": mb, "sftmix_std": sb, "diff_mean": diff["mean"],
                     "ci_low": diff["ci95"][0] if diff["ci95"] else None,
                     "ci_high": diff["ci95"][1] if diff["ci95"] else None, "p_value": diff["p_value"],
                     "verdict": diff["verdict"], "interval": format_interval(diff), "seeds": len(seeds)})
    return pd.DataFrame(rows)


def _examples_table(table: pd.DataFrame, train, n: int = 5) -> list[str]:
    texts = {str(e): (m[-1]["content"], r) for e, m, r in zip(train["example_id"], train["messages"],
                                                             train["response"])}
    rows = []
    ordered = table.sort_values("confidence")
    for name, part in (("least", ordered.head(n)), ("most", ordered.tail(n).iloc[::-1])):
        for k, row in enumerate(part.itertuples(), start=1):
            prompt, answer = texts[str(row.example_id)]
            rows.append([f"{name} confident {k}", f"{row.confidence:.2f}", "yes" if row.noisy else "no",
                         _short(prompt, 80), _short(answer)])
    return markdown_table(["rank", "confidence (\u2212mean perplexity)", "swapped", "prompt", "answer"], rows)


def _side_by_side(run: RunDir, seed: int, n: int = 5) -> list[str]:
    gens = {m: json.loads((run.train(m, seed) / GENERATIONS_FILE).read_text()) for m in ("ntp", "sftmix")}
    return markdown_table(["prompt", "reference", "NTP", "SFTMix"],
                          ([_short(a["prompt"], 70), _short(a["reference"], 70), _short(a["output"], 90),
                            _short(b["output"], 90)] for a, b in list(zip(gens["ntp"], gens["sftmix"]))[:n]))


def write_real_report(run_dir, out, *, toy_auroc: float | None = None, toy_results=None,
                      made_by: str | None = None) -> list[Path]:
    """Write the committed results of a finished real-model run into ``out`` (see the module docstring).

    ``made_by`` names the command that made the run in results.md (default: the experiment's name).
    """
    from ..data.prepare import prepare_train_eval
    from .experiment_config import ExperimentConfig

    run, out = RunDir(run_dir), Path(out)
    data = RunDir(out / "data")  # the run's own files, under their run-directory names
    data.root.mkdir(parents=True, exist_ok=True)
    config = ExperimentConfig.from_dict(json.loads(run.config_json.read_text()), str(run.config_json))
    seeds = list(config.seeds)
    table, split = load_dynamics(run.dynamics), load_split(run.split)
    per_seed = _per_seed(run, seeds)
    comparison = comparison_table(per_seed)
    auroc = noise_auroc(table)
    if toy_auroc is None and toy_results is not None:
        toy_auroc = _toy_auroc(Path(toy_results))
    umap, tsne, separation = _projections(run, table, split)
    fit = pd.read_csv(run.fit)
    written = _write_figures(out, table, split, auroc, fit, {"t-SNE": tsne, "UMAP": umap},
                             _model_name(config))

    train, _ = prepare_train_eval(config.data_args(), _tokenizer(config) if config.data_args().drop_overlong
                                  else None)
    summary = _summary(run, seeds, table, auroc, toy_auroc, separation, comparison)
    for name, frame in (("results.csv", per_seed), ("comparison.csv", comparison)):
        atomic_write(out / name, lambda tmp, frame=frame: frame.to_csv(tmp, index=False))
    atomic_write_json(out / "summary.json", summary)
    written += [out / "results.csv", out / "comparison.csv", out / "summary.json"]
    made_by = made_by or f"`sftmix experiment` (run `{config.name}`)"
    md = _markdown(config, made_by, per_seed, comparison, summary, fit, _examples_table(table, train),
                   _side_by_side(run, seeds[0]))
    written.append(atomic_write_text(out / "results.md", md))
    _write_data_bundle(run, data, seeds[0], umap, tsne, train)
    written.append(data.root)
    return written


def _toy_auroc(toy_results: Path) -> float | None:
    """The noise AUROC the toy's results file states ("AUROC 0.93."); None if the file or the number is missing."""
    if not toy_results.exists():
        return None
    text = toy_results.read_text()
    marker = "AUROC "
    return float(text.split(marker, 1)[1].split()[0].rstrip(".,")) if marker in text else None


def _projections(run: RunDir, table: pd.DataFrame, split: dict):
    """The run's UMAP, a seeded t-SNE with the dynamics columns, and how far the halves separate.

    Returns ``(umap, tsne, separation)``.
    """
    # The embeddings' rows are in the order of the projection's example ids (both written by the
    # embeddings stage), which need not be the dynamics table's.
    embeddings = np.load(run.embeddings)
    umap = pd.read_parquet(run.projection)
    emb_ids = umap["example_id"].astype(str).tolist()
    confident = np.isin(emb_ids, [str(e) for e in split["confident"]])
    separation = split_separation(embeddings, confident, k=10, n_topics=8, seed=0)
    keep = [c for c in ("example_id", *SPLIT_METRICS, "noisy") if c in table]
    tsne = project_tsne(embeddings, ids=emb_ids, seed=0)
    tsne = tsne.merge(table[keep], on="example_id", how="left")
    return umap, tsne, separation


def _write_figures(out: Path, table: pd.DataFrame, split: dict, auroc: float, fit: pd.DataFrame,
                   projections: dict, model: str) -> list[Path]:
    """The report's four figures (PNG and PDF each); returns the files written."""
    written = []

    def figure(name, fig):
        written.extend(save_figure(fig, out / name))

    figure("dynamics_map.png", plot_dynamics_map(table, split=split))
    by_noise = plot_confidence_hist(table, split=split, by="noisy", stat="share", log=True,
                                    labels={False: "own answer", True: "swapped answer"})
    by_noise.axes[0].set_title("Own vs swapped answers, each drawn as a share of its own group\n"
                               f"AUROC of \u2212confidence for the swapped ones: {auroc:.2f} "
                               "(0.5 = chance, 1 = perfect)", fontsize=10)
    figure("confidence_by_noise.png", by_noise)
    figure("fit.png", plot_fit(fit))
    figure("representation_space.png", plot_projection_grid(
        projections, split=split, title=f"{model}'s representation space of its ShareGPT training answers "
                                        "(last hidden states, mean over response tokens)"))
    return written


def _summary(run: RunDir, seeds: list, table: pd.DataFrame, auroc: float, toy_auroc: float | None,
             separation: dict, comparison: pd.DataFrame) -> dict:
    """summary.json: sizes, the noise AUROC (and the toy's), the separation, costs and the comparison."""
    stages = {f.stem: json.loads(f.read_text()).get("seconds") for f in run.stages.glob("*.json")}
    resources = json.loads(run.resources.read_text()) if run.resources.exists() else {}
    size_mb = dir_size_mb(run.root)
    sep = {k: v for k, v in separation.items() if k != "topics"}
    return {"seeds": seeds, "n_train": len(table), "n_noisy": int(table["noisy"].sum()), "noise_auroc": auroc,
            "toy_noise_auroc": toy_auroc, "separation": sep, "stage_seconds": stages, "resources": resources,
            "run_dir_mb": round(size_mb, 1), "comparison": comparison.to_dict(orient="records")}


def _write_data_bundle(run: RunDir, data: RunDir, seed: int, umap: pd.DataFrame, tsne: pd.DataFrame,
                       train) -> None:
    """``data/``: the run's small files, both projections, the first seed's generations and the
    training prompts and answers, so notebook 06 opens without the run directory."""
    for part in ("dynamics", "split", "fit", "results_json", "data_report"):
        if getattr(run, part).exists():
            atomic_copy(getattr(run, part), getattr(data, part))
    for name, frame in (("umap", umap), ("tsne", tsne)):
        atomic_write(data.root / f"{name}.parquet", lambda tmp, frame=frame: frame.to_parquet(tmp))
    for method in ("ntp", "sftmix"):
        atomic_copy(run.train(method, seed) / GENERATIONS_FILE, data.root / f"generations_{method}.json")
    texts = pd.DataFrame({"example_id": [str(e) for e in train["example_id"]],
                          "prompt": [m[-1]["content"] for m in train["messages"]], "answer": list(train["response"])})
    atomic_write(data.root / "train_examples.jsonl",
                 lambda tmp: texts.to_json(tmp, orient="records", lines=True, force_ascii=False))


def read_real_results(folder) -> dict:
    """The committed results of :func:`write_real_report` (``figures/real/``), for notebook 06.

    Keys: ``dynamics`` (table), ``split``, ``umap`` and ``tsne`` (projections with the
    dynamics columns), ``fit``, ``per_seed``, ``comparison``, ``summary``, ``examples``
    (training prompts and answers with their confidence and swap flag, least confident
    first), ``generations`` (held-out prompts with the NTP and SFTMix answers of the first
    seed, side by side) and ``data_report``.
    """
    folder = Path(folder)
    data = RunDir(folder / "data")
    dynamics = load_dynamics(data.dynamics)
    examples = pd.read_json(data.root / "train_examples.jsonl", lines=True, dtype={"example_id": str})
    examples = examples.merge(dynamics[["example_id", "confidence", "noisy"]], on="example_id") \
        .sort_values("confidence").reset_index(drop=True)
    ntp, sftmix = (pd.DataFrame(json.loads((data.root / f"generations_{m}.json").read_text()))
                   for m in ("ntp", "sftmix"))
    generations = ntp.rename(columns={"output": "ntp"}).drop(columns=["cut"]).assign(sftmix=sftmix["output"].values)
    return {"dynamics": dynamics, "split": load_split(data.split),
            "umap": pd.read_parquet(data.root / "umap.parquet"), "tsne": pd.read_parquet(data.root / "tsne.parquet"),
            "fit": pd.read_csv(data.fit), "per_seed": pd.read_csv(folder / "results.csv"),
            "comparison": pd.read_csv(folder / "comparison.csv"),
            "summary": json.loads((folder / "summary.json").read_text()), "examples": examples,
            "generations": generations, "data_report": json.loads(data.data_report.read_text())}


def _model_name(config) -> str:
    return Path(str(config.model.get("model_name_or_path", "the model"))).name


def _tokenizer(config):
    from ..models import load_tokenizer

    return load_tokenizer(config.model_args())


def _markdown(config, made_by, per_seed, comparison, summary, fit, examples, side_by_side) -> str:
    sep, seeds = summary["separation"], summary["seeds"]
    model = _model_name(config)
    lines = [f"# Real model, real chats: {model} on ShareGPT ({len(seeds)} seed{'s' if len(seeds) != 1 else ''})",
             "", f"{made_by}, seeds {seeds}. "
             f"{summary['n_train']} training conversations (first exchanges of <= {config.data['max_length']} "
             f"tokens, template included), {summary['n_noisy']} of them with their answer swapped for another "
             "conversation's; "
             f"{per_seed['n_examples'].max()} held out. Reported as measured.", "",
             "## SFTMix - NTP on held-out conversations", ""]
    rows = []
    for row in comparison.itertuples():
        arrow = "↑" if row.higher_is_better else "↓"
        p = "–" if row.p_value is None or pd.isna(row.p_value) else f"{row.p_value:.3f}"
        rows.append([f"{row.metric} ({arrow})", f"{row.ntp_mean:.3f} ± {row.ntp_std:.3f}",
                     f"{row.sftmix_mean:.3f} ± {row.sftmix_std:.3f}", row.interval, p, row.verdict])
    lines += markdown_table(["metric", "NTP", "SFTMix", "SFTMix - NTP (paired, exact 95% t-interval)", "p", "verdict"],
                            rows)
    lines += ["", "Per seed (every cell we ran):", "", *frame_table(per_seed), ""]
    toy = f" (the toy's: {summary['toy_noise_auroc']:.2f})" if summary.get("toy_noise_auroc") else ""
    first, last = fit.iloc[0], fit.iloc[-1]
    lines += ["## What the reference run's confidence finds", "",
              f"- Swapped answers flagged by low confidence: AUROC **{summary['noise_auroc']:.2f}**{toy}.",
              f"- Fit of the reference (NTP) run, NLL per content token from step {int(first.step)} to "
              f"{int(last.step)}: own training answers {first.train_clean:.3f} → {last.train_clean:.3f}, swapped "
              f"answers {first.train_noisy:.3f} → {last.train_noisy:.3f}, held-out {first.held_out:.3f} → "
              f"{last.held_out:.3f}.",
              f"- Separation of the halves in representation space (k = {sep['k']} nearest neighbours, PCA to 50 "
              f"dims): {sep['observed']:.3f} of an example's neighbours share its half (random halves: "
              f"{sep['random_mean']:.3f}; halves shuffled within {sep['n_topics']} topic clusters: "
              f"{sep['topic_mean']:.3f}). Beyond topic: **{sep['beyond_topic']:+.3f}** (permutation p = "
              f"{sep['p_beyond_topic']:.3f}).", "",
              "Least and most confident training examples:", "", *examples, "",
              f"## Held-out prompts, seed {seeds[0]}: both models' greedy answers", "", *side_by_side, "",
              "## Cost", ""]
    stages = summary["stage_seconds"]
    total = sum(v for v in stages.values() if v)
    lines.append("Stage wall times (s, this 2-core CPU, 1 torch thread): " + ", ".join(
        f"{k.replace('__', '/')} {v:.0f}" for k, v in sorted(stages.items()) if v) + f"; total {total:.0f} s.")
    if summary["resources"]:
        lines.append(f"Peak resident memory of the run: {summary['resources'].get('peak_rss_mb', 0):.0f} MB.")
    lines.append(f"Run directory: {summary['run_dir_mb']:.0f} MB (hard links counted once).")
    return markdown_document(lines)
