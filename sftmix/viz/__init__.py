"""Visualisation: plot functions returning Figures (plots/), the run figures, notebook widgets."""
