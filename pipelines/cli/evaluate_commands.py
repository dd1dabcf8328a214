"""`evaluate RUN --folder PATH`: a finished run on a labelled folder of photos, as one JSON line."""
from __future__ import annotations

import argparse
import json

from pipelines.errors import RunStateError
from pipelines.io.dataset_import import unpacked
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pipelines.inference.folder_eval import evaluate_folder  # loads TensorFlow with the model

    store = SQLiteRunStore(args.home)
    run = store.get_run(store.resolve_run_id(args.run))
    if run.status != RunStatus.COMPLETED:
        raise RunStateError(f"Run {run.id} is {run.status.value}; only a COMPLETED run has a model to evaluate")
    with unpacked(args.folder, home=args.home) as (folder, _):
        result = evaluate_folder(store.run_dir(run.id), run.dataset, folder, what=args.folder)
    line = {"run_id": run.id, "dataset": run.dataset, "folder": args.folder, **result.to_dict(),
            "run_test_accuracy": run.metrics.get("test_accuracy")}
    print(json.dumps(line))
    return 0


def add_evaluate_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    evaluate = sub.add_parser("evaluate", parents=[common],
                              help="a finished run on a labelled folder (class subfolders named as the run's classes)")
    evaluate.add_argument("run", help="a run id, or a unique prefix of one")
    evaluate.add_argument("--folder", required=True, help="a folder (or .zip) of class folders of photos")
    evaluate.set_defaults(func=cmd_evaluate)
