"""The datasets Layerlab knows: what each one is, and a loaded dataset's shape.

A light module (numpy only), so pages can list datasets and their classes without TensorFlow.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from pipelines.errors import DatasetError

LABEL_MODES = ("sparse", "one_hot", "binary")
# The share of the training set that may be held out for validation; the spec's fit settings and
# the input pipeline both check against this one figure.
VALIDATION_SPLIT_MAX = 0.5


@dataclass(frozen=True)
class DatasetInfo:
    """What the UI shows about a dataset and what a model built for it must accept."""

    name: str
    title: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    source: str
    licence: str
    local_files: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


BUILTIN: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="mnist",
            title="MNIST",
            class_names=tuple(str(digit) for digit in range(10)),
            input_shape=(28, 28, 1),
            source="Yann LeCun, Corinna Cortes and Christopher J.C. Burges, "
            "http://yann.lecun.com/exdb/mnist/",
            licence="CC BY-SA 3.0",
            local_files="mnist.npz (Keras' layout: x_train, y_train, x_test, y_test)",
        ),
        DatasetInfo(
            name="fashion_mnist",
            title="Fashion-MNIST",
            class_names=(
                "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
            ),
            input_shape=(28, 28, 1),
            source="Han Xiao, Kashif Rasul and Roland Vollgraf (Zalando Research), "
            "https://github.com/zalandoresearch/fashion-mnist",
            licence="MIT, Zalando Research",
            local_files="fashion-mnist/ with the four official IDX files "
            "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz",
        ),
        DatasetInfo(
            name="cifar10",
            title="CIFAR-10",
            class_names=(
                "airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck",
            ),
            input_shape=(32, 32, 3),
            source="Alex Krizhevsky, Vinod Nair and Geoffrey Hinton, "
            "https://www.cs.toronto.edu/~kriz/cifar.html",
            licence="Alex Krizhevsky, Vinod Nair and Geoffrey Hinton; free to use with citation "
            "(Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009)",
            local_files="cifar-10-batches-py/ (data_batch_1..5, test_batch) "
            "or cifar-10-python.tar.gz",
        ),
    )
}


class _Catalog(Mapping):
    """The built-in datasets, then those added from image folders (read from the Layerlab home each
    time, so a dataset added by another process appears without a restart)."""

    def _added(self) -> dict[str, DatasetInfo]:
        from pipelines.data.added import added_infos  # added.py builds on this module

        return added_infos()

    def __getitem__(self, name: str) -> DatasetInfo:
        if name in BUILTIN:
            return BUILTIN[name]
        return self._added()[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in BUILTIN or name in self._added())

    def __iter__(self) -> Iterator[str]:
        return iter([*BUILTIN, *self._added()])

    def __len__(self) -> int:
        return len(BUILTIN) + len(self._added())


CATALOG: Mapping[str, DatasetInfo] = _Catalog()


def get_info(name: str) -> DatasetInfo:
    """The catalog entry for `name`; the error lists the names that exist."""
    try:
        return CATALOG[name]
    except (KeyError, TypeError):
        raise DatasetError(
            f"Unknown dataset {name!r}. Expected one of: {', '.join(CATALOG)}"
        ) from None


# `eq=False`: comparing or hashing the arrays element-wise is never what a caller means, and it
# keeps a Dataset hashable (by identity) for caches that hash their arguments.
@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset. Images are uint8 (N, H, W, C), labels int64 (N,); all read-only.

    `x_val`/`y_val`: a validation split the dataset brings itself (an added folder's validation/),
    which training validates on instead of a share of the training set; None for the built-ins.
    """

    info: DatasetInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    origin: str
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def has_own_validation(self) -> bool:
        return self.x_val is not None and len(self.x_val) > 0


def class_counts(dataset: Dataset, split: str = "train") -> list[int]:
    """How many examples of each class `split` ("train" or "test") holds, in class order."""
    labels = {"train": dataset.y_train, "test": dataset.y_test}.get(split)
    if labels is None:
        raise DatasetError(f"`split` must be 'train' or 'test'. Received: split={split!r}")
    return np.bincount(labels, minlength=dataset.info.num_classes).tolist()
