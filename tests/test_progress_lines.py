"""The per-step log lines of runs without a progress bar say the time spent and the time left."""

from types import SimpleNamespace

from sftmix.train import callbacks
from sftmix.train.callbacks import LossLines, _clock


def test_clock_literals():
    assert _clock(0) == "0:00"
    assert _clock(83) == "1:23"
    assert _clock(3725) == "1:02:05"


def test_loss_line_estimates_time_left_from_the_pace_since_start(monkeypatch, capsys):
    now = [100.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: now[0])
    lines = LossLines()
    state = SimpleNamespace(is_world_process_zero=True, global_step=10, max_steps=50, epoch=0.2)
    lines.on_train_begin(None, state, None)       # resumed at step 10
    now[0] += 40.0
    state.global_step, state.epoch = 20, 0.4      # 10 steps in 40 s: 30 steps left -> 120 s
    lines.on_log(None, state, None, logs={"loss": 2.5, "learning_rate": 1e-3})
    out = capsys.readouterr().out.strip()
    assert out == "step 20/50 (epoch 0.40, 0:40 in, ~2:00 left): loss 2.5, lr 0.001"


def test_loss_line_without_a_start_keeps_the_plain_form(capsys):
    state = SimpleNamespace(is_world_process_zero=True, global_step=3, max_steps=9, epoch=None)
    LossLines().on_log(None, state, None, logs={"loss": 1.0})
    assert capsys.readouterr().out.strip() == "step 3/9: loss 1"
