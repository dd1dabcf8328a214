"""A finished run on a labelled folder of the user's photos: accuracy, per class, and what was unreadable.

The folder's class names are matched to the run's (case and punctuation ignored, plurals and a few
clothing synonyms understood: `pants` is Fashion-MNIST's `Trouser`, `shoes` any of its three kinds
of shoe), so a Fashion-MNIST model can be tried on real clothing photos and the gap between the
benchmark and real photos shows. Each photo becomes what the model sees the way the run's data was
made: an added dataset's own decoding (size, fit, colour), else the upload preprocessing
(grayscale, inverted when the background is light, fitted to 28x28).

TensorFlow is imported only when a model is loaded, so a page can import this module cheaply.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pipelines.data import added
from pipelines.data.catalog import BUILTIN, get_info
from pipelines.data.folders import Settings, decode_image, fit_picture, scan_folder
from pipelines.errors import LayerlabError, UploadError
from pipelines.inference.preprocess import Prepared, open_upload, preprocess_image

BATCH = 64
EXAMPLES_PER_CLASS = 3
THUMBNAIL = 96
# Folder class -> the run classes it means, for names a clothing folder uses and Fashion-MNIST does not.
SYNONYMS = {
    "pants": ("trouser",), "trousers": ("trouser",), "jeans": ("trouser",),
    "outwear": ("coat",), "outerwear": ("coat",), "jacket": ("coat",),
    "longsleeve": ("pullover",), "sweater": ("pullover",), "jumper": ("pullover",), "hoodie": ("pullover",),
    "shoes": ("sneaker", "sandal", "ankleboot"), "boots": ("ankleboot",), "sneakers": ("sneaker",),
    "tshirt": ("tshirt",), "tee": ("tshirt",), "top": ("tshirt",), "handbag": ("bag",),
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _keys_of(run_class: str) -> set[str]:
    """A run class answers to its whole name and to each '/'-separated part (`T-shirt/top`)."""
    return {_key(run_class), *(_key(part) for part in run_class.split("/"))}


def match_classes(folder_classes, run_classes) -> dict[str, tuple[int, ...]]:
    """Folder class -> indices of the run classes it names; unmatched classes are left out."""
    keys = [_keys_of(name) for name in run_classes]
    matched = {}
    for name in folder_classes:
        key = _key(name)
        wanted = {key, key[:-1] if key.endswith("s") else key, *SYNONYMS.get(key, ())}
        hits = tuple(i for i, run_keys in enumerate(keys) if run_keys & wanted)
        if hits:
            matched[name] = hits
    return matched


@dataclass
class FolderEvaluation:
    """Accuracy on the matched photos; `examples` holds a few (file, photo thumbnail, model input,
    predicted class) per class, to show how a photo becomes what the model sees."""

    accuracy: float | None
    n_images: int
    per_class: dict[str, dict]
    unreadable: list[tuple[str, str]]
    unmatched_classes: list[str]
    examples: dict[str, list[tuple[str, np.ndarray, np.ndarray, str]]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "n_images": self.n_images, "per_class": self.per_class,
                "unreadable": len(self.unreadable), "unreadable_files": [f for f, _ in self.unreadable],
                "unmatched_classes": self.unmatched_classes}


def added_settings(dataset: str) -> Settings | None:
    """How an added dataset's photos were decoded; None for a built-in dataset."""
    if dataset in BUILTIN or dataset not in added.added_infos():
        return None
    manifest = added.read_manifest(dataset)
    return Settings(int(manifest["image_size"]), manifest["fit"], manifest["color"])


def prepare_picture(image: Image.Image, dataset: str, input_shape, *, center_digit: bool = False) -> Prepared:
    """An opened picture as the model of a run on `dataset` takes it: as the added dataset's own
    photos were decoded, else through the upload preprocessing (grey, inverted if light, fitted)."""
    settings = added_settings(dataset)
    if settings is None:
        return preprocess_image(image, input_shape, invert="auto", center_digit=center_digit)
    pixels = fit_picture(image, settings)
    note = f"made upright and fitted to {settings.image_size}x{settings.image_size} ({settings.fit}, {settings.color}), as {dataset}'s photos were"
    return Prepared(pixels.astype(np.float32) / np.float32(255), False, (note,))


