"""A Layerlab spec from a checked `.keras` config: the model Layerlab rebuilds instead of letting
Keras deserialize the file.

Every layer's editable params are read through the registry (as `keras_build.spec_from_model`
does for a live model) and checked against the registry's ranges; the compile settings map to
Layerlab's optimizers and losses, or to Layerlab's defaults when the file was saved uncompiled.
"""
from __future__ import annotations

from typing import Any

from pipelines.errors import SpecError
from pipelines.io.keras_config_check import CheckedConfig, ConfigLayer, refuse
from pipelines.modelspec.layers import LAYER_TYPES, type_for_keras_class
from pipelines.modelspec.limits import brief
from pipelines.modelspec.spec import LOSSES, METRICS, OPTIMIZERS, CompileSpec, LayerSpec, ModelSpec


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


def _class_of(entry: Any) -> str | None:
    return entry.get("class_name") if isinstance(entry, dict) else entry


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
    metrics = tuple(m for m in compile_config.get("metrics") or () if m in METRICS)
    values = {"optimizer": key, "loss": loss, "metrics": metrics}
    if "learning_rate" in settings:
        values["learning_rate"] = float(f"{float(settings['learning_rate']):.7g}")
    if "momentum" in OPTIMIZERS[key]["params"] and "momentum" in settings:
        values["momentum"] = float(f"{float(settings['momentum']):.7g}")
    if "nesterov" in OPTIMIZERS[key]["params"] and "nesterov" in settings:
        values["nesterov"] = settings["nesterov"]
    try:
        return CompileSpec(**values)
    except (SpecError, TypeError, ValueError) as error:
        raise refuse(f"the compile settings do not fit Layerlab's: {error}") from None


def spec_from_config(checked: CheckedConfig) -> ModelSpec:
    """The spec Layerlab builds the imported model from; ModelImportError if it cannot."""
    return ModelSpec(
        layers=tuple(layer_spec(layer) for layer in checked.layers),
        compile=compile_spec(checked.compile),
        input_shape=checked.input_shape,
        name=checked.name or "imported",
    ).normalized()
