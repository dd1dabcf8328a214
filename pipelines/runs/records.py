"""A run's record in its own folder, `run.json`: enough to rebuild the run's row if the store is lost.

The store rewrites it at every status change (created, claimed, stopped, finished, interrupted,
resumed, renamed, tagged, noted), and a worker that cannot reach the store writes it itself, so the
run folders alone say which runs exist and how each ended. It holds the run's JSON record
(`results.run_record`, the shape the CLI prints), what the run belongs to (tags, note, sweep,
repeat group, seed, executor) and the worker's pid. Epoch-level points come back from history.csv.
A sweep's own record is `<home>/sweeps/<id>.json`, written when it is created and cancelled.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from pipelines.errors import LayerlabError
from pipelines.runs.artifacts import (HISTORY_FILE, LAST_STATE_FILE, PREVIOUS_STATE_FILE, RECORD_FILE,
                                      atomic_write_text, read_failure)
from pipelines.runs.entities import (EXECUTORS, MetricPoint, Progress, Run, RunStatus, Sweep, spec_seed,
                                     validate_run_id, validate_sweep_id)
from pipelines.runs.results import run_record

RECORD_FORMAT = 2  # 2 added tags, note, sweep_id, sweep_settings, repeat_group, seed, executor
SWEEPS_FOLDER = "sweeps"


def record_of(run: Run) -> dict[str, Any]:
    """The run as run.json holds it."""
    record = run_record(run)
    record.pop("queue_position")
    record["metrics"] = {name: value for name, value in record["metrics"].items() if value is not None}
    record.pop("findings")  # the doctor's reading of the curves: derived, never stored
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
            tags=tuple(str(tag) for tag in record.get("tags") or ()), note=str(record.get("note") or ""),
            sweep_id=record.get("sweep_id") and validate_sweep_id(record["sweep_id"]),
            sweep_settings=dict(record.get("sweep_settings") or {}),
            repeat_group=record.get("repeat_group") and str(record["repeat_group"]),
            seed=record["seed"] if isinstance(record.get("seed"), int) else spec_seed(record["spec"]),
            executor=record.get("executor") if record.get("executor") in EXECUTORS else "local",
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, LayerlabError) as exc:
        raise LayerlabError(f"Cannot read the run record {path}: {exc}") from None


def sweep_record_path(home: Path, sweep_id: str) -> Path:
    return home / SWEEPS_FOLDER / f"{validate_sweep_id(sweep_id)}.json"


def write_sweep_record(home: Path, sweep: Sweep) -> None:
    """Write `<home>/sweeps/<id>.json` atomically, for a rebuild of the store."""
    path = sweep_record_path(home, sweep.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"format": RECORD_FORMAT, "id": sweep.id, "name": sweep.name, "dataset": sweep.dataset,
              "spec": sweep.spec, "axes": [[setting, list(values)] for setting, values in sweep.axes],
              "repeats": sweep.repeats, "created_at": sweep.created_at, "executor": sweep.executor,
              "cancelled_at": sweep.cancelled_at}
    atomic_write_text(path, json.dumps(record, indent=1))


def read_sweep_records(home: Path) -> tuple[list[Sweep], list[str]]:
    """Every sweep recorded under `<home>/sweeps/`, and what could not be read (in words)."""
    sweeps, problems = [], []
    try:
        paths = sorted((home / SWEEPS_FOLDER).glob("*.json"))
    except OSError:
        return [], []
    for path in paths:
        try:
            record = json.loads(path.read_text())
            if validate_sweep_id(record["id"]) != path.stem:
                raise ValueError(f"its id {record['id']!r} is not its file's name")
            sweeps.append(Sweep(
                id=record["id"], name=str(record["name"]), dataset=str(record["dataset"]),
                spec=dict(record["spec"]),
                axes=tuple((str(setting), tuple(values)) for setting, values in record["axes"]),
                repeats=int(record.get("repeats") or 1), created_at=float(record["created_at"]),
                executor=record.get("executor") if record.get("executor") in EXECUTORS else "local",
                cancelled_at=_optional_float(record.get("cancelled_at"))))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, LayerlabError) as exc:
            problems.append(f"Cannot read the sweep record {path}: {exc}")
    return sweeps, problems


def sweep_from_runs(sweep_id: str, runs: list[Run]) -> Sweep:
    """A sweep whose own record is lost, pieced together from its runs (name, axes, repeats)."""
    first = min(runs, key=lambda run: run.created_at)
    axes: dict[str, list] = {}
    for run in sorted(runs, key=lambda run: run.created_at):
        for setting, value in run.sweep_settings.items():
            if value not in axes.setdefault(setting, []):
                axes[setting].append(value)
    groups = [run.repeat_group for run in runs if run.repeat_group]
    repeats = max((groups.count(group) for group in set(groups)), default=1)
    return Sweep(id=sweep_id, name=f"sweep {sweep_id}", dataset=first.dataset, spec=first.spec,
                 axes=tuple((setting, tuple(values)) for setting, values in axes.items()), repeats=repeats,
                 created_at=first.created_at, executor=first.executor)


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


def history_csv(points: list[MetricPoint]) -> str:
    """Epoch-level history as CSV, one row per epoch (numbered from 1), as the tutorials'
    `history.history` would give; `history_points` reads it back."""
    rows: dict[int, dict[str, float]] = {}
    for point in points:
        if point.kind == "epoch":
            rows.setdefault(point.epoch, {})[point.name] = point.value
    names = sorted({name for row in rows.values() for name in row})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["epoch", *names])
    for epoch in sorted(rows):
        writer.writerow([epoch + 1, *(rows[epoch].get(name, "") for name in names)])
    return out.getvalue()


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
