"""``sftmix train``: train a model with NTP or SFTMix."""

from __future__ import annotations

from ..data import tokenize_examples
from ..data.prepare import prepare_train_eval
from ..errors import ConfigError
from ..train import train_model
from .common import load_model_for, maybe_print_help, parse_training_args, training_options_parser

HELP = "Train a model with NTP or SFTMix."
DESCRIPTION = HELP + (" Multi-turn chats train every assistant turn (--last_turn_only True: the final one). "
                      "With --disable_tqdm True a loss line is printed every --logging_steps steps.")


def add_parser(subparsers):
    return training_options_parser(subparsers, "train", HELP, DESCRIPTION)


def run(args) -> None:
    maybe_print_help(args.argv, "sftmix train", DESCRIPTION, sections=("model", "data", "recipe"))
    model_args, data_args, cfg = parse_training_args(args.argv, "sftmix train")
    if cfg.method == "sftmix" and cfg.split_file is None:  # found here, before the model loads
        raise ConfigError("sftmix train: method='sftmix' needs split_file (run `sftmix split` first)")
    model, tokenizer = load_model_for(model_args)
    train, _, report = prepare_train_eval(data_args, tokenizer, return_report=True)
    for line in report.loading_lines() + report.lines():
        print(line)
    tokenized, report = tokenize_examples(train, tokenizer, max_length=data_args.max_length, return_report=True,
                                          last_turn_only=data_args.last_turn_only)
    print(f"training on {report.kept} examples ({report.truncated} truncated, "
          f"{report.dropped_no_response} dropped with no response token left)")
    train_model(model, tokenizer, tokenized, cfg)
    print(f"saved model to {cfg.output_dir}")
