"""The model spec: plain, JSON-serialisable data describing a model and how to train it.

A spec is what the Build page edits, what a run stores, and what the CLI reads from a file. It
round-trips through `to_dict`/`from_dict` like Keras' `get_config`/`from_config`. `from_dict`
checks only the structure; whether the layers make a model is `validation.validate`'s job, so
that a half-edited stack can still be shown with its problems.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from pipelines.errors import SpecError
from pipelines.data.catalog import VALIDATION_SPLIT_MAX
from pipelines.modelspec.layers import default_layer_name, get_layer_type
from pipelines.modelspec.limits import brief, limits, load_spec_json

OPTIMIZERS: dict[str, dict[str, Any]] = {
    "sgd": {"title": "SGD", "class": "SGD", "learning_rate": 0.01, "params": ("momentum", "nesterov")},
    "rmsprop": {"title": "RMSprop", "class": "RMSprop", "learning_rate": 0.001, "params": ("momentum",)},
    "adam": {"title": "Adam", "class": "Adam", "learning_rate": 0.001, "params": ()},
    "adamw": {"title": "AdamW", "class": "AdamW", "learning_rate": 0.001, "params": ()},
    "adagrad": {"title": "Adagrad", "class": "Adagrad", "learning_rate": 0.001, "params": ()},
    "nadam": {"title": "Nadam", "class": "Nadam", "learning_rate": 0.001, "params": ()},
}

# label_mode: how the input pipeline must present the labels for this loss.
LOSSES: dict[str, dict[str, Any]] = {
    "sparse_categorical_crossentropy": {
        "title": "Sparse categorical cross-entropy",
        "class": "SparseCategoricalCrossentropy",
        "label_mode": "sparse",
    },
    "categorical_crossentropy": {
        "title": "Categorical cross-entropy",
        "class": "CategoricalCrossentropy",
        "label_mode": "one_hot",
    },
    "binary_crossentropy": {
        "title": "Binary cross-entropy (2 classes)",
        "class": "BinaryCrossentropy",
        "label_mode": "binary",
    },
    "mse": {"title": "Mean squared error", "class": "MeanSquaredError", "label_mode": "one_hot"},
}

METRICS = ("accuracy",)

PATIENCE_MAX = 1000
EPOCHS_MAX = 1000  # fit.epochs; the Build page's field and a sweep's retrain stop there too


def _choice_error(what: str, value: Any, choices: Mapping | tuple) -> SpecError:
    return SpecError(f"Unknown {what} {value!r}. Expected one of: {', '.join(choices)}")


def _number(section: str, name: str, value: Any, *, kind: type, minimum: float, maximum: float,
            allow_none: bool = False) -> Any:
    """Check one number of the compile/fit settings; the message names it and echoes it."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and isinstance(value, float):
        ok = math.isfinite(value)  # NaN passes every comparison
    if ok and kind is int:
        ok = isinstance(value, int) or value.is_integer()
    if not ok or not (minimum <= value <= maximum):
        noun = "an integer" if kind is int else "a number"
        low, high = (f"{int(minimum)}", f"{int(maximum)}") if kind is int else (f"{minimum:g}", f"{maximum:g}")
        raise SpecError(f"{section}: `{name}` must be {noun} from {low} to {high}. Received: {name}={brief(value)}")
    return kind(value)


@dataclass(frozen=True)
class LayerSpec:
    """One layer: its registry type, an explicit unique name, and its params."""

    type: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "params": json.loads(json.dumps(dict(self.params)))}

    @classmethod
    def from_dict(cls, data: Any, index: int = 0) -> "LayerSpec":
        where = f"Layer {index + 1}"
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: expected an object with `type`, `name` and `params`. Received: {brief(data)}")
        layer_type = data.get("type")
        if not isinstance(layer_type, str) or not 0 < len(layer_type) <= 64:
            raise SpecError(f"{where}: `type` must be a layer type name. Received: type={brief(layer_type)}")
        _reject_unknown_keys(f"{where} ({layer_type})", data, {"type", "name", "params"})
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise SpecError(f"{where} ({layer_type}): `name` must be a string. Received: name={brief(name)}")
        params = data.get("params", {})
        if not isinstance(params, Mapping):
            raise SpecError(f"{where} ({layer_type}): `params` must be an object. Received: params={brief(params)}")
        most = limits().max_layer_params
        if len(params) > most:
            raise SpecError(f"{where} ({layer_type}): `params` holds {len(params):,} entries; the limit is {most} "
                            "(LAYERLAB_MAX_LAYER_PARAMS).")
        return cls(type=layer_type, name=name or "", params=dict(params))


