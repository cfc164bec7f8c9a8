"""GGUF model files -> a cached Hugging Face model folder (float32 safetensors), converted once.

``transformers`` reads a ``.gguf`` file (``from_pretrained(folder, gguf_file=name)``, with the
``gguf`` package) and de-quantises it to float32, but a model loaded that way cannot be
saved (its config says it is "quantized with gguf"), so the Trainer could not write a
checkpoint. :func:`converted_model_dir` therefore converts the file once: it rebuilds a
plain model from the config without ``quantization_config``, loads the de-quantised
weights into it and saves weights, config, generation config and tokenizer (with the chat
template from the GGUF metadata) into ``<cache>/models/<name>-<sha>/``, with the SHA-256
of the weights beside them. Later loads reuse the folder after checking that checksum.
The cache is ``$SFTMIX_CACHE`` (default ``~/.cache/sftmix``).

:func:`find_gguf` tells whether a path names a GGUF model (a ``.gguf`` file, or a folder
that holds one and no ``config.json``) and explains what is wrong when it cannot.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError
from .io import atomic_write_dir, sha256_of

__all__ = ["cache_dir", "converted_model_dir", "find_gguf"]

WEIGHTS = "model.safetensors"
CHECKSUM = "SHA256"
SOURCE = "converted_from.json"
_MAGIC = b"GGUF"


def cache_dir() -> Path:
    """Where converted models live: ``$SFTMIX_CACHE/models`` (default ``~/.cache/sftmix/models``)."""
    return Path(os.environ.get("SFTMIX_CACHE", Path.home() / ".cache" / "sftmix")) / "models"


def find_gguf(path: str | Path) -> Path | None:
    """The GGUF file that ``path`` names, or None when it is not a GGUF model.

    A ``.gguf`` path must be an existing GGUF file; a folder with a ``config.json`` is an
    ordinary model folder (None); a folder without one that holds ``.gguf`` files must hold
    exactly one. A folder with neither (nor a LoRA adapter or tokenizer) raises
    :class:`ConfigError` saying what is wrong.
    """
    path = Path(path)
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ConfigError(f"{path}: no such GGUF file")
        return _checked(path)
    if not path.is_dir() or (path / "config.json").exists():
        return None
    found = sorted(path.glob("*.gguf"))
    if len(found) > 1:
        raise ConfigError(f"{path} holds {len(found)} GGUF files ({', '.join(p.name for p in found)}); "
                          "pass one of them as --model_name_or_path")
    if found:
        return _checked(found[0])
    if any((path / name).exists() for name in ("adapter_config.json", "tokenizer_config.json", "tokenizer.json")):
        return None  # a LoRA adapter or a tokenizer folder: loaded as such
    raise ConfigError(f"{path} is not a model folder: it has no config.json (a Hugging Face model), no "
                      "adapter_config.json (a LoRA adapter) and no .gguf file")


def _checked(path: Path) -> Path:
    with open(path, "rb") as f:
        head = f.read(4)
    if head != _MAGIC:
        raise ConfigError(f"{path}: not a GGUF file (it starts with {head!r}, a GGUF file with {_MAGIC!r}); "
                          "the file is damaged or of another format")
    return path


def converted_model_dir(gguf: str | Path, *, name: str | None = None, progress: bool = True) -> Path:
    """A Hugging Face folder (float32 safetensors + tokenizer) converted from ``gguf``, cached.

    The folder is keyed by the GGUF file's SHA-256, so a changed file converts anew (and the same
    file reached by another name or path is converted once); an
    existing folder is reused when its weights match the recorded checksum (a damaged or
    half-written one is converted again). Concurrent processes convert once (a file lock).
    """
    gguf = _checked(Path(gguf))
    source_sha = sha256_of(gguf)
    dest = cache_dir() / f"{name or gguf.stem}-{source_sha[:12]}"
    if _valid(dest):
        return dest
    for other in sorted(cache_dir().glob(f"*-{source_sha[:12]}")):  # the same file converted under another name
        if other.is_dir() and _source_sha(other) == source_sha and _valid(other):
            return other
    with _lock(dest.with_name(dest.name + ".lock")):
        if _valid(dest):  # another process converted it while this one waited
            return dest
        _convert(gguf, dest, source_sha, progress=progress)
    return dest


def _source_sha(folder: Path) -> str | None:
    try:
        return json.loads((folder / SOURCE).read_text()).get("sha256")
    except (OSError, ValueError):
        return None


def _valid(folder: Path) -> bool:
    try:
        expected = (folder / CHECKSUM).read_text().split()[0]
    except (OSError, IndexError):
        return False
    return (folder / WEIGHTS).exists() and (folder / "config.json").exists() and \
        sha256_of(folder / WEIGHTS) == expected


@contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            import fcntl
        except ImportError:  # not on POSIX: no lock, conversion is still atomic
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert(gguf: Path, dest: Path, source_sha: str, *, progress: bool) -> None:
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError as exc:
        raise ConfigError(f"{gguf}: reading GGUF files needs the gguf package: pip install gguf "
                          "(or pip install 'sftmix[real]')") from exc
    import torch
    import transformers

    start = time.time()
    if progress:
        print(f"sftmix: converting {gguf.name} to a float32 safetensors folder, once (~30 s): {dest}",
              file=sys.stderr, flush=True)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = transformers.AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                                      dtype=torch.float32)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise ConfigError(f"{gguf}: transformers could not read this GGUF file ({' '.join(str(exc).split())})") \
            from exc
    # A model loaded from GGUF refuses save_pretrained; rebuild a plain one with the same weights.
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = type(quantized.config).from_dict(config_dict)
    with torch.device("meta"):
        plain = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), assign=True)
    plain.tie_weights()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    def write(tmp: Path) -> None:
        plain.save_pretrained(tmp, safe_serialization=True)
        if quantized.generation_config is not None:
            quantized.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / CHECKSUM).write_text(f"{sha256_of(tmp / WEIGHTS)}  {WEIGHTS}\n")
        (tmp / SOURCE).write_text(json.dumps({"gguf": str(gguf), "sha256": source_sha,
                                              "converted_seconds": round(time.time() - start, 1)}, indent=2))

    atomic_write_dir(dest, write)
    if progress:
        print(f"sftmix: converted in {time.time() - start:.0f} s", file=sys.stderr, flush=True)
