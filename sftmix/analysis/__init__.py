"""Analysis of trained models and runs: evaluation, embeddings, projections, selection, statistics, results."""
