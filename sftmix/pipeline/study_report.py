"""The committed results of a base-model study: NTP and SFTMix with the model's own and a
cross-family reference, and both families side by side.

The study is two experiments on exactly the same examples (``configs/real/sharegpt-gemma3.yaml``:
NTP and SFTMix split by the model's own NTP run of seed 0, as in the paper;
``configs/real/sharegpt-gemma3-xref.yaml``: SFTMix split by another family's reference,
SmolLM2-135M). :func:`write_study_report` reads both finished run directories and writes into
``out`` (``figures/real/gemma3-270m/``):

* everything :func:`sftmix.pipeline.real_report.write_real_report` writes for the own-reference
  run (its results.md, figures and ``data/`` bundle);
* ``study.md`` / ``cells.csv`` / ``study.json``: every (cell, seed) held-out metric, the paired
  differences SFTMix − NTP for both SFTMix cells and cross-family − own, each with its exact 95%
  t-interval and its p-value Holm-adjusted over the metrics of its table; the spread of
  confidence after training (the paper: about 7% lower standard deviation with SFTMix); how far
  the two families' confidences agree; the instruction-following measures of seed 0 (untuned
  base model beside the three cells), never in a verdict (none separated a base from an
  instruct model in ``benchmarks/results/yardsticks``);
* ``mt_bench/model_answer/*.jsonl``: FastChat's answer files of seed 0 of each cell and of the
  untuned base model, ready for a judge; ``data/instruct/*.instruct.json`` and
  ``data/dynamics_<reference>.parquet`` for notebook 07.

:func:`write_family_table` writes the top-level ``figures/real/README.md`` that puts the
families' folders side by side. Everything is as measured: a verdict needs an interval (three
seeds at least) that excludes zero after the Holm adjustment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..analysis.agreement import confidence_agreement
from ..analysis.instruct import flat_metrics
from ..analysis.markdown import frame_table, markdown_document, markdown_table
from ..analysis.stats import format_interval, holm_adjust, mean_std, paired_difference
from ..dynamics import load_dynamics
from ..io import RunDir, atomic_copy, atomic_write, atomic_write_json, atomic_write_text
from ..viz.plots import plot_cells, plot_confidence_agreement, save_figure
from .instruct_stage import INSTRUCT_DIR
from .real_report import METRICS, write_real_report

__all__ = ["CELLS", "cell_results", "paired_table", "read_study_results", "spread_table", "study_spread",
           "write_family_table",
           "write_study_report"]

#: Cell -> label. ``sftmix_xref`` is the cross-family run's ``sftmix`` method.
CELLS = {"ntp": "NTP", "sftmix": "SFTMix, own reference", "sftmix_xref": "SFTMix, cross-family reference"}
SHORT = {"ntp": "NTP", "sftmix": "SFTMix\nown ref.", "sftmix_xref": "SFTMix\ncross-family\nref."}
#: The paper's number for the spread claim (SFTMix lowers the std of confidence by about 7%).
PAPER_SPREAD_CHANGE = -0.07


def _cell_runs(own: RunDir, xref: RunDir) -> dict[str, tuple[RunDir, str]]:
    return {"ntp": (own, "ntp"), "sftmix": (own, "sftmix"), "sftmix_xref": (xref, "sftmix")}


def cell_results(own, xref, seeds) -> pd.DataFrame:
    """One row per (cell, seed) whose evaluation exists: the held-out metrics of :data:`METRICS`."""
    rows = []
    for cell, (run, method) in _cell_runs(RunDir(own), RunDir(xref)).items():
        for seed in seeds:
            path = run.eval_file(method, seed)
            if path.exists():
                ev = json.loads(path.read_text())
                rows.append({"cell": cell, "seed": seed, **{m: ev.get(m) for m in METRICS},
                             "n_examples": ev.get("n_examples")})
    return pd.DataFrame(rows)


def paired_table(per_seed: pd.DataFrame, cell: str, against: str, metrics: dict | None = None) -> pd.DataFrame:
    """``cell`` − ``against`` per metric, paired by seed, with exact 95% t-intervals and p-values
    Holm-adjusted over the table's metrics. ``metrics``: key -> (label, higher is better), default
    :data:`METRICS` (the columns of ``per_seed``). A verdict needs the adjusted p-value under 0.05."""
    metrics = metrics or METRICS
    seeds = sorted(set(per_seed.loc[per_seed.cell == cell, "seed"]) & set(per_seed.loc[per_seed.cell == against,
                                                                                          "seed"]))
    rows = []
    for key, (label, higher) in metrics.items():
        a = [per_seed.loc[(per_seed.cell == against) & (per_seed.seed == s), key].item() for s in seeds]
        b = [per_seed.loc[(per_seed.cell == cell) & (per_seed.seed == s), key].item() for s in seeds]
        diff = paired_difference(a, b, higher_is_better=higher)
        (ma, sa), (mb, sb) = mean_std(a) if a else (float("nan"),) * 2, mean_std(b) if b else (float("nan"),) * 2
        rows.append({"metric": label, "key": key, "higher_is_better": higher, "cell": cell, "against": against,
                     "against_mean": ma, "against_std": sa, "cell_mean": mb, "cell_std": sb,
                     "diff_mean": diff["mean"], "interval": format_interval(diff), "p_value": diff["p_value"],
                     "seeds": len(seeds), "per_seed": diff["per_seed"]})
    table = pd.DataFrame(rows)
    table["p_holm"] = holm_adjust([float("nan") if p is None else p for p in table["p_value"]])

    names = (f"{CELLS[cell]} better", f"{CELLS[against]} better")
    table["verdict"] = [("no verdict (fewer than 3 seeds)" if r.seeds < 3
                         else _holm_verdict(r.diff_mean, r.higher_is_better, r.p_holm, names))
                        for r in table.itertuples()]
    return table


def study_spread(own, xref, *, progress: bool = True) -> pd.DataFrame:
    """:func:`sftmix.pipeline.claims.confidence_spread` of every cell: one row per (cell, seed)."""
    from .claims import confidence_spread

    frames = [confidence_spread(own, methods=("ntp", "sftmix"), progress=progress),
              confidence_spread(xref, methods=("sftmix",), progress=progress).assign(method="sftmix_xref")]
    return pd.concat(frames, ignore_index=True).rename(columns={"method": "cell"})


def spread_table(spread: pd.DataFrame) -> pd.DataFrame:
    """The spread claim per seed: std of confidence under each cell's trained model and the
    relative change of each SFTMix cell against NTP (``spread`` from
    :func:`sftmix.pipeline.claims.confidence_spread` with a ``cell`` column)."""
    wide = spread.pivot(index="seed", columns="cell", values="confidence_std")
    out = wide.copy()
    for cell in ("sftmix", "sftmix_xref"):
        if cell in wide and "ntp" in wide:
            out[f"{cell}_vs_ntp"] = wide[cell] / wide["ntp"] - 1
    return out.reset_index()


def _instruct(own: RunDir, xref: RunDir, seed: int, base: Path | None) -> dict[str, dict]:
    """``{cell: instruct.json}`` of seed ``seed`` (and ``base``: the untuned model's), where they exist."""
    found = {}
    if base is not None and Path(base).exists():
        found["base"] = json.loads(Path(base).read_text())
    for cell, (run, method) in _cell_runs(own, xref).items():
        path = run.root / INSTRUCT_DIR / f"{method}-seed{seed}.instruct.json"
        if path.exists():
            found[cell] = json.loads(path.read_text())
    return found


def _export_answers(instruct: dict[str, dict], out: Path, model: str) -> list[Path]:
    """FastChat answer files, one per cell, renamed ``<model>-<cell>-seed0`` (model_id inside too)."""
    written = []
    for cell, result in instruct.items():
        source = Path(result.get("mt_bench", {}).get("answer_file", ""))
        if not source.is_file():
            continue
        name = f"{model}-{cell.replace('_', '-')}" + ("" if cell == "base" else "-seed0")
        lines = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
        text = "".join(json.dumps({**row, "model_id": name}, ensure_ascii=False) + "\n" for row in lines)
        written.append(atomic_write_text(out / "mt_bench" / "model_answer" / f"{name}.jsonl", text))
    return written


def write_study_report(own_dir, xref_dir, out, *, spread: pd.DataFrame | None = None, base_instruct=None,
                       made_by: str, resources: dict | None = None) -> list[Path]:
    """Write the study's committed results into ``out`` (see the module docstring)."""
    own, xref, out = RunDir(own_dir), RunDir(xref_dir), Path(out)
    config = json.loads(own.config_json.read_text())
    seeds = list(config["seeds"])
    model = Path(str(config["model"]["model_name_or_path"])).name
    reference = Path(str(json.loads(xref.config_json.read_text())["reference_model"]["model_name_or_path"])).name
    written = write_real_report(own, out, made_by=made_by)
    per_seed = cell_results(own, xref, seeds)
    tables = {"sftmix - ntp": paired_table(per_seed, "sftmix", "ntp"),
              "sftmix_xref - ntp": paired_table(per_seed, "sftmix_xref", "ntp"),
              "sftmix_xref - sftmix": paired_table(per_seed, "sftmix_xref", "sftmix")}
    agreement = confidence_agreement(load_dynamics(own.dynamics), load_dynamics(xref.dynamics))
    instruct = _instruct(own, xref, seeds[0], base_instruct)
    spread_wide = spread_table(spread) if spread is not None and len(spread) else None
    data = out / "data"
    atomic_copy(xref.dynamics, data / f"dynamics_{reference}.parquet")
    for cell, result in instruct.items():
        atomic_write_json(data / "instruct" / f"{cell}.instruct.json", result)
    if instruct:
        _write_prompts(instruct, data / "instruct" / "prompts.json")
    written += _export_answers(instruct, out, model)
    atomic_write(out / "cells.csv", lambda tmp: per_seed.to_csv(tmp, index=False))
    written += save_figure(plot_confidence_agreement(load_dynamics(own.dynamics), load_dynamics(xref.dynamics),
                                                     names=(model, reference)), out / "agreement.png")
    written += save_figure(plot_cells(per_seed, {k: f"{label} ({'↑' if higher else '↓'})"
                                                 for k, (label, higher) in METRICS.items()}, labels=SHORT),
                           out / "cells.png")
    summary = {"seeds": seeds, "model": model, "reference_model": reference, "agreement": agreement,
               "comparisons": {k: t.drop(columns=["per_seed"]).to_dict(orient="records") for k, t in tables.items()},
               "spread": None if spread_wide is None else spread_wide.to_dict(orient="records"),
               "paper_spread_change": PAPER_SPREAD_CHANGE, "resources": resources or {},
               "instruct": {cell: flat_metrics(r) for cell, r in instruct.items()}}
    atomic_write_json(out / "study.json", summary)
    separation = json.loads((out / "summary.json").read_text())["separation"]
    md = _study_markdown(model, reference, made_by, per_seed, tables, agreement, spread_wide, instruct,
                         resources or {}, seeds, separation)
    written += [out / "cells.csv", out / "study.json", atomic_write_text(out / "study.md", md), data]
    return written


def _fmt(value, digits: int = 3) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def _claims(model, reference, tables, agreement, spread, separation) -> list[str]:
    """The paper's analysable claims, each with the paper's statement and this study's number."""
    own = tables["sftmix - ntp"].set_index("key").loc["nll"]
    xref = tables["sftmix_xref - sftmix"].set_index("key").loc["nll"]
    rows = [["confident and unconfident examples sit in different regions of representation space",
             "t-SNE picture (Fig. 1), no number",
             f"{separation['observed']:.3f} of 10 nearest neighbours share the half (random halves "
             f"{separation['random_mean']:.3f}; beyond topic {separation['beyond_topic']:+.3f}, permutation p = "
             f"{separation['p_beyond_topic']:.3f}); `representation_space.png`"],
            ["SFTMix lowers the spread of confidence after training", f"std {PAPER_SPREAD_CHANGE:+.0%}",
             "not measured" if spread is None or "sftmix_vs_ntp" not in spread else
             f"std {spread['sftmix_vs_ntp'].mean():+.1%} (own reference), "
             f"{spread['sftmix_xref_vs_ntp'].mean():+.1%} (cross-family), mean over seeds"],
            ["a smaller model of another family can split the data", "Gemma-2B's split used for Llama-3.1-8B",
             f"{reference} vs {model}: Spearman {agreement['spearman']:.2f}, confident halves share "
             f"{agreement['confident_overlap']:.0%}; held-out NLL cross-family − own {xref.interval} ({xref.verdict})"],
            ["SFTMix beats NTP at instruction following", "MT-Bench 4.36 → 4.58 (Llama-3.1-8B, Alpaca-52K, GPT-4 "
             "judge)", f"no judge here: FastChat answer files of seed 0 in `mt_bench/model_answer/`; held-out NLL "
             f"SFTMix − NTP {own.interval} ({own.verdict})"]]
    return ["## The paper's analysable claims on this model", "",
            *markdown_table(["claim", "the paper", "here"], rows), ""]


def _study_markdown(model, reference, made_by, per_seed, tables, agreement, spread, instruct, resources,
                    seeds, separation) -> str:
    lines = [f"# {model} (base) instruction-tuned on ShareGPT: NTP, SFTMix with its own and a cross-family reference",
             "", f"{made_by}, seeds {seeds}. The three cells train on exactly the same examples; "
             f"the cross-family cell's split comes from {reference}'s training dynamics (another family and "
             "tokenizer; the split is by example id). Every cell reported as measured; a verdict needs the "
             "Holm-adjusted p-value (over the metrics of its table) under 0.05.", ""]
    for name, table in tables.items():
        cell, against = name.split(" - ")
        lines += [f"## {CELLS[cell]} − {CELLS[against]}, held-out conversations", ""]
        rows = [[f"{r.metric} ({'↑' if r.higher_is_better else '↓'})", f"{r.against_mean:.3f} ± {r.against_std:.3f}",
                 f"{r.cell_mean:.3f} ± {r.cell_std:.3f}", r.interval, _fmt(r.p_value), _fmt(r.p_holm), r.verdict]
                for r in table.itertuples()]
        lines += markdown_table(["metric", CELLS[against], CELLS[cell], "difference (paired, exact 95% t-interval)",
                                 "p", "p (Holm)", "verdict"], rows) + [""]
    lines += ["Every (cell, seed):", "", *frame_table(per_seed), ""]
    lines += _claims(model, reference, tables, agreement, spread, separation)
    lines += ["## The two families' confidences on the same examples", "",
              f"Spearman rank correlation of the reference runs' confidence ({model} vs {reference}, "
              f"{agreement['n']} training examples): **{agreement['spearman']:.2f}**; the confident halves "
              f"share **{agreement['confident_overlap']:.0%}** of their examples (chance: "
              f"{agreement['chance_overlap']:.0%}). "
              "Whether the cross-family split does as well as the own split: the table "
              f"'{CELLS['sftmix_xref']} − {CELLS['sftmix']}' above.", ""]
    if spread is not None:
        lines += ["## Spread of confidence after training (the paper: about 7% lower standard deviation with SFTMix)",
                  "", "Standard deviation over the training examples of the confidence (−perplexity of the answer's "
                  "content tokens) under each trained model, and the relative change against NTP of the same seed:", ""]
        cols = [c for c in spread.columns if c != "seed"]
        lines += markdown_table(["seed", *cols], ([int(r["seed"]), *(f"{r[c]:+.1%}" if c.endswith("_vs_ntp")
                                                                      else _fmt(r[c]) for c in cols)]
                                                  for _, r in spread.iterrows()))
        for cell in ("sftmix", "sftmix_xref"):
            col = f"{cell}_vs_ntp"
            if col in spread and len(spread) > 1:
                diff = paired_difference(spread["ntp"], spread[cell], higher_is_better=False)
                lines.append(f"\n{CELLS[cell]}: relative change {spread[col].mean():+.1%} (mean over seeds; paper "
                             f"{PAPER_SPREAD_CHANGE:+.0%}); std difference {format_interval(diff)}.")
        lines.append("")
    if instruct:
        flat = {cell: flat_metrics(r) for cell, r in instruct.items()}
        keys = [k for k in ("mt_bench_ref_nll_per_byte_all", "mt_bench_ref_nll_per_byte_turn1",
                            "mt_bench_ref_nll_per_byte_turn2", "mt_bench_turn1_words", "mt_bench_turn1_share_cut",
                            "mt_bench_turn2_words", "ifeval_prompt_strict", "ifeval_prompt_loose",
                            "ifeval_instruction_strict", "ifeval_instruction_loose")
                if any(k in f for f in flat.values())]
        budget = next(iter(instruct.values())).get("max_new_tokens")
        lines += [f"## Instruction following without a judge, seed {seeds[0]} (descriptive: not calibrated)", "",
                  "None of these measures separated an untuned base model from an instruct model in the committed "
                  "calibration (`benchmarks/results/yardsticks/`), so they carry no verdict here; one seed, "
                  f"{budget} new tokens. FastChat answer files for a judge: `mt_bench/model_answer/`.", ""]
        lines += markdown_table(["measure", *(CELLS.get(c, "untuned base") for c in flat)],
                                ([k, *(_fmt(f.get(k)) for f in flat.values())] for k in keys)) + [""]
    if resources:
        lines += ["## Cost", "", *(f"- {k}: {v}" for k, v in resources.items()), ""]
    return markdown_document(lines)


def _holm_verdict(diff: float, higher_is_better: bool, p_holm: float,
                  names: tuple[str, str] = ("SFTMix better", "NTP better")) -> str:
    """The verdict on ``cell − against`` from its Holm-adjusted p-value: ``names`` = (cell better, against better)."""
    if pd.isna(p_holm):
        return "no interval"
    if p_holm >= 0.05:
        return "no clear difference"
    return names[0] if (diff > 0) == bool(higher_is_better) else names[1]


def write_family_table(folders: dict[str, Path], out: Path) -> Path:
    """``out`` (figures/real/README.md): each family's SFTMix − NTP per held-out metric side by side,
    from the folders' ``comparison.csv`` (SFTMix, own reference) and ``study.json`` (cross-family)."""
    header = ["metric"]
    columns = []
    for name, folder in folders.items():
        comp = pd.read_csv(Path(folder) / "comparison.csv").set_index("key")
        columns.append((f"{name}: NTP", {k: f"{r.ntp_mean:.3f} ± {r.ntp_std:.3f}" for k, r in comp.iterrows()}))
        study = Path(folder) / "study.json"
        comparisons = json.loads(study.read_text())["comparisons"] if study.exists() else {}
        if comparisons:  # Holm-adjusted verdicts
            own = {r["key"]: f"{r['interval']} ({r['verdict']})" for r in comparisons["sftmix - ntp"]}
        else:   # a report without the study: the same Holm adjustment over its metrics, from its p-values
            holm = holm_adjust(comp["p_value"].astype(float).tolist())
            own = {k: f"{r.interval} ({_holm_verdict(r.diff_mean, r.higher_is_better, p)})"
                   for (k, r), p in zip(comp.iterrows(), holm)}
        columns.append((f"{name}: SFTMix − NTP", own))
        if comparisons:
            columns.append((f"{name}: SFTMix (cross-family ref) − NTP",
                            {r["key"]: f"{r['interval']} ({r['verdict']})"
                             for r in comparisons["sftmix_xref - ntp"]}))
    header += [c for c, _ in columns]
    rows = [[f"{label} ({'↑' if higher else '↓'})", *(col.get(key, "–") for _, col in columns)]
            for key, (label, higher) in METRICS.items()]
    lines = ["# Real models on real chats: both families", "",
             "Held-out ShareGPT conversations; mean ± std over seeds and the paired difference with its exact 95% "
             "t-interval; the verdict in brackets needs the p-value Holm-adjusted over the four metrics of its "
             "column under 0.05. Each folder's results.md / study.md has every cell, the figures and the commands.", "",
             *markdown_table(header, rows), "",
             *(f"- [{name}]({Path(folder).name}/)" for name, folder in folders.items())]
    return atomic_write_text(Path(out), markdown_document(lines))


def _write_prompts(instruct: dict[str, dict], path: Path) -> None:
    """The MT-Bench questions and verifiable-instruction prompts the cells answered, so the notebook
    shows them beside the answers without the packages that ship them."""
    from ..analysis import ifeval, mtbench

    first = next(iter(instruct.values()))
    asked = {a["question_id"] for r in instruct.values() for a in r.get("mt_bench", {}).get("answers", [])}
    questions = [q for q in mtbench.read_questions() if q["question_id"] in asked] if asked else []
    source = first.get("ifeval", {}).get("source")
    rows = ifeval.read_instruction_set(source) if source and Path(source).is_file() else []
    atomic_write_json(path, {"mt_bench": questions, "ifeval": rows})


def read_study_results(folder) -> dict:
    """The committed results of :func:`write_study_report` (``figures/real/gemma3-270m/``), for notebook 07.

    Keys: everything :func:`sftmix.pipeline.real_report.read_real_results` gives for the own-reference
    run, plus ``cells`` (every cell and seed), ``study`` (study.json: comparisons, agreement, spread,
    instruction-following measures), ``reference_dynamics`` (the cross-family reference's dynamics
    table), ``answers`` (one row per MT-Bench question and turn: the prompt and each model's answer,
    the untuned base first) and ``checks`` (one row per verifiable-instruction prompt: the prompt, its
    instructions and, per model, the answer and whether it followed every instruction, strict).
    """
    from .real_report import read_real_results

    folder = Path(folder)
    out = read_real_results(folder)
    study = json.loads((folder / "study.json").read_text())
    data = folder / "data"
    out["cells"] = pd.read_csv(folder / "cells.csv")
    out["study"] = study
    out["reference_dynamics"] = load_dynamics(data / f"dynamics_{study['reference_model']}.parquet")
    instruct = {p.name.split(".")[0]: json.loads(p.read_text()) for p in sorted((data / "instruct").glob(
        "*.instruct.json"))}
    order = [c for c in ("base", *CELLS) if c in instruct]
    prompts = json.loads((data / "instruct" / "prompts.json").read_text()) if instruct else {"mt_bench": [],
                                                                                             "ifeval": []}
    by_id = {q["question_id"]: q for q in prompts["mt_bench"]}
    rows = []
    for cell in order:
        for answer in instruct[cell].get("mt_bench", {}).get("answers", []):
            question = by_id.get(answer["question_id"], {})
            for turn, text in enumerate(answer["turns"], start=1):
                rows.append({"question_id": answer["question_id"], "category": answer["category"], "turn": turn,
                             "prompt": (question.get("turns") or [""] * 2)[turn - 1], "model": cell,
                             "answer": text})
    answers = pd.DataFrame(rows)
    if len(answers):
        answers = answers.pivot_table(index=["question_id", "category", "turn", "prompt"], columns="model",
                                      values="answer", aggfunc="first").reset_index()[
            ["question_id", "category", "turn", "prompt", *order]]
    checks = pd.DataFrame([{"prompt": row["prompt"], "instructions": ", ".join(row["instruction_id_list"])}
                           for row in prompts["ifeval"]])
    for cell in order:
        ife = instruct[cell].get("ifeval")
        if ife and len(checks) == len(ife["checks"]):
            checks[f"{cell}_followed"] = [all(c["strict"]) for c in ife["checks"]]
            checks[f"{cell}_answer"] = ife["responses"]
    out["answers"], out["checks"] = answers, checks
    return out
