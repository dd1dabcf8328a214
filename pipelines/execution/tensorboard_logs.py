"""TensorBoard event logs per run, from Keras' own TensorBoard callback.

Each run writes `<run folder>/tensorboard/train` and `.../validation`: the epoch scalars (loss,
accuracy, learning rate, validation loss against the optimizer's step) and the model's Keras
graph, one small write when training starts. Open them with `tensorboard --logdir
<LAYERLAB_HOME>/runs`. Keras writes scalars through the `tensorboard` package (TensorFlow alone
has only the writer), so without it a run trains without logs and says so in the worker's log.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from pipelines.runs.artifacts import TENSORBOARD_DIR

log = logging.getLogger("layerlab.worker")


def tensorboard_dir(run_dir: Path) -> Path:
    return Path(run_dir) / TENSORBOARD_DIR


def can_write_logs() -> bool:
    """Whether the `tensorboard` package, which Keras needs to write scalars, is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def tensorboard_callbacks(run_dir: Path) -> list:
    """[keras.callbacks.TensorBoard] writing epoch scalars under the run's folder, or [] when the
    `tensorboard` package is missing. A resumed run appends to the same folders, its epochs
    numbered on from where it stopped."""
    if not can_write_logs():
        log.warning("the tensorboard package is not installed: this run writes no TensorBoard logs "
                    "(pip install -r requirements.txt)")
        return []
    import keras

    class EpochTensorBoard(keras.callbacks.TensorBoard):
        """Keras' callback with its batch hooks off. With update_freq="epoch" they write nothing,
        yet reading each batch's logs would wait for the step, and a batch hook that is not the
        default stops Keras dispatching batch ends on its thread pool; so the default hooks are kept.
        write_graph=True then writes the model's Keras graph at set_model, and not the op-level
        train graph, which Keras writes from the first batch's hook."""

        on_train_batch_begin = keras.callbacks.Callback.on_train_batch_begin
        on_train_batch_end = keras.callbacks.Callback.on_train_batch_end
        on_test_batch_begin = keras.callbacks.Callback.on_test_batch_begin

    # One point per epoch keeps the logs small (the batch curves are in the app); no histograms,
    # images or profiler, each of which costs time at every epoch.
    return [EpochTensorBoard(log_dir=str(tensorboard_dir(run_dir)), update_freq="epoch", histogram_freq=0,
                             write_graph=True, write_images=False, profile_batch=0)]
