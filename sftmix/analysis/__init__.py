"""Analysis of trained models and runs: evaluation, embeddings, projections, selection, statistics, results.

The public names of every module below, imported lazily (``from sftmix.analysis import knn_agreement``
loads only :mod:`.projection`); notebooks and figure scripts import them from here.
"""

from ..exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(globals(), {
    "confounds": ["HALVES", "half_of", "split_by_task", "half_profile", "noise_precision_recall",
                  "side_changes"],
    "embed": ["embed_examples"],
    "evaluate": ["answer_index", "evaluate_model", "evaluate_multiple_choice", "expected_calibration_error",
                 "multiple_choice_accuracy", "multiple_choice_loglik", "normalize_answer", "read_multiple_choice",
                 "token_statistics"],
    "export": ["export_alpaca_eval"],
    "generate": ["DEFAULT_MAX_NEW_TOKENS", "Generations", "generate_chat_turns", "generate_responses",
                 "generate_texts", "stop_ids"],
    "ifeval": ["build_instruction_set", "check_response", "offline_punkt", "punkt_sentence_tokenizer",
               "read_instruction_set", "registry", "score_responses", "write_instruction_set"],
    "instruct": ["evaluate_instruction_following", "flat_metrics"],
    "mtbench": ["answer_lengths", "answer_questions", "export_answers", "model_id_for", "mt_bench_file",
                "read_fastchat_answers", "read_questions", "read_reference_answers", "reference_nll", "subset"],
    "fit": ["FIT_COLUMNS", "fit_table", "token_nll"],
    "halves": ["held_out_confidence", "held_out_halves", "half_fit", "score_half_fit"],
    "markdown": ["frame_table", "markdown_document", "markdown_table"],
    "mixing": ["PairStates", "pair_states", "mixed_probs", "pair_mixup_loss", "lambda_curves", "tokenize_pair"],
    "noise": ["auroc", "noise_auroc", "noise_auroc_by_task"],
    "paper": ["PAPER_CITATION", "PAPER_RESULTS", "paper_table", "paper_vs_ours"],
    "projection": ["PROJECTORS", "knn_agreement", "pca_reduce", "project", "project_pca", "project_tsne",
                   "project_umap"],
    "results": ["METRICS", "build_results", "collect_evals", "results_markdown", "write_results"],
    "selection": ["REGIONS", "examples_html", "instruction_text", "pick_pair", "region_mask",
                  "select_examples", "shorten", "split_summary"],
    "separation": ["split_separation"],
    "stats": ["NO_INTERVAL", "UNDEFINED", "format_interval", "holm_adjust", "mean_std", "paired_difference",
              "t_half_width", "t_interval", "t_quantile", "wilson_interval"],
    "trajectories": ["checkpoint_columns", "checkpoint_steps", "trajectories", "pick_examples", "mean_vs_last",
                     "side_counts", "checkpoint_shares"],
})
