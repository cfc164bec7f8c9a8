"""How sftmix turns on FSDP2 for CPU processes (sftmix.distributed.shard_cpu_processes), without processes.

accelerate 1.16 drops its FSDP plugin when the processes are CPU ones (``MULTI_CPU``) and would
train data parallel instead; the training itself is tested in tests/test_fsdp.py.
"""
from types import SimpleNamespace

import pytest
from accelerate.utils import DistributedType

from sftmix.distributed import shard_cpu_processes
from sftmix.errors import ConfigError

SHARDED = {"fsdp_version": 2, "state_dict_type": "SHARDED_STATE_DICT"}


def _accelerator(kind=DistributedType.MULTI_CPU):
    return SimpleNamespace(state=SimpleNamespace(distributed_type=kind, fsdp_plugin=None))


@pytest.fixture(autouse=True)
def _no_launcher_fsdp(monkeypatch):
    for name in ("ACCELERATE_USE_FSDP", "FSDP_VERSION", "FSDP_STATE_DICT_TYPE"):
        monkeypatch.delenv(name, raising=False)


def test_cpu_processes_get_the_fsdp2_plugin_they_asked_for():
    acc = _accelerator()
    assert shard_cpu_processes(acc, dict(SHARDED)) is True
    assert acc.state.distributed_type == DistributedType.FSDP
    assert acc.state.fsdp_plugin.fsdp_version == 2 and "SHARDED" in str(acc.state.fsdp_plugin.state_dict_type)


def test_the_launchers_fsdp_settings_count_too(monkeypatch):
    # accelerate launch --config_file configs/accelerate/fsdp-cpu.yaml sets these
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "2")
    monkeypatch.setenv("FSDP_STATE_DICT_TYPE", "SHARDED_STATE_DICT")
    acc = _accelerator()
    assert shard_cpu_processes(acc, None) is True and acc.state.distributed_type == DistributedType.FSDP


@pytest.mark.parametrize("kind", [DistributedType.NO, DistributedType.MULTI_GPU, DistributedType.FSDP])
def test_nothing_changes_without_fsdp_or_off_cpu(kind):
    acc = _accelerator()
    assert shard_cpu_processes(acc, None) is False
    assert acc.state.distributed_type == DistributedType.MULTI_CPU and acc.state.fsdp_plugin is None
    acc = _accelerator(kind)  # GPUs (and one process) are accelerate's own business
    assert shard_cpu_processes(acc, dict(SHARDED)) is False and acc.state.distributed_type == kind


@pytest.mark.parametrize("args, named", [
    ({"fsdp_version": 1, "state_dict_type": "SHARDED_STATE_DICT"}, "fsdp_version"),
    ({"fsdp_version": 2, "state_dict_type": "FULL_STATE_DICT"}, "state_dict_type"),
])
def test_what_cannot_run_on_cpu_is_refused_by_name(args, named):
    acc = _accelerator()
    with pytest.raises(ConfigError, match=named):
        shard_cpu_processes(acc, args)
    assert acc.state.distributed_type == DistributedType.MULTI_CPU  # not half switched


def test_scored_reference_checkpoints_drop_the_fsdp_shards(tmp_path):
    """A reference checkpoint is scored, never resumed: FSDP's shard folders go, the full weights stay."""
    from sftmix.pipeline.stages import _keep_weights_only

    ckpt = tmp_path / "checkpoint-4"
    for shard_dir in ("optimizer_0", "pytorch_model_fsdp_0"):
        (ckpt / shard_dir).mkdir(parents=True)
        (ckpt / shard_dir / "__0_0.distcp").write_bytes(b"x")
    for f in ("model.safetensors", "config.json", "trainer_state.json", "scheduler.pt", "rng_state_1.pth"):
        (ckpt / f).write_text("x")
    _keep_weights_only(ckpt)
    assert sorted(p.name for p in ckpt.iterdir()) == ["config.json", "model.safetensors", "trainer_state.json"]