@dataclass(frozen=True)
class CompileSpec:
    """Optimizer, learning rate, loss and metrics. `from_logits` is derived, never stored."""

    optimizer: str = "adam"
    learning_rate: float = 0.001
    loss: str = "sparse_categorical_crossentropy"
    metrics: tuple[str, ...] = METRICS
    momentum: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise _choice_error("optimizer", self.optimizer, OPTIMIZERS)
        if self.loss not in LOSSES:
            raise _choice_error("loss", self.loss, LOSSES)
        for metric in self.metrics:
            if metric not in METRICS:
                raise _choice_error("metric", metric, METRICS)
        _number("compile", "learning_rate", self.learning_rate, kind=float, minimum=1e-7, maximum=10.0)
        if self.learning_rate <= 0:
            raise SpecError(f"compile: `learning_rate` must be positive. Received: learning_rate={self.learning_rate!r}")
        _number("compile", "momentum", self.momentum, kind=float, minimum=0.0, maximum=0.999)
        if not isinstance(self.nesterov, bool):
            raise SpecError(f"compile: `nesterov` must be true or false. Received: nesterov={brief(self.nesterov)}")

    @property
    def label_mode(self) -> str:
        return LOSSES[self.loss]["label_mode"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "loss": self.loss,
            "metrics": list(self.metrics),
            "momentum": self.momentum,
            "nesterov": self.nesterov,
        }

    @classmethod
    def from_dict(cls, data: Any) -> "CompileSpec":
        if not isinstance(data, Mapping):
            raise SpecError(f"`compile` must be an object. Received: compile={brief(data)}")
        _reject_unknown_keys("compile", data, {f for f in cls.__dataclass_fields__})
        values = dict(data)
        if "metrics" in values:
            if not isinstance(values["metrics"], (list, tuple)):
                raise SpecError(f"compile: `metrics` must be a list. Received: metrics={brief(values['metrics'])}")
            values["metrics"] = tuple(values["metrics"])
        if isinstance(values.get("optimizer"), str):
            values["optimizer"] = values["optimizer"].lower()
        if isinstance(values.get("learning_rate"), int) and not isinstance(values.get("learning_rate"), bool):
            values["learning_rate"] = float(values["learning_rate"])
        return cls(**values)


@dataclass(frozen=True)
class FitSpec:
    """How to train: epochs, batch size, validation split, early stopping, best checkpoint."""

    epochs: int = 5
    batch_size: int = 32
    validation_split: float = 0.1
    early_stopping_patience: int | None = None
    keep_best: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        _number("fit", "epochs", self.epochs, kind=int, minimum=1, maximum=EPOCHS_MAX)
        _number("fit", "batch_size", self.batch_size, kind=int, minimum=1, maximum=8192)
        _number("fit", "validation_split", self.validation_split, kind=float, minimum=0.0,
                maximum=VALIDATION_SPLIT_MAX)
        _number("fit", "early_stopping_patience", self.early_stopping_patience, kind=int, minimum=1,
                maximum=PATIENCE_MAX, allow_none=True)
        _number("fit", "seed", self.seed, kind=int, minimum=0, maximum=2**31 - 1)
        if not isinstance(self.keep_best, bool):
            raise SpecError(f"fit: `keep_best` must be true or false. Received: keep_best={brief(self.keep_best)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "validation_split": self.validation_split,
            "early_stopping_patience": self.early_stopping_patience,
            "keep_best": self.keep_best,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Any) -> "FitSpec":
        if not isinstance(data, Mapping):
            raise SpecError(f"`fit` must be an object. Received: fit={brief(data)}")
        _reject_unknown_keys("fit", data, {f for f in cls.__dataclass_fields__})
        return cls(**dict(data))


