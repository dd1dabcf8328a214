"""Where each dataset is found, and loading it: the data folder, then Keras' cache, then a download.

Loading never needs the network when the files are on disk: a data folder (`--data-dir` /
`LAYERLAB_DATA_DIR`) wins, then Keras' own cache, and only then a download through
`keras.datasets`. Local files are read directly rather than through `keras.datasets`, because
Keras checks the hash of its cached files and rejects copies that differ from the upstream ones.
Keras is imported only to download.
"""
from __future__ import annotations

import functools
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines import paths
from pipelines.data import added
from pipelines.data.catalog import BUILTIN, CATALOG, Dataset, DatasetInfo, get_info
from pipelines.data.readers import (CIFAR_FILES, FASHION_FILES, finish_dataset, read_cifar_folder,
                                    read_cifar_tarball, read_fashion_idx, read_mnist_npz)
from pipelines.errors import DatasetError

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class _Layout:
    """One way a dataset can sit in a folder: a file, or a folder that needs `required` files."""

    relative: str
    reader: Callable[[Path, DatasetInfo], Dataset]
    required: tuple[str, ...] = ()

    def missing(self, path: Path) -> list[str]:
        if not self.required:
            return [] if path.is_file() else [path.name]
        return [name for name in self.required if not (path / name).is_file()]


_MNIST_NPZ = _Layout("mnist.npz", read_mnist_npz)
_FASHION_FOLDER = _Layout("fashion-mnist", read_fashion_idx, FASHION_FILES)
_CIFAR_FOLDER = _Layout("cifar-10-batches-py", read_cifar_folder, CIFAR_FILES)
_CIFAR_TARBALL = _Layout("cifar-10-python.tar.gz", read_cifar_tarball)

# A data dir may keep MNIST at its top or in a folder of its own (the shared offline copy sits in
# `mnist-sample/`), so one LAYERLAB_DATA_DIR serves every dataset.
_DATA_DIR_LAYOUTS = {
    "mnist": (_MNIST_NPZ, _Layout("mnist/mnist.npz", read_mnist_npz),
              _Layout("mnist-sample/mnist.npz", read_mnist_npz)),
    "fashion_mnist": (_FASHION_FOLDER,),
    "cifar10": (_CIFAR_FOLDER, _CIFAR_TARBALL),
}
# Keras 3 extracts CIFAR-10 to `cifar-10-batches-py-target/cifar-10-batches-py`; Keras 2 left it
# at `cifar-10-batches-py` beside the downloaded tarball.
_KERAS_CACHE_LAYOUTS = {
    "mnist": (_MNIST_NPZ,),
    "fashion_mnist": (_FASHION_FOLDER,),
    "cifar10": (
        _Layout("cifar-10-batches-py-target/cifar-10-batches-py", read_cifar_folder, CIFAR_FILES),
        _CIFAR_FOLDER,
        _Layout("cifar-10-batches-py.tar.gz", read_cifar_tarball),
    ),
}


def _candidates(
    name: str, data_dir: Path | None, cache_dir: Path
) -> list[tuple[Path, _Layout, bool]]:
    """(path, layout, is_in_data_dir) for every place checked, in the order they are tried."""
    found = []
    if data_dir is not None:
        found += [(data_dir / layout.relative, layout, True) for layout in _DATA_DIR_LAYOUTS[name]]
    found += [(cache_dir / layout.relative, layout, False) for layout in _KERAS_CACHE_LAYOUTS[name]]
    return found


def _resolved_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    chosen = paths.data_dir(data_dir)
    return chosen.resolve() if chosen is not None else None


def looked_in(name: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """Every path checked for `name` before downloading, in order (for the UI's message)."""
    get_info(name)
    if name not in BUILTIN:
        return [str(added.datasets_dir() / name / added.ARRAYS)]
    candidates = _candidates(name, _resolved_data_dir(data_dir), paths.keras_cache_dir())
    return [str(path) for path, _, _ in candidates]


def locate(name: str, data_dir: str | os.PathLike | None = None) -> str | None:
    """Where `name` is on disk (complete, though not yet validated), or None if only a download
    would get it."""
    get_info(name)
    if name not in BUILTIN:
        return added.locate(name)
    for path, layout, _ in _candidates(name, _resolved_data_dir(data_dir), paths.keras_cache_dir()):
        if path.exists() and not layout.missing(path):
            return str(path)
    return None


# --- Loading --------------------------------------------------------------------------------


def load(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Dataset:
    """Load `name` from the data folder, else Keras' cache, else (if `download`) the internet.

    Repeated calls with the same folders return the same in-memory Dataset.
    """
    info = get_info(name)
    if name not in BUILTIN:
        return added.load(name)  # stored arrays under the Layerlab home; nothing to download
    return _load_cached(info.name, _resolved_data_dir(data_dir), paths.keras_cache_dir(), download)


def clear_cache() -> None:
    """Forget loaded datasets, e.g. after new files were put in place (and between tests)."""
    _load_cached.cache_clear()
    added.clear_cache()


# Keyed on the Keras cache folder as well, so a changed HOME / KERAS_HOME is not served stale.
@functools.lru_cache(maxsize=6)
def _load_cached(name: str, data_dir: Path | None, cache_dir: Path, download: bool) -> Dataset:
    info = CATALOG[name]
    candidates = _candidates(name, data_dir, cache_dir)
    problems: list[str] = []
    broken_in_data_dir = False
    for path, layout, in_data_dir in candidates:
        if not path.exists():
            continue
        missing = layout.missing(path)
        if missing:
            problems.append(f"{path} lacks {', '.join(missing)}")
            broken_in_data_dir |= in_data_dir
            continue
        try:
            return layout.reader(path, info)
        except DatasetError as error:
            logger.warning("Skipping a broken copy of %s: %s", info.title, error)
            problems.append(str(error))
            broken_in_data_dir |= in_data_dir

    # A broken file in the user's own data folder is a mistake to fix, not a reason to download.
    if download and not broken_in_data_dir:
        try:
            return _download(info)
        except DatasetError as error:
            download_note = str(error)
        except Exception as error:  # Keras reports network failures as plain Exceptions.
            download_note = (
                f"The download through keras.datasets failed: {str(error) or type(error).__name__}"
            )
    elif download:
        download_note = "Not downloaded, because the copy in the data folder needs fixing first."
    else:
        download_note = "Downloading was not allowed (download=False)."
    raise DatasetError(_not_found_message(info, candidates, problems, download_note))


def _download(info: DatasetInfo) -> Dataset:
    """`keras.datasets.<name>.load_data()`, with a socket timeout so a dead network cannot hang."""
    import keras

    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_SECONDS)
    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, info.name).load_data()
    finally:
        socket.setdefaulttimeout(previous_timeout)
    origin = f"downloaded through keras.datasets.{info.name}"
    return finish_dataset(info, x_train, y_train, x_test, y_test, origin=origin)


def _not_found_message(
    info: DatasetInfo,
    candidates: list[tuple[Path, _Layout, bool]],
    problems: list[str],
    download_note: str,
) -> str:
    lines = [f"Could not load the {info.title} dataset ({info.name}).", "Looked in:"]
    lines += [f"  - {path}" for path, _, _ in candidates]
    if problems:
        lines.append("Problems with the files found:")
        lines += [f"  - {problem}" for problem in problems]
    lines.append(
        f"To use a local copy, put {info.local_files} in a data folder and point "
        "--data-dir or the LAYERLAB_DATA_DIR environment variable at that folder."
    )
    lines.append(download_note)
    return "\n".join(lines)
