"""What a model with augmentation layers sees in training: a few randomly changed copies of an image.

The augmentation layers act only in training (`training=True`); at test time they pass the image
unchanged, so the Test page's predictions never show them. This runs the model's leading
augmentation layers alone, in training mode, for the page's "what the model sees" samples.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipelines.modelspec.layers import LAYER_TYPES

if TYPE_CHECKING:
    from pipelines.inference.predict import LoadedModel

MAX_SAMPLES = 16


def augmentation_layers(loaded: LoadedModel) -> list:
    """The model's augmentation layers that come before anything else (where augmentation goes)."""
    found = []
    for layer in loaded.model.layers:
        layer_type = LAYER_TYPES.get(type(layer).__name__)
        if layer_type is None or not layer_type.random:
            break
        found.append(layer)
    return found


def augmented_samples(loaded: LoadedModel, image: np.ndarray, count: int = 6) -> np.ndarray:
    """`count` (at most MAX_SAMPLES) augmented copies of one scaled image (H, W, C in [0, 1]),
    clipped to [0, 1]; the unchanged image once when the model has no augmentation."""
    import keras  # lazily: the page imports this module without loading TensorFlow

    layers = augmentation_layers(loaded)
    count = max(1, min(int(count), MAX_SAMPLES)) if layers else 1
    batch = keras.ops.repeat(keras.ops.convert_to_tensor(np.asarray(image, np.float32)[None]), count, axis=0)
    for layer in layers:
        batch = layer(batch, training=True)
    return np.clip(keras.ops.convert_to_numpy(batch), 0.0, 1.0)
