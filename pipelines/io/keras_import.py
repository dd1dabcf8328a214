"""Importing a `.keras` model as a new run: a file is told apart by its first bytes, checked and
rebuilt in a sandboxed child process (`import_sandbox`), and only a model that passed becomes a
COMPLETED run, its model re-saved by Layerlab. A refused file stores nothing and leaves nothing.

At most CONCURRENT_CHECKS children run at once in a server process (each may take its whole
memory cap); a further import waits LAYERLAB_IMPORT_WAIT_SECONDS for a turn, then is refused as
busy. A child gets only the environment it needs (`child_env`), not the server's.

An imported run was not trained here: it has no epochs and no curves, and its spec's fit settings
are Layerlab's defaults (for training it again). It carries IMPORTED_TAG, the training steps its
file's optimizer had taken as the metric TRAINED_STEPS when the file tells, and says both in its
note; `imported_training` puts that in a phrase for the pages.

Settings: LAYERLAB_IMPORT_MAX_MB (the file), LAYERLAB_IMPORT_MEMORY_MB (the child's address
space), LAYERLAB_IMPORT_SECONDS (its time) and LAYERLAB_IMPORT_WAIT_SECONDS (the wait for a turn).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipelines.errors import LayerlabError, ModelImportError
from pipelines.io.archives import GuardedZip, is_zip
from pipelines.io.import_sandbox import REFUSED_EXIT, RESULT_FILE
from pipelines.io.keras_config_check import CONFIG_MAX_BYTES, check_config, parse_config
from pipelines.runs.artifacts import MODEL_FILE, SPEC_FILE
from pipelines.runs.entities import Run
from pipelines.runs.store import RunStore

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
IMPORTS_FOLDER = "imports"  # <home>/imports/: the sandbox's output, on the runs' disk
IMPORTED_TAG = "imported"
TRAINED_STEPS = "trained_steps"  # metric: the steps (batches) an imported model had trained elsewhere
REPO_ROOT = Path(__file__).resolve().parents[2]
CONCURRENT_CHECKS = 2
_CHECK_SLOTS = threading.BoundedSemaphore(CONCURRENT_CHECKS)  # one per server process: Streamlit's sessions are threads
# What the child reads of the environment besides LAYERLAB_*: Python and Keras find their files and locale.
CHILD_ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "KERAS_BACKEND", "KERAS_HOME", "CUDA_VISIBLE_DEVICES")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise ModelImportError(f"`{name}` must be a positive integer. Received: {name}={raw!r}")
    return int(raw)


@dataclass(frozen=True)
class ImportLimits:
    """The file size the import accepts, the sandbox's memory and time, and the wait for a turn."""

    max_bytes: int = 200 * 2**20
    memory_bytes: int = 4096 * 2**20
    seconds: int = 120
    wait_seconds: int = 60

    @classmethod
    def from_env(cls) -> ImportLimits:
        return cls(max_bytes=_env_int("LAYERLAB_IMPORT_MAX_MB", 200) * 2**20,
                   memory_bytes=_env_int("LAYERLAB_IMPORT_MEMORY_MB", 4096) * 2**20,
                   seconds=_env_int("LAYERLAB_IMPORT_SECONDS", 120),
                   wait_seconds=_env_int("LAYERLAB_IMPORT_WAIT_SECONDS", 60))


def check_size(size: int, filename: str, max_bytes: int) -> None:
    """Refuse an empty file or one over the cap: by its size alone, before a byte of it is read."""
    if size == 0:
        raise ModelImportError(f"{filename} is empty.")
    if size > max_bytes:
        raise ModelImportError(f"{filename} is {size / 2**20:,.1f} MB; at most {max_bytes / 2**20:,.0f} MB "
                               "(LAYERLAB_IMPORT_MAX_MB) is allowed.")


def check_kind(head: bytes, size: int, filename: str, max_bytes: int) -> None:
    """Refuse anything but a `.keras` zip under the cap, told by content, each with its reason."""
    check_size(size, filename, max_bytes)
    if head.startswith(HDF5_MAGIC):
        raise ModelImportError(f"{filename} is an HDF5 (.h5) model, whatever its name: Keras ignored safe_mode "
                               "for HDF5 files until 3.11.3, so Layerlab imports only Keras 3 .keras files.")
    if not is_zip(head):
        raise ModelImportError(f"{filename} is not a .keras file (a .keras file is a zip; its first bytes are "
                               f"{head[:4]!r}). Save the model with model.save('name.keras').")


def check_source(path: Path, filename: str, max_bytes: int) -> None:
    if path.is_dir():
        raise ModelImportError(f"{filename} is a folder (a SavedModel?); Layerlab imports only .keras files: "
                               "load the model in Keras and save it with model.save('name.keras').")
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
        size = path.stat().st_size
    except OSError as error:
        raise ModelImportError(f"Cannot read {filename}: {error.strerror or error}") from None
    check_kind(head, size, filename, max_bytes)


def model_input_shape(source: str | os.PathLike | BinaryIO, filename: str) -> tuple[int, ...] | None:
    """The input shape a `.keras` file's config.json declares, read as the import's own check reads
    it (the config as data, never Keras), to offer the dataset it fits before the import; None when
    the file does not say or would be refused (the import then gives the reason)."""
    try:
        with GuardedZip(source, filename) as archive:
            return check_config(parse_config(archive.read("config.json", CONFIG_MAX_BYTES))).input_shape
    except LayerlabError:
        return None


def fitting_datasets(input_shape: tuple[int, ...]) -> list[str]:
    """The datasets whose images a model of this input shape takes (28x28x1: MNIST and Fashion-MNIST;
    an added folder dataset by its image size and colour), in the catalog's order."""
    from pipelines.data.catalog import CATALOG

    return [name for name, info in CATALOG.items() if tuple(info.input_shape) == tuple(input_shape)]


