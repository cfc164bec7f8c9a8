"""The staged, resumable experiment and the ablation sweeps built on it."""
