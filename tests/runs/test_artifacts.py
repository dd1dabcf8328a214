"""Atomic writes under a full disk and a kill: the target is whole or untouched, and no temp file
is left to fill the disk. ENOSPC is injected by monkeypatching the write."""
from __future__ import annotations

import errno
import os
import time

import pytest

from pipelines.runs import artifacts


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def half_written_then_full(path, *args, **kwargs):
    """Write a few bytes of the temp file, then fail as a full disk does."""
    with open(path, "wb") as handle:
        handle.write(b"half")
    enospc()


def test_a_failed_text_write_leaves_the_target_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "history.csv"
    target.write_text("old")
    monkeypatch.setattr(artifacts.Path, "write_text", lambda self, text: half_written_then_full(self))
    with pytest.raises(OSError) as raised:
        artifacts.atomic_write_text(target, "new")
    assert raised.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


def test_a_failed_copy_leaves_the_target_and_no_temp(tmp_path, monkeypatch):
    source, target = tmp_path / "last.keras", tmp_path / "best.keras"
    source.write_bytes(b"new model")
    target.write_bytes(b"old model")
    monkeypatch.setattr(artifacts.shutil, "copyfile", lambda src, dst: half_written_then_full(dst))
    with pytest.raises(OSError):
        artifacts.atomic_copy(source, target)
    assert target.read_bytes() == b"old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "last.keras"]


def test_a_kill_between_write_and_rename_leaves_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "last.json"
    target.write_text("epoch 1")
    monkeypatch.setattr(artifacts.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        artifacts.atomic_write_text(target, "epoch 2")
    assert target.read_text() == "epoch 1" and [p.name for p in tmp_path.iterdir()] == ["last.json"]


def test_stale_temps_are_removed_and_fresh_ones_mean_a_write_in_progress(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"m")
    stale = artifacts.temp_path(tmp_path / "model.keras")
    stale.write_bytes(b"half a model")
    assert artifacts.write_in_progress(tmp_path)
    old = time.time() - artifacts.FRESH_TEMP_SECONDS - 1
    os.utime(stale, (old, old))
    assert not artifacts.write_in_progress(tmp_path)
    assert artifacts.remove_stale_temps(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
    assert artifacts.remove_stale_temps(tmp_path / "missing") == 0


def test_disk_full_is_found_behind_a_reraise_and_says_how_much_is_free(tmp_path):
    try:
        try:
            enospc()
        except OSError as exc:
            raise ValueError("Keras could not save the model") from exc
    except ValueError as wrapped:
        assert artifacts.is_disk_full(wrapped)
    assert not artifacts.is_disk_full(ValueError("other"))
    assert artifacts.disk_full_message(tmp_path).startswith("disk full: ")
    assert f"MB free in {tmp_path}" in artifacts.disk_full_message(tmp_path)


def test_failure_file_round_trip_is_best_effort(tmp_path, monkeypatch):
    artifacts.write_failure(tmp_path, "disk full: 0.1 MB free in /x")
    assert artifacts.read_failure(tmp_path) == "disk full: 0.1 MB free in /x"
    assert artifacts.read_failure(tmp_path / "missing") is None
    monkeypatch.setattr(artifacts, "atomic_write_text", enospc)
    artifacts.write_failure(tmp_path / "missing", "not written, and no exception")
