"""Layerlab's training against the tutorials' plain `model.fit`, side by side: speed and results.

Layerlab trains in a worker process through a tf.data pipeline, with callbacks that write every
few batches to the run store and checkpoint every epoch, and it runs several batches per call
into TensorFlow (`steps_per_execution`, chosen per model). The tutorials call `fit` on numpy
arrays with Keras' default of one batch per call. Goals: Layerlab at least 1.8x the tutorial's
samples/s for mlp-128x2 and 1.2x for LeNet, with the same validation accuracy: to the bit against
itself at one batch per call with the same seed, and within 0.005 of the tutorial's fit as the
mean over seeds (below).

Both sides train the preset in fresh processes, so TensorFlow starts equal, and they alternate,
so a change in the machine's load hits both; the ratio is the median of the repetitions' ratios.
Both count training samples x epochs / seconds inside `fit` (which includes the validation
pass), and both score the same validation examples: the plain side is given Layerlab's split
(the tutorial's `validation_split` would take the last 10 % instead).

Accuracy: repetition k trains both sides with seed k-1 (the same initial weights and the same
split). With the same seed, the batching must change nothing: Layerlab also trains once with one
batch per call (LAYERLAB_STEPS_PER_EXECUTION=1) and its validation accuracy is compared with the
seed-0 run's (they agree to the bit). Against the tutorial's fit, the batches come in another
order (Keras shuffles the arrays its own way, Layerlab shuffles indices in tf.data), and one
shuffle's noise is larger than 0.005: for mlp-128x2, 2 epochs, the tutorial's own fit ranged
0.865-0.882 over seeds 0-5. So the two are compared over the seeds: the mean of the per-seed
differences, with its standard error (goal: the mean within 0.005).

LeNet trains on Fashion-MNIST by default: the MNIST here is the 5,000-image sample, whose
seconds-long fit mostly times TensorFlow's tracing. It is a measurement, not a test: it always
exits 0.

    PYTHONPATH=. .venv/bin/python bench/overhead.py [--preset mlp-128x2 --preset lenet] [--reps 5]
        [--epochs N] [--dataset D] [--data-dir /work/shared/datasets]
"""
from __future__ import annotations

import argparse
import json
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

GOALS = {"mlp-128x2": 1.8, "lenet": 1.2}  # layerlab / plain samples per second
DEFAULT_GOAL = 1.0
DEFAULT_EPOCHS = {"mlp-128x2": 2, "lenet": 5}  # LeNet: the preset's own 5
DEFAULT_DATASETS = {"lenet": "fashion_mnist"}  # same 28x28x1 input; MNIST here is the 5k sample
ACCURACY_TOLERANCE = 0.005
RUN_TIMEOUT_SECONDS = 1800
WORKER_EXIT_SECONDS = 60


