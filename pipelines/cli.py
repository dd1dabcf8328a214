"""`python -m pipelines ...`: Layerlab without a browser, for scripts, tests and benchmarks.

Every command turns a `LayerlabError` into its message on stderr and exit status 1: the same
words a page would show, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from pipelines.datasets import CATALOG
from pipelines.errors import LayerlabError, SpecError
from pipelines.run_store import Run, RunStatus, SQLiteRunStore

FINAL_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
              "wall_seconds", "samples_per_second")


def _store(args: argparse.Namespace) -> SQLiteRunStore:
    return SQLiteRunStore(args.home)


def _load_spec(args: argparse.Namespace):
    from pipelines.presets import get_preset
    from pipelines.spec import ModelSpec

    if args.spec:
        try:
            text = Path(args.spec).read_text()
        except OSError as exc:
            raise SpecError(f"Cannot read the spec file {args.spec!r}: {exc.strerror}") from None
        return ModelSpec.from_json(text)
    return get_preset(args.preset or "mlp-128x2").spec


def _apply_overrides(spec, args: argparse.Namespace):
    from pipelines.spec import OPTIMIZERS

    fit = {k: v for k, v in {"epochs": args.epochs, "batch_size": args.batch_size,
                             "validation_split": args.validation_split}.items() if v is not None}
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


def summary(run: Run) -> dict:
    """The one JSON line `train` ends with."""
    return {"run_id": run.id, "status": run.status.value, "error": run.error,
            **{key: run.metrics.get(key) for key in FINAL_KEYS}}


def _progress_line(run: Run, position: int | None) -> str:
    if run.status == RunStatus.QUEUED:
        return f"run {run.id}: queued (position {position})"
    p = run.progress
    return (f"run {run.id}: {run.status.value.lower()} epoch {min(p.epoch + 1, p.total_epochs)}/{p.total_epochs} "
            f"batch {p.step}/{p.steps_per_epoch} ({p.fraction:.0%})")


def cmd_train(args: argparse.Namespace) -> int:
    from pipelines import scheduler

    if args.data_dir:
        os.environ["LAYERLAB_DATA_DIR"] = str(Path(args.data_dir).resolve())
    store = _store(args)
    spec = _apply_overrides(_load_spec(args), args)
    dataset = args.dataset or "mnist"
    run = scheduler.submit_run(store, spec, dataset, name=args.name or "")
    print(f"run {run.id} queued: {spec.name} on {dataset}", file=sys.stderr, flush=True)
    last = [""]
    interactive = sys.stderr.isatty()

    def show(current: Run) -> None:
        line = _progress_line(current, store.queue_position(current.id))
        if line != last[0] and (interactive or current.progress.step == 0 or current.status != RunStatus.RUNNING):
            print(("\r" if interactive else "") + line, end="" if interactive else "\n", file=sys.stderr, flush=True)
        last[0] = line

    try:
        run = scheduler.wait_for(store, run.id, on_poll=show)
    except KeyboardInterrupt:
        print(f"\nstopping run {run.id} ...", file=sys.stderr, flush=True)
        run = scheduler.stop_run(store, run.id, wait=scheduler.STOP_GRACE + 2)
    if interactive:
        print(file=sys.stderr)
    if run.error:
        print(f"run {run.id} {run.status.value}: {run.error}", file=sys.stderr)
    print(json.dumps(summary(run)), flush=True)
    return 0 if run.status == RunStatus.COMPLETED else 1


def cmd_validate(args: argparse.Namespace) -> int:
    from pipelines.validation import shape_text, validate

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
    from pipelines import scheduler

    store = _store(args)
    scheduler.reap(store)
    runs = store.list_runs(limit=args.limit)
    if args.json:
        print(json.dumps([{"id": r.id, "name": r.name, "status": r.status.value, "dataset": r.dataset,
                           "created_at": r.created_at, "metrics": r.metrics, "error": r.error} for r in runs]))
        return 0
    print(f"{'id':<10}  {'status':<11} {'dataset':<13} {'created':<19} {'test acc':>8}  name")
    for r in runs:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at))
        acc = r.metrics.get("test_accuracy")
        print(f"{r.id:<10}  {r.status.value:<11} {r.dataset:<13} {created:<19} "
              f"{'' if acc is None else f'{acc:.4f}':>8}  {r.name}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from pipelines import scheduler

    store = _store(args)
    scheduler.reap(store)
    run = store.get_run(store.resolve_run_id(args.run))
    print(json.dumps({"id": run.id, "name": run.name, "status": run.status.value, "dataset": run.dataset,
                      "error": run.error, "epochs_done": run.epochs_done, "best_epoch": run.best_epoch,
                      "queue_position": store.queue_position(run.id), "metrics": run.metrics,
                      "created_at": run.created_at, "started_at": run.started_at,
                      "finished_at": run.finished_at, "spec": run.spec}, indent=2))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from pipelines import scheduler

    store = _store(args)
    run = scheduler.stop_run(store, store.resolve_run_id(args.run), wait=args.wait)
    print(f"run {run.id}: {run.status.value}" + (" (stop requested)" if run.status == RunStatus.RUNNING else ""))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from pipelines import scheduler

    if args.data_dir:
        os.environ["LAYERLAB_DATA_DIR"] = str(Path(args.data_dir).resolve())
    store = _store(args)
    run = scheduler.resume_run(store, store.resolve_run_id(args.run))
    print(f"run {run.id} queued to resume after epoch {run.epochs_done}", file=sys.stderr, flush=True)
    if args.no_wait:
        return 0
    run = scheduler.wait_for(store, run.id)
    print(json.dumps(summary(run)), flush=True)
    return 0 if run.status == RunStatus.COMPLETED else 1


def cmd_worker(args: argparse.Namespace) -> int:
    import logging

    from pipelines.worker import serve

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker {os.getpid()} %(message)s")
    serve(SQLiteRunStore(args.home), max_running=args.max_running, idle_seconds=args.idle_seconds,
          data_dir=args.data_dir)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines", description="Layerlab without the browser.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", help="the run store's folder (default: $LAYERLAB_HOME or ~/.layerlab)")
    common.add_argument("--data-dir", help="a folder with the standard dataset files (default: $LAYERLAB_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", parents=[common], help="train a model and wait for it")
    train.add_argument("--dataset", choices=tuple(CATALOG), default="mnist")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--preset", help="a preset: mlp-512, mlp-128x2, cifar-mlp, cifar-cnn, lenet")
    source.add_argument("--spec", help="a spec JSON file")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--optimizer")
    train.add_argument("--lr", type=float)
    train.add_argument("--loss")
    train.add_argument("--validation-split", type=float)
    train.add_argument("--name")
    train.set_defaults(func=cmd_train)

    validate = sub.add_parser("validate", parents=[common], help="print the layer table or the problems")
    validate.add_argument("--dataset", choices=tuple(CATALOG), default="mnist")
    vsource = validate.add_mutually_exclusive_group(required=True)
    vsource.add_argument("--spec")
    vsource.add_argument("--preset")
    validate.set_defaults(func=cmd_validate)

    runs = sub.add_parser("runs", parents=[common], help="list runs")
    runs.add_argument("--json", action="store_true")
    runs.add_argument("--limit", type=int)
    runs.set_defaults(func=cmd_runs)

    for name, func, helptext in (("show", cmd_show, "one run as JSON"), ("stop", cmd_stop, "stop a run"),
                                 ("resume", cmd_resume, "resume a STOPPED or INTERRUPTED run")):
        command = sub.add_parser(name, parents=[common], help=helptext)
        command.add_argument("run", help="a run id, or a unique prefix of one")
        command.set_defaults(func=func)
        if name == "stop":
            command.add_argument("--wait", type=float, default=7.0,
                                 help="seconds to wait for the run to stop (0: only ask); a worker that "
                                      "has not stopped 5 s after the request is killed")
        if name == "resume":
            command.add_argument("--no-wait", action="store_true")

    worker = sub.add_parser("worker", parents=[common], help=argparse.SUPPRESS)
    worker.add_argument("--max-running", type=int, default=1)
    worker.add_argument("--idle-seconds", type=float, default=600.0)
    worker.set_defaults(func=cmd_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.home:
        args.home = str(Path(args.home).resolve())
    try:
        return args.func(args)
    except LayerlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
