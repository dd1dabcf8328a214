"""A run's record in its own folder, `run.json`: enough to rebuild the run's row if the store is lost.

The store rewrites it at every status change (created, claimed, stopped, finished, interrupted,
resumed), and a worker that cannot reach the store writes it itself, so the run folders alone say
which runs exist and how each ended. It holds the run's JSON record (`results.run_record`, the
shape the CLI prints) and the worker's pid. Epoch-level points come back from history.csv.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from pipelines.errors import LayerlabError
from pipelines.runs.artifacts import (HISTORY_FILE, LAST_STATE_FILE, PREVIOUS_STATE_FILE, RECORD_FILE,
                                      atomic_write_text, read_failure)
from pipelines.runs.entities import MetricPoint, Progress, Run, RunStatus, validate_run_id
from pipelines.runs.results import run_record

RECORD_FORMAT = 1


def record_of(run: Run) -> dict[str, Any]:
    """The run as run.json holds it."""
    record = run_record(run)
    record.pop("queue_position")
    record["metrics"] = {name: value for name, value in record["metrics"].items() if value is not None}
    return {"format": RECORD_FORMAT, **record, "worker_pid": run.worker_pid}


def write_run_record(folder: Path, run: Run) -> None:
    """Write `<folder>/run.json` atomically, creating the folder if needed."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / RECORD_FILE, json.dumps(record_of(run), indent=1))


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def read_run_record(folder: Path) -> Run:
    """The run `<folder>/run.json` describes; LayerlabError naming the file if it is missing or malformed."""
    path = folder / RECORD_FILE
    try:
        record = json.loads(path.read_text())
        if validate_run_id(record["id"]) != folder.name:
            raise ValueError(f"its id {record['id']!r} is not its folder's name")
        return Run(
            id=record["id"], name=str(record["name"]), status=RunStatus(record["status"]),
            dataset=str(record["dataset"]), spec=dict(record["spec"]), created_at=float(record["created_at"]),
            started_at=_optional_float(record.get("started_at")),
            finished_at=_optional_float(record.get("finished_at")), heartbeat_at=None,
            worker_pid=record.get("worker_pid"), error=record.get("error"),
            metrics={name: float(value) for name, value in (record.get("metrics") or {}).items()},
            progress=Progress(epoch=int(record.get("epochs_done") or 0),
                              total_epochs=int(record.get("total_epochs") or 0)),
            epochs_done=int(record.get("epochs_done") or 0), best_epoch=record.get("best_epoch"),
            stop_requested=False, resume_count=int(record.get("resume_count") or 0),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, LayerlabError) as exc:
        raise LayerlabError(f"Cannot read the run record {path}: {exc}") from None


def run_folders(home: Path) -> list[Path]:
    """The folders under `<home>/runs/` named like a run id, oldest name first."""
    try:
        entries = sorted((home / "runs").iterdir())
    except OSError:
        return []
    found = []
    for entry in entries:
        try:
            if entry.is_dir() and validate_run_id(entry.name):
                found.append(entry)
        except LayerlabError:
            continue
    return found


def history_points(folder: Path, timestamp: float) -> list[MetricPoint]:
    """Epoch-level points from `<folder>/history.csv` (epoch numbers 1-based there); [] without one."""
    try:
        with open(folder / HISTORY_FILE, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []
    points = []
    for row in rows:
        try:
            epoch = int(row.pop("epoch")) - 1
        except (KeyError, TypeError, ValueError):
            continue
        for name, value in row.items():
            try:
                points.append(MetricPoint("epoch", epoch, 0, name, float(value), timestamp))
            except (TypeError, ValueError):
                continue
    return points


def checkpoint_epochs(folder: Path) -> int:
    """The most finished epochs a checkpoint state in `folder` records (0 without one)."""
    done = 0
    for name in (LAST_STATE_FILE, PREVIOUS_STATE_FILE):
        try:
            done = max(done, int(json.loads((folder / name).read_text()).get("epochs_done", 0)))
        except (OSError, ValueError, TypeError, AttributeError):
            continue
    return done


def worker_running(pid: int | None) -> bool:
    """Whether `pid` is a live Layerlab worker process (not just any process that reused the pid)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        if not Path("/proc/self").exists():  # no /proc on this OS: whether the pid lives is all we know
            try:
                os.kill(pid, 0)
                return True
            except OSError:
                return False
        return False
    return b"pipelines" in cmdline and b"worker" in cmdline


def recovered(run: Run, folder: Path, now: float | None = None) -> Run:
    """The run as a rebuilt store should hold it: a RUNNING run whose worker is gone becomes
    INTERRUPTED (resumable, with the reason its worker left if any), a live one keeps running."""
    now = time.time() if now is None else now
    epochs_done = max(run.epochs_done, checkpoint_epochs(folder))
    run = dataclasses.replace(run, epochs_done=epochs_done, stop_requested=False, stop_requested_at=None,
                              progress=dataclasses.replace(run.progress, epoch=epochs_done))
    if run.status is not RunStatus.RUNNING:
        return dataclasses.replace(run, heartbeat_at=None, worker_pid=None)
    if worker_running(run.worker_pid):
        return dataclasses.replace(run, heartbeat_at=now)
    reason = read_failure(folder) or (f"Its worker (pid {run.worker_pid}) was gone when the store was rebuilt "
                                      "from the run folders")
    return dataclasses.replace(
        run, status=RunStatus.INTERRUPTED, worker_pid=None, heartbeat_at=None, finished_at=run.finished_at or now,
        error=f"{reason}. Resume to continue from the last finished epoch ({epochs_done}).")
