"""What a run leaves on disk, and how it is written.

A light module (no TensorFlow), so pages can name a run's files without loading Keras. Every
file is written atomically, temp file then `os.replace`, so a reader or a resume never sees half
a file.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

MODEL_FILE = "model.keras"  # the final model
BEST_FILE = "best.keras"  # the epoch with the best monitored loss
LAST_FILE = "last.keras"  # the last finished epoch, with optimizer state, for resume
LAST_STATE_FILE = "last.json"  # which epoch last.keras holds, and the best value so far
HISTORY_FILE = "history.csv"  # epoch-level metrics
SPEC_FILE = "spec.json"  # the spec the run trained


def temp_path(path: Path) -> Path:
    """A sibling temp name that keeps the suffix (Keras insists on `.keras`)."""
    return path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")


def atomic_write_text(path: Path, text: str) -> None:
    tmp = temp_path(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_copy(source: Path, target: Path) -> None:
    tmp = temp_path(target)
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
