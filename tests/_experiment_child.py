"""Run a tiny experiment (used by test_experiment.py, which kills it mid-way)."""

import sys

import torch

from sftmix.pipeline.experiment import run_experiment
from tests.helpers import tiny_config

torch.set_num_threads(1)
run_experiment(tiny_config(sys.argv[1], sys.argv[2]), progress=False)
