"""Process helpers on top of accelerate: one process, or several under ``accelerate launch`` / ``torchrun``.

The one module that touches process-group state (accelerate's state, its collectives,
the launcher's environment); ``tests/test_layering.py`` keeps it so.

:func:`shard_cpu_processes` lets FSDP2 run on CPU processes (gloo): accelerate 1.16 sets the
distributed type from the device, so CPU processes become ``MULTI_CPU`` and its FSDP plugin is
dropped without a word (the model would train as DDP). See docs/distributed.md.
"""

from __future__ import annotations

import os

import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list, gather_object, reduce

from .errors import ConfigError

__all__ = ["Processes", "fsdp_unshard", "full_state_dict", "launched_processes", "shard_cpu_processes"]


def launched_processes() -> int:
    """How many processes the launcher started (``WORLD_SIZE``; 1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def shard_cpu_processes(accelerator, plugin_args: dict | None) -> bool:
    """Train FSDP2-sharded on CPU processes where accelerate would silently fall back to DDP.

    ``plugin_args``: the ``FullyShardedDataParallelPlugin`` arguments the Trainer derived from
    ``--fsdp`` / ``--fsdp_config`` (``TrainingArguments.fsdp_plugin_args``); ``None`` reads
    ``accelerate launch``'s FSDP settings from the environment. Returns whether the accelerator
    now shards (its state is switched to ``DistributedType.FSDP`` with that plugin, so
    ``accelerator.prepare`` applies ``fully_shard``, and checkpoints go through
    ``torch.distributed.checkpoint``). FSDP1 is refused: through accelerate it stops on CPU ("FSDP parameter
    initialization with `sync_module_states=True` is not supported on cpu").
    """
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = accelerator.state
    wanted = plugin_args is not None or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if not wanted or state.distributed_type != DistributedType.MULTI_CPU:
        return False
    plugin = FullyShardedDataParallelPlugin(**(plugin_args or {}))
    if plugin.fsdp_version != 2:
        raise ConfigError(f"FSDP on CPU processes needs fsdp_version 2 (fully_shard), got fsdp_version "
                          f"{plugin.fsdp_version}: set fsdp_config's fsdp_version to 2")
    if "SHARDED_STATE_DICT" not in str(plugin.state_dict_type):
        # torch's get_model_state_dict(full_state_dict=True, cpu_offload=True) hands back the shards
        # when they already live on the CPU, so full-state-dict checkpoints would not hold the model.
        kind = getattr(plugin.state_dict_type, "name", plugin.state_dict_type)
        raise ConfigError(f"FSDP on CPU processes saves sharded checkpoints only, got state_dict_type "
                          f"{kind}: set fsdp_config's state_dict_type to SHARDED_STATE_DICT "
                          "(sftmix still gathers the finished model into one file)")
    state.distributed_type = DistributedType.FSDP
    state.fsdp_plugin = plugin
    return True


def fsdp_unshard(modules) -> bool:
    """All-gather the parameters of the first FSDP2 module among ``modules`` (its whole parameter
    group); False if none of them is one."""
    from torch.distributed.fsdp import FSDPModule

    owner = next((m for m in modules if isinstance(m, FSDPModule)), None)
    if owner is None:
        return False
    owner.unshard()
    return True


def full_state_dict(model: torch.nn.Module, *, keep: bool = True) -> dict[str, torch.Tensor]:
    """The model's state dict with every FSDP2-sharded ``DTensor`` gathered into a full CPU tensor.

    Collective: every process must call it; one parameter is gathered at a time, and only a
    process with ``keep`` holds the result (the others return ``{}``: 8 processes each keeping a
    CPU copy of an 8B model would need 8 x 32 GB of host memory). accelerate's way,
    ``get_model_state_dict(full_state_dict=True, cpu_offload=True)``, hands back the
    ``DTensor`` shards unchanged when they already live on the CPU.
    """
    from torch.distributed.tensor import DTensor

    out = {}
    for name, value in model.state_dict().items():
        full = value.full_tensor() if isinstance(value, DTensor) else value
        if keep:
            out[name] = full.detach().cpu()
    return out


class Processes:
    """The processes of this run: one, or several under ``accelerate launch`` / ``torchrun``.

    ``PartialState()`` is looked up afresh on every call: building ``TrainingArguments``
    resets accelerate's shared state (the process group itself survives) and sets it up
    again as training will use it. ``Processes(accelerator)`` uses that ``Accelerator`` /
    ``PartialState`` instead (same attributes).
    """

    def __init__(self, accelerator=None):
        self._given = accelerator

    @property
    def state(self):
        if self._given is not None:
            return self._given
        if PartialState._shared_state:
            return PartialState()
        # Not set up yet: as TrainingArguments would with the default use_cpu (without
        # cpu=True, accelerate sees a CPU-only torchrun launch as a single process).
        return PartialState(cpu=not torch.cuda.is_available())

    @property
    def many(self) -> bool:
        return self.state.num_processes > 1

    @property
    def is_main(self) -> bool:
        return self.state.is_main_process

    @property
    def index(self) -> int:
        return self.state.process_index

    @property
    def count(self) -> int:
        return self.state.num_processes

    @property
    def device(self) -> torch.device:
        return self.state.device

    def gather(self, items: list) -> list:
        """Every process's ``items``, concatenated in process order, on every process."""
        return gather_object(items) if self.many else items

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of ``tensor`` over the processes (on CPU), on every process."""
        if not self.many:
            return tensor
        return reduce(tensor.to(self.device), reduction="sum").cpu()

    def broadcast(self, value):
        """The main process's ``value``, on every process."""
        if not self.many:
            return value
        return broadcast_object_list([value if self.is_main else None])[0]

    def barrier(self) -> None:
        if self.many:
            self.state.wait_for_everyone()

    def on_main(self, fn, what: str):
        """Run ``fn`` on the main process only; the others wait and get its result.

        A failure on the main process is passed on, so the others raise instead of
        waiting at a barrier until the process-group timeout.
        """
        if not self.many:
            return fn()
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except Exception as exc:
                error = exc
        # The broadcast is also the barrier: the other processes wait here for the main one.
        failure, result = self.broadcast((None if error is None else f"{type(error).__name__}: {error}", result))
        if error is not None:
            raise error
        if failure is not None:
            raise RuntimeError(f"{what} failed on the main process: {failure}")
        return result
