"""A frozen MobileNetV2 base at 128 px, 10 epochs on clothing-small: Layerlab's feature cache
against the plain Keras way (`fit` on the image dataset with the frozen base), in one run.

Both sides train the same model (PretrainedBase MobileNetV2, weights=None as timing does not
depend on the weights; GlobalAveragePooling2D, Dense 100 relu, Dropout 0.2, Dense 10 logits) on
the same arrays through the same tf.data pipeline, batch 32, 10 % held out for validation.

- plain: `model.fit(images, validation_data=..., epochs=10)`: the base runs on every batch of
  every epoch, training and validation.
- layerlab (cold): a whole Layerlab run through `execute_run`, the worker's code path (store
  writes, checkpoints, the test evaluation and model.keras included), with an empty cache: the
  base's features are computed once, then only the top is fitted.
- layerlab (warm): the next point of a learning-rate sweep, which finds the features cached.

The photos (train/ and validation/ of clothing-small) are decoded and stretched to 128x128 with
Pillow first; that time is printed but not counted on either side. Goal: plain / cold >= 5.

    PYTHONPATH=. .venv/bin/python bench/transfer.py [--data-dir /work/shared/datasets] [--epochs 10]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

GOAL = 5.0


def decode(folder: Path, classes: list[str], side: int) -> tuple[np.ndarray, np.ndarray]:
    paths = [(label, path) for label, name in enumerate(classes) for path in sorted((folder / name).iterdir())]
    images = np.empty((len(paths), side, side, 3), np.uint8)
    for i, (_, path) in enumerate(paths):
        with Image.open(path) as photo:
            images[i] = np.asarray(ImageOps.exif_transpose(photo).convert("RGB").resize((side, side), Image.BILINEAR))
    return images, np.array([label for label, _ in paths], np.int64)


def spec_dict(epochs: int, learning_rate: float) -> dict:
    return {"name": "bench-transfer", "layers": [
        {"type": "PretrainedBase", "name": "base", "params": {"base": "MobileNetV2", "weights": "none"}},
        {"type": "GlobalAveragePooling2D", "name": "pool"},
        {"type": "Dense", "name": "inner", "params": {"units": 100, "activation": "relu"}},
        {"type": "Dropout", "name": "dropout", "params": {"rate": 0.2}},
        {"type": "Dense", "name": "outputs", "params": {"units": 10, "activation": "linear"}}],
        "compile": {"learning_rate": learning_rate},
        "fit": {"epochs": epochs, "batch_size": 32, "validation_split": 0.1}}


def plain_fit(dataset, spec) -> tuple[float, float]:
    import keras

    from pipelines.data.inputs import make_inputs
    from pipelines.modelspec.keras_build import build_model

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    inputs = make_inputs(dataset, batch_size=spec.fit.batch_size, validation_split=spec.fit.validation_split)
    model = build_model(spec, dataset.info.input_shape)
    started = time.perf_counter()
    history = model.fit(inputs.train, validation_data=inputs.val, epochs=spec.fit.epochs, verbose=0)
    return time.perf_counter() - started, history.history["val_accuracy"][-1]


def layerlab_run(store, dataset, spec, name) -> tuple[float, float]:
    from pipelines.execution.training import execute_run

    store.create_run(name, dataset.info.name, spec.to_dict(), total_epochs=spec.fit.epochs)
    run = store.claim_next_run(os.getpid(), 1)
    started = time.perf_counter()
    outcome = execute_run(store, run, threading.Event(), dataset=dataset)
    seconds = time.perf_counter() - started
    store.finish_run(run.id, outcome.status, error=outcome.error, metrics=outcome.metrics)
    if outcome.error:
        raise SystemExit(f"the Layerlab run failed: {outcome.error}")
    return seconds, outcome.metrics.get("val_accuracy", float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("LAYERLAB_DATA_DIR", "/work/shared/datasets"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--side", type=int, default=128)
    args = parser.parse_args()
    root = Path(args.data_dir) / "clothing-small"
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())

    started = time.perf_counter()
    x_train, y_train = decode(root / "train", classes, args.side)
    x_test, y_test = decode(root / "validation", classes, args.side)
    print(f"decoded {len(x_train) + len(x_test)} photos at {args.side} px with Pillow in "
          f"{time.perf_counter() - started:.1f} s (not counted)")

    os.environ["LAYERLAB_HOME"] = tempfile.mkdtemp(prefix="bench-transfer-")  # an empty feature cache
    from pipelines.data.catalog import Dataset, DatasetInfo
    from pipelines.modelspec.spec import ModelSpec
    from pipelines.runs.sqlite_store import SQLiteRunStore

    info = DatasetInfo("clothing-small", "clothing-small", tuple(classes), (args.side, args.side, 3), "", "", "")
    dataset = Dataset(info, x_train, y_train, x_test, y_test, origin=str(root))
    store = SQLiteRunStore(os.environ["LAYERLAB_HOME"])
    spec = ModelSpec.from_dict(spec_dict(args.epochs, 0.001))

    plain, plain_acc = plain_fit(dataset, spec)
    cold, cold_acc = layerlab_run(store, dataset, spec, "cold cache")
    warm, warm_acc = layerlab_run(store, dataset, ModelSpec.from_dict(spec_dict(args.epochs, 0.01)), "sweep point")
    print(f"plain Keras fit, frozen MobileNetV2, {args.epochs} epochs: {plain:.1f} s (val_accuracy {plain_acc:.3f})")
    print(f"Layerlab run, feature cache cold (features computed once): {cold:.1f} s (val_accuracy {cold_acc:.3f})")
    print(f"Layerlab run, feature cache warm (next sweep point, lr 0.01): {warm:.1f} s (val_accuracy {warm_acc:.3f})")
    ratio = plain / cold
    print(f"speed-up, cold cache: {ratio:.1f}x (goal >= {GOAL:g}x: {'met' if ratio >= GOAL else 'NOT met'}); "
          f"warm cache: {plain / warm:.1f}x")


if __name__ == "__main__":
    main()
