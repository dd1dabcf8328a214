"""A Layerlab spec from a checked `.keras` config: the model Layerlab rebuilds instead of letting
Keras deserialize the file.

Every layer's editable params are read through the registry (as `keras_build.spec_from_model`
does for a live model) and checked against the registry's ranges; the compile settings map to
Layerlab's optimizers, losses and metrics, or to Layerlab's defaults when the file was saved
uncompiled. What Layerlab cannot carry as it is (a learning-rate schedule, a layer's regularizers
and constraints) is mapped or left out, and said so in `import_notes`, which becomes the run's note.
"""
from __future__ import annotations

import math
import re
from typing import Any

from pipelines.errors import SpecError
from pipelines.io.keras_config_check import CheckedConfig, ConfigLayer, refuse
from pipelines.modelspec.layers import LAYER_TYPES, type_for_keras_class
from pipelines.modelspec.limits import brief
from pipelines.modelspec.spec import LOSSES, METRICS, OPTIMIZERS, CompileSpec, LayerSpec, ModelSpec

MAX_NAME_CHARS = 64
# keras' accuracy metrics, as objects or by name, are Layerlab's one metric
ACCURACY_NAMES = {"accuracy", "acc", "Accuracy", "SparseCategoricalAccuracy", "sparse_categorical_accuracy",
                  "CategoricalAccuracy", "categorical_accuracy", "BinaryAccuracy", "binary_accuracy"}
_NOT_PLAIN = re.compile(r"[^\w .()+-]+|\.{2,}")


def layer_spec(layer: ConfigLayer) -> LayerSpec:
    layer_type = LAYER_TYPES[type_for_keras_class(layer.class_name)]
    params = {}
    for param in layer_type.params:
        if param.key not in layer.config:
            raise refuse(f"layer {layer.name!r} ({layer.class_name}) has no `{param.key}` in its config")
        try:
            value = param.from_keras(layer.config[param.key])
        except (TypeError, ValueError, IndexError, KeyError):
            value = layer.config[param.key]
        problem = param.check(value)
        if problem:
            raise refuse(f"layer {layer.name!r} ({layer.class_name}) has {param.key}={brief(layer.config[param.key])}; "
                         f"Layerlab allows {problem}")
        params[param.name] = value
    return LayerSpec(type=layer_type.name, name=layer.name, params=params)


def plain_name(name: str) -> str:
    """The file's model name as a run/spec name: letters, digits, spaces and `_.()+-` only (no path
    separators, no `..`, no markup), at most MAX_NAME_CHARS; "imported" if nothing is left."""
    cleaned = " ".join(_NOT_PLAIN.sub(" ", name).split())[:MAX_NAME_CHARS].strip(" .")
    return cleaned or "imported"


def _class_of(entry: Any) -> str | None:
    return entry.get("class_name") if isinstance(entry, dict) else entry


def _positive_number(key: str, value: Any) -> float:
    """A number of the optimizer's config, told apart from a damaged file by its own reason."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise refuse(f"the optimizer's `{key}` must be a positive number. Received: {key}={brief(value)}")
    return float(f"{float(value):.7g}")


def _learning_rate(value: Any) -> float:
    """A number, or a schedule's starting rate (Layerlab trains with a fixed rate)."""
    if isinstance(value, dict):
        return _positive_number("learning_rate", value.get("config", {}).get("initial_learning_rate"))
    return _positive_number("learning_rate", value)


