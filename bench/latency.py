"""Latencies that tests used to assert and that flake on a loaded 2-core machine, measured here.

Prints, each as a median over many repetitions in this one process:
- the run store writing 1,000 metric points in one call (goal: under 50 ms);
- preprocessing one drawing from the canvas (goal: under 10 ms);
- preprocessing plus prediction for one stroke with LeNet (goal: under 30 ms outside Streamlit).

    PYTHONPATH=. .venv/bin/python bench/latency.py [--reps 50]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from pipelines.inference.preprocess import preprocess_drawing  # noqa: E402
from pipelines.runs.entities import MetricPoint  # noqa: E402
from pipelines.runs.sqlite_store import SQLiteRunStore  # noqa: E402


def median_seconds(step: Callable[[], object], reps: int) -> float:
    step()  # warm: first calls pay for imports, tracing and caches
    timings = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def drawing() -> np.ndarray:
    """A canvas-sized RGBA drawing of a '1', white on black, as the drawing pad sends it."""
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[40:240, 130:150, :3] = 255
    return canvas


def store_write(reps: int) -> float:
    with tempfile.TemporaryDirectory(prefix="layerlab-latency-") as home, SQLiteRunStore(home) as store:
        store.create_run("latency", "mnist", {}, total_epochs=1)
        run = store.claim_next_run(os.getpid(), 1)
        points = [MetricPoint("batch", i // 100, i % 100, "loss", float(i), time.time()) for i in range(1000)]
        return median_seconds(lambda: store.log_metrics(run.id, points), reps)


def stroke_prediction(reps: int) -> float:
    from pipelines.inference.predict import LoadedModel, predict_proba
    from pipelines.modelspec.keras_build import build_model
    from pipelines.modelspec.presets import get_preset
    from pipelines.modelspec.spec import from_logits

    spec = get_preset("lenet").spec
    model = build_model(spec, (28, 28, 1), compile=False)
    loaded = LoadedModel(model=model, spec=spec, input_shape=(28, 28, 1), from_logits=from_logits(spec),
                         class_names=tuple(str(d) for d in range(10)))
    canvas = drawing()
    return median_seconds(lambda: predict_proba(loaded, preprocess_drawing(canvas, (28, 28, 1))[np.newaxis]), reps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args(argv)
    print(f"{args.reps} repetitions each; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    figures = (("store: log 1,000 metric points", store_write(args.reps), 0.050),
               ("preprocess one drawing", median_seconds(lambda: preprocess_drawing(drawing(), (28, 28, 1)), args.reps),
                0.010),
               ("preprocess + predict one stroke (LeNet)", stroke_prediction(args.reps), 0.030))
    for label, seconds, goal in figures:
        verdict = "met" if seconds <= goal else "NOT met"
        print(f"{label}: median {seconds * 1000:.2f} ms (goal <= {goal * 1000:.0f} ms: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