def _last_json_line(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError("printed nothing on stdout")
    return json.loads(lines[-1])


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def plain_fit(preset: str, dataset: str, epochs: int, data_dir: str | None, seed: int | None = None) -> dict:
    """The tutorials' way, in this (fresh) process: numpy arrays scaled to [0, 1], one `fit` call,
    scored on the validation examples Layerlab holds out for the same seed."""
    import keras
    import numpy as np

    from pipelines.data.locate import load
    from pipelines.modelspec.keras_build import build_model
    spec = PRESETS[preset].spec
    seed = spec.fit.seed if seed is None else seed
    data = load(dataset, data_dir)
    x = data.x_train.astype("float32") / 255.0

    def _labels(labels):
        if spec.compile.label_mode == "one_hot":
            return keras.utils.to_categorical(labels, data.info.num_classes)
        return labels.astype("float32")[:, None] if spec.compile.label_mode == "binary" else labels

    y = _labels(data.y_train)
    # Layerlab's split (pipelines/data/inputs.py make_inputs): a seeded permutation, the tail held
    # out; a photo folder that brings its own validation/ trains on all of train/ and validates on it.
    if data.has_own_validation:
        train, validation = np.arange(len(x)), (data.x_val.astype("float32") / 255.0, _labels(data.y_val))
    else:
        n_val = int(round(len(x) * spec.fit.validation_split))
        order = np.random.default_rng(seed).permutation(len(x))
        train, val = np.sort(order[:len(x) - n_val]), np.sort(order[len(x) - n_val:])
        validation = (x[val], y[val]) if n_val else None
    keras.utils.set_random_seed(seed)
    model = build_model(spec, data.info.input_shape)

    start = time.perf_counter()
    history = model.fit(x[train], y[train], epochs=epochs, batch_size=spec.fit.batch_size,
                        validation_data=validation, verbose=0)
    fit_seconds = time.perf_counter() - start
    accuracy = history.history.get("val_accuracy") or history.history.get("accuracy")
    return {"n_train": len(train), "fit_seconds": fit_seconds,
            "samples_per_second": len(train) * epochs / fit_seconds, "val_accuracy": accuracy[-1]}


def run_plain(args: argparse.Namespace, preset: str, dataset: str, epochs: int, seed: int) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--plain-child", "--preset", preset,
               "--dataset", dataset, "--epochs", str(epochs), "--seed", str(seed)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    result = subprocess.run(command, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise RuntimeError(f"plain fit exited {result.returncode}:\n{_tail(result.stderr)}")
    return _last_json_line(result.stdout)


def run_layerlab(args: argparse.Namespace, home: Path, preset: str, dataset: str, epochs: int,
                 seed: int | None = None, extra_env: dict | None = None) -> dict:
    """`python -m pipelines train`, which queues the run, spawns one worker (no spare) and waits;
    `seed` None: the preset's."""
    command = [sys.executable, "-m", "pipelines", "train", "--dataset", dataset, "--preset", preset,
               "--epochs", str(epochs), "--home", str(home), *(["--seed", str(seed)] if seed is not None else [])]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    try:
        result = subprocess.run(command, cwd=REPO_ROOT, env=child_env(extra_env), capture_output=True, text=True,
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
    run = SQLiteRunStore(home).get_run(summary["run_id"])
    return {"samples_per_second": summary["samples_per_second"],
            "val_accuracy": summary["val_accuracy"] if summary["val_accuracy"] is not None
            else summary["train_accuracy"], "steps_per_execution": run.metrics.get("steps_per_execution")}


def _fmt(value: float | None) -> str:
    return "failed" if value is None else f"{value:,.0f}"


def benchmark(args: argparse.Namespace, preset: str) -> None:
    spec = PRESETS[preset].spec
    dataset = args.dataset or DEFAULT_DATASETS.get(preset, PRESETS[preset].dataset)
    epochs = args.epochs or DEFAULT_EPOCHS.get(preset, 2)
    goal = GOALS.get(preset, DEFAULT_GOAL)
    print(f"\n{preset} on {dataset}: {epochs} epoch(s), batch {spec.fit.batch_size}, validation split "
          f"{spec.fit.validation_split}, seeds 0-{args.reps - 1}, {args.reps} repetition(s); {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    home = Path(tempfile.mkdtemp(prefix="layerlab-bench-")).resolve()
    plain_rates, layerlab_rates, ratios, accuracy_gaps = [], [], [], []
    chosen = seed0_accuracy = one = None
    try:
        for rep in range(1, args.reps + 1):
            seed = rep - 1
            measured: dict[str, dict | None] = {}
            for side, run in (("plain", lambda: run_plain(args, preset, dataset, epochs, seed)),
                              ("layerlab", lambda: run_layerlab(args, home, preset, dataset, epochs, seed))):
                try:
                    measured[side] = run()
                except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
                    print(f"  rep {rep}: {side} failed: {exc}", flush=True)
                    measured[side] = None
            plain, layerlab = measured["plain"], measured["layerlab"]
            if not plain or not layerlab:
                continue
            chosen = layerlab["steps_per_execution"]
            if seed == 0:
                seed0_accuracy = layerlab["val_accuracy"]
            ratio = layerlab["samples_per_second"] / plain["samples_per_second"]
            gap = layerlab["val_accuracy"] - plain["val_accuracy"]
            plain_rates.append(plain["samples_per_second"])
            layerlab_rates.append(layerlab["samples_per_second"])
            ratios.append(ratio)
            accuracy_gaps.append(gap)
            print(f"rep {rep}/{args.reps}, seed {seed}: plain {_fmt(plain['samples_per_second'])} samples/s "
                  f"(val acc {plain['val_accuracy']:.4f}) | layerlab {_fmt(layerlab['samples_per_second'])} samples/s "
                  f"(val acc {layerlab['val_accuracy']:.4f}, {chosen:.0f} batches per call) | ratio {ratio:.2f}"
                  f"  (load average {os.getloadavg()[0]:.2f})", flush=True)
        try:
            one = run_layerlab(args, home, preset, dataset, epochs, seed=0,
                               extra_env={"LAYERLAB_STEPS_PER_EXECUTION": "1"})
            print(f"layerlab with 1 batch per call, seed 0: {_fmt(one['samples_per_second'])} samples/s "
                  f"(val acc {one['val_accuracy']:.4f})", flush=True)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
            print(f"  layerlab with 1 batch per call failed: {exc}", flush=True)
            one = None
    finally:
        Scheduler(SQLiteRunStore(home), SchedulerSettings()).end_workers(wait=WORKER_EXIT_SECONDS)
        shutil.rmtree(home, ignore_errors=True)

    if not ratios:
        print(f"{preset}: no repetition measured both sides; goal >= {goal}x: unknown")
        return
    ratio, gap = statistics.median(ratios), statistics.fmean(accuracy_gaps)
    error = statistics.stdev(accuracy_gaps) / len(accuracy_gaps) ** 0.5 if len(accuracy_gaps) > 1 else None
    same = seed0_accuracy - one["val_accuracy"] if one and seed0_accuracy is not None else None
    print(f"{preset}: median plain {_fmt(statistics.median(plain_rates))} samples/s, median layerlab "
          f"{_fmt(statistics.median(layerlab_rates))} samples/s ({chosen:.0f} batches per call)")
    print(f"{preset}: ratio layerlab/plain (median of {len(ratios)}) {ratio:.2f}x (range {min(ratios):.2f}-"
          f"{max(ratios):.2f}); goal >= {goal}x: {'met' if ratio >= goal else 'NOT met'}")
    if same is not None:
        print(f"{preset}: validation accuracy, seed 0, {chosen:.0f} batches per call - 1 batch per call: {same:+.4f}; "
              f"goal within {ACCURACY_TOLERANCE}: {'met' if abs(same) <= ACCURACY_TOLERANCE else 'NOT met'}")
    spread = f" +- {error:.4f} (standard error)" if error is not None else " (one seed: no spread)"
    print(f"{preset}: validation accuracy, layerlab - the tutorial's fit, per seed: "
          + ", ".join(f"{g:+.4f}" for g in accuracy_gaps))
    print(f"{preset}: validation accuracy, layerlab - the tutorial's fit, mean over {len(accuracy_gaps)} seed(s): "
          f"{gap:+.4f}{spread}; goal within {ACCURACY_TOLERANCE}: {'met' if abs(gap) <= ACCURACY_TOLERANCE else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Layerlab's training against the tutorials' plain Keras fit.")
    parser.add_argument("--preset", action="append", choices=tuple(PRESETS),
                        help="repeatable (default: mlp-128x2 and lenet)")
    parser.add_argument("--epochs", type=int, help="default: 2 for mlp-128x2, 5 (the preset's) for lenet")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--data-dir", help="the dataset folder (default: $LAYERLAB_DATA_DIR)")
    parser.add_argument("--dataset", choices=("mnist", "fashion_mnist", "cifar10"),
                        help="default: Fashion-MNIST for lenet, else the preset's own")
    parser.add_argument("--plain-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)  # the plain child's
    args = parser.parse_args(argv)
    chosen = paths.data_dir(args.data_dir)
    args.data_dir = str(chosen.resolve()) if chosen else None
    if (args.epochs is not None and args.epochs < 1) or args.reps < 1:
        parser.error(f"--epochs and --reps must be positive. Received: epochs={args.epochs}, reps={args.reps}")
    presets = args.preset or ["mlp-128x2", "lenet"]

    if args.plain_child:
        preset = presets[0]
        print(json.dumps(plain_fit(preset, args.dataset, args.epochs or 2, args.data_dir, args.seed)), flush=True)
        return 0
    for preset in presets:
        benchmark(args, preset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
