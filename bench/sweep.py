"""A learning-rate sweep through Layerlab against the tutorials' loop of plain `model.fit` calls.

The sweep: mlp-128x2 on Fashion-MNIST, 2 epochs, learning rates 1e-4, 1e-3, 1e-2, 1e-1.

- **plain**: one fresh Python process that imports Keras, loads the arrays, and calls
  `build_model` + `fit(x, y, epochs=2, batch_size=32, validation_split=0.1)` four times, one
  after another, as the tutorials' loops do.
- **layerlab**: `python -m pipelines sweep --preset mlp-128x2 --vary lr=... --epochs 2`, which
  validates the four specs, queues them, starts one worker process, waits for the four runs
  (each with live points, checkpoints, a test-set evaluation and a saved model) and prints them.
- **ray** (unless `--no-ray`): the same command with `--ray ADDRESS`, on a local 2-CPU Ray
  cluster that this script starts once beforehand (its start-up is printed, not counted).

Each figure is the command's whole wall time, process start to exit, so both sides pay for
importing TensorFlow and reading the data. Goal: layerlab <= 1.10 x plain. The sides alternate
for `--reps` repetitions; the ratio is the median of the repetitions' ratios. It is a
measurement, not a test: it always exits 0.

    PYTHONPATH=. .venv/bin/python bench/sweep.py [--reps 3] [--no-ray] [--data-dir /work/shared/datasets]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pipelines import paths  # noqa: E402  (needs the repo root on sys.path first)
from pipelines.execution.processes import child_env  # noqa: E402
from pipelines.execution.scheduler import Scheduler, SchedulerSettings  # noqa: E402
from pipelines.runs.sqlite_store import SQLiteRunStore  # noqa: E402

PRESET, DATASET, EPOCHS = "mlp-128x2", "fashion_mnist", 2
LEARNING_RATES = (1e-4, 1e-3, 1e-2, 1e-1)
GOAL_RATIO = 1.10
TIMEOUT_SECONDS = 1800


def plain_loop(data_dir: str | None) -> dict:
    """The tutorials' loop, in this (fresh) process."""
    import keras

    from pipelines.data.locate import load
    from pipelines.modelspec.keras_build import build_model
    from pipelines.modelspec.presets import get_preset

    spec = get_preset(PRESET).spec
    data = load(DATASET, data_dir)
    x, y = data.x_train.astype("float32") / 255.0, data.y_train
    results = []
    for lr in LEARNING_RATES:
        run_spec = spec.with_compile(learning_rate=lr)
        keras.utils.set_random_seed(run_spec.fit.seed)
        model = build_model(run_spec, data.info.input_shape)
        start = time.perf_counter()
        history = model.fit(x, y, epochs=EPOCHS, batch_size=run_spec.fit.batch_size,
                            validation_split=run_spec.fit.validation_split, verbose=0)
        results.append({"lr": lr, "fit_seconds": time.perf_counter() - start,
                        "val_accuracy": history.history["val_accuracy"][-1]})
        keras.backend.clear_session()
    return {"runs": results}


def _timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True,
                            timeout=TIMEOUT_SECONDS)
    return time.perf_counter() - start, result


def run_plain(args: argparse.Namespace) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--plain-child"]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    seconds, result = _timed(command)
    if result.returncode != 0:
        raise RuntimeError(f"the plain loop exited {result.returncode}:\n{result.stderr[-2000:]}")
    runs = json.loads(result.stdout.strip().splitlines()[-1])["runs"]
    return {"seconds": seconds, "fit_seconds": sum(run["fit_seconds"] for run in runs),
            "best_val_accuracy": max(run["val_accuracy"] for run in runs)}


