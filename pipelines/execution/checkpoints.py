"""Resume checkpoints: the last finished epoch's model and the one before it, each with its state.

A checkpoint is a pair: a .keras file (with optimizer state) and a JSON state (epochs done, the
best value so far) that records the file's SHA-256. Pairs are matched by that digest, not by
name, so wherever a kill interrupts a save, no model is ever paired with another epoch's state.
Resume takes the newest pair that matches and loads, falling back to the previous one, and says
what is wrong with each file it could not use. No Keras import here: the loader is passed in.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.errors import CheckpointError
from pipelines.runs.artifacts import (LAST_FILE, LAST_STATE_FILE, PREVIOUS_FILE, PREVIOUS_STATE_FILE,
                                      atomic_copy, atomic_target, atomic_write_text)

PAIRS = ((LAST_FILE, LAST_STATE_FILE), (PREVIOUS_FILE, PREVIOUS_STATE_FILE))


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state(path: Path) -> dict | None:
    """A checkpoint state file's content, or None if it is missing or not one."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("epochs_done"), int) else None


def save_checkpoint(model: Any, run_dir: Path, state: dict) -> None:
    """Save `model` as last.keras with `state` in last.json; the checkpoint it replaces, if it was
    sound, is kept as previous.keras / previous.json. last.keras is only ever replaced whole."""
    last, last_state = run_dir / LAST_FILE, run_dir / LAST_STATE_FILE
    with atomic_target(last) as tmp:
        model.save(tmp)
        digest = file_digest(tmp)
        current = read_state(last_state)
        if current and last.is_file() and current.get("sha256") == file_digest(last):
            _keep_as_previous(run_dir)
    atomic_write_text(last_state, json.dumps({**state, "sha256": digest}))


def _keep_as_previous(run_dir: Path) -> None:
    """previous.* := last.* (a hard link where the filesystem allows: no copy of the weights)."""
    with atomic_target(run_dir / PREVIOUS_FILE) as tmp:
        try:
            os.link(run_dir / LAST_FILE, tmp)
        except OSError:
            shutil.copyfile(run_dir / LAST_FILE, tmp)
    atomic_copy(run_dir / LAST_STATE_FILE, run_dir / PREVIOUS_STATE_FILE)


def _mismatch(model_path: Path, state_name: str) -> str:
    if not model_path.is_file():
        return f"{state_name} describes {model_path.name}, which is missing"
    size = model_path.stat().st_size
    kind = "" if zipfile.is_zipfile(model_path) else ", and is not a .keras (zip) archive"
    return (f"{model_path.name} ({size:,} bytes) does not match {state_name}: it was changed or cut short "
            f"after its state was written{kind}")


def load_checkpoint(run_dir: Path, load_model: Callable[[Path], Any]) -> tuple[Any, dict] | None:
    """The newest checkpoint that matches its state and loads, as (model, state); None if the run
    has no checkpoint state at all (it never finished an epoch). CheckpointError, naming what is
    wrong with each file, if there are states but none of them is usable."""
    states = [(state_name, model_name, read_state(run_dir / state_name)) for model_name, state_name in PAIRS]
    problems = [f"{name} is not a readable checkpoint state" for name, _, state in states
                if state is None and (run_dir / name).exists()]
    states = sorted([s for s in states if s[2] is not None], key=lambda s: -s[2]["epochs_done"])
    if not states:
        if problems:
            raise CheckpointError(f"Cannot resume from {run_dir}: {'; '.join(problems)}.")
        return None
    digests: dict[Path, str] = {}
    models = [run_dir / name for name, _ in PAIRS if (run_dir / name).is_file()]
    for state_name, own_model, state in states:
        wanted = state.get("sha256")
        if wanted is None:  # written before states named their file: trust the name
            matches = [path for path in models if path.name == own_model]
        else:
            matches = [path for path in models if digests.setdefault(path, file_digest(path)) == wanted]
        if not matches:
            problems.append(_mismatch(run_dir / own_model, state_name))
            continue
        if not zipfile.is_zipfile(matches[0]):
            problems.append(f"{matches[0].name} ({matches[0].stat().st_size:,} bytes) is not a .keras (zip) "
                            "archive: it was cut short or damaged")
            continue
        try:
            return load_model(matches[0]), state
        except Exception as exc:  # Keras raises many kinds for a damaged file
            problems.append(f"Keras cannot load {matches[0].name}: {type(exc).__name__}: {exc}")
    raise CheckpointError(
        f"Cannot resume from {run_dir}: no checkpoint there is usable. {'; '.join(problems)}. "
        "Start a new run with the same spec instead.")
