"""What a run leaves on disk, and how it is written.

A light module (no TensorFlow), so pages can name a run's files without loading Keras. Every
file is written atomically, temp file then `os.replace`, so a reader or a resume never sees half
a file; a write that fails removes its temp file, and temp files that a killed process left
behind are removed when the next process starts on the folder.
"""
from __future__ import annotations

import errno
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MODEL_FILE = "model.keras"  # the final model
BEST_FILE = "best.keras"  # the epoch with the best monitored loss
LAST_FILE = "last.keras"  # the last finished epoch, with optimizer state, for resume
LAST_STATE_FILE = "last.json"  # which epoch last.keras holds, the best value so far, the file's SHA-256
PREVIOUS_FILE = "previous.keras"  # the checkpoint before last.keras: resume falls back to it
PREVIOUS_STATE_FILE = "previous.json"
HISTORY_FILE = "history.csv"  # epoch-level metrics
SPEC_FILE = "spec.json"  # the spec the run trained
TENSORBOARD_DIR = "tensorboard"  # TensorBoard event logs: train/ and validation/ (execution/tensorboard_logs.py)
RECORD_FILE = "run.json"  # the run's own record, rewritten at every status change (see records.py)
FAILURE_FILE = "failure.txt"  # why a worker failed, left for the reaper when the store could not be written
TEMP_PREFIX = ".tmp-"
FRESH_TEMP_SECONDS = 30.0  # a temp file touched this recently belongs to a write in progress
_FAILURE_CHARS = 2000


def temp_path(path: Path) -> Path:
    """A sibling temp name that keeps the suffix (Keras insists on `.keras`)."""
    return path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}-{path.name}")


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces `path`, on any failure it is removed."""
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_target(path) as tmp:
        tmp.write_text(text)


def atomic_copy(source: Path, target: Path) -> None:
    with atomic_target(target) as tmp:
        shutil.copyfile(source, tmp)


def remove_stale_temps(folder: Path) -> int:
    """Delete the temp files a killed writer left in `folder`; call it only where no one writes now.
    Returns how many were removed."""
    removed = 0
    try:
        stale = [path for path in folder.iterdir() if path.name.startswith(TEMP_PREFIX)]
    except OSError:
        return 0
    for path in stale:
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def write_in_progress(folder: Path, now: float | None = None) -> bool:
    """Whether some process is writing a file in `folder` right now (a fresh temp file is there)."""
    now = time.time() if now is None else now
    try:
        return any(path.name.startswith(TEMP_PREFIX) and now - path.stat().st_mtime < FRESH_TEMP_SECONDS
                   for path in folder.iterdir())
    except OSError:
        return False


def is_disk_full(error: BaseException | None) -> bool:
    """Whether `error`, or an error it was raised from, is ENOSPC (Keras re-raises file errors)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def disk_full_message(folder: Path, then: str = "resume the run") -> str:
    """"disk full: N MB free in <folder>. Free some space, then <then>", for a run or a store that
    could not be written."""
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:.1f} MB"
    except OSError:
        free = "no space"
    return f"disk full: {free} free in {folder}. Free some space, then {then}"


def write_failure(folder: Path, reason: str) -> None:
    """Leave why the run failed in its folder, for the reaper; best effort (the disk may be full)."""
    try:
        atomic_write_text(folder / FAILURE_FILE, reason[:_FAILURE_CHARS])
    except OSError:
        pass


def read_failure(folder: Path) -> str | None:
    """The reason a worker left in `folder`, or None."""
    try:
        return (folder / FAILURE_FILE).read_text(errors="replace")[:_FAILURE_CHARS].strip() or None
    except OSError:
        return None


def has_checkpoint(folder: Path) -> bool:
    """Whether `folder` holds a resume checkpoint (a model file with its state file)."""
    return (any((folder / name).is_file() for name in (LAST_FILE, PREVIOUS_FILE))
            and any((folder / name).is_file() for name in (LAST_STATE_FILE, PREVIOUS_STATE_FILE)))
