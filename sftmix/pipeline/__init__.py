"""The staged, resumable experiment and the ablation sweeps built on it.

Their public names, imported lazily (``from sftmix.pipeline import demo_config``); notebooks and
figure scripts import them from here.
"""

from ..exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(globals(), {
    "ablation_lesson": ["EXPECTATIONS", "EXTENSION_SWEEP", "LESSON_SEEDS", "LESSON_SWEEP", "lesson_config",
                        "shipped_sweep"],
    "claims": ["ROLE_OF_MIXUP", "role_of_mixup", "confidence_spread"],
    "config_files": ["deep_merge", "load_yaml_config", "packaged_config"],
    "experiment_config": ["ExperimentConfig"],
    "real_report": ["METRICS", "comparison_table", "read_real_results", "write_real_report"],
    "regime": ["RegimeGrid", "regime_configs", "run_regime", "regime_table", "summarize_regime"],
    "runner": ["Stage", "StageBook", "run_stages", "stage_key"],
    "ablation": ["BASELINE", "DEFAULT_SWEEP", "SWEEPABLE", "baseline_band", "effects_table", "load_ablation",
                 "parse_values", "plot_sweep", "run_ablation", "summarize_ablation", "summary_markdown"],
    "experiment": ["STAGES", "demo_config", "run_demo", "run_experiment", "study_configs"],
    "study_report": ["CELLS", "cell_results", "paired_table", "read_study_results", "spread_table", "study_spread",
                     "write_family_table", "write_study_report"],
    "instruct_stage": ["instruct_untrained"],
    "stages": ["load_trained"],
})
