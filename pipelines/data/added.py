"""Datasets a user added from an image folder, kept under `<LAYERLAB_HOME>/datasets/<name>/`.

Each one is a folder with `arrays.npz` (uint8 images and int64 labels per split, read with pickling
disabled) and `manifest.json` (classes, counts, image size, fit, colour, origin, unreadable files,
warnings). The catalog lists them beside MNIST, so every page, the CLI and the workers use them by
name. A dataset is written into a temporary folder and renamed into place in one step: a failed or
refused import leaves nothing behind.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipelines import paths
from pipelines.data.catalog import BUILTIN, Dataset, DatasetInfo
from pipelines.data.folders import Decoded, Scan, Settings, balance_warnings
from pipelines.data.readers import finish_dataset
from pipelines.errors import DatasetError

ARRAYS = "arrays.npz"
MANIFEST = "manifest.json"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_FORMAT = 1


def datasets_dir(home: str | os.PathLike | None = None) -> Path:
    return paths.home_dir(home) / "datasets"


def check_name(name: str, home: str | os.PathLike | None = None, *, replace: bool = False) -> str:
    """`name` if it can name a new dataset: lower-case letters, digits, '-' and '_', not a built-in."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise DatasetError("A dataset name must be 1 to 40 lower-case letters, digits, '-' or '_', starting with a "
                           f"letter or digit. Received: name={name!r}")
    if name in BUILTIN:
        raise DatasetError(f"{name!r} is a built-in dataset; choose another name")
    if not replace and (datasets_dir(home) / name / MANIFEST).is_file():
        raise DatasetError(f"A dataset named {name!r} already exists; choose another name or replace it")
    return name


def _names(names: Sequence[str], shown: int = 5) -> str:
    listed = ", ".join(repr(n) for n in list(names)[:shown])
    return listed + (f" and {len(names) - shown} more" if len(names) > shown else "")


def check_replacement(name: str, settings: Settings, classes: Sequence[str],
                      home: str | os.PathLike | None = None) -> None:
    """A replacement keeps the image size, colour channels and classes of the dataset it replaces:
    the runs trained on it are tested on whatever the name holds, and would no longer fit. A
    dataset whose manifest cannot be read may be replaced by anything: nothing can be tested on it."""
    if not (datasets_dir(home) / name / MANIFEST).is_file():
        return
    try:
        old = read_manifest(name, home)
    except DatasetError:
        return
    problems = []
    if old["image_size"] != settings.image_size or old["channels"] != settings.channels:
        problems.append(f"it is {old['image_size']} px with {old['channels']} colour channel(s), the replacement "
                        f"{settings.image_size} px with {settings.channels}")
    if list(old["classes"]) != list(classes):
        lost, new = [c for c in old["classes"] if c not in classes], [c for c in classes if c not in old["classes"]]
        problems.append("the replacement " + " and ".join(
            [*([f"lacks the class(es) {_names(lost)}"] if lost else []),
             *([f"adds {_names(new)}"] if new else [])] or ["has the same classes in another order"]))
    if problems:
        raise DatasetError(f"Dataset {name!r} cannot be replaced so: {'; '.join(problems)}. The runs trained on it "
                           "could no longer be tested: add the new one under another name, or replace it with the "
                           "same size, colour and classes")


def _stamp(folder: Path) -> int:
    try:
        return folder.stat().st_mtime_ns
    except OSError:
        return 0


def added_infos(home: str | os.PathLike | None = None) -> dict[str, DatasetInfo]:
    """Every added dataset's catalog entry, by name (read again only when the folder changed)."""
    folder = datasets_dir(home)
    return dict(_infos(folder, _stamp(folder)))


@functools.lru_cache(maxsize=8)
def _infos(folder: Path, stamp: int) -> tuple[tuple[str, DatasetInfo], ...]:
    found = []
    if folder.is_dir():
        for entry in sorted(folder.iterdir()):
            if NAME_PATTERN.match(entry.name) and (entry / MANIFEST).is_file():
                try:
                    found.append((entry.name, info_from_manifest(read_manifest(entry.name, folder.parent))))
                except DatasetError:
                    continue  # a damaged manifest hides that one dataset, not the catalog
    return tuple(found)


def read_manifest(name: str, home: str | os.PathLike | None = None) -> dict:
    path = datasets_dir(home) / name / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        manifest["classes"], manifest["image_size"], manifest["channels"]  # noqa: B018 - required keys
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"{path} is not a readable dataset manifest: {error}") from None
    return manifest


