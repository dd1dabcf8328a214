"""A small CNN trained from scratch on clothing-small at 96 px, 15 epochs: Layerlab against plain Keras.

Both sides train the same spec (four conv + pooling stages, Dense 64, dropout, softmax over the 10
classes) with the same seed on the same uint8 arrays (the dataset imported once, stretch, rgb),
train on all of train/ and validate on the folder's validation/ photos, which are also its test
split (the folder has no test/), as the tutorial's `validation_data` does. Run through bench/folder_dataset.py --scratch,
or alone:

    LAYERLAB_DATA_DIR=/work/shared/datasets PYTHONPATH=. .venv/bin/python bench/folder_scratch.py [--epochs 15]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pipelines import paths  # noqa: E402
from pipelines.data.folders import Settings  # noqa: E402
from pipelines.execution.processes import child_env  # noqa: E402
from pipelines.execution.scheduler import Scheduler, SchedulerSettings  # noqa: E402
from pipelines.io.dataset_import import add_dataset  # noqa: E402
from pipelines.modelspec.spec import CompileSpec, FitSpec, LayerSpec, ModelSpec  # noqa: E402
from pipelines.runs.sqlite_store import SQLiteRunStore  # noqa: E402

SIZE = 96
TIMEOUT = 3600


def small_cnn(epochs: int) -> ModelSpec:
    layers = []
    for i, filters in enumerate((16, 32, 64, 64), start=1):
        layers += [LayerSpec("Conv2D", f"conv2d_{i}", {"filters": filters, "kernel_size": 3, "strides": 1,
                                                       "padding": "same", "activation": "relu"}),
                   LayerSpec("MaxPooling2D", f"max_pooling2d_{i}", {"pool_size": 2, "padding": "valid"})]
    layers += [LayerSpec("Flatten", "flatten_1", {}), LayerSpec("Dense", "dense_1", {"units": 64, "activation": "relu"}),
               LayerSpec("Dropout", "dropout_1", {"rate": 0.3}),
               LayerSpec("Dense", "dense_2", {"units": 10, "activation": "softmax"})]
    return ModelSpec(layers=tuple(layers), compile=CompileSpec(optimizer="adam", learning_rate=0.001),
                     fit=FitSpec(epochs=epochs, batch_size=32, validation_split=0.1), name="clothing-small-cnn")


def plain_keras(dataset: str, epochs: int) -> dict:
    """The tutorial's way in this process: arrays scaled to [0, 1], one fit on train/ with the
    folder's validation/ as `validation_data` (as Layerlab does for a folder that brings its own);
    a folder without one holds out Layerlab's seeded validation share instead."""
    import keras
    import numpy as np

    from pipelines.data.locate import load
    from pipelines.modelspec.keras_build import build_model

    spec = small_cnn(epochs)
    data = load(dataset)
    x, y = data.x_train.astype("float32") / 255.0, data.y_train
    if data.has_own_validation:
        x_train, y_train, validation = x, y, (data.x_val.astype("float32") / 255.0, data.y_val)
    else:
        n_val = int(round(len(x) * spec.fit.validation_split))
        order = np.random.default_rng(spec.fit.seed).permutation(len(x))
        train, val = np.sort(order[:len(x) - n_val]), np.sort(order[len(x) - n_val:])
        x_train, y_train, validation = x[train], y[train], (x[val], y[val])
    keras.utils.set_random_seed(spec.fit.seed)
    model = build_model(spec, data.info.input_shape)
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=spec.fit.batch_size,
                        validation_data=validation, verbose=0)
    seconds = time.perf_counter() - start
    _, test_accuracy = model.evaluate(data.x_test.astype("float32") / 255.0, data.y_test, verbose=0)
    return {"val_accuracy": history.history["val_accuracy"][-1], "test_accuracy": test_accuracy, "seconds": seconds}


def layerlab(home: Path, dataset: str, epochs: int) -> dict:
    spec_file = home / "spec.json"
    spec_file.write_text(small_cnn(epochs).to_json())
    command = [sys.executable, "-m", "pipelines", "train", "--dataset", dataset, "--spec", str(spec_file),
               "--home", str(home)]
    try:
        result = subprocess.run(command, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True, timeout=TIMEOUT)
    finally:
        Scheduler(SQLiteRunStore(home), SchedulerSettings()).end_workers(wait=60)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return {"val_accuracy": summary["val_accuracy"], "test_accuracy": summary["test_accuracy"],
            "seconds": summary["wall_seconds"]}


def compare_from_scratch(folder: Path, home: Path, epochs: int = 15) -> None:
    name = f"clothing-{SIZE}"
    if not (home / "datasets" / name).is_dir():
        add_dataset(name, folder, Settings(SIZE, "stretch", "rgb"), home=home)
    print(f"\nsmall CNN from scratch on {name}, {epochs} epochs, seed 0 (load average {os.getloadavg()[0]:.2f})",
          flush=True)
    plain_run = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--plain-child", "--epochs",
                                str(epochs), "--dataset", name], cwd=REPO_ROOT, env=child_env(),
                               capture_output=True, text=True, timeout=TIMEOUT)
    if plain_run.returncode != 0:
        print(f"plain Keras failed: {plain_run.stderr[-2000:]}")
        return
    plain = json.loads(plain_run.stdout.strip().splitlines()[-1])
    ours = layerlab(home, name, epochs)
    for side, result in (("plain Keras", plain), ("Layerlab", ours)):
        print(f"{side}: validation accuracy {result['val_accuracy']:.3f}, accuracy on validation/ "
              f"{result['test_accuracy']:.3f} ({result['seconds']:.0f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--data-dir")
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--plain-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plain_child:
        print(json.dumps(plain_keras(args.dataset, args.epochs)), flush=True)
        return 0
    folder = (paths.data_dir(args.data_dir) or Path("/nonexistent")) / "clothing-small"
    if not folder.is_dir():
        sys.exit(f"clothing-small not found at {folder}; set LAYERLAB_DATA_DIR or --data-dir")
    home = Path(tempfile.mkdtemp(prefix="layerlab-scratch-bench-")).resolve()
    os.environ["LAYERLAB_HOME"] = str(home)
    try:
        compare_from_scratch(folder, home, args.epochs)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
