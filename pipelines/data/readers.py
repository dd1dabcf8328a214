"""Readers for the on-disk formats: Keras' `mnist.npz`, the official IDX files, CIFAR-10 pickles.

Each reader checks what it reads and returns a frozen `Dataset`; a damaged file gives a
DatasetError naming it. CIFAR batches are pickles, read with an unpickler that can only rebuild
numpy arrays.
"""
from __future__ import annotations

import gzip
import io
import math
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.data.catalog import Dataset, DatasetInfo
from pipelines.errors import DatasetError

FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_FILES = (*CIFAR_TRAIN_BATCHES, "test_batch")
_IDX_UNSIGNED_BYTE = 0x08

# A CIFAR batch is a pickle; these are the only globals needed to rebuild its numpy array, so a
# tampered file cannot run code through `__reduce__`. Keras' allow-list, plus the pure functions
# Python 3 uses for bytes under protocol 2 and for arrays under protocol 5, so re-pickled copies
# load too.
_ALLOWED_PICKLE_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }
)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it refers to `{module}.{name}`, which a CIFAR batch never does")


def finish_dataset(
    info: DatasetInfo,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    origin: str,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
) -> Dataset:
    """Check shapes and label ranges, add the channel axis, and freeze the arrays; `x_val`/`y_val`
    are a validation split the dataset brings itself (an added folder's validation/)."""
    given = [("train", x_train, y_train), ("test", x_test, y_test)]
    if x_val is not None:
        given.append(("validation", x_val, y_val))
    splits = {}
    for split, x, y in given:
        x = np.asarray(x)
        y = np.asarray(y).reshape(-1)
        if x.ndim == 3:
            x = x[..., np.newaxis]
        if x.dtype != np.uint8 or x.shape[1:] != info.input_shape:
            raise DatasetError(
                f"{origin}: the {split} images of {info.title} should be uint8 of shape "
                f"(N, {', '.join(map(str, info.input_shape))}). "
                f"Received: dtype={x.dtype}, shape={x.shape}"
            )
        if len(y) != len(x):
            raise DatasetError(
                f"{origin}: {info.title} has {len(x)} {split} images but {len(y)} {split} labels"
            )
        if len(y) and (y.min() < 0 or y.max() >= info.num_classes):
            raise DatasetError(
                f"{origin}: the {split} labels of {info.title} should lie in "
                f"0..{info.num_classes - 1}. Received: min={y.min()}, max={y.max()}"
            )
        x = np.ascontiguousarray(x)
        y = y.astype(np.int64)
        x.flags.writeable = False
        y.flags.writeable = False
        splits[split] = (x, y)
    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    x_val, y_val = splits.get("validation", (None, None))
    return Dataset(info, x_train, y_train, x_test, y_test, origin, x_val, y_val)


def read_mnist_npz(path: Path, info: DatasetInfo) -> Dataset:
    """Keras' `mnist.npz`, read with pickling disabled."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as error:
        raise DatasetError(f"{path} lacks the array {error}; it should hold {info.local_files}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DatasetError(f"{path} is not a readable .npz file: {error}") from None
    return finish_dataset(info, origin=str(path), **arrays)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """One gzipped IDX file of unsigned bytes with `ndim` dimensions, as a numpy view."""
    try:
        with gzip.open(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path} is not a readable gzip file: {error}") from None
    expected_magic = (_IDX_UNSIGNED_BYTE << 8) | ndim
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != expected_magic:
        found = "nothing" if magic is None else f"0x{magic:08x}"
        raise DatasetError(
            f"{path} is not an IDX file of {ndim}-d unsigned bytes: its magic number is "
            f"{found}, expected 0x{expected_magic:08x}"
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DatasetError(f"{path} ends inside its IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header_size])
    if len(raw) - header_size != math.prod(dims):
        raise DatasetError(
            f"{path} holds {len(raw) - header_size} bytes of data, but its header announces "
            f"dimensions {dims} ({math.prod(dims)} bytes)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims)


def read_fashion_idx(folder: Path, info: DatasetInfo) -> Dataset:
    """The four official Fashion-MNIST IDX files (also the layout `keras.datasets` caches)."""
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images_path = folder / f"{prefix}-images-idx3-ubyte.gz"
        labels_path = folder / f"{prefix}-labels-idx1-ubyte.gz"
        images = read_idx(images_path, ndim=3)
        labels = read_idx(labels_path, ndim=1)
        if images.shape[1:] != info.input_shape[:2]:
            raise DatasetError(
                f"{images_path} holds images of {images.shape[1]}x{images.shape[2]} pixels; "
                f"{info.title} has {info.input_shape[0]}x{info.input_shape[1]}"
            )
        if len(labels) != len(images):
            raise DatasetError(
                f"{labels_path} holds {len(labels)} labels but {images_path} holds "
                f"{len(images)} images"
            )
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images, labels
    return finish_dataset(info, origin=str(folder), **arrays)


def read_cifar_batch(stream: io.BufferedIOBase, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One `cifar-10-batches-py` pickle: (N, 3072) uint8 data, N labels."""
    try:
        batch = _NumpyOnlyUnpickler(stream, encoding="bytes").load()
    # A damaged pickle can fail with almost any exception type; each one means "corrupt file".
    except Exception as error:
        raise DatasetError(f"{where} is not a readable CIFAR-10 batch: {error}") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DatasetError(f"{where} is not a CIFAR-10 batch: it has no b'data' and b'labels' entries")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(
            f"{where}: b'data' should be uint8 of shape (N, 3072). "
            f"Received: dtype={data.dtype}, shape={data.shape}"
        )
    if labels.shape != (len(data),):
        raise DatasetError(f"{where} has {len(data)} images but {labels.size} labels")
    return data, labels


def cifar_dataset(
    info: DatasetInfo, batches: dict[str, tuple[np.ndarray, np.ndarray]], origin: str
) -> Dataset:
    def images(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)

    train = [batches[name] for name in CIFAR_TRAIN_BATCHES]
    x_test, y_test = batches["test_batch"]
    return finish_dataset(
        info,
        x_train=images([data for data, _ in train]),
        y_train=np.concatenate([labels for _, labels in train]),
        x_test=images([x_test]),
        y_test=y_test,
        origin=origin,
    )


def read_cifar_folder(folder: Path, info: DatasetInfo) -> Dataset:
    batches = {}
    for name in CIFAR_FILES:
        with open(folder / name, "rb") as stream:
            batches[name] = read_cifar_batch(stream, str(folder / name))
    return cifar_dataset(info, batches, origin=str(folder))


def read_cifar_tarball(path: Path, info: DatasetInfo) -> Dataset:
    """The official tarball, read member by member in one pass; nothing is extracted to disk."""
    batches = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in CIFAR_FILES and name not in batches:
                    stream = tar.extractfile(member)
                    batches[name] = read_cifar_batch(stream, f"{path} (member {member.name})")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path} is not a readable tar archive: {error}") from None
    missing = [name for name in CIFAR_FILES if name not in batches]
    if missing:
        raise DatasetError(f"{path} lacks the CIFAR-10 batches {', '.join(missing)}")
    return cifar_dataset(info, batches, origin=str(path))
