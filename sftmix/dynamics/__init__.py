"""Training dynamics: checkpoint scoring, the per-example dynamics table (versioned parquet), the split."""

from .scoring import response_sums, score_checkpoints, score_model, score_rows
from .split import SplitError, check_split, load_split, save_split, split_by_confidence, split_groups
from .sums import CHECKPOINT_METRICS, STATISTICS, CheckpointMetric, Statistic, TokenSums, table_metrics, token_sums
from .table import (
                    FORMAT_VERSION,
                    SUMMARY_COLUMNS,
                    TABLE_FORMAT_VERSION,
                    DatasetMismatchError,
                    checkpoint_frame,
                    compute_dynamics,
                    dataset_fingerprint,
                    load_dynamics,
                    per_example_metrics,
                    read_checkpoint_frame,
                    read_checkpoint_frames,
                    save_dynamics,
                    summarize_checkpoints,
                    write_checkpoint_frame,
)

__all__ = ["CHECKPOINT_METRICS", "FORMAT_VERSION", "STATISTICS", "SUMMARY_COLUMNS", "TABLE_FORMAT_VERSION",
           "CheckpointMetric", "DatasetMismatchError", "SplitError", "Statistic", "TokenSums", "table_metrics",
           "token_sums",
           "check_split", "checkpoint_frame", "compute_dynamics", "dataset_fingerprint", "load_dynamics", "load_split",
           "per_example_metrics", "read_checkpoint_frame", "read_checkpoint_frames", "response_sums", "save_dynamics",
           "save_split", "score_checkpoints", "score_model", "score_rows", "split_by_confidence", "split_groups",
           "summarize_checkpoints", "write_checkpoint_frame"]
