"""`python -m pipelines sweep`: one spec trained over combinations of settings, waited for.

It prints one JSON line per run as each ends (the run's summary with its sweep settings and best
epoch) and a last JSON line for the sweep with its best run; progress goes to stderr. Ctrl-C
cancels the sweep: queued runs end, the running one stops.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from pipelines.cli.commands import _apply_overrides, _load_spec
from pipelines.errors import SpecError
from pipelines.execution.scheduler import Scheduler, SchedulerSettings
from pipelines.modelspec.presets import PRESETS, get_preset
from pipelines.modelspec.sweep import parse_axis
from pipelines.runs.entities import Run, RunStatus, Sweep
from pipelines.runs.results import summary
from pipelines.runs.sqlite_store import SQLiteRunStore
from pipelines.runs.sweeps import best_of, best_run, elapsed_seconds, ranking_metric, sweep_progress

POLL_SECONDS = 0.5


def add_sweep_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser,
                      datasets: tuple[str, ...]) -> None:
    sweep = sub.add_parser("sweep", parents=[common], help="train one model over combinations of settings",
                           description="Queue one run per combination of the --vary values (and per seed with "
                                       "--repeats), wait for them, print one JSON line per run as it ends and a "
                                       "last line with the best run (by its best epoch's validation accuracy, or "
                                       "training accuracy for runs without a validation split; best_by says "
                                       "which).")
    sweep.add_argument("--dataset", choices=datasets, help="default: the preset's dataset, else mnist")
    source = sweep.add_mutually_exclusive_group()
    source.add_argument("--preset", help="a preset: " + ", ".join(PRESETS))
    source.add_argument("--spec", help="a spec JSON file")
    sweep.add_argument("--vary", action="append", required=True, metavar="SETTING=V1,V2,...",
                       help="a setting and its values: lr, optimizer, batch_size, epochs, seed, or a layer's "
                            "units@N, filters@N, rate@N (N counts layers from 1); up to 3 times")
    sweep.add_argument("--repeats", type=int, default=1, help="train each combination with this many seeds")
    sweep.add_argument("--epochs", type=int)
    sweep.add_argument("--batch-size", type=int)
    sweep.add_argument("--optimizer")
    sweep.add_argument("--lr", type=float)
    sweep.add_argument("--loss")
    sweep.add_argument("--validation-split", type=float)
    sweep.add_argument("--name")
    sweep.add_argument("--ray", metavar="ADDRESS",
                       help="run the sweep on this Ray cluster ('auto': the one `ray start` made on this machine; "
                            "default: $LAYERLAB_RAY_ADDRESS, else local worker processes)")
    sweep.set_defaults(func=cmd_sweep)


def _best_fields(points, metric: str | None) -> dict:
    """The best epoch by `metric` (None: nothing to rank), named so: training accuracy never as "val"."""
    best = best_of(points, metric) if metric else None
    return {"best_by": metric if best else None, "best_accuracy": best[0] if best else None,
            "best_val_accuracy": best[0] if best and metric == "val_accuracy" else None,
            "best_epoch": best[1] if best else None}


def _run_line(run: Run, points) -> dict:
    return {**summary(run), "sweep_id": run.sweep_id, "name": run.name, "settings": run.sweep_settings,
            "seed": run.seed, **_best_fields(points, ranking_metric([run], {run.id: points}))}


def _sweep_line(sweep: Sweep, runs: list[Run], store: SQLiteRunStore) -> dict:
    points = {run.id: store.get_metrics(run.id, kind="epoch") for run in runs}
    best = best_run(runs, points)
    progress = sweep_progress(runs)
    return {"sweep_id": sweep.id, "name": sweep.name, "dataset": sweep.dataset, "runs": progress.total,
            "completed": progress.completed, "failed": progress.failed, "stopped": progress.stopped,
            "interrupted": progress.interrupted, "cancelled": sweep.cancelled, "executor": sweep.executor,
            "wall_seconds": elapsed_seconds(runs), "best_run_id": best.id if best else None,
            "best_settings": best.sweep_settings if best else None, "best_seed": best.seed if best else None,
            **_best_fields(points[best.id] if best else (), ranking_metric(runs, points) if best else None),
            "best_test_accuracy": best.metrics.get("test_accuracy") if best else None}


def cmd_sweep(args: argparse.Namespace) -> int:
    axes = [parse_axis(text) for text in args.vary]
    spec = _apply_overrides(_load_spec(args), args)
    dataset = args.dataset or (get_preset(args.preset).dataset if args.preset else "mnist")
    overrides = {"ray_address": args.ray} if args.ray else {}
    if args.repeats is None or args.repeats < 1:
        raise SpecError(f"--repeats must be a positive integer. Received: {args.repeats}")
    scheduler = Scheduler(SQLiteRunStore(args.home), SchedulerSettings.from_env(data_dir=args.data_dir, **overrides))
    store = scheduler.store
    estimate = scheduler.estimate_sweep(spec, dataset, axes, repeats=args.repeats)
    sweep = scheduler.submit_sweep(spec, dataset, axes, repeats=args.repeats, name=args.name or "")
    where = f"the Ray cluster at {scheduler.settings.ray_address}" if sweep.executor == "ray" else "this machine"
    print(f"sweep {sweep.id} queued on {where}: {estimate.text()}", file=sys.stderr, flush=True)
    reported: set[str] = set()
    last_line = ""
    try:
        while True:
            scheduler.ensure_workers()
            # Progress first, then the runs: a run that ends between the two reads is still printed
            # before the loop sees the sweep finished (read the other way, its line was lost).
            progress = scheduler.sweep_progress(sweep.id)
            for run in scheduler.sweep_runs(sweep.id):
                if run.status.is_terminal and run.id not in reported:
                    reported.add(run.id)
                    print(json.dumps(_run_line(run, store.get_metrics(run.id, kind="epoch"))), flush=True)
            line = f"sweep {sweep.id}: {progress.text()}"
            if line != last_line:
                print(line, file=sys.stderr, flush=True)
                last_line = line
            if progress.finished:
                break
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        print(f"\ncancelling sweep {sweep.id} ...", file=sys.stderr, flush=True)
        scheduler.cancel_sweep(sweep.id, wait=scheduler.settings.stop_grace + 5)
        for run in scheduler.sweep_runs(sweep.id):
            if run.status.is_terminal and run.id not in reported:
                print(json.dumps(_run_line(run, store.get_metrics(run.id, kind="epoch"))), flush=True)
    scheduler.close()
    runs = scheduler.sweep_runs(sweep.id)
    final = _sweep_line(store.get_sweep(sweep.id), runs, store)
    print(json.dumps(final), flush=True)
    return 0 if final["completed"] and not final["cancelled"] else 1