def info_from_manifest(manifest: dict) -> DatasetInfo:
    size, channels = int(manifest["image_size"]), int(manifest["channels"])
    return DatasetInfo(
        name=manifest["name"], title=manifest["name"], class_names=tuple(manifest["classes"]),
        input_shape=(size, size, channels), source="an image folder added to this Layerlab (see its manifest for where from)",
        licence="the user's own images", local_files=f"datasets/{manifest['name']}/{ARRAYS} in the Layerlab home",
    )


def locate(name: str, home: str | os.PathLike | None = None) -> str | None:
    path = datasets_dir(home) / name / ARRAYS
    return str(path) if path.is_file() else None


def load(name: str, home: str | os.PathLike | None = None) -> Dataset:
    """The stored uint8 arrays of an added dataset (never the source photos)."""
    path = datasets_dir(home) / name / ARRAYS
    if not path.is_file():
        raise DatasetError(f"The added dataset {name!r} has no {ARRAYS} in {path.parent}; add it again")
    return _load_cached(name, path, _stamp(path), str(paths.home_dir(home)))


def clear_cache() -> None:
    _load_cached.cache_clear()


@functools.lru_cache(maxsize=2)
def _load_cached(name: str, path: Path, stamp: int, home: str) -> Dataset:
    """The arrays, with the folder's own validation split when it had one. A folder with
    validation/ and no test/ stores no test arrays: its validation split is also its test set."""
    info = info_from_manifest(read_manifest(name, home))
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val")
                      if key in npz.files}
            if "x_test" not in arrays:
                arrays["x_test"], arrays["y_test"] = arrays["x_val"], arrays["y_val"]
            return finish_dataset(info, origin=str(path), **arrays)
    except (OSError, ValueError, KeyError, EOFError) as error:
        raise DatasetError(f"{path} is not a readable dataset file: {error}") from None


def build_manifest(name: str, scan: Scan, decoded: Decoded, settings: Settings, origin: str) -> dict:
    counts = {split: np.bincount(decoded.y[decoded.split == split], minlength=len(scan.classes)).tolist()
              for split in ("train", "validation", "test") if np.any(decoded.split == split)}
    return {
        "format": _FORMAT, "name": name, "classes": list(scan.classes), "image_size": settings.image_size,
        "channels": settings.channels, "fit": settings.fit, "color": settings.color, "origin": origin,
        "counts": counts, "split_made": scan.split_made, "notes": scan.notes, "warnings": balance_warnings(scan.classes, counts),
        "unreadable": [{"file": f, "reason": r} for f, r in decoded.unreadable],
        "skipped": [{"file": f, "reason": r} for f, r in scan.skipped],
        "decode_seconds": round(decoded.seconds, 3), "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def save(name: str, scan: Scan, decoded: Decoded, settings: Settings, origin: str,
         home: str | os.PathLike | None = None, *, replace: bool = False) -> dict:
    """Write the arrays and manifest into a temporary folder, then rename it into place."""
    check_name(name, home, replace=replace)
    if replace:
        check_replacement(name, settings, scan.classes, home)
    if not np.any(decoded.split == "train") or len(np.unique(decoded.y[decoded.split == "train"])) < 2:
        raise DatasetError(f"Fewer than two classes of {name!r} could be read for training; nothing was added")
    root = datasets_dir(home)
    root.mkdir(parents=True, exist_ok=True)
    manifest = build_manifest(name, scan, decoded, settings, origin)
    staging = Path(tempfile.mkdtemp(prefix=f".adding-{name}-", dir=root))
    try:
        arrays = {}
        has_validation = bool(np.any(decoded.split == "validation"))
        for split, key in (("train", "train"), ("test", "test"), ("validation", "val")):
            chosen = decoded.split == split
            # No test/ beside validation/: validation/ is the test set too, stored once (see `load`).
            if split == "train" or np.any(chosen) or (split == "test" and not has_validation):
                arrays[f"x_{key}"], arrays[f"y_{key}"] = decoded.x[chosen], decoded.y[chosen]
        np.savez(staging / ARRAYS, **arrays)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        target = root / name
        if replace and target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def remove(name: str, home: str | os.PathLike | None = None) -> None:
    folder = datasets_dir(home) / name
    if not NAME_PATTERN.match(name or "") or not (folder / MANIFEST).is_file():
        raise DatasetError(f"No added dataset is named {name!r}")
    shutil.rmtree(folder)
