"""``sftmix eval``: evaluate a model on held-out data (the pipeline's eval stage).

With reference answers it reports held-out NLL, token accuracy, calibration and greedy exact
match; prompts without references (e.g. an AlpacaEval or MT-Bench question file) are only
answered, for the judge exports. ``--multiple_choice FILE`` instead scores every option of
each question in FILE and reports the accuracy (the MedAlpaca configs' benchmarks are of this
kind). ``--mt_bench DIR`` and ``--ifeval FILE`` instead measure instruction following without a
judge (:mod:`sftmix.cli.instruct`). A LoRA adapter folder is evaluated as that adapter on its base.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..analysis.evaluate import evaluate_multiple_choice, read_multiple_choice
from ..analysis.export import export_alpaca_eval
from ..analysis.generate import DEFAULT_MAX_NEW_TOKENS, generate_responses
from ..analysis.mtbench import model_id_for
from ..constants import BUILTIN
from ..data.prepare import prepare_train_eval
from ..data.prompts import load_prompts
from ..errors import ConfigError
from ..io import atomic_write_json
from ..models import adapter_base
from ..pipeline.context import tokenize_for_training
from ..pipeline.stages import evaluate_and_save, generation_records
from . import instruct
from .common import (
    OptionParser,
    load_model_for,
    maybe_print_help,
    parse_training_args,
    split_known,
    training_options_parser,
)

HELP = "Evaluate a trained model (or a LoRA adapter folder) on held-out data, or answer prompts for a judge."


def add_parser(subparsers):
    return training_options_parser(subparsers, "eval", HELP)


def _own_options() -> OptionParser:
    ap = OptionParser(prog="sftmix eval", add_help=False)
    ap.add_argument("--out", default=None, help="Write the metrics and every generation (prompt, reference, "
                    "output, cut) to this JSON file.")
    ap.add_argument("--no-generate", action="store_true", help="Skip greedy generation / exact match.")
    ap.add_argument("--max_new_tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, metavar="N",
                    help=f"Greedy generation budget per answer (default: {DEFAULT_MAX_NEW_TOKENS}); answers that "
                         "reach it are counted as cut.")
    ap.add_argument("--export-alpaca-eval", default=None, metavar="FILE",
                    help="Write the generations as an AlpacaEval model-outputs JSON file.")
    ap.add_argument("--multiple_choice", default=None, metavar="FILE",
                    help="Instead of the held-out evaluation: score every option of each question in FILE "
                         "(rows of question, options, answer; e.g. MedQA for the MedAlpaca configs) and report "
                         "the accuracy (options compared by mean log-likelihood per token, and by the sum).")
    instruct.add_options(ap)
    return ap


def _multiple_choice(known, items, model, tokenizer, max_length: int) -> None:
    result = {"multiple_choice": str(known.multiple_choice),
              **evaluate_multiple_choice(model, tokenizer, items, max_length=max_length)}
    if known.out:
        atomic_write_json(known.out, result)
    print(json.dumps(result, indent=2))


def _held_out(data_args, tokenizer):
    """(examples, has references): a prompts-only file is read with load_prompts."""
    source = data_args.eval_dataset
    if source is not None and source != BUILTIN and Path(source).exists():
        prompts = load_prompts(source)
        if "response" not in prompts.column_names:
            return prompts, False
    _, held_out = prepare_train_eval(data_args, tokenizer)
    if held_out is None:
        raise ConfigError("sftmix eval: no held-out data; pass --eval_dataset FILE")
    return held_out, True


def run(args) -> None:
    maybe_print_help(args.argv, "sftmix eval", HELP, _own_options())
    known, argv = split_known(_own_options(), args.argv)
    if known.max_new_tokens < 1:
        raise ConfigError(f"sftmix eval: --max_new_tokens must be >= 1, got {known.max_new_tokens}")
    model_args, data_args, _ = parse_training_args(argv, "sftmix eval")
    base = adapter_base(model_args.model_name_or_path) if Path(model_args.model_name_or_path).is_dir() else None
    if base is not None:
        note = " (--use_lora True trains new adapters; it is ignored here)" if model_args.use_lora else ""
        print(f"evaluating the LoRA adapter in {model_args.model_name_or_path} on its base "
              f"{base.model_name_or_path}{note}")
    if instruct.wanted(known) and known.multiple_choice:
        raise ConfigError("sftmix eval: --multiple_choice and --mt_bench/--ifeval are separate evaluations; "
                          "run them one at a time")
    if known.ifeval_build:
        return instruct.build(known)
    plan = instruct.read_inputs(known) if instruct.wanted(known) else None  # bad rows fail before the model loads
    items = read_multiple_choice(known.multiple_choice) if known.multiple_choice else None
    model, tokenizer = load_model_for(model_args)
    if items is not None:
        return _multiple_choice(known, items, model, tokenizer, data_args.max_length)
    if plan is not None:
        return instruct.run(known, plan, model, tokenizer, model_args.model_name_or_path)
    held_out, with_references = _held_out(data_args, tokenizer)
    if with_references:
        result = evaluate_and_save(model, tokenizer, held_out, out_file=known.out, max_length=data_args.max_length,
                                   generate=not known.no_generate, max_new_tokens=known.max_new_tokens,
                                   generations_in_out=True,  # scored on the tokens it trained on (last_turn_only)
                                   tokenized=tokenize_for_training(held_out, tokenizer, data_args))
        generations = result.pop("generations", None)
        result.pop("generation_cut", None)
        print(json.dumps(result, indent=2))
    else:
        if known.no_generate:
            raise ConfigError("sftmix eval: these prompts have no reference answers, so there is nothing to "
                              "evaluate without generating; drop --no-generate")
        generations, cut = generate_responses(model, tokenizer, held_out, max_new_tokens=known.max_new_tokens,
                                              return_hit_limit=True)
        print(f"answered {len(generations)} prompts without reference answers; {sum(cut)} reached "
              f"max_new_tokens={known.max_new_tokens}")
        if known.out:
            atomic_write_json(known.out, {"n_examples": len(generations), "max_new_tokens": known.max_new_tokens,
                                          "n_generations_cut": int(sum(cut)),
                                          "generations": generation_records(held_out, generations, cut)})
    if generations is not None:
        name = model_id_for(model_args.model_name_or_path)
        if known.export_alpaca_eval:
            prompts = ["\n\n".join(m["content"] for m in msgs) for msgs in held_out["messages"]]
            print("wrote", export_alpaca_eval(prompts, generations, known.export_alpaca_eval, generator=name))