def run_layerlab(args: argparse.Namespace, ray_address: str | None = None) -> dict:
    home = Path(tempfile.mkdtemp(prefix="layerlab-bench-sweep-")).resolve()
    command = [sys.executable, "-m", "pipelines", "sweep", "--preset", PRESET, "--dataset", DATASET,
               "--vary", "lr=" + ",".join(f"{lr:g}" for lr in LEARNING_RATES), "--epochs", str(EPOCHS),
               "--home", str(home)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if ray_address:
        command += ["--ray", ray_address]
    try:
        seconds, result = _timed(command)
        if result.returncode != 0:
            raise RuntimeError(f"the sweep exited {result.returncode}:\n{result.stderr[-2000:]}")
        lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
        runs, final = lines[:-1], lines[-1]
        return {"seconds": seconds, "fit_seconds": sum(SQLiteRunStore(home).get_run(run["run_id"]).metrics
                                                       .get("fit_seconds", 0.0) for run in runs),
                "best_val_accuracy": final["best_val_accuracy"], "completed": final["completed"]}
    finally:
        Scheduler(SQLiteRunStore(home), SchedulerSettings()).end_workers(wait=30)
        shutil.rmtree(home, ignore_errors=True)


def start_ray() -> str:
    """A local 2-CPU cluster, joined by this process (it lives as long as this script)."""
    import ray

    from pipelines.execution.ray_backend import RUNTIME_ENV
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, runtime_env=RUNTIME_ENV, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level=logging.WARNING)
    print(f"local Ray cluster (2 CPUs) up in {time.perf_counter() - start:.1f} s (not counted below)", flush=True)
    return ray.get_runtime_context().gcs_address


def _line(name: str, measured: dict | None, plain: dict | None) -> str:
    if measured is None:
        return f"{name} failed"
    ratio = f", {measured['seconds'] / plain['seconds']:.2f}x plain" if plain else ""
    return (f"{name} {measured['seconds']:.1f} s (in fit {measured['fit_seconds']:.1f} s, best val acc "
            f"{measured['best_val_accuracy']:.4f}{ratio})")


def benchmark(args: argparse.Namespace) -> None:
    print(f"{PRESET} on {DATASET}, {EPOCHS} epochs, learning rates {', '.join(f'{lr:g}' for lr in LEARNING_RATES)}; "
          f"{args.reps} repetition(s); {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    ray_address = None if args.no_ray else start_ray()
    figures: dict[str, list[float]] = {"plain": [], "layerlab": [], "ray": []}
    ratios: dict[str, list[float]] = {"layerlab": [], "ray": []}
    for rep in range(1, args.reps + 1):
        sides = [("plain", lambda: run_plain(args)), ("layerlab", lambda: run_layerlab(args))]
        if ray_address:
            sides.append(("ray", lambda: run_layerlab(args, ray_address)))
        measured: dict[str, dict | None] = {}
        for name, run in sides:
            try:
                measured[name] = run()
                figures[name].append(measured[name]["seconds"])
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
                print(f"  rep {rep}: {name} failed: {exc}", flush=True)
                measured[name] = None
        plain = measured["plain"]
        for name in ("layerlab", "ray"):
            if plain and measured.get(name):
                ratios[name].append(measured[name]["seconds"] / plain["seconds"])
        print(f"rep {rep}/{args.reps}: " + " | ".join(_line(name, measured[name], plain if name != "plain" else None)
                                                     for name, _ in sides)
              + f"  (load average {os.getloadavg()[0]:.2f})", flush=True)
    for name in ("plain", "layerlab", "ray"):
        if figures[name]:
            print(f"median {name + ':':<9} {statistics.median(figures[name]):.1f} s")
    if ratios["layerlab"]:
        ratio = statistics.median(ratios["layerlab"])
        print(f"layerlab / plain (median of {len(ratios['layerlab'])}): {ratio:.2f}; goal <= {GOAL_RATIO}: "
              f"{'met' if ratio <= GOAL_RATIO else 'NOT met'}")
    if ratios["ray"]:
        print(f"ray (local, 2 CPUs) / plain (median of {len(ratios['ray'])}): {statistics.median(ratios['ray']):.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A learning-rate sweep through Layerlab against plain fit calls.")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true", help="leave out the local Ray cluster's figure")
    parser.add_argument("--data-dir", help="the dataset folder (default: $LAYERLAB_DATA_DIR)")
    parser.add_argument("--plain-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    chosen = paths.data_dir(args.data_dir)
    args.data_dir = str(chosen.resolve()) if chosen else None
    if args.reps < 1:
        parser.error(f"--reps must be positive. Received: {args.reps}")
    if args.plain_child:
        print(json.dumps(plain_loop(args.data_dir)), flush=True)
        return 0
    benchmark(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
