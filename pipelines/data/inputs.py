"""The tf.data input pipeline: batched, scaled, shuffled per epoch, with the validation split.

Images stay uint8 in memory and are scaled to float32 in [0, 1] after batching; `scale_images`
is the same scaling for numpy callers (prediction), so both agree to the bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.data.catalog import LABEL_MODES, VALIDATION_SPLIT_MAX, Dataset, DatasetInfo
from pipelines.errors import DatasetError


# `eq=False` for the same reason as Dataset: tf.data objects have no meaningful equality.
@dataclass(frozen=True, eq=False)
class Inputs:
    """Batched tf.data pipelines for fit/evaluate; `val` is None when there is no validation."""

    train: Any
    val: Any
    test: Any
    n_train: int
    n_val: int
    n_test: int
    steps_per_epoch: int


def scale_images(x_uint8: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1], exactly as the tf.data pipeline scales them.

    Only uint8 is accepted so that already-scaled images are not divided by 255 twice.
    """
    x = np.asarray(x_uint8)
    if x.dtype != np.uint8:
        raise DatasetError(f"scale_images expects uint8 pixels. Received: dtype={x.dtype}")
    return x.astype(np.float32) / np.float32(255.0)



def _check_input_settings(
    info: DatasetInfo, batch_size: int, validation_split: float, label_mode: str
) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DatasetError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    if (
        isinstance(validation_split, bool)
        or not isinstance(validation_split, (int, float, np.integer, np.floating))
        or not 0 <= validation_split <= VALIDATION_SPLIT_MAX
    ):
        raise DatasetError(
            f"`validation_split` must be a number between 0 and {VALIDATION_SPLIT_MAX}. "
            f"Received: validation_split={validation_split!r}"
        )
    if label_mode not in LABEL_MODES:
        raise DatasetError(
            f"Unknown label_mode {label_mode!r}. Expected one of: {', '.join(LABEL_MODES)}"
        )
    if label_mode == "binary" and info.num_classes != 2:
        raise DatasetError(
            f"label_mode='binary' needs a dataset with 2 classes; {info.title} has "
            f"{info.num_classes}. Use 'sparse' or 'one_hot'."
        )


# tf.data's autotuner is off, with a fixed prefetch buffer: on 2 cores its background tuning took
# cores from the training step in bursts. With it on, about half of LeNet's epochs on Fashion-MNIST
# took 5 s instead of 3.2 s; with it off, none of 42 did (the same fit in fresh processes). Preparing
# a batch is a gather and a scale, so two batches ahead keep any step fed.
PREFETCH_BATCHES = 2
_FIXED = tf.data.Options()
_FIXED.autotune.enabled = False


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, prepare, shuffle_seed: int | None, *,
             whole_only: bool = False):
    """A tf.data pipeline of prepared batches of (x, y), reshuffled every pass when seeded."""
    images, labels = tf.constant(x), tf.constant(y)
    count = len(x)
    whole_only = whole_only and count >= batch_size
    steps = count // batch_size if whole_only else math.ceil(count / batch_size)
    passes = tf.Variable(0, dtype=tf.int64, trainable=False)

    def batch_indices(_):
        # One permutation per pass, cut into batches: Keras' own recipe for arrays. A shuffle
        # buffer of the whole set would cost far more per epoch. The pass counter makes each
        # epoch's order new, yet the same for the same seed.
        order = tf.range(count, dtype=tf.int64)
        if shuffle_seed is not None:
            order = tf.random.experimental.stateless_shuffle(
                order, seed=tf.stack([tf.constant(shuffle_seed, tf.int64), passes.assign_add(1)]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=whole_only)

    return (
        tf.data.Dataset.range(1)
        .flat_map(batch_indices)
        # flat_map hides the length; Keras needs it to see where each epoch ends.
        .apply(tf.data.experimental.assert_cardinality(steps))
        # One map call per batch is microseconds of work: running it in parallel would only add
        # threads fighting the training step for the cores (measured: slower, and erratic).
        .map(lambda idx: prepare(tf.gather(images, idx), tf.gather(labels, idx)))
        .prefetch(PREFETCH_BATCHES)
        .with_options(_FIXED)
    )


def _preparer(info: DatasetInfo, label_mode: str, scale: bool = True):
    """Scale a batch's pixels to [0, 1] (unless they are already features) and present its labels
    as the loss needs them."""

    def prepare(images, labels):
        images = tf.cast(images, tf.float32) / 255.0 if scale else images
        if label_mode == "one_hot":
            labels = tf.one_hot(labels, info.num_classes, dtype=tf.float32)
        elif label_mode == "binary":
            labels = tf.cast(tf.expand_dims(labels, -1), tf.float32)
        return images, labels

    return prepare


def make_inputs(
    dataset: Dataset,
    *,
    batch_size: int,
    validation_split: float = 0.1,
    label_mode: str = "sparse",
    seed: int = 0,
    shuffle: bool = True,
    scale: bool = True,
) -> Inputs:
    """Train / validation / test pipelines; the validation split is carved out of the training set,
    unless the dataset brings its own (`Dataset.x_val`, an added folder's validation/): then all of
    the training set trains, that split validates, and `validation_split` is not used.

    The training set is shuffled as indices and gathered a batch at a time, and pixels are
    scaled after batching, so the pipeline keeps up with `fit` on in-memory numpy arrays.
    `scale=False` is for float features (a frozen base's outputs), which pass unchanged.
    """
    _check_input_settings(dataset.info, batch_size, validation_split, label_mode)
    prepare = _preparer(dataset.info, label_mode, scale)
    n = len(dataset.x_train)
    n_val = 0 if dataset.has_own_validation else int(round(n * validation_split))
    order = np.random.default_rng(seed).permutation(n)
    # Sorted, so that with shuffle=False the training examples keep the dataset's order.
    train_idx, val_idx = np.sort(order[: n - n_val]), np.sort(order[n - n_val :])
    # Training drops each epoch's last, partial batch (a different few examples every epoch, as the
    # order is new each time): a step on a handful of examples right before the epoch ends is so
    # noisy that it cost mlp-512 on the 5k MNIST sample up to 8 points of test accuracy (0.84 vs
    # 0.93, seeds 2 and 3; kept out, 0.92-0.93 like the tutorial's own numpy run).
    train = _batches(dataset.x_train[train_idx], dataset.y_train[train_idx], batch_size, prepare,
                     seed if shuffle else None, whole_only=True)
    val = _batches(dataset.x_train[val_idx], dataset.y_train[val_idx], batch_size, prepare, None) if n_val else None
    if dataset.has_own_validation:
        val = _batches(dataset.x_val, dataset.y_val, batch_size, prepare, None)
    test = _batches(dataset.x_test, dataset.y_test, batch_size, prepare, None)
    return Inputs(
        train=train,
        val=val,
        test=test,
        n_train=n - n_val,
        n_val=len(dataset.x_val) if dataset.has_own_validation else n_val,
        n_test=len(dataset.x_test),
        steps_per_epoch=max(1, (n - n_val) // batch_size),
    )
