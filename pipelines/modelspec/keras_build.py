"""Turning a spec into a compiled Keras model, and a Keras model back into a spec.

`spec_from_model(build_model(spec)) == spec` is the contract (a test holds it): every layer's
params are read back from the Keras layer's own config through the registry, not remembered.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import keras

from pipelines.errors import SpecError
from pipelines.modelspec.keras_blocks import CUSTOM_LAYERS, load_pretrained_weights
from pipelines.modelspec.layers import LAYER_TYPES, get_layer_type, type_for_keras_class
from pipelines.modelspec.spec import LOSSES, OPTIMIZERS, CompileSpec, FitSpec, LayerSpec, ModelSpec, from_logits

def keras_layer(layer: LayerSpec) -> keras.layers.Layer:
    """A fresh Keras layer for one spec layer; raises SpecError for an unknown type."""
    layer_type = get_layer_type(layer.type)
    if layer_type is None:
        raise SpecError(f"Unknown layer type {layer.type!r}. Expected one of: {', '.join(sorted(LAYER_TYPES))}")
    kwargs = {p.key: p.to_keras(layer.params.get(p.name, p.default)) for p in layer_type.params}
    layer_class = CUSTOM_LAYERS.get(layer_type.keras_class) or getattr(keras.layers, layer_type.keras_class)
    return layer_class(name=layer.name, **kwargs, **dict(layer_type.fixed))


def make_optimizer(compile_spec: CompileSpec) -> keras.optimizers.Optimizer:
    entry = OPTIMIZERS[compile_spec.optimizer]
    kwargs: dict[str, Any] = {"learning_rate": compile_spec.learning_rate}
    if "momentum" in entry["params"]:
        kwargs["momentum"] = compile_spec.momentum
    if "nesterov" in entry["params"]:
        kwargs["nesterov"] = compile_spec.nesterov
    return getattr(keras.optimizers, entry["class"])(**kwargs)


def make_loss(compile_spec: CompileSpec, logits: bool) -> keras.losses.Loss:
    entry = LOSSES[compile_spec.loss]
    loss_class = getattr(keras.losses, entry["class"])
    if entry["class"] == "MeanSquaredError":
        return loss_class()
    return loss_class(from_logits=logits)


def build_model(spec: ModelSpec, input_shape: tuple[int, ...] | None = None, *, compile: bool = True) -> keras.Model:
    """A Sequential model of the spec's layers, compiled with its optimizer and loss.

    The caller validates first (see `validation.validate`); this raises whatever Keras raises.
    """
    shape = tuple(input_shape or spec.input_shape or ())
    if not shape:
        raise SpecError("The spec has no `input_shape`: pass the dataset's input shape.")
    model = keras.Sequential([keras.Input(shape=shape)] + [keras_layer(layer) for layer in spec.layers],
                             name=_keras_model_name(spec.name))
    load_pretrained_weights(model)
    if compile:
        model.compile(
            optimizer=make_optimizer(spec.compile),
            loss=make_loss(spec.compile, from_logits(spec)),
            metrics=list(spec.compile.metrics),
        )
    return model


def _keras_model_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in name).strip("_")
    return cleaned or "model"


def layer_spec_from_keras(layer: keras.layers.Layer) -> LayerSpec:
    layer_type_name = type_for_keras_class(type(layer).__name__)
    if layer_type_name is None:
        raise SpecError(f"Layer {layer.name!r} is a {type(layer).__name__}, which Layerlab cannot edit.")
    layer_type = LAYER_TYPES[layer_type_name]
    config = layer.get_config()
    params = {p.name: p.from_keras(config[p.key]) for p in layer_type.params}
    return LayerSpec(type=layer_type_name, name=layer.name, params=params)


def compile_spec_from_keras(model: keras.Model) -> CompileSpec:
    optimizer = model.optimizer
    key = next((k for k, v in OPTIMIZERS.items() if v["class"] == type(optimizer).__name__), None)
    if key is None:
        raise SpecError(f"Optimizer {type(optimizer).__name__} is not one Layerlab offers.")
    config = optimizer.get_config()
    loss_key = next((k for k, v in LOSSES.items() if v["class"] == type(model.loss).__name__), None)
    if loss_key is None:
        raise SpecError(f"Loss {type(model.loss).__name__} is not one Layerlab offers.")
    compile_config = model.get_compile_config() or {}
    metrics = tuple(compile_config.get("metrics") or ())
    return CompileSpec(
        optimizer=key,
        learning_rate=float(f"{float(config['learning_rate']):.7g}"),
        loss=loss_key,
        metrics=metrics,
        momentum=float(f"{float(config.get('momentum', 0.0)):.7g}"),
        nesterov=bool(config.get("nesterov", False)),
    )


def spec_from_model(model: keras.Model, fit: FitSpec | None = None) -> ModelSpec:
    """Read a spec back from a Keras model. Fit settings are not part of a model: pass them."""
    spec = ModelSpec(
        layers=tuple(layer_spec_from_keras(layer) for layer in model.layers),
        input_shape=tuple(int(d) for d in model.input_shape[1:]),
        name=model.name,
    )
    if model.optimizer is not None and getattr(model, "loss", None) is not None:
        spec = replace(spec, compile=compile_spec_from_keras(model))
    return replace(spec, fit=fit or FitSpec())
