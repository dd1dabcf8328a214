"""How long a `.keras` import takes to refuse or accept a file, and how much memory its sandbox used.

    LAYERLAB_DATA_DIR=/work/shared/datasets PYTHONPATH=. .venv/bin/python bench/keras_import.py [--reps 3]

Five files, each imported `--reps` times into a temp store through `import_model` (the sandboxed
child included): an .h5 renamed .keras (refused in the server process), a config naming
os.system (refused in the child before TensorFlow loads), weights declaring a 10^12-element array
and weights of another model (refused after the rebuild), and a plain Keras model (imported, then
evaluated on the MNIST sample's test set). It prints the median seconds of each, and the peak
resident memory of the sandbox children so far (ru_maxrss over waited-for children: the files run
in that order, so each line's figure is the largest up to that file). Keras makes the files in one
child process and another child measures, so that the measuring process has neither TensorFlow
loaded (a forked child first counts its parent's memory as its own) nor a TensorFlow child behind.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipelines.errors import ModelImportError
from pipelines.io.keras_import import import_model
from pipelines.runs.sqlite_store import SQLiteRunStore


def make_files(folder: Path) -> list[tuple[str, str]]:
    import h5py

    from tests.io.keras_files import assemble, function_object, parts, plain_keras_model, save

    good = save(plain_keras_model(16), folder / "good.keras")
    config, weights, _ = parts(good)
    h5 = folder / "model.h5"
    plain_keras_model().save(h5)
    hostile = parts(good)[0]
    hostile["config"]["layers"][5]["config"]["activation"] = function_object("os", "system")
    buffer = io.BytesIO(weights)
    with h5py.File(buffer, "r+") as handle:
        del handle["layers/dense/vars/0"]
        handle.create_dataset("layers/dense/vars/0", shape=(10**12,), dtype="float32", chunks=(1024,))
    other = parts(save(plain_keras_model(32), folder / "other.keras"))[1]
    files = [(".h5 renamed .keras", h5.rename(folder / "h5.keras")),
             ("config naming os.system", assemble(folder / "os.keras", hostile, weights)),
             ("10^12-element weights", assemble(folder / "huge.keras", config, buffer.getvalue())),
             ("weights of another model", assemble(folder / "other.keras", config, other)),
             ("plain Keras model (imported)", good)]
    return [(label, str(path)) for label, path in files]


def measure(files: list[tuple[str, str]], reps: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteRunStore(Path(folder) / "home")
        print(f"load average {os.getloadavg()[0]:.2f}; {reps} reps each")
        for label, path in files:
            seconds, outcome = [], ""
            for _ in range(reps):
                start = time.perf_counter()
                try:
                    outcome = f"imported as {import_model(store, path, 'mnist').id}"
                except ModelImportError as error:
                    outcome = str(error)[:70]
                seconds.append(time.perf_counter() - start)
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"{label:30s} median {statistics.median(seconds):6.2f} s  sandbox peak RSS so far "
                  f"{peak_mb:6.0f} MB  {outcome}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--make-files", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--measure", metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_files:
        print(json.dumps(make_files(Path(args.make_files))))
    elif args.measure:
        measure(json.loads(args.measure), args.reps)
    else:
        with tempfile.TemporaryDirectory() as folder:
            made = subprocess.run([sys.executable, __file__, "--make-files", folder], capture_output=True, text=True,
                                  check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            files = made.stdout.strip().splitlines()[-1]
            subprocess.run([sys.executable, __file__, "--measure", files, "--reps", str(args.reps)], check=True)


if __name__ == "__main__":
    main()
