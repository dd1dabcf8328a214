"""`python -m pipelines ...`: Layerlab without a browser, for scripts, tests and benchmarks.

Every command turns a `LayerlabError` into its message on stderr and exit status 1: the same
words a page would show, never a traceback. Any other exception, the last guard, becomes a short
`error:` line too, with the traceback appended to `<home>/logs/cli.log`.
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from pipelines import paths
from pipelines.cli.commands import (cmd_resume, cmd_runs, cmd_show, cmd_stop, cmd_store_check, cmd_store_rebuild,
                                    cmd_train, cmd_validate, cmd_worker)
from pipelines.cli.dataset_commands import (DatasetNames, add_dataset_command, add_folder_options, dataset_argument,
                                             run_with_home)
from pipelines.cli.evaluate_commands import add_evaluate_command
from pipelines.cli.export_commands import add_export_command
from pipelines.cli.import_commands import add_import_command
from pipelines.cli.sweep_commands import add_sweep_command
from pipelines.errors import LayerlabError
from pipelines.modelspec.presets import PRESETS

_SHORT_MESSAGE = 300


def _add_store_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    store = sub.add_parser("store", help="check the run store, or rebuild it from the run folders")
    store_sub = store.add_subparsers(dest="store_command", required=True)
    check = store_sub.add_parser("check", parents=[common], help="print OK or what is wrong (exit 1)")
    check.set_defaults(func=cmd_store_check)
    rebuild = store_sub.add_parser("rebuild", parents=[common],
                                   help="write a fresh runs.db from the run folders (the old file is kept)")
    rebuild.set_defaults(func=cmd_store_rebuild)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines", description="Layerlab without the browser.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", help="the run store's folder (default: $LAYERLAB_HOME or ~/.layerlab)")
    common.add_argument("--data-dir", help="a folder with the standard dataset files (default: $LAYERLAB_DATA_DIR)")
    # A metavar, so that the hidden `worker` command is not listed among the choices.
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", parents=[common], help="train a model and wait for it")
    train.add_argument("--dataset", type=dataset_argument, default="mnist",
                       help="mnist, fashion_mnist, cifar10, an added dataset, or folder:PATH (added first)")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--preset", help="a preset: " + ", ".join(PRESETS))
    source.add_argument("--spec", help="a spec JSON file")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--optimizer")
    train.add_argument("--lr", type=float)
    train.add_argument("--loss")
    train.add_argument("--validation-split", type=float)
    train.add_argument("--seed", type=int, help="the seed for the weights, the split and the batch order")
    train.add_argument("--name")
    train.set_defaults(func=cmd_train)
    add_folder_options(train)

    validate = sub.add_parser("validate", parents=[common], help="print the layer table or the problems")
    validate.add_argument("--dataset", type=dataset_argument, default="mnist")
    vsource = validate.add_mutually_exclusive_group(required=True)
    vsource.add_argument("--spec")
    vsource.add_argument("--preset")
    validate.set_defaults(func=cmd_validate)

    runs = sub.add_parser("runs", parents=[common], help="list runs")
    runs.add_argument("--json", action="store_true")
    runs.add_argument("--limit", type=int)
    runs.add_argument("--sweep", metavar="ID", help="only the runs of this sweep (an id or a unique prefix)")
    runs.set_defaults(func=cmd_runs)

    add_sweep_command(sub, common, DatasetNames())
    add_dataset_command(sub, common)
    add_evaluate_command(sub, common)
    add_import_command(sub, common, DatasetNames())
    add_export_command(sub, common)

    resume_help = "resume a STOPPED or INTERRUPTED run, or a FAILED one that kept a checkpoint"
    for name, func, helptext in (("show", cmd_show, "one run as JSON"), ("stop", cmd_stop, "stop a run"),
                                 ("resume", cmd_resume, resume_help)):
        command = sub.add_parser(name, parents=[common], help=helptext)
        command.add_argument("run", help="a run id, or a unique prefix of one")
        command.set_defaults(func=func)
        if name == "stop":
            command.add_argument("--wait", type=float, default=7.0,
                                 help="seconds to wait for the run to stop (0: only ask); a worker that "
                                      "has not stopped 5 s after the request is killed")
        if name == "resume":
            command.add_argument("--no-wait", action="store_true")
        if name == "show":
            command.add_argument("--json", action="store_true", help="the run as JSON, with the keys of `runs --json`")

    _add_store_commands(sub, common)
    worker = sub.add_parser("worker", parents=[common])  # no help: started by the scheduler, not by people
    worker.add_argument("--max-running", type=int, default=1)
    worker.add_argument("--idle-seconds", type=float, default=600.0)
    worker.add_argument("--steps-per-execution", type=int, help="batches per call into TensorFlow (default: chosen)")
    worker.add_argument("--jit-compile", type=lambda text: text == "1", help="1 or 0 (default: Keras' auto)")
    worker.set_defaults(func=cmd_worker)
    return parser


def _log_traceback(home: str | None, argv: list[str]) -> Path | None:
    """Append the current exception's traceback to `<home>/logs/cli.log`; None if that fails too."""
    try:
        path = paths.home_dir(home) / "logs" / "cli.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} python -m pipelines {' '.join(argv)}\n"
                      f"{traceback.format_exc()}\n")
        return path
    except Exception:
        return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.home:
        args.home = str(Path(args.home).resolve())
    try:
        return run_with_home(args.func, args)
    except LayerlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last guard (RecursionError and MemoryError too): no traceback for a user
        log_path = _log_traceback(args.home, argv)
        text = (str(exc).strip().splitlines() or [""])[0][:_SHORT_MESSAGE]
        detail = f": {text}" if text else ""
        where = f" (the details are in {log_path})" if log_path else ""
        print(f"error: unexpected {type(exc).__name__}{detail}{where}", file=sys.stderr)
        return 1
