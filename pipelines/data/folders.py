"""Image folders as datasets: find the classes and splits, then decode every photo once to uint8.

A folder holds `class_name/*.jpg|png|...`, or `train/`, `validation/` (or `val/`) and `test/`
folders that each hold class folders. Photos come in any size and orientation, so each one is
decoded once with Pillow, turned upright from its EXIF orientation (a phone photo is often stored
sideways), fitted to a square and written into a preallocated uint8 array: training then reads
arrays and never decodes a photo again. Sizes are checked before anything is allocated.

numpy and Pillow only, so pages can scan a folder without TensorFlow.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pipelines.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# Folder name -> split; `val` is the Keras-tutorial spelling of `validation`.
SPLIT_FOLDERS = {"train": "train", "validation": "validation", "val": "validation", "test": "test"}
SPLITS = ("train", "validation", "test")
FITS = ("stretch", "crop", "pad")
COLORS = ("rgb", "grayscale")
IMAGE_SIZE_RANGE = (8, 512)
TINY_CLASS = 10  # fewer images than this in a class gets a warning naming it
AUTO_TEST_SHARE = 0.2  # held out as the test split, per class, when the folder has no splits
SPLIT_SEED = 0
# Folders that zip tools and file browsers add; never classes.
_IGNORED = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise DatasetError(f"`{name}` must be a positive integer. Received: {name}={raw!r}")
    return int(raw)


def max_images() -> int:
    """Setting LAYERLAB_DATASET_MAX_IMAGES: the most images one added dataset may hold."""
    return _env_int("LAYERLAB_DATASET_MAX_IMAGES", 100_000)


def max_array_bytes() -> int:
    """Setting LAYERLAB_DATASET_MAX_MB: the most memory the decoded arrays of one dataset may take."""
    return _env_int("LAYERLAB_DATASET_MAX_MB", 4096) * 1024 * 1024


def max_source_pixels() -> int:
    """Setting LAYERLAB_DATASET_MAX_PIXELS: a photo with more pixels than this is reported unreadable
    rather than decoded (a decompression bomb costs memory before it costs time)."""
    return _env_int("LAYERLAB_DATASET_MAX_PIXELS", 40_000_000)


@dataclass(frozen=True)
class Settings:
    """How each photo becomes an array: a square of `image_size` pixels, fitted and coloured so."""

    image_size: int = 96
    fit: str = "stretch"
    color: str = "rgb"

    def __post_init__(self) -> None:
        low, high = IMAGE_SIZE_RANGE
        size = self.image_size
        if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= high:
            raise DatasetError(f"`image_size` must be an integer from {low} to {high}. Received: image_size={size!r}")
        if self.fit not in FITS:
            raise DatasetError(f"`fit` must be one of: {', '.join(FITS)}. Received: fit={self.fit!r}")
        if self.color not in COLORS:
            raise DatasetError(f"`color` must be one of: {', '.join(COLORS)}. Received: color={self.color!r}")

    @property
    def channels(self) -> int:
        return 3 if self.color == "rgb" else 1

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.channels)


@dataclass
class Scan:
    """What a folder holds: classes (sorted), one (relative path, class index, split) per image."""

    root: Path
    classes: tuple[str, ...]
    files: list[tuple[str, int, str]]
    splits_given: bool
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    split_made: bool = False  # the test split was held out here, not given by the folder

    def counts(self) -> dict[str, list[int]]:
        """Images per class in each split that has any, in class order."""
        out = {split: [0] * len(self.classes) for split in SPLITS}
        for _, label, split in self.files:
            out[split][label] += 1
        return {split: counts for split, counts in out.items() if any(counts)}

    def warnings(self) -> list[str]:
        return balance_warnings(self.classes, self.counts())


def balance_warnings(classes: tuple[str, ...], counts: dict[str, list[int]]) -> list[str]:
    """A class with very few images, or a split that has none of a class, named."""
    found = []
    totals = np.sum(list(counts.values()), axis=0)
    for name, total in zip(classes, totals):
        if total < TINY_CLASS:
            found.append(f"class {name!r} has only {int(total)} image(s); {TINY_CLASS} or more are advised")
    for split, per_class in counts.items():
        empty = [name for name, count in zip(classes, per_class) if count == 0]
        if empty:
            found.append(f"the {split} split has no images of class(es): {', '.join(map(repr, empty))}")
    return found


SYMLINK_REASON = "a symbolic link; links are not followed (copy the file or folder in instead)"


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name not in _IGNORED and not path.is_symlink()


def _subfolders(folder: Path, root: Path | None = None, skipped: list[tuple[str, str]] | None = None) -> list[Path]:
    """The real folders in `folder`; a symlinked one is reported in `skipped` (when given), not followed."""
    found = []
    for path in sorted(folder.iterdir()):
        if skipped is not None and path.is_symlink() and not path.name.startswith(".") and root is not None:
            skipped.append((path.relative_to(root).as_posix(), SYMLINK_REASON))
        elif _visible(path) and path.is_dir():
            found.append(path)
    return found


def _class_images(folder: Path, root: Path, skipped: list[tuple[str, str]]) -> list[str]:
    """Image files under a class folder (subfolders included), as paths relative to `root`; a
    symbolic link is reported in `skipped` with its reason, never followed."""
    found = []
    links: list[Path] = []
    for path in sorted(folder.rglob("*")):
        if any(link in path.parents for link in links):
            continue  # inside a linked folder, which is reported once
        if path.is_symlink() and not path.name.startswith(".") and path.name not in _IGNORED:
            links.append(path)
            skipped.append((path.relative_to(root).as_posix(), SYMLINK_REASON))
            continue
        if not _visible(path) or any(part in _IGNORED for part in path.relative_to(root).parts):
            continue
        if path.is_file():
            relative = path.relative_to(root).as_posix()
            if path.suffix.lower() in IMAGE_SUFFIXES:
                found.append(relative)
            else:
                skipped.append((relative, f"not an image file (allowed: {', '.join(sorted(IMAGE_SUFFIXES))})"))
    return found


def _unwrap(root: Path) -> Path:
    """A zip of a folder holds that one folder: look inside it, so `photos.zip/photos/...` works."""
    while True:
        folders = _subfolders(root)
        has_files = any(_visible(p) and p.is_file() for p in root.iterdir())
        if len(folders) != 1 or has_files or folders[0].name.lower() in SPLIT_FOLDERS:
            return root
        if not _subfolders(folders[0]):
            return root  # that one folder holds only files: it is a (single) class
        root = folders[0]


def scan_folder(folder: str | os.PathLike, *, labelled_only: bool = False, what: str | None = None) -> Scan:
    """Find the classes and splits of an image folder; DatasetError if it is not a dataset.

    `labelled_only`: a folder to evaluate on, not train on: one class is enough, and no split is made.
    `what`: the source as the user knows it, named in refusals (a zip is scanned in a temporary
    folder that is gone by the time the message is read); else the folder's path.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"{str(folder)!r} is not a folder. Expected a folder of class folders (class_name/*.jpg)")
    root = _unwrap(root)
    label = what or str(root)
    skipped: list[tuple[str, str]] = []
    folders = _subfolders(root, root, skipped)  # a linked split or class folder is reported, not followed
    split_folders = [p for p in folders if p.name.lower() in SPLIT_FOLDERS]
    notes: list[str] = []
    by_split: dict[str, dict[str, list[str]]] = {}
    if split_folders:
        for path in folders:
            if path not in split_folders:
                skipped.append((path.name + "/", "beside train/validation/test folders; not a split, so ignored"))
        for path in split_folders:
            split = SPLIT_FOLDERS[path.name.lower()]
            if split in by_split:
                raise DatasetError(f"{label} has both a 'validation' and a 'val' folder; keep one")
            by_split[split] = {c.name: _class_images(c, root, skipped) for c in _subfolders(path, root, skipped)}
    else:
        by_split["train"] = {c.name: _class_images(c, root, skipped) for c in folders}
    classes = tuple(sorted({name for split in by_split.values() for name, files in split.items() if files}))
    _check_classes(label, classes, by_split, labelled_only)
    index = {name: i for i, name in enumerate(classes)}
    files = [(path, index[name], split) for split, per_class in by_split.items()
             for name, paths in per_class.items() if name in index for path in paths]
    if len(files) > max_images():
        raise DatasetError(f"{label} holds {len(files)} images; the most one dataset may hold is {max_images()} "
                           "(setting LAYERLAB_DATASET_MAX_IMAGES)")
    scan = Scan(root, classes, files, bool(split_folders), skipped, notes)
    if not labelled_only:
        _finish_splits(scan)
    return scan