def photo_to_input(path: Path, dataset: str, input_shape: tuple[int, int, int]) -> tuple[np.ndarray, tuple[str, ...]]:
    """One photo file as the float32 input the run's model takes, and notes on what was done to it."""
    settings = added_settings(dataset)
    if settings is not None:
        pixels = decode_image(path, settings)
        return pixels.astype(np.float32) / np.float32(255), (f"decoded as {dataset} was: {settings.fit}, {settings.color}",)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UploadError(f"{path.name}: cannot be read ({error.strerror})") from None
    prepared = prepare_picture(open_upload(data, path.name), dataset, input_shape, center_digit=dataset == "mnist")
    return prepared.array, prepared.notes


def thumbnail(path: Path, side: int = THUMBNAIL) -> np.ndarray:
    """The photo upright and small (RGB uint8), to show beside what the model was given."""
    with Image.open(path) as image:
        image.draft("RGB", (side, side))
        upright = ImageOps.exif_transpose(image).convert("RGB")
    upright.thumbnail((side, side))
    return np.asarray(upright)


def evaluate_folder(run_dir: str | os.PathLike, dataset: str, folder: str | os.PathLike,
                    progress: Callable[[int, int], None] | None = None, *,
                    what: str | None = None) -> FolderEvaluation:
    """The run's model on every photo of `folder` whose class matches one of the run's classes.

    `what`: the folder or zip as the user named it, for refusals (a zip is read from a temporary
    folder that is gone by the time they read the message)."""
    from pipelines.inference.predict import load_run_model, predict_proba  # TensorFlow: only now

    info = get_info(dataset)
    scan = scan_folder(folder, labelled_only=True, what=what)
    matched = match_classes(scan.classes, info.class_names)
    if not matched:
        raise LayerlabError(f"None of the folder's classes ({', '.join(scan.classes)}) matches a class of "
                            f"{info.title} ({', '.join(info.class_names)}); name the class folders as the run's classes")
    loaded = load_run_model(run_dir, dataset)
    files = [(p, scan.classes[label]) for p, label, _ in scan.files if scan.classes[label] in matched]
    correct = {name: 0 for name in matched}
    total = {name: 0 for name in matched}
    unreadable: list[tuple[str, str]] = []
    examples: dict[str, list] = {name: [] for name in matched}
    for start in range(0, len(files), BATCH):
        batch, labels, names = [], [], []
        for relative, name in files[start:start + BATCH]:
            try:
                array, _ = photo_to_input(scan.root / relative, dataset, loaded.input_shape)
            except (UploadError, OSError, SyntaxError, ValueError) as error:
                unreadable.append((relative, str(error).replace(str(scan.root / relative), relative)))
                continue
            batch.append(array)
            labels.append(name)
            names.append(relative)
        if batch:
            predicted = predict_proba(loaded, np.stack(batch)).argmax(axis=1)
            for relative, array, name, guess in zip(names, batch, labels, predicted):
                total[name] += 1
                correct[name] += int(guess in matched[name])
                if len(examples[name]) < EXAMPLES_PER_CLASS:
                    photo = thumbnail(scan.root / relative)
                    examples[name].append((relative, photo, array, info.class_names[guess]))
        if progress is not None:
            progress(min(start + BATCH, len(files)), len(files))
    n = sum(total.values())
    per_class = {name: {"accuracy": correct[name] / total[name] if total[name] else None, "correct": correct[name],
                        "total": total[name], "as": [info.class_names[i] for i in matched[name]]} for name in matched}
    return FolderEvaluation(sum(correct.values()) / n if n else None, n, per_class, unreadable,
                            [name for name in scan.classes if name not in matched], examples)
