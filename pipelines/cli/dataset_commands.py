"""`dataset add|list|remove`, and `train --dataset folder:PATH` (add the folder, then train on it).

Added datasets live in the Layerlab home, so `--home` must reach every lookup of a dataset name
(the catalog, the workers): `run_with_home` exports it as LAYERLAB_HOME while a command runs.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from pipelines.data import added
from pipelines.data.catalog import BUILTIN, CATALOG
from pipelines.data.folders import COLORS, FITS, Settings
from pipelines.errors import DatasetError
from pipelines.io.dataset_import import add_dataset

FOLDER_PREFIX = "folder:"


def dataset_argument(text: str) -> str:
    """argparse type for --dataset: a built-in or added name, or folder:PATH. Whether an added
    name exists is checked when the command runs, in the home that --home names."""
    if text in BUILTIN or text.startswith(FOLDER_PREFIX) or added.NAME_PATTERN.match(text):
        return text
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(BUILTIN)}, an added dataset's name, or "
                                     f"folder:PATH; received {text!r}")


class DatasetNames:
    """argparse `choices` for commands that take a fixed tuple: any name `dataset_argument` accepts
    but folder:PATH (whether an added one exists is checked in the home --home names)."""

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and (text in BUILTIN or bool(added.NAME_PATTERN.match(text)))

    def __iter__(self):
        return iter([*BUILTIN, "an added dataset's name"])


def run_with_home(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command with LAYERLAB_HOME set to its --home, restoring the environment after."""
    if not getattr(args, "home", None):
        return func(args)
    previous = os.environ.get("LAYERLAB_HOME")
    os.environ["LAYERLAB_HOME"] = args.home
    try:
        return func(args)
    finally:
        if previous is None:
            os.environ.pop("LAYERLAB_HOME", None)
        else:
            os.environ["LAYERLAB_HOME"] = previous


def _add_settings_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-size", type=int, default=96, help="square side in pixels (default 96)")
    parser.add_argument("--fit", choices=FITS, default="stretch",
                        help="a non-square photo is stretched, centre-cropped or padded (default stretch)")
    parser.add_argument("--color", choices=COLORS, default="rgb", help="default rgb")


def _progress(stage: str, done: int, total: int, seconds: float) -> None:
    """Every 256 images: how many are decoded, how fast, and about how long the rest take."""
    if stage == "decode" and (done == total or done % 256 == 0):
        rate = done / seconds if seconds else 0.0
        left = f"about {(total - done) / rate:.0f} s left" if rate and done < total else f"{seconds:.1f} s"
        print(f"decoded {done}/{total} images ({rate:.0f}/s, {left})", file=sys.stderr, flush=True)


def _found_text(manifest: dict) -> str:
    lines = [f"dataset {manifest['name']}: {len(manifest['classes'])} classes, "
             f"{manifest['image_size']}x{manifest['image_size']} {manifest['color']} ({manifest['fit']}), "
             f"decoded in {manifest['decode_seconds']:.1f} s"]
    for split, counts in manifest["counts"].items():
        per_class = ", ".join(f"{name} {count}" for name, count in zip(manifest["classes"], counts))
        lines.append(f"  {split}: {sum(counts)} images ({per_class})")
    lines += [f"  note: {note}" for note in manifest["notes"]]
    lines += [f"  warning: {warning}" for warning in manifest["warnings"]]
    lines += [f"  unreadable: {item['file']}: {item['reason']}" for item in manifest["unreadable"]]
    lines += [f"  skipped: {item['file']}: {item['reason']}" for item in manifest["skipped"][:20]]
    return "\n".join(lines)


def cmd_dataset_add(args: argparse.Namespace) -> int:
    settings = Settings(args.image_size, args.fit, args.color)
    manifest = add_dataset(args.name, args.source, settings, home=args.home, progress=_progress,
                           replace=args.replace)
    print(_found_text(manifest))
    return 0


def cmd_dataset_list(args: argparse.Namespace) -> int:
    rows = []
    for name in CATALOG:
        info = CATALOG[name]
        kind = "built-in" if name in BUILTIN else "added"
        rows.append({"name": name, "kind": kind, "classes": info.num_classes, "input_shape": list(info.input_shape)})
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            shape = "x".join(map(str, row["input_shape"]))
            print(f"{row['name']:<24} {row['kind']:<9} {row['classes']:>3} classes  {shape}")
    return 0


def cmd_dataset_remove(args: argparse.Namespace) -> int:
    added.remove(args.name, args.home)
    print(f"removed dataset {args.name}")
    return 0


def add_dataset_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    dataset = sub.add_parser("dataset", help="add an image-folder dataset, or list the datasets")
    dataset_sub = dataset.add_subparsers(dest="dataset_command", required=True)
    add = dataset_sub.add_parser("add", parents=[common], help="decode a folder or .zip of class folders once")
    add.add_argument("name", help="lower-case letters, digits, '-' and '_'")
    add.add_argument("--from", dest="source", required=True, metavar="PATH_OR_ZIP")
    _add_settings_options(add)
    add.add_argument("--replace", action="store_true", help="replace an added dataset of the same name")
    add.set_defaults(func=cmd_dataset_add)
    listing = dataset_sub.add_parser("list", parents=[common], help="built-in and added datasets")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_dataset_list)
    remove = dataset_sub.add_parser("remove", parents=[common], help="delete an added dataset")
    remove.add_argument("name")
    remove.set_defaults(func=cmd_dataset_remove)


# --- train --dataset folder:PATH -----------------------------------------------------------


def folder_dataset_name(folder: Path, settings: Settings) -> str:
    """The name a folder gets when trained on directly: its own name, size and colour."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", folder.name.lower()).strip("-_")[:24] or "folder"
    gray = "-gray" if settings.color == "grayscale" else ""
    return f"{slug}-{settings.image_size}{gray}-{settings.fit}"


def add_folder_options(train: argparse.ArgumentParser) -> None:
    """--image-size/--fit/--color for `--dataset folder:PATH`, and the step that adds the folder."""
    _add_settings_options(train)
    plain = train.get_default("func")

    def train_maybe_from_folder(args: argparse.Namespace) -> int:
        if args.dataset and args.dataset.startswith(FOLDER_PREFIX):
            args.dataset = _added_folder(Path(args.dataset[len(FOLDER_PREFIX):]).expanduser(), args)
        return plain(args)

    train.set_defaults(func=train_maybe_from_folder)


def _added_folder(folder: Path, args: argparse.Namespace) -> str:
    """Add the folder (or reuse it when it was added from the same place with the same settings)."""
    settings = Settings(args.image_size, args.fit, args.color)
    name = folder_dataset_name(folder, settings)
    if name in added.added_infos(args.home):
        origin = added.read_manifest(name, args.home).get("origin")
        if origin == str(folder.resolve()):
            print(f"using dataset {name} (added from {origin} before)", file=sys.stderr)
            return name
        raise DatasetError(f"A dataset named {name!r} already exists, added from {origin}; add this folder under "
                           "another name with `dataset add NAME --from PATH`")
    manifest = add_dataset(name, folder, settings, home=args.home, progress=_progress)
    print(_found_text(manifest), file=sys.stderr)
    return name
