"""Training: SFTMixTrainer, the paired sampler, callbacks (online dynamics, progress) and the run glue."""

from .callbacks import CheckpointSchedule, DynamicsRecorder, QuietProgress, checkpoint_steps, quiet_progress
from .run import check_reference_examples, clean_checkpoints, latest_checkpoint, train_model, train_reference
from .sampler import LengthWindowSampler, PairedSampler, pair_rows
from .trainer import SFTMixTrainer

__all__ = ["CheckpointSchedule", "DynamicsRecorder", "LengthWindowSampler", "PairedSampler", "QuietProgress",
           "SFTMixTrainer", "check_reference_examples", "checkpoint_steps", "clean_checkpoints", "latest_checkpoint",
           "pair_rows", "quiet_progress", "train_model", "train_reference"]
