"""``sftmix train``: train a model with NTP or SFTMix."""

from __future__ import annotations

from ..data import load_train_eval, tokenize_examples
from ..models import load_model_and_tokenizer
from ..train import train_model
from .common import parse_training_args, training_options_parser

HELP = "Train a model with NTP or SFTMix."


def add_parser(subparsers):
    return training_options_parser(subparsers, "train", HELP)


def run(args) -> None:
    model_args, data_args, cfg = parse_training_args(args.argv, "sftmix train")
    model, tokenizer = load_model_and_tokenizer(model_args)
    train, _ = load_train_eval(data_args)
    tokenized, report = tokenize_examples(train, tokenizer, max_length=data_args.max_length, return_report=True)
    print(f"training on {report.kept} examples ({report.truncated} truncated, "
          f"{report.dropped_no_response} dropped with no response token left)")
    train_model(model, tokenizer, tokenized, cfg)
    print(f"saved model to {cfg.output_dir}")