def _check_classes(label: str, classes: tuple[str, ...], by_split: dict[str, dict[str, list[str]]],
                   labelled_only: bool) -> None:
    if not classes:
        allowed = ", ".join(sorted(IMAGE_SUFFIXES))
        raise DatasetError(f"No images found in {label}. Expected one folder per class holding images ({allowed}), "
                           "optionally inside train/, validation/ (or val/) and test/ folders")
    if labelled_only:
        return
    if len(classes) == 1:
        raise DatasetError(f"{label} holds images of one class only ({classes[0]!r}); a classifier needs at "
                           "least two class folders")
    if "train" not in by_split or not any(by_split["train"].values()):
        raise DatasetError(f"{label} has split folders but no train/ folder with images; "
                           "add train/<class_name>/ folders")


def stratified_test_mask(labels: np.ndarray, share: float = AUTO_TEST_SHARE, seed: int = SPLIT_SEED) -> np.ndarray:
    """True for the images held out: `share` of each class (at least one of a class with two or
    more), chosen by a seeded shuffle, so the same folder always splits the same way."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        take = int(round(len(members) * share))
        take = max(take, 1) if len(members) >= 2 else 0
        mask[rng.permutation(members)[:take]] = True
    return mask


def _finish_splits(scan: Scan) -> None:
    """Give the scan a test split: the folder's own, else its validation split, else one made here.

    A given validation/ split is the run's validation data, as the Keras tutorial's
    `validation_data` (the spec's validation split is then not used). With validation/ and no
    test/, validation/ doubles as the test set: the test figures are the final model's on the
    same photos that its epochs were validated on, which the note says, rather than taking a
    second share of train/ away from training.
    """
    present = {split for _, _, split in scan.files}
    if "validation" in present:
        test = ("test/ is the test set" if "test" in present else
                "there is no test/ folder, so validation/ is also the test set (the test figures are the final "
                "model's on the validation photos)")
        scan.notes.append(f"train/ trains; validation/ is the validation data every epoch (instead of a share of "
                          f"train/: the run's validation split is not used); {test}")
        return
    if "test" in present:
        return
    labels = np.array([label for _, label, _ in scan.files])
    mask = stratified_test_mask(labels)
    scan.files = [(p, label, "test" if held else split) for (p, label, split), held in zip(scan.files, mask)]
    scan.split_made = True
    where = "train/ only" if scan.splits_given else "no train/validation/test folders"
    scan.notes.append(f"The folder has {where}: Layerlab held out {AUTO_TEST_SHARE:.0%} of each class as the test "
                      f"split (stratified, seed {SPLIT_SEED}); training holds out its own validation share of the rest")


# --- Decoding ------------------------------------------------------------------------------


def decode_image(path: str | os.PathLike, settings: Settings) -> np.ndarray:
    """One photo as uint8 (size, size, channels): upright from EXIF, then stretched, centre-cropped
    or padded to a square. OSError/ValueError (with a reason) for a file that cannot be used."""
    size = settings.image_size
    with Image.open(path) as image:
        width, height = image.size
        if width * height > max_source_pixels():
            raise ValueError(f"{width}x{height} pixels is more than the {max_source_pixels()} allowed "
                             "(setting LAYERLAB_DATASET_MAX_PIXELS)")
        # A JPEG decodes at 1/2, 1/4 or 1/8 scale for free when that still covers the target size.
        image.draft("RGB" if settings.color == "rgb" else "L", (size, size))
        return fit_picture(image, settings)


def fit_picture(image: Image.Image, settings: Settings) -> np.ndarray:
    """An opened picture made upright and fitted as `settings` say: the one recipe for a dataset's
    photos and for a photo uploaded to test a model trained on them."""
    size = settings.image_size
    upright = ImageOps.exif_transpose(image)
    mode = "RGB" if settings.color == "rgb" else "L"
    picture = upright.convert("RGBA").convert(mode) if upright.mode in ("P", "PA") else upright.convert(mode)
    resample = Image.Resampling.BILINEAR
    if settings.fit == "stretch":
        picture = picture.resize((size, size), resample, reducing_gap=3.0)
    elif settings.fit == "crop":
        picture = ImageOps.fit(picture, (size, size), resample)
    else:
        picture = ImageOps.pad(picture, (size, size), resample, color=0)
    return np.asarray(picture, dtype=np.uint8).reshape(settings.shape)


@dataclass
class Decoded:
    """Every readable image of a scan, in the scan's order, and the files that could not be read."""

    x: np.ndarray
    y: np.ndarray
    split: np.ndarray
    unreadable: list[tuple[str, str]]
    seconds: float


Progress = Callable[[int, int, float], None]  # (done, total, seconds so far)


def check_memory(count: int, settings: Settings) -> int:
    """The bytes `count` images take once decoded; DatasetError before allocating if over the cap."""
    needed = count * int(np.prod(settings.shape))
    if needed > max_array_bytes():
        raise DatasetError(
            f"{count} images of {settings.image_size}x{settings.image_size}x{settings.channels} take "
            f"{needed / 2**20:.0f} MB; the cap is {max_array_bytes() / 2**20:.0f} MB (setting LAYERLAB_DATASET_MAX_MB). "
            "Choose a smaller image size or fewer images")
    return needed


def decode_scan(scan: Scan, settings: Settings, progress: Progress | None = None) -> Decoded:
    """Decode each image once into one preallocated uint8 array; unreadable files are reported with
    their reason and left out, never fatal."""
    total = len(scan.files)
    check_memory(total, settings)
    x = np.empty((total, *settings.shape), dtype=np.uint8)
    y = np.empty(total, dtype=np.int64)
    split = np.empty(total, dtype="<U10")
    unreadable: list[tuple[str, str]] = []
    start = time.monotonic()
    kept = 0
    for done, (relative, label, which) in enumerate(scan.files, start=1):
        try:
            x[kept] = decode_image(scan.root / relative, settings)
        # Pillow reports a damaged file as OSError, SyntaxError, ValueError or a decompression bomb.
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            # Pillow names the full (perhaps temporary) path; the report names the file as the user knows it.
            reason = (str(error) or type(error).__name__).replace(str(scan.root / relative), relative)
            unreadable.append((relative, reason))
        else:
            y[kept], split[kept] = label, which
            kept += 1
        if progress is not None and (done % 16 == 0 or done == total):
            progress(done, total, time.monotonic() - start)
    return Decoded(x[:kept], y[:kept], split[:kept], unreadable, time.monotonic() - start)