def training_note(steps: int | None) -> str:
    """What the run's note says of its training: the file's optimizer steps, never epochs."""
    if steps:
        return (f"It had trained elsewhere for {steps:,} steps (batches of its own size) before it was saved; "
                "Layerlab has not trained it, so it has no epochs or curves here.")
    if steps == 0:
        return "Its optimizer had taken no step: it was saved untrained, and Layerlab has not trained it."
    return ("The file does not say how long it trained (it holds no optimizer state); Layerlab has not "
            "trained it, so it has no epochs or curves here.")


def imported_training(run: Run) -> str | None:
    """An imported run's training in a phrase, for where a page shows a run's epochs (its spec's are
    Layerlab's defaults): "imported: trained elsewhere for 22,500 steps, not here", or "imported, not
    trained here" when the file did not tell; None for a run trained here."""
    if IMPORTED_TAG not in run.tags:
        return None
    steps = run.metrics.get(TRAINED_STEPS)
    return f"imported: trained elsewhere for {int(steps):,} steps, not here" if steps else "imported, not trained here"


def child_env(data_dir: str | os.PathLike | None) -> dict[str, str]:
    """The sandbox's environment: Layerlab's settings and what Python needs, not the server's tokens or proxies."""
    env = {key: value for key, value in os.environ.items() if key in CHILD_ENV_KEYS or key.startswith("LAYERLAB_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if data_dir:
        env["LAYERLAB_DATA_DIR"] = str(data_dir)
    return env


def _sandbox(source: Path, out: Path, dataset: str, limits: ImportLimits, data_dir: str | None) -> dict:
    """Run the check in a child process; its result, or ModelImportError if it crashed or timed out."""
    env = child_env(data_dir)
    command = [sys.executable, "-m", "pipelines.io.import_sandbox", str(source), str(out), dataset,
               str(limits.memory_bytes), str(limits.seconds)]
    try:
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=limits.seconds)
    except subprocess.TimeoutExpired:
        raise ModelImportError(f"Refused: checking the file took over {limits.seconds} s "
                               "(LAYERLAB_IMPORT_SECONDS).") from None
    try:
        result = json.loads((out / RESULT_FILE).read_text())
    except (OSError, ValueError):
        result = None
    if done.returncode == -signal.SIGXCPU:
        raise ModelImportError(f"Refused: checking the file took over {limits.seconds} s of CPU "
                               "(LAYERLAB_IMPORT_SECONDS).")
    if done.returncode not in (0, REFUSED_EXIT) or not isinstance(result, dict):
        how = f"crashed (signal {-done.returncode})" if done.returncode < 0 else f"exited {done.returncode}"
        raise ModelImportError(f"Refused: the process checking the file {how}: the file is damaged, or needs more "
                               f"than {limits.memory_bytes // 2**20} MB (LAYERLAB_IMPORT_MEMORY_MB).")
    if not result.get("ok"):
        raise ModelImportError(str(result.get("reason") or "Refused."))
    return result


@contextmanager
def _check_slot(wait_seconds: int) -> Iterator[None]:
    """A turn among the CONCURRENT_CHECKS sandboxes, or ModelImportError once `wait_seconds` have passed."""
    if not _CHECK_SLOTS.acquire(timeout=wait_seconds):
        raise ModelImportError(f"Refused: busy checking other .keras files (at most {CONCURRENT_CHECKS} at a time); "
                               "try again in a minute.")
    try:
        yield
    finally:
        _CHECK_SLOTS.release()


def _remove_stale_work(folder: Path, seconds: int) -> None:
    """Remove what an import killed with its server left behind: work folders older than two turns."""
    try:
        stale = [path for path in folder.iterdir() if time.time() - path.stat().st_mtime > 2 * seconds + 60]
    except OSError:
        return
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)


def import_model(store: RunStore, source: str | os.PathLike, dataset: str, *, name: str = "",
                 filename: str | None = None, limits: ImportLimits | None = None,
                 data_dir: str | os.PathLike | None = None) -> Run:
    """Import the `.keras` file at `source` as a COMPLETED run on `dataset`; ModelImportError with
    the reason if it is refused, and then nothing is stored. `data_dir` holds the dataset's files, for
    the test figures (default: LAYERLAB_DATA_DIR)."""
    from pipelines.data.catalog import get_info

    limits = limits or ImportLimits.from_env()
    source = Path(source)
    filename = filename or source.name
    get_info(dataset)  # an unknown dataset is a DatasetError before any work
    check_source(source, filename, limits.max_bytes)
    _remove_stale_work(store.home / IMPORTS_FOLDER, limits.seconds + limits.wait_seconds)
    work = store.home / IMPORTS_FOLDER / f".tmp-{uuid.uuid4().hex}"
    work.mkdir(parents=True)
    try:
        with _check_slot(limits.wait_seconds):
            result = _sandbox(source, work, dataset, limits, data_dir)
        files = work / "run"
        files.mkdir()
        for kept in (MODEL_FILE, SPEC_FILE):
            os.replace(work / kept, files / kept)
        steps = result.get("trained_steps")
        steps = steps if isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0 else None
        metrics = {**(result.get("metrics") or {}), **({TRAINED_STEPS: steps} if steps is not None else {})}
        note = " ".join([f"Imported from {filename}.", training_note(steps), *result.get("notes", ())])
        return store.add_finished_run(name or f"{Path(filename).stem} (imported)", dataset, result["spec"], files,
                                      metrics=metrics, tags=(IMPORTED_TAG,), note=note)
    finally:
        shutil.rmtree(work, ignore_errors=True)
