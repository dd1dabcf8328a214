"""Checkpoints under faults: a kill or a full disk mid-save, a damaged last.keras, a NaN validation
loss. Each test injects its fault into a tiny real Keras model's save or fit."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import keras
import numpy as np
import pytest

from pipelines.errors import CheckpointError
from pipelines.execution import checkpoints
from pipelines.execution.checkpoints import load_checkpoint, save_checkpoint
from pipelines.execution.training import EpochCheckpoint, FiniteEpochGuard, StoreRecorder, atomic_save_model
from pipelines.runs import artifacts
from pipelines.runs.artifacts import LAST_FILE, LAST_STATE_FILE, PREVIOUS_FILE
from pipelines.runs.sqlite_store import SQLiteRunStore

REPO = Path(__file__).resolve().parents[2]


def tiny_model(bias: float = 0.0, **batch_norm) -> keras.Model:
    layers = [keras.Input((4,)), keras.layers.Dense(3, bias_initializer=keras.initializers.Constant(bias))]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization(**batch_norm))
    model = keras.Sequential([*layers, keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def bias_of(model: keras.Model) -> float:
    return float(model.layers[0].bias.numpy()[0])


def temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(artifacts.TEMP_PREFIX)]


def test_a_kill_between_the_temp_write_and_the_rename_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tiny_model(1.0), tmp_path, {"epochs_done": 1})
    real_replace = os.replace

    def killed_before_rename(source, target):
        if Path(target).name == LAST_FILE:
            raise KeyboardInterrupt  # the fault: the process dies between the write and the rename
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", killed_before_rename)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tiny_model(2.0), tmp_path, {"epochs_done": 2})
    monkeypatch.undo()
    assert bias_of(keras.models.load_model(tmp_path / LAST_FILE)) == 1.0  # the previous last.keras loads
    model, state = load_checkpoint(tmp_path, keras.models.load_model)
    assert state["epochs_done"] == 1 and bias_of(model) == 1.0
    assert temps(tmp_path) == []


@pytest.mark.slow
def test_a_real_kill_mid_save_leaves_a_loadable_checkpoint_and_a_temp_the_next_start_removes(tmp_path):
    script = f"""
import os, sys
sys.path.insert(0, {str(REPO)!r})
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from test_checkpoints import tiny_model
from pipelines.execution.checkpoints import save_checkpoint
folder = Path({str(tmp_path)!r})
save_checkpoint(tiny_model(1.0), folder, {{"epochs_done": 1}})
real = os.replace
os.replace = lambda s, t: os._exit(9) if Path(t).name == "last.keras" else real(s, t)
save_checkpoint(tiny_model(2.0), folder, {{"epochs_done": 2}})
"""
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert killed.returncode == 9, killed.stderr  # the fault: os._exit between write and rename
    assert len(temps(tmp_path)) == 1
    model, state = load_checkpoint(tmp_path, keras.models.load_model)
    assert state["epochs_done"] == 1 and bias_of(model) == 1.0
    assert artifacts.remove_stale_temps(tmp_path) == 1 and temps(tmp_path) == []


def test_a_damaged_last_checkpoint_falls_back_to_the_previous_one(tmp_path):
    save_checkpoint(tiny_model(1.0), tmp_path, {"epochs_done": 1})
    save_checkpoint(tiny_model(2.0), tmp_path, {"epochs_done": 2})
    assert (tmp_path / PREVIOUS_FILE).is_file()
    (tmp_path / LAST_FILE).write_bytes(b"PK\x03\x04 cut short")  # the fault
    model, state = load_checkpoint(tmp_path, keras.models.load_model)
    assert state["epochs_done"] == 1 and bias_of(model) == 1.0


def test_a_damaged_only_checkpoint_says_what_is_wrong_with_the_file(tmp_path):
    save_checkpoint(tiny_model(1.0), tmp_path, {"epochs_done": 1})
    (tmp_path / LAST_FILE).write_bytes(b"not a zip")  # the fault
    with pytest.raises(CheckpointError, match=r"last.keras \(9 bytes\) does not match last.json.*not a \.keras "
                                              r"\(zip\) archive.*Start a new run"):
        load_checkpoint(tmp_path, keras.models.load_model)


def test_a_damaged_checkpoint_from_before_digests_is_named_too(tmp_path):
    (tmp_path / LAST_FILE).write_bytes(b"\0" * 100)  # the fault, under a state without a digest
    (tmp_path / LAST_STATE_FILE).write_text(json.dumps({"epochs_done": 3, "best_value": None, "best_epoch": None}))
    with pytest.raises(CheckpointError, match=r"last.keras \(100 bytes\) is not a \.keras \(zip\) archive"):
        load_checkpoint(tmp_path, keras.models.load_model)
    assert load_checkpoint(tmp_path / "missing", keras.models.load_model) is None  # nothing to resume: fresh


def test_a_full_disk_during_a_save_leaves_no_temp_file(tmp_path, monkeypatch):
    model = tiny_model()
    (tmp_path / "model.keras").write_bytes(b"previous")

    def half_then_full(path, *args, **kwargs):
        Path(path).write_bytes(b"half a model")
        raise OSError(errno.ENOSPC, "No space left on device")  # the fault

    monkeypatch.setattr(model, "save", half_then_full)
    with pytest.raises(OSError):
        atomic_save_model(model, tmp_path / "model.keras")
    with pytest.raises(OSError):
        save_checkpoint(model, tmp_path, {"epochs_done": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]
    assert (tmp_path / "model.keras").read_bytes() == b"previous"


def test_a_nan_validation_loss_fails_the_run_and_writes_no_checkpoint(tmp_path):
    store = SQLiteRunStore(tmp_path / "home")
    run = store.create_run("bn", "mnist", {})
    store.claim_next_run(os.getpid(), 1)
    run_dir = store.ensure_run_dir(run.id)
    checkpoint = EpochCheckpoint(run_dir, "val_loss", keep_best=True)
    recorder = StoreRecorder(store, run.id, steps_per_epoch=4, epochs=3, stop_event=threading.Event(),
                             checkpoint=checkpoint)
    checkpoint.epoch_complete = recorder.epoch_complete
    model = tiny_model(momentum=float("nan"))  # the fault: BatchNorm's moving statistics become NaN
    x, y = np.random.default_rng(0).normal(size=(64, 4)).astype("float32"), np.arange(64) % 2
    history = model.fit(x, y, batch_size=16, epochs=3, validation_data=(x, y), verbose=0,
                        callbacks=[FiniteEpochGuard(recorder), checkpoint, recorder])
    assert all(np.isfinite(history.history["loss"]))  # the training loss stayed finite
    assert recorder.failure.startswith("val_loss became NaN at epoch 1:")
    assert not (run_dir / LAST_FILE).exists() and recorder.completed_epochs == 0
    assert checkpoints.read_state(run_dir / LAST_STATE_FILE) is None
