"""Image-folder datasets, measured on the real clothing photos (clothing-small, 3,409 JPEGs).

1. Import: `clothing-small` added at 128 px (stretch, rgb) through the same call as
   `python -m pipelines dataset add`: wall time and images/s, each photo decoded once.
2. Throughput: a preset trained on the imported dataset through the worker
   (`python -m pipelines train --dataset NAME`) against plain `model.fit` on the same uint8 arrays
   scaled to [0, 1], each side in a fresh process, alternating (bench/overhead.py's two sides).
   Goal: layerlab / plain >= 0.97.
3. From scratch (`--scratch`, CPU heavy): a small CNN at 96 px, 15 epochs, in Layerlab and in plain
   Keras with the same seed and data: the validation accuracies side by side.

    LAYERLAB_DATA_DIR=/work/shared/datasets PYTHONPATH=. .venv/bin/python bench/folder_dataset.py
        [--image-size 128] [--train-size 64] [--preset cifar-cnn] [--epochs 2] [--reps 3] [--scratch]

A measurement, not a test: it always exits 0 and removes its temporary Layerlab home.
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

from bench.overhead import RUN_TIMEOUT_SECONDS, plain_fit, run_layerlab  # noqa: E402
from pipelines import paths  # noqa: E402
from pipelines.data.folders import Settings  # noqa: E402
from pipelines.execution.processes import child_env  # noqa: E402
from pipelines.io.dataset_import import add_dataset  # noqa: E402

GOAL = 0.97


def source_folder(data_dir: str | None) -> Path:
    chosen = paths.data_dir(data_dir)
    folder = (chosen or Path("/nonexistent")) / "clothing-small"
    if not folder.is_dir():
        sys.exit(f"clothing-small not found under {chosen}; set LAYERLAB_DATA_DIR or --data-dir")
    return folder


def measure_import(folder: Path, home: Path, name: str, size: int) -> None:
    start = time.perf_counter()
    manifest = add_dataset(name, folder, Settings(size, "stretch", "rgb"), home=home)
    seconds = time.perf_counter() - start
    images = sum(map(sum, manifest["counts"].values()))
    print(f"import clothing-small at {size} px: {images:,} images in {seconds:.1f} s wall "
          f"({images / seconds:,.0f} images/s; decoding alone {manifest['decode_seconds']:.1f} s), "
          f"{len(manifest['unreadable'])} unreadable  (load average {os.getloadavg()[0]:.2f})", flush=True)


def run_plain(preset: str, dataset: str, epochs: int) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--plain-child", "--preset", preset,
               "--dataset", dataset, "--epochs", str(epochs)]
    result = subprocess.run(command, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise RuntimeError(f"plain fit exited {result.returncode}:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_throughput(args: argparse.Namespace, home: Path, dataset: str) -> None:
    print(f"\n{args.preset} on {dataset}: {args.epochs} epoch(s), {args.reps} repetition(s), "
          f"{os.cpu_count()} cores", flush=True)
    ratios, plain_rates, layerlab_rates = [], [], []
    for rep in range(1, args.reps + 1):
        try:
            plain = run_plain(args.preset, dataset, args.epochs)
            layerlab = run_layerlab(args, home, args.preset, dataset, args.epochs)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
            print(f"  rep {rep}: failed: {exc}", flush=True)
            continue
        ratio = layerlab["samples_per_second"] / plain["samples_per_second"]
        ratios.append(ratio)
        plain_rates.append(plain["samples_per_second"])
        layerlab_rates.append(layerlab["samples_per_second"])
        print(f"rep {rep}/{args.reps}: plain {plain['samples_per_second']:,.0f} samples/s | layerlab "
              f"{layerlab['samples_per_second']:,.0f} samples/s | ratio {ratio:.2f}  "
              f"(load average {os.getloadavg()[0]:.2f})", flush=True)
    if not ratios:
        print("no repetition measured both sides")
        return
    ratio = statistics.median(ratios)
    print(f"{args.preset} on {dataset}: median plain {statistics.median(plain_rates):,.0f} samples/s, median "
          f"layerlab {statistics.median(layerlab_rates):,.0f} samples/s; ratio layerlab/plain (median of "
          f"{len(ratios)}) {ratio:.2f}x, best-of {max(layerlab_rates) / max(plain_rates):.2f}x; "
          f"goal >= {GOAL}x: {'met' if ratio >= GOAL else 'NOT met'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Image-folder datasets on clothing-small: import and training.")
    parser.add_argument("--image-size", type=int, default=128, help="for the import measurement")
    parser.add_argument("--train-size", type=int, default=64, help="image size for the throughput measurement")
    parser.add_argument("--preset", default="cifar-cnn")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--scratch", action="store_true", help="also the 15-epoch small CNN at 96 px")
    parser.add_argument("--data-dir")
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--plain-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plain_child:  # LAYERLAB_HOME names the temp home, so load() finds the added dataset
        print(json.dumps(plain_fit(args.preset, args.dataset, args.epochs, None)), flush=True)
        return 0
    folder = source_folder(args.data_dir)
    args.data_dir = None
    home = Path(tempfile.mkdtemp(prefix="layerlab-folder-bench-")).resolve()
    os.environ["LAYERLAB_HOME"] = str(home)
    try:
        measure_import(folder, home, f"clothing-{args.image_size}", args.image_size)
        name = f"clothing-{args.train_size}"
        if args.train_size != args.image_size:
            add_dataset(name, folder, Settings(args.train_size, "stretch", "rgb"), home=home)
        measure_throughput(args, home, name)
        if args.scratch:
            from bench.folder_scratch import compare_from_scratch

            compare_from_scratch(folder, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
