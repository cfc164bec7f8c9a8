"""Two families' confidences on the same 32 Gemma chats: Gemma 3 270M's own reference run (the 32-chat run of
configs/real/sharegpt-gemma3.yaml, first run into /tmp/gemma/runs/gemma32) and SmolLM2-135M as reference_model.
"""
import json
import time

import pandas as pd

from sftmix.analysis.agreement import confidence_agreement
from sftmix.pipeline.experiment import run_experiment
from sftmix.pipeline.experiment_config import ExperimentConfig

start = time.time()
config = ExperimentConfig.from_yaml("configs/real/sharegpt-gemma3.yaml").override({
    "runs_dir": "/tmp/gemma/runs", "name": "gemma32x", "data.train_size": 32, "training.num_train_epochs": 2,
    "projection": "pca", "figures": False, "embeddings": False, "max_new_tokens": 32,
    "reference_model.model_name_or_path": "smollm2-135m"})
run_experiment(config, until="split")
gemma = pd.read_parquet("/tmp/gemma/runs/gemma32/dynamics.parquet")
smol = pd.read_parquet("/tmp/gemma/runs/gemma32x/dynamics.parquet")
out = {"gemma_vs_smollm2": confidence_agreement(gemma, smol),
       "gemma_vs_smollm2_last_checkpoint": confidence_agreement(gemma, smol, metric="confidence_last")
       if "confidence_last" in gemma.columns else None,
       "seconds": round(time.time() - start)}
print(json.dumps(out, indent=1))
json.dump(out, open("benchmarks/results/agreement_gemma3-270m_smollm2-135m.json", "w"), indent=1)
