"""The stage runner: keys derived from the dependencies, skipping, `before`, one progress bar."""

import pytest

from sftmix.pipeline.runner import Stage, StageBook, derive_keys, run_stages


def _chain(calls, tmp_path, parts):
    """a -> b -> c, and d beside them; each writes its file and logs its call."""
    def make(name):
        def fn():
            calls.append(name)
            (tmp_path / name).write_text(name)
            return name.upper()
        return fn
    return [Stage("a", make("a"), key=(parts["a"],), outputs=[tmp_path / "a"]),
            Stage("b", make("b"), key=(parts["b"],), deps=("a",), outputs=[tmp_path / "b"]),
            Stage("c", make("c"), deps=("b",), outputs=[tmp_path / "c"]),
            Stage("d", make("d"), key=(parts["d"],), outputs=[tmp_path / "d"])]


def test_keys_chain_through_dependencies_only():
    noop = lambda: None  # noqa: E731
    base = derive_keys([Stage("a", noop, key=(1,)), Stage("b", noop, deps=("a",)), Stage("d", noop, key=(5,))])
    moved = derive_keys([Stage("a", noop, key=(2,)), Stage("b", noop, deps=("a",)), Stage("d", noop, key=(5,))])
    assert base["a"] != moved["a"] and base["b"] != moved["b"]   # a's change reaches its dependent
    assert base["d"] == moved["d"]                               # and nothing else
    with pytest.raises(ValueError, match="do not come before it"):
        derive_keys([Stage("b", noop, deps=("a",)), Stage("a", noop)])
    with pytest.raises(ValueError, match="appears twice"):
        derive_keys([Stage("a", noop), Stage("a", noop)])


def test_run_skips_up_to_date_stages_and_reruns_only_dependents(tmp_path):
    book, calls = StageBook(tmp_path / "stages"), []
    parts = {"a": 1, "b": 1, "d": 1}
    returned = run_stages(_chain(calls, tmp_path, parts), book, progress=False)
    assert calls == ["a", "b", "c", "d"] and returned == {"a": "A", "b": "B", "c": "C", "d": "D"}
    calls.clear()
    assert run_stages(_chain(calls, tmp_path, parts), book, progress=False) == {} and calls == []
    run_stages(_chain(calls, tmp_path, {**parts, "b": 2}), book, progress=False)
    assert calls == ["b", "c"]                                   # b changed: b and its dependent c
    calls.clear()
    (tmp_path / "d").unlink()                                    # an output gone: that stage again
    run_stages(_chain(calls, tmp_path, {**parts, "b": 2}), book, progress=False)
    assert calls == ["d"]
    assert set(book.seconds()) == {"a", "b", "c", "d"}


def test_before_gets_the_key_and_uncached_stages_always_run(tmp_path):
    book, seen, runs = StageBook(tmp_path / "stages"), [], []
    stages = [Stage("train/x", lambda: runs.append("x"), key=("k",), outputs=[],
                    before=lambda key: seen.append(key)),
              Stage("results", lambda: runs.append("results"), deps=("train/x",), cached=False)]
    keys = derive_keys(stages)
    run_stages(stages, book, progress=False)
    run_stages(stages, book, progress=False)
    assert seen == [keys["train/x"]]                             # once, before the stage ran, with its key
    assert runs == ["x", "results", "results"]
    assert (tmp_path / "stages" / "train__x.json").exists() and not (tmp_path / "stages" / "results.json").exists()


def test_a_failing_stage_is_not_marked_done(tmp_path):
    book = StageBook(tmp_path / "stages")

    def boom():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        run_stages([Stage("a", boom)], book, progress=False)
    assert book.seconds() == {}


def test_progress_lines_and_one_bar(tmp_path, capsys):
    stages = [Stage("a", lambda: None), Stage("b", lambda: None, deps=("a",))]
    run_stages(stages, StageBook(tmp_path / "one"), progress=True)
    assert capsys.readouterr().out.splitlines() == ["[a] running", "[b] running"]
    run_stages(stages, StageBook(tmp_path / "two"), progress="stages", desc="demo: stages")
    captured = capsys.readouterr()
    assert "[a] running" not in captured.out and "demo: stages" in captured.err and "2/2" in captured.err


def test_select_runs_a_prefix_with_the_keys_of_the_whole_list(tmp_path):
    book, calls = StageBook(tmp_path / "stages"), []
    stages = _chain(calls, tmp_path, {"a": 1, "b": 1, "d": 1})
    run_stages(stages, book, progress=False, select=lambda s: s.name in ("a", "b"))
    assert calls == ["a", "b"]
    calls.clear()
    run_stages(stages, book, progress=False)                      # the rest, with a and b up to date
    assert calls == ["c", "d"]
