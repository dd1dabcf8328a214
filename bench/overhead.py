"""What training through Layerlab costs compared with the tutorials' plain `model.fit`.

A Layerlab run trains in a worker process, reads a tf.data pipeline, and carries callbacks that
write to the run store and checkpoint every epoch, next to a heartbeat thread and a polling CLI.
None of that should cost more than a few percent of the throughput a tutorial's own `fit` gets
from the same model and data (goal: layerlab / plain >= 0.97).

Both sides train the same preset in fresh processes, so TensorFlow starts equal, and they
alternate, so a change in the machine's load hits both; the ratio is the median of the
repetitions' ratios. Both count training samples x epochs / seconds inside `fit` (which includes
the validation pass). It is a measurement, not a test: it always exits 0.

    PYTHONPATH=. .venv/bin/python bench/overhead.py [--preset mlp-128x2] [--dataset fashion_mnist]
        [--epochs 2] [--reps 3] [--data-dir /work/shared/datasets]
"""
from __future__ import annotations

import argparse
import json
import math
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
from pipelines.modelspec.presets import PRESETS  # noqa: E402
from pipelines.runs.sqlite_store import SQLiteRunStore  # noqa: E402

GOAL_RATIO = 0.97
RUN_TIMEOUT_SECONDS = 1800
WORKER_EXIT_SECONDS = 60


def _last_json_line(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError("printed nothing on stdout")
    return json.loads(lines[-1])


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def plain_fit(preset: str, dataset: str, epochs: int, data_dir: str | None) -> dict:
    """The tutorials' way, in this (fresh) process: numpy arrays scaled to [0, 1], one `fit` call."""
    import keras

    from pipelines.data.locate import load
    from pipelines.modelspec.keras_build import build_model
    spec = PRESETS[preset].spec
    data = load(dataset, data_dir)
    x = data.x_train.astype("float32") / 255.0
    y = data.y_train
    if spec.compile.label_mode == "one_hot":
        y = keras.utils.to_categorical(y, data.info.num_classes)
    elif spec.compile.label_mode == "binary":
        y = y.astype("float32")[:, None]
    keras.utils.set_random_seed(spec.fit.seed)
    model = build_model(spec, data.info.input_shape)
    batch_size, validation_split = spec.fit.batch_size, spec.fit.validation_split

    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_split=validation_split, verbose=0)
    fit_seconds = time.perf_counter() - start

    n_train = int(math.floor(len(x) * (1.0 - validation_split)))  # where Keras' validation_split cuts
    return {"n_train": n_train, "fit_seconds": fit_seconds, "samples_per_second": n_train * epochs / fit_seconds}


def run_plain(args: argparse.Namespace) -> float:
    command = [sys.executable, str(Path(__file__).resolve()), "--plain-child", "--preset", args.preset,
               "--dataset", args.dataset, "--epochs", str(args.epochs)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    result = subprocess.run(command, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise RuntimeError(f"plain fit exited {result.returncode}:\n{_tail(result.stderr)}")
    return float(_last_json_line(result.stdout)["samples_per_second"])


def run_layerlab(args: argparse.Namespace, home: Path) -> float:
    """`python -m pipelines train`, which queues the run, spawns one worker (no spare) and waits."""
    command = [sys.executable, "-m", "pipelines", "train", "--dataset", args.dataset, "--preset", args.preset,
               "--epochs", str(args.epochs), "--home", str(home)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    try:
        result = subprocess.run(command, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True,
                                timeout=RUN_TIMEOUT_SECONDS)
    finally:
        stray = Scheduler(SQLiteRunStore(home), SchedulerSettings()).end_workers(wait=WORKER_EXIT_SECONDS)
        if stray:
            print(f"  (had to kill {stray} worker process(es) that did not exit on their own)", flush=True)
    if result.returncode != 0:
        raise RuntimeError(f"layerlab train exited {result.returncode}:\n{_tail(result.stderr)}")
    summary = _last_json_line(result.stdout)
    if summary.get("samples_per_second") is None:
        raise RuntimeError(f"the run reported no samples_per_second: {summary}")
    return float(summary["samples_per_second"])


def _fmt(value: float | None) -> str:
    return "failed" if value is None else f"{value:,.0f}"


def benchmark(args: argparse.Namespace) -> None:
    spec = PRESETS[args.preset].spec
    print(f"{args.preset} on {args.dataset}: {args.epochs} epoch(s), batch {spec.fit.batch_size}, "
          f"validation split {spec.fit.validation_split}, {args.reps} repetition(s); "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    home = Path(tempfile.mkdtemp(prefix="layerlab-bench-")).resolve()
    plain_rates: list[float] = []
    layerlab_rates: list[float] = []
    ratios: list[float] = []
    try:
        for rep in range(1, args.reps + 1):
            measured: dict[str, float | None] = {}
            for side, run in (("plain", lambda: run_plain(args)), ("layerlab", lambda: run_layerlab(args, home))):
                try:
                    measured[side] = run()
                except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
                    print(f"  rep {rep}: {side} failed: {exc}", flush=True)
                    measured[side] = None
            plain, layerlab = measured["plain"], measured["layerlab"]
            ratio = layerlab / plain if plain and layerlab else None
            plain_rates += [plain] if plain else []
            layerlab_rates += [layerlab] if layerlab else []
            ratios += [ratio] if ratio else []
            print(f"rep {rep}/{args.reps}: plain {_fmt(plain)} samples/s, layerlab {_fmt(layerlab)} samples/s"
                  + (f", ratio {ratio:.3f}" if ratio else "") + f"  (load average {os.getloadavg()[0]:.2f})",
                  flush=True)
    finally:
        Scheduler(SQLiteRunStore(home), SchedulerSettings()).end_workers(wait=WORKER_EXIT_SECONDS)
        shutil.rmtree(home, ignore_errors=True)

    print(f"median plain:    {_fmt(statistics.median(plain_rates) if plain_rates else None)} samples/s")
    print(f"median layerlab: {_fmt(statistics.median(layerlab_rates) if layerlab_rates else None)} samples/s")
    if plain_rates and layerlab_rates:
        best_plain, best_layerlab = max(plain_rates), max(layerlab_rates)
        print(f"best of reps:    plain {_fmt(best_plain)}, layerlab {_fmt(best_layerlab)} samples/s, "
              f"ratio {best_layerlab / best_plain:.3f} (other load only slows runs down, so on a busy "
              "machine this is the steadier figure)")
    if ratios:
        ratio = statistics.median(ratios)
        verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
        print(f"ratio layerlab/plain (median over {len(ratios)} rep(s)): {ratio:.3f}; "
              f"goal >= {GOAL_RATIO}: {verdict}")
    else:
        print(f"ratio layerlab/plain: no repetition measured both sides; goal >= {GOAL_RATIO}: unknown")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Layerlab's training throughput against plain Keras fit.")
    parser.add_argument("--preset", default="mlp-128x2", choices=tuple(PRESETS))
    parser.add_argument("--dataset", default="fashion_mnist", choices=("mnist", "fashion_mnist", "cifar10"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--data-dir", help="the dataset folder (default: $LAYERLAB_DATA_DIR)")
    parser.add_argument("--plain-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    chosen = paths.data_dir(args.data_dir)
    args.data_dir = str(chosen.resolve()) if chosen else None
    if args.epochs < 1 or args.reps < 1:
        parser.error(f"--epochs and --reps must be positive. Received: epochs={args.epochs}, reps={args.reps}")

    if args.plain_child:
        print(json.dumps(plain_fit(args.preset, args.dataset, args.epochs, args.data_dir)), flush=True)
        return 0
    benchmark(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