def compile_spec(compile_config: dict) -> CompileSpec:
    """Layerlab's compile settings for the file's own; the defaults for a file saved uncompiled."""
    if not compile_config:
        return CompileSpec()
    optimizer = compile_config.get("optimizer")
    name = _class_of(optimizer)
    key = next((k for k, v in OPTIMIZERS.items() if name in (k, v["class"])), None)
    if key is None:
        raise refuse(f"the optimizer {brief(name)} is not one Layerlab offers: "
                     f"{', '.join(v['class'] for v in OPTIMIZERS.values())}")
    settings = optimizer.get("config", {}) if isinstance(optimizer, dict) else {}
    loss_name = _class_of(compile_config.get("loss"))
    loss = next((k for k, v in LOSSES.items() if loss_name in (k, v["class"])), None)
    if loss is None:
        raise refuse(f"the loss {brief(loss_name)} is not one Layerlab offers: {', '.join(LOSSES)}")
    metrics = tuple(dict.fromkeys(METRICS[0] for m in compile_config.get("metrics") or ()
                                  if _class_of(m) in ACCURACY_NAMES))
    values = {"optimizer": key, "loss": loss, "metrics": metrics}
    if "learning_rate" in settings:
        values["learning_rate"] = _learning_rate(settings["learning_rate"])
    if "momentum" in OPTIMIZERS[key]["params"] and "momentum" in settings:
        momentum = settings["momentum"]
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)):
            raise refuse(f"the optimizer's `momentum` must be a number. Received: momentum={brief(momentum)}")
        values["momentum"] = float(f"{float(momentum):.7g}")
    if "nesterov" in OPTIMIZERS[key]["params"] and "nesterov" in settings:
        values["nesterov"] = settings["nesterov"]
    try:
        return CompileSpec(**values)
    except (SpecError, TypeError, ValueError) as error:
        raise refuse(f"the compile settings do not fit Layerlab's: {error}") from None


# Settings that act only while training: the checker lets Keras' own regularizer and constraint
# classes through (an activity_regularizer it refuses), and Layerlab's layers have none, so the
# imported model predicts as the file's but trains without them. The note names a few layers.
TRAINING_ONLY_SUFFIXES = ("_regularizer", "_constraint")
NOTED_LAYERS = 5
OBJECT_TEXT_CHARS = 80


def _object_text(value: Any) -> str:
    """`L2(l2=0.01)` for a serialized Keras object, at most OBJECT_TEXT_CHARS long."""
    if not isinstance(value, dict):
        return brief(value, OBJECT_TEXT_CHARS)
    settings = value.get("config") if isinstance(value.get("config"), dict) else {}
    shown = ", ".join(f"{key}={item:g}" if isinstance(item, (int, float)) and not isinstance(item, bool)
                      else f"{key}={brief(item, 20)}" for key, item in settings.items())
    text = f"{value.get('class_name', '?')}({shown})"
    return text if len(text) <= OBJECT_TEXT_CHARS else text[: OBJECT_TEXT_CHARS - 1] + "…"


def _training_only(config: dict) -> list[str]:
    return [f"{key} {_object_text(value)}" for key, value in config.items()
            if value and key != "activity_regularizer" and key.endswith(TRAINING_ONLY_SUFFIXES)]


def import_notes(checked: CheckedConfig) -> tuple[str, ...]:
    """What the import changed on the way in, for the run's note (short: a note has a size cap)."""
    notes = []
    optimizer = checked.compile.get("optimizer")
    rate = optimizer.get("config", {}).get("learning_rate") if isinstance(optimizer, dict) else None
    if isinstance(rate, dict):
        notes.append(f"The file's learning-rate schedule ({rate['class_name']}) was imported as its initial rate, "
                     f"{_learning_rate(rate):g}: Layerlab trains with a fixed rate.")
    carried = [(position, layer.class_name, found) for position, layer in enumerate(checked.layers, 1)
               if (found := _training_only(layer.config))]
    if carried:
        shown = "; ".join(f"layer {position} ({kind}): {' and '.join(found)}"
                          for position, kind, found in carried[:NOTED_LAYERS])
        more = f"; and {len(carried) - NOTED_LAYERS} more layers" if len(carried) > NOTED_LAYERS else ""
        notes.append(f"Left out, as they act only while training and Layerlab's layers have none: {shown}{more}. "
                     "The model predicts as the file's; training it further here runs without them.")
    return tuple(notes)


def spec_from_config(checked: CheckedConfig) -> ModelSpec:
    """The spec Layerlab builds the imported model from; ModelImportError if it cannot."""
    return ModelSpec(
        layers=tuple(layer_spec(layer) for layer in checked.layers),
        compile=compile_spec(checked.compile),
        input_shape=checked.input_shape,
        name=plain_name(checked.name),
    ).normalized()
