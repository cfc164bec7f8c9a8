"""Losses as tensor functions: the chunked fused output head + CE, the model's head, the Mixup loss."""

from .ce import CEOutput, OutputHead, linear_cross_entropy
from .head import forward_hidden, head_context, output_head
from .mixup import align_pairs, count_mixup_positions, mixup_loss, sample_lambdas

__all__ = ["CEOutput", "OutputHead", "align_pairs", "count_mixup_positions", "forward_hidden", "head_context",
           "linear_cross_entropy", "mixup_loss", "output_head", "sample_lambdas"]
