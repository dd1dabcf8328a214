"""The commands of `python -m pipelines`: each takes the parsed arguments and returns an exit status.

A LayerlabError raised here reaches `main`, which prints its message; nothing prints a traceback.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import NoReturn

from pipelines import paths
from pipelines.errors import LayerlabError, SpecError
from pipelines.execution.scheduler import Scheduler, SchedulerSettings
from pipelines.execution.speed import SpeedSettings
from pipelines.modelspec.presets import get_preset
from pipelines.modelspec.spec import OPTIMIZERS, ModelSpec
from pipelines.runs.doctor import Finding, diagnose_run
from pipelines.runs.entities import Run, RunStatus
from pipelines.runs.results import run_record, summary
from pipelines.runs.sqlite_recovery import DB_NAME, rebuild
from pipelines.runs.sqlite_store import SQLiteRunStore, check_store

log = logging.getLogger("layerlab.worker")


def _store(args: argparse.Namespace) -> SQLiteRunStore:
    return SQLiteRunStore(args.home)


def _scheduler(args: argparse.Namespace) -> Scheduler:
    return Scheduler(_store(args), SchedulerSettings.from_env(data_dir=args.data_dir))


def _store_for_reading(args: argparse.Namespace) -> SQLiteRunStore:
    """The store, after settling runs whose worker is gone. That settling writes (the run store and
    the worker registry); on a full disk, a store busy for longer than the timeout or a damaged
    registry it is skipped with a warning, and the read goes on."""
    store = _store(args)
    try:
        Scheduler(store, SchedulerSettings.from_env(data_dir=args.data_dir)).reap()
    except (LayerlabError, sqlite3.OperationalError) as exc:
        print(f"warning: runs whose worker ended could not be updated ({exc}); showing the store as it is",
              file=sys.stderr)
    return store


def _load_spec(args: argparse.Namespace) -> ModelSpec:
    if args.spec:
        try:
            text = Path(args.spec).read_text()
        except OSError as exc:
            raise SpecError(f"Cannot read the spec file {args.spec!r}: {exc.strerror}") from None
        return ModelSpec.from_json(text)
    return get_preset(args.preset or "mlp-128x2").spec


def _apply_overrides(spec: ModelSpec, args: argparse.Namespace) -> ModelSpec:
    fit = {k: v for k, v in {"epochs": args.epochs, "batch_size": args.batch_size,
                             "validation_split": args.validation_split,
                             "seed": getattr(args, "seed", None)}.items() if v is not None}
    compile_changes = {}
    if args.optimizer:
        compile_changes["optimizer"] = args.optimizer.lower()
        if args.lr is None and args.optimizer.lower() in OPTIMIZERS:
            compile_changes["learning_rate"] = OPTIMIZERS[args.optimizer.lower()]["learning_rate"]
    if args.lr is not None:
        compile_changes["learning_rate"] = args.lr
    if args.loss:
        compile_changes["loss"] = args.loss
    if fit:
        spec = spec.with_fit(**fit)
    if compile_changes:
        spec = spec.with_compile(**compile_changes)
    return spec


def _progress_line(run: Run, position: int | None) -> str:
    if run.status == RunStatus.QUEUED:
        return f"run {run.id}: queued (position {position})"
    p = run.progress
    return (f"run {run.id}: {run.status.value.lower()} epoch {min(p.epoch + 1, p.total_epochs)}/{p.total_epochs} "
            f"batch {p.step}/{p.steps_per_epoch} ({p.fraction:.0%})")


def cmd_train(args: argparse.Namespace) -> int:
    scheduler = _scheduler(args)
    store = scheduler.store
    spec = _apply_overrides(_load_spec(args), args)
    dataset = args.dataset or "mnist"
    run = scheduler.submit(spec, dataset, name=args.name or "")
    print(f"run {run.id} queued: {spec.name} on {dataset}", file=sys.stderr, flush=True)
    last = [""]
    interactive = sys.stderr.isatty()

    def show(current: Run) -> None:
        line = _progress_line(current, store.queue_position(current.id))
        if line != last[0] and (interactive or current.progress.step == 0 or current.status != RunStatus.RUNNING):
            print(("\r" if interactive else "") + line, end="" if interactive else "\n", file=sys.stderr, flush=True)
        last[0] = line

    try:
        run = scheduler.wait_for(run.id, on_poll=show)
    except KeyboardInterrupt:
        print(f"\nstopping run {run.id} ...", file=sys.stderr, flush=True)
        run = scheduler.stop(run.id, wait=scheduler.settings.stop_grace + 2)
    if interactive:
        print(file=sys.stderr)
    if run.error:
        print(f"run {run.id} {run.status.value}: {run.error}", file=sys.stderr)
    print(json.dumps(summary(run)), flush=True)
    return 0 if run.status == RunStatus.COMPLETED else 1


def cmd_validate(args: argparse.Namespace) -> int:
    from pipelines.modelspec.validation import shape_text, validate  # Keras: only for this command

    spec = _load_spec(args)
    result = validate(spec, args.dataset)
    if not result.ok:
        print(result.message(), file=sys.stderr)
        return 1
    print(f"{'#':>3}  {'name':<24} {'type':<24} {'output shape':<22} {'params':>12}")
    for row in result.rows:
        shape = shape_text(row.output_shape)
        print(f"{row.index + 1:>3}  {row.name:<24} {row.type:<24} {shape:<22} {row.params:>12,}")
    print(f"total params: {result.total_params:,}   trainable: {result.trainable_params:,}   "
          f"output: {result.output_activation}{' (logits)' if result.from_logits else ''}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    store = _store_for_reading(args)
    sweep_id = store.resolve_sweep_id(args.sweep) if args.sweep else None
    runs = store.list_runs(limit=args.limit, sweep_id=sweep_id)
    if args.json:
        print(json.dumps([_record(store, r)[0] for r in runs]))
        return 0
    print(f"{'id':<10}  {'status':<11} {'dataset':<13} {'created':<19} {'test acc':>8}  name")
    for r in runs:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at))
        acc = r.metrics.get("test_accuracy")
        print(f"{r.id:<10}  {r.status.value:<11} {r.dataset:<13} {created:<19} "
              f"{'' if acc is None else f'{acc:.4f}':>8}  {r.name}")
    return 0


def _record(store: SQLiteRunStore, run: Run) -> tuple[dict, list[Finding]]:
    """The run's JSON record with the training doctor's findings, which `runs --json` and
    `show --json` both print; and the findings themselves."""
    findings = diagnose_run(run, store.get_metrics(run.id))
    return run_record(run, store.queue_position(run.id), [f.to_dict() for f in findings]), findings


def cmd_show(args: argparse.Namespace) -> int:
    """The run's record, one `key value` line each; then the doctor's findings, each with its fix."""
    store = _store_for_reading(args)
    run = store.get_run(store.resolve_run_id(args.run))
    record, findings = _record(store, run)
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    for key, value in record.items():
        if key == "metrics":
            for name, figure in value.items():
                print(f"{name:<20} {'' if figure is None else f'{figure:.4f}'}")
        elif key not in ("spec", "findings"):
            print(f"{key:<20} {'' if value is None else value}")
    for finding in findings:
        print(f"{'finding':<20} {finding.message} (epochs {finding.start:.1f}-{finding.end:.1f}, {finding.severity})")
        if finding.remedy is not None:
            print(f"{'':<20} fix: {finding.remedy.label}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    scheduler = _scheduler(args)
    run = scheduler.stop(scheduler.store.resolve_run_id(args.run), wait=args.wait)
    print(f"run {run.id}: {run.status.value}" + (" (stop requested)" if run.status == RunStatus.RUNNING else ""))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    scheduler = _scheduler(args)
    run = scheduler.resume(scheduler.store.resolve_run_id(args.run))
    print(f"run {run.id} queued to resume after epoch {run.epochs_done}", file=sys.stderr, flush=True)
    if args.no_wait:
        return 0
    run = scheduler.wait_for(run.id)
    print(json.dumps(summary(run)), flush=True)
    return 0 if run.status == RunStatus.COMPLETED else 1


def cmd_store_check(args: argparse.Namespace) -> int:
    home = paths.home_dir(args.home)
    problem = check_store(home)
    if problem:
        print(problem)
        return 1
    if not (home / DB_NAME).exists():
        print(f"OK: no run store in {home} yet; the first run creates one")
        return 0
    with SQLiteRunStore(home) as store:
        print(f"OK: {store.db_path} holds {len(store.list_runs())} run(s)")
    return 0


def cmd_store_rebuild(args: argparse.Namespace) -> int:
    report = rebuild(args.home)
    counts = collections.Counter(run.status.value for run in report.runs)
    by_status = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    home = paths.home_dir(args.home)
    print(f"recovered {len(report.runs)} run(s) into {home / DB_NAME}" + (f" ({by_status})" if by_status else ""))
    if report.moved_aside:
        print(f"the previous file is kept as {report.moved_aside}")
    for problem in report.skipped:
        print(f"left out: {problem}", file=sys.stderr)
    return 0


def _exit_now(status: int) -> NoReturn:
    """Leave at once, logs flushed: TensorFlow's teardown at interpreter exit takes seconds, and a
    worker whose run has ended has nothing left to do."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def cmd_worker(args: argparse.Namespace) -> NoReturn:
    from pipelines.execution.registry import WorkerRegistry
    from pipelines.execution.worker import serve

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker {os.getpid()} %(message)s")
    status = 0
    try:
        store = SQLiteRunStore(args.home)
        serve(store, WorkerRegistry(store.home), max_running=args.max_running, idle_seconds=args.idle_seconds,
              data_dir=args.data_dir, speed=SpeedSettings(args.steps_per_execution, args.jit_compile))
    except LayerlabError as exc:
        log.error("worker exits: %s", exc)
        status = 1
    except Exception:
        log.exception("worker exits after an unexpected error")
        status = 1
    _exit_now(status)