def _reject_unknown_keys(section: str, data: Mapping, known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"{section}: unknown setting {brief(unknown[0])}. Expected some of: {', '.join(sorted(known))}")


@dataclass(frozen=True)
class ModelSpec:
    """A whole model: input shape, ordered layers, compile and fit settings."""

    layers: tuple[LayerSpec, ...] = ()
    compile: CompileSpec = field(default_factory=CompileSpec)
    fit: FitSpec = field(default_factory=FitSpec)
    input_shape: tuple[int, ...] | None = None
    name: str = "model"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "layers": [layer.to_dict() for layer in self.layers],
            "compile": self.compile.to_dict(),
            "fit": self.fit.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> "ModelSpec":
        if not isinstance(data, Mapping):
            raise SpecError(f"A model spec must be a JSON object with `layers`. Received: {type(data).__name__}")
        _reject_unknown_keys("spec", data, {"name", "input_shape", "layers", "compile", "fit"})
        layers = data.get("layers")
        if not isinstance(layers, list):
            raise SpecError(f"spec: `layers` must be a list of layers. Received: layers={brief(layers)}")
        most = limits().max_layers
        if len(layers) > most:
            raise SpecError(f"spec: the model has {len(layers):,} layers; the limit is {most} "
                            "(LAYERLAB_MAX_SPEC_LAYERS).")
        input_shape = data.get("input_shape")
        if input_shape is not None:
            if not (isinstance(input_shape, (list, tuple)) and input_shape
                    and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_shape)):
                raise SpecError("spec: `input_shape` must be a list of positive integers. "
                                f"Received: input_shape={brief(input_shape)}")
            input_shape = tuple(input_shape)
        name = data.get("name") or "model"
        if not isinstance(name, str):
            raise SpecError(f"spec: `name` must be a string. Received: name={brief(name)}")
        spec = cls(
            layers=tuple(LayerSpec.from_dict(layer, i) for i, layer in enumerate(layers)),
            compile=CompileSpec.from_dict(data.get("compile", {})),
            fit=FitSpec.from_dict(data.get("fit", {})),
            input_shape=input_shape,
            name=name,
        )
        return spec.normalized()

    @classmethod
    def from_json(cls, text: str | bytes) -> "ModelSpec":
        """A spec from untrusted JSON text, read within the limits of `limits.SpecLimits`."""
        return cls.from_dict(load_spec_json(text))

    def normalized(self) -> "ModelSpec":
        """Every layer with an explicit name (Keras' own counters reset with the session) and every
        registry param spelled out, so that equal models have equal specs."""
        taken = {layer.name for layer in self.layers if layer.name}
        named = []
        for layer in self.layers:
            if not layer.name:
                layer = replace(layer, name=default_layer_name(layer.type, taken))
                taken.add(layer.name)
            layer_type = get_layer_type(layer.type)
            if layer_type is not None:
                layer = replace(layer, params=layer_type.effective_params(dict(layer.params)))
            named.append(layer)
        return replace(self, layers=tuple(named))

    def with_fit(self, **changes: Any) -> "ModelSpec":
        return replace(self, fit=replace(self.fit, **changes))

    def with_compile(self, **changes: Any) -> "ModelSpec":
        return replace(self, compile=replace(self.compile, **changes))


# Layers that pass their input's activation through unchanged when looking for the output's one.
_TRANSPARENT = {"Dropout", "Flatten", "Reshape"}


def output_activation(spec: ModelSpec) -> str:
    """The activation that produces the model's output ('linear' when it emits raw scores)."""
    for layer in reversed(spec.layers):
        if layer.type in _TRANSPARENT:
            continue
        if layer.type == "LeakyReLU":
            return "leaky_relu"
        layer_type = get_layer_type(layer.type)
        params = layer_type.effective_params(dict(layer.params)) if layer_type else layer.params
        return str(params.get("activation", "linear"))
    return "linear"


def from_logits(spec: ModelSpec) -> bool:
    """Whether the loss must treat outputs as logits: true unless the last layer squashes them."""
    return output_activation(spec) not in ("softmax", "sigmoid")
