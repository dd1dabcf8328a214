"""A model's parameter count from its spec by arithmetic alone, without Keras.

The run list and the Test page's model picker show every run's parameter count, and those pages
never import TensorFlow (the Build page's count comes from Keras itself, in `validation`). The
rules below are Keras' for the layer types of the registry, and a test holds them to Keras' own
count for every preset and a few more stacks. The count includes non-trainable weights
(BatchNormalization's moving mean and variance), as Keras' `count_params` does.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pipelines.modelspec.layers import get_layer_type
from pipelines.modelspec.pretrained import BASES, output_shape
from pipelines.modelspec.spec import LayerSpec, ModelSpec


def _side(value: Any) -> int:
    """A square window's side, stored as one int (or, from an import, as a pair)."""
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def _spatial(size: int, window: int, stride: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1


def _reshaped(shape: tuple[int, ...], target: Sequence[int]) -> tuple[int, ...] | None:
    total, known = math.prod(shape), math.prod(d for d in target if d != -1)
    if list(target).count(-1) == 1 and known and total % known == 0:
        return tuple(total // known if d == -1 else int(d) for d in target)
    return tuple(int(d) for d in target) if math.prod(target) == total else None


def layer_output(layer: LayerSpec, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int] | None:
    """(output shape without the batch axis, parameter count) of one layer, or None when the layer
    does not take that input or its type is unknown."""
    layer_type = get_layer_type(layer.type)
    if layer_type is None:
        return None
    params = layer_type.effective_params(dict(layer.params))
    kind = layer.type
    if layer_type.needs_image_input and len(shape) != 3:
        return None
    if layer_type.random:
        return shape, 0  # augmentation changes pixels, never the shape
    if kind == "PretrainedBase":
        base = BASES[params["base"]]
        if shape[2] != 3:
            return None  # the table holds colour images' counts (the first convolution's depth)
        return output_shape(base.name, shape), base.params
    if kind == "RunBase":
        return None  # known only from the run's saved model, which needs Keras to read
    if kind == "Dense":
        units = int(params["units"])
        return (*shape[:-1], units), shape[-1] * units + units
    if kind == "Conv2D":
        side, stride, filters = _side(params["kernel_size"]), _side(params["strides"]), int(params["filters"])
        height, width = (_spatial(d, side, stride, params["padding"]) for d in shape[:2])
        return (height, width, filters), side * side * shape[2] * filters + filters
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        side = _side(params["pool_size"])
        height, width = (_spatial(d, side, side, params["padding"]) for d in shape[:2])
        return (height, width, shape[2]), 0
    if kind == "GlobalAveragePooling2D":
        return (shape[2],), 0
    if kind == "Flatten":
        return (math.prod(shape),), 0
    if kind == "Reshape":
        target = _reshaped(shape, params["target_shape"])
        return None if target is None else (target, 0)
    if kind == "BatchNormalization":
        return shape, 4 * shape[-1]  # gamma, beta, moving mean, moving variance
    return shape, 0  # Dropout, Activation, LeakyReLU


def count_parameters(spec: ModelSpec, input_shape: Sequence[int] | None = None) -> int | None:
    """Every weight of the spec's model for `input_shape` (default: the spec's own), or None when
    the stack does not fit together (the Build page names the problem)."""
    shape = tuple(int(d) for d in (input_shape or spec.input_shape or ()))
    if not shape:
        return None
    total = 0
    for layer in spec.layers:
        try:
            result = layer_output(layer, shape)
        except (KeyError, TypeError, ValueError, IndexError):
            return None
        if result is None or any(d <= 0 for d in result[0]):
            return None
        shape, count = result
        total += count
    return total
