"""What export and TensorBoard logs cost: fit time with and without the TensorBoard callback, side by
side, and the time to write a run's script, check its parity and zip it.

TensorBoard: the same run (same spec, seed and data) is trained in this process by the worker's own
`execute_run`, alternately with Layerlab's TensorBoard callback and without it, after one warm-up
run; the figure is the median of the repetitions' fit-seconds ratios (goal: under 1.05), with the
size of the event files a run leaves, and the callback's own work timed directly (its hooks called
as fit calls them), which a busy machine's noise does not blur. Export: generating the script, the parity check (both models
built; TensorFlow already loaded), and the zip, each the median of the repetitions. It is a
measurement, not a test: it always exits 0.

    PYTHONPATH=. .venv/bin/python bench/export.py [--preset mlp-128x2] [--dataset fashion_mnist]
        [--epochs 2] [--reps 3] [--data-dir /work/shared/datasets]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pipelines.data.catalog import get_info  # noqa: E402  (needs the repo root on sys.path first)
from pipelines.data.locate import load  # noqa: E402
from pipelines.execution import training  # noqa: E402
from pipelines.execution.tensorboard_logs import can_write_logs, tensorboard_callbacks, tensorboard_dir  # noqa: E402
from pipelines.io.export import bundle, check_parity, run_script  # noqa: E402
from pipelines.modelspec.presets import get_preset  # noqa: E402
from pipelines.runs.sqlite_store import SQLiteRunStore  # noqa: E402


def train_once(store: SQLiteRunStore, spec, dataset: str, data, logs: bool):
    """(fit seconds, run) of one run, with or without the TensorBoard callback."""
    training.tensorboard_callbacks = tensorboard_callbacks if logs else (lambda run_dir: [])
    store.create_run(f"bench logs={logs}", dataset, spec.to_dict(), total_epochs=spec.fit.epochs)
    run = store.claim_next_run(os.getpid(), 1)
    outcome = training.execute_run(store, run, threading.Event(), dataset=data)
    store.finish_run(run.id, outcome.status, error=outcome.error, metrics=outcome.metrics)
    return outcome.metrics["fit_seconds"], store.get_run(run.id)


def hook_seconds(run, epochs: int) -> float:
    """The callback's own work for one run, timed directly: writers, graph, one write per epoch."""
    from pipelines.modelspec.keras_build import build_model

    model = build_model(run.model_spec, get_info(run.dataset).input_shape)
    logs = {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.7}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        callback = tensorboard_callbacks(Path(folder))[0]
        callback.set_model(model)
        callback.on_train_begin()
        for epoch in range(epochs):
            callback.on_test_begin()
            callback.on_test_end(logs)
            callback.on_epoch_end(epoch, logs)
        callback.on_train_end()
        return time.perf_counter() - start


def median_seconds(action, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mlp-128x2")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("LAYERLAB_DATA_DIR"))
    args = parser.parse_args()
    if not can_write_logs():
        print("the tensorboard package is not installed: pip install -r requirements.txt")
        return 0
    spec = get_preset(args.preset).spec.with_fit(epochs=args.epochs)
    data = load(args.dataset, args.data_dir)
    with tempfile.TemporaryDirectory() as home:
        store = SQLiteRunStore(home)
        train_once(store, spec, args.dataset, data, logs=True)  # warm-up: tracing, caches
        ratios, with_logs, without = [], [], []
        for _ in range(args.reps):
            seconds_on, run = train_once(store, spec, args.dataset, data, logs=True)
            seconds_off, _ = train_once(store, spec, args.dataset, data, logs=False)
            with_logs.append(seconds_on)
            without.append(seconds_off)
            ratios.append(seconds_on / seconds_off)
        logs = tensorboard_dir(store.run_dir(run.id))
        size = sum(path.stat().st_size for path in logs.rglob("*") if path.is_file())
        print(f"{args.preset} on {args.dataset}, {args.epochs} epochs, {args.reps} reps: fit {statistics.median(with_logs):.2f} s "
              f"with TensorBoard logs, {statistics.median(without):.2f} s without; median ratio "
              f"{statistics.median(ratios):.3f} (goal < 1.05); event files {size / 1024:.1f} KiB")
        hooks = median_seconds(lambda: hook_seconds(run, args.epochs), args.reps)
        print(f"the callback's own work, timed directly: {hooks * 1000:.1f} ms per run of {args.epochs} epochs")

        run_dir = store.run_dir(run.id)
        script = run_script(run)
        info = get_info(run.dataset)
        generate = median_seconds(lambda: run_script(run), 20)
        parity = median_seconds(lambda: check_parity(script, run.model_spec, info.input_shape), args.reps)
        zipping = median_seconds(lambda: bundle(run, run_dir, script), args.reps)
        print(f"export: script {generate * 1000:.1f} ms ({len(script.splitlines())} lines), parity check "
              f"{parity:.2f} s, zip {zipping * 1000:.0f} ms ({len(bundle(run, run_dir, script)) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
