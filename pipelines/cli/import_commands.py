"""`python -m pipelines import FILE.keras --dataset D [--name N]`: a teammate's `.keras` model as a
new run, checked and rebuilt in a sandboxed process (pipelines/io/keras_import.py).

It prints the new run's id on stdout and the run's note (what the import mapped, e.g. a
learning-rate schedule to its initial rate) on stderr; a refused file is one `error: Refused: ...`
line on stderr, exit status 1, and nothing is stored.
"""
from __future__ import annotations

import argparse
import sys

from pipelines.io.keras_import import import_model
from pipelines.runs.sqlite_store import SQLiteRunStore


def add_import_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser,
                       datasets: tuple[str, ...]) -> None:
    command = sub.add_parser("import", parents=[common], help="import a .keras model as a new run",
                             description="Check a Keras 3 .keras file (a Sequential model of Layerlab's layers) "
                                         "without running anything in it, rebuild it, evaluate it on the "
                                         "dataset's test set and store it as a COMPLETED run; print its id.")
    command.add_argument("file", help="the .keras file")
    command.add_argument("--dataset", choices=datasets, required=True, help="the dataset the model was trained on")
    command.add_argument("--name", default="", help="the run's name (default: the file's name)")
    command.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    with SQLiteRunStore(args.home) as store:
        run = import_model(store, args.file, args.dataset, name=args.name, data_dir=args.data_dir)
    print(run.id)
    print(f"note: {run.note}", file=sys.stderr)
    return 0
