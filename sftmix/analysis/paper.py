"""The numbers reported in the SFTMix paper, and how a run of ours compares with them.

Quoted from Xiao, Zhang, Zhou, Ghassemi, Zhao, "SFTMix: Elevating Language Model
Instruction Tuning with Mixup Recipe", arXiv:2410.05248 (v4), ACL 2026 (long, pp.
1705-1718), from its tables:

* Alpaca-52K, judged by MT-Bench and AlpacaEval-2 (win rate, length-controlled win rate);
* MedAlpaca-263K, judged by medical multiple-choice benchmarks (MedQA, MedQA-5,
  PubMedQA, MedMCQA and their average; accuracy in %);
* the role-of-Mixup ablation (Llama-3.1-8B on Alpaca-52K; MT-Bench, AlpacaEval-2 LC WR).

Every number is higher-is-better and comes from a single run. They are the paper's, not
ours: :func:`paper_vs_ours` puts them beside a run's results with a ``source`` column on
every row, and compares only directions.
"""

from __future__ import annotations

import pandas as pd

from .results import METRICS

__all__ = ["PAPER_CITATION", "PAPER_RESULTS", "paper_table", "paper_vs_ours"]


#: The paper's tables: per benchmark, its metric names and one row per (model, method).
PAPER_RESULTS = {
    "Alpaca-52K": {
        "metrics": ["MT-Bench", "AlpacaEval-2 WR", "AlpacaEval-2 LC WR"],
        "rows": {
            ("Llama-3.1-8B", "NTP"): [4.36, 4.07, 8.65], ("Llama-3.1-8B", "SFTMix"): [4.58, 4.90, 10.32],
            ("Mistral-7B", "NTP"): [4.62, 4.36, 9.18], ("Mistral-7B", "SFTMix"): [4.91, 4.54, 9.50],
            ("Qwen-2.5-14B", "NTP"): [6.19, 7.08, 13.95], ("Qwen-2.5-14B", "SFTMix"): [6.52, 7.88, 15.02],
        },
    },
    "MedAlpaca-263K": {
        "metrics": ["MedQA", "MedQA-5", "PubMedQA", "MedMCQA", "average"],
        "rows": {
            ("Llama-3.1-8B", "NTP"): [59.31, 54.52, 75.40, 53.65, 60.72],
            ("Llama-3.1-8B", "SFTMix"): [60.88, 55.38, 77.80, 54.15, 62.05],
            ("Mistral-7B", "NTP"): [49.10, 44.62, 75.40, 48.15, 54.32],
            ("Mistral-7B", "SFTMix"): [51.77, 45.72, 77.40, 49.03, 55.98],
        },
    },
    "role of Mixup (Llama-3.1-8B, Alpaca-52K)": {
        "metrics": ["MT-Bench", "AlpacaEval-2 LC WR"],
        "rows": {
            ("NTP only", "ntp"): [4.36, 8.65], ("NTP + 0.2 Mixup", "ntp_plus_mixup"): [4.58, 10.32],
            ("NTP + Mixup equally weighted", "equal"): [4.41, 8.29], ("Mixup only", "mixup_only"): [4.51, 7.30],
        },
    },
}
PAPER_CITATION = ("Xiao, Zhang, Zhou, Ghassemi, Zhao. SFTMix: Elevating Language Model Instruction Tuning "
                  "with Mixup Recipe. arXiv:2410.05248 (ACL 2026)")


def paper_table(benchmark: str = "Alpaca-52K") -> pd.DataFrame:
    """One of :data:`PAPER_RESULTS` as a DataFrame (index: model, method)."""
    if benchmark not in PAPER_RESULTS:
        raise KeyError(f"unknown benchmark {benchmark!r}; have {list(PAPER_RESULTS)}")
    entry = PAPER_RESULTS[benchmark]
    index = pd.MultiIndex.from_tuples(list(entry["rows"]), names=["model", "method"])
    return pd.DataFrame(list(entry["rows"].values()), index=index, columns=entry["metrics"])


#: Our metrics in the order :func:`paper_vs_ours` lists them.
_OUR_METRICS = ("exact_match", "token_accuracy", "nll", "ece")


def paper_vs_ours(results: dict) -> pd.DataFrame:
    """SFTMix − NTP in the paper (per model and benchmark metric) beside ours (per metric).

    ``results`` is a run's results dict (``results.json``). Every row says whose number
    it is; the values are not comparable (7-14B models judged by benchmarks vs a tiny
    model on the toy suite), only the sign of the difference is ("direction": whether
    SFTMix moved the metric the good way; ours says "(within noise)" when the paired 95%
    interval over seeds covers zero, and "no claim (one seed)" for a one-seed run).
    """
    rows = []
    for benchmark in ("Alpaca-52K", "MedAlpaca-263K"):
        table = paper_table(benchmark)
        for model in dict.fromkeys(table.index.get_level_values("model")):
            for metric in table.columns:
                ntp, mix = table.loc[(model, "NTP"), metric], table.loc[(model, "SFTMix"), metric]
                rows.append({"source": "paper (Xiao et al.)", "setting": f"{model}, {benchmark}", "metric": metric,
                             "NTP": ntp, "SFTMix": mix, "SFTMix − NTP": round(mix - ntp, 4),
                             "direction": "better" if mix > ntp else "worse" if mix < ntp else "same",
                             "n_seeds": 1, "verdict": "reported (single run)"})
    summary, comparison = results.get("summary", {}), results.get("comparison", {})
    for metric in _OUR_METRICS:
        higher = METRICS[metric][1]
        if metric not in summary.get("ntp", {}) or metric not in summary.get("sftmix", {}):
            continue
        ntp, mix = summary["ntp"][metric]["mean"], summary["sftmix"][metric]["mean"]
        diff = mix - ntp
        good = diff > 0 if higher else diff < 0
        verdict = comparison.get(metric, {}).get("verdict", "no clear difference")
        n_seeds = len(results.get("seeds", []))
        direction = "same" if diff == 0 else "better" if good else "worse"
        if n_seeds < 2:
            direction = "no claim (one seed)"  # one run per method: no spread, so no direction to report
        elif verdict == "no clear difference" and diff != 0:
            direction += " (within noise)"  # the sign of a difference inside the spread is no finding
        rows.append({"source": "ours (this run)", "setting": f"{results.get('name', 'run')}, built-in suite",
                     "metric": metric + (" (↑)" if higher else " (↓)"), "NTP": ntp, "SFTMix": mix,
                     "SFTMix − NTP": diff, "direction": direction, "n_seeds": n_seeds,
                     "verdict": verdict})
    return pd.DataFrame(rows)
