"""Interactive explorers for the notebooks (ipywidgets).

Each explorer is a small class whose ``.widget`` is the container to display and whose update
methods are what the controls call, so a test or a script can drive it without a browser (set
a control's ``.value`` or call the method, then read the state):

* :func:`lambda_explorer` (:mod:`~sftmix.viz.widgets.mixing`) - what Mixup does to one pair: the
  Beta(alpha, alpha) distribution of lambda, the next-token distributions of a confident
  example, an unconfident one and their mixed last hidden state, p(y_c) and p(y_u) along lambda
  for one or several models, and a pair picker;
* :func:`split_explorer` (:mod:`~sftmix.viz.widgets.split`) - move the split: threshold, half
  sizes, who changes side, each task's share of the confident half, noise precision and recall;
* :func:`example_explorer` and :func:`example_inspector` (:mod:`~sftmix.viz.widgets.examples`) -
  one example across the checkpoints (by id or from a map region), and the examples of a region.

Figures are drawn by :mod:`sftmix.viz.plots` and shown as PNG images (an ``Image`` widget), so
they update in place in any front end. ipywidgets is imported only when an explorer is built.
Which examples the explorers show is decided by the plain functions of
:mod:`sftmix.analysis.selection`, re-exported here for the notebooks.
"""

from __future__ import annotations

from ...analysis.selection import REGIONS, examples_html, pick_pair, region_mask, select_examples, split_summary
from .examples import ExampleExplorer, ExampleInspector, example_explorer, example_inspector
from .mixing import LambdaExplorer, lambda_explorer
from .split import SplitExplorer, split_explorer

__all__ = ["REGIONS", "ExampleExplorer", "ExampleInspector", "LambdaExplorer", "SplitExplorer", "example_explorer",
           "example_inspector", "examples_html", "lambda_explorer", "pick_pair", "region_mask", "select_examples",
           "split_explorer", "split_summary"]
