"""`python -m pipelines export RUN --script out.py [--zip out.zip] [--keras out.keras] ...`.

Writes what was asked for and prints one line per file; a script (alone or in the zip) is
checked for parity with the app's model first, and the check's verdict is the last line. A
failed check still writes the files, and exits 1, so the difference can be looked at.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from pipelines.cli.commands import _store
from pipelines.errors import LayerlabError
from pipelines.io.export import bundle, parity_for, require_model, run_script
from pipelines.runs.artifacts import HISTORY_FILE, SPEC_FILE

_OUTPUTS = ("script", "zip", "keras", "spec", "history")


def add_export_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    export = sub.add_parser("export", parents=[common], help="write a run's script, model, spec, history or zip",
                            description="Take a run out of Layerlab: a standalone Keras script that trains it "
                                        "again (checked to build the same model), its model.keras, spec JSON, "
                                        "history CSV, or a zip of them all.")
    export.add_argument("run", help="a run id, or a unique prefix of one")
    export.add_argument("--script", metavar="OUT.py", help="the standalone Python script (plain Keras)")
    export.add_argument("--zip", metavar="OUT.zip", help="model.keras, spec.json, history.csv, the script, parity.json")
    export.add_argument("--keras", metavar="OUT.keras", help="the trained model")
    export.add_argument("--spec", metavar="OUT.json", help="the model spec")
    export.add_argument("--history", metavar="OUT.csv", help="the epochs' metrics")
    export.set_defaults(func=cmd_export)


def _write(path: str, data: bytes | Path) -> None:
    try:
        if isinstance(data, Path):
            shutil.copyfile(data, path)
        else:
            Path(path).write_bytes(data)
    except OSError as exc:
        raise LayerlabError(f"Cannot write {path!r}: {exc.strerror or exc}") from None
    print(f"wrote {path}")


def _run_file(run_dir: Path, name: str, run_id: str) -> Path:
    path = run_dir / name
    if not path.is_file():
        raise LayerlabError(f"Run {run_id} has no {name} yet: it is written when the run ends")
    return path


def cmd_export(args: argparse.Namespace) -> int:
    if not any(getattr(args, name) for name in _OUTPUTS):
        raise LayerlabError("Nothing to export: give at least one of --script, --zip, --keras, --spec, --history")
    store = _store(args)
    run = store.get_run(store.resolve_run_id(args.run))
    run_dir = store.run_dir(run.id)
    sources = {"keras": lambda: require_model(run, run_dir), "spec": lambda: _run_file(run_dir, SPEC_FILE, run.id),
               "history": lambda: _run_file(run_dir, HISTORY_FILE, run.id)}
    files = {name: finder() for name, finder in sources.items() if getattr(args, name)}  # all found before any write
    parity = None
    if args.script or args.zip:
        script = run_script(run)
        parity = parity_for(run, run_dir, script)
        if args.script:
            _write(args.script, script.encode())
        if args.zip:
            _write(args.zip, bundle(run, run_dir, script, parity))
    for name, source in files.items():
        _write(getattr(args, name), source)
    if parity is not None:
        print(parity.text)
        return 0 if parity.ok else 1
    return 0
