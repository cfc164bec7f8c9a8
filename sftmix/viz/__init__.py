"""Visualisation: plot functions returning Figures (:mod:`.plots`), the run figures (:mod:`.figures`),
notebook widgets (:mod:`.widgets`).

Their public names, imported lazily (``from sftmix.viz import plot_dynamics_map`` loads the plots, not
the widgets); notebooks and figure scripts import them from here.
"""

from ..exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(globals(), {
    "figures": ["NOISE_LABELS", "load_histories", "make_figures", "per_task_frame"],
    "plots": ["CMAP", "OKABE_ITO", "SPLIT_COLORS", "plot_ablation", "plot_ablation_effects",
              "plot_ablation_sweep", "plot_cells", "plot_confidence_agreement", "plot_confidence_by_task",
              "plot_confidence_hist", "plot_dynamics_map",
              "plot_fit", "plot_half_fit", "plot_lambda_curves", "plot_lambda_distribution", "plot_lengths",
              "plot_mean_vs_last", "plot_paper_claims", "plot_projection_grid", "plot_regime_map",
              "plot_results", "plot_split_composition", "plot_training_curves", "plot_trajectories",
              "plot_umap_confidence", "save_figure"],
    "widgets": ["REGIONS", "ExampleExplorer", "ExampleInspector", "LambdaExplorer", "SplitExplorer",
                "example_explorer", "example_inspector", "examples_html", "lambda_explorer", "pick_pair",
                "region_mask", "select_examples", "split_explorer", "split_summary"],
})
