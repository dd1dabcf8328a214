"""The layer catalog: one registry entry per layer type, read by both the UI and the validator.

An entry names the Keras class and the parameters a user may edit (type, default, allowed range,
one-line help). Adding a layer type is adding one entry here; nothing else needs to know.
Keras is not imported here, so pages can draw the palette without loading TensorFlow.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pipelines.modelspec.pretrained import BASES

ACTIVATIONS = ("relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "linear")

ACTIVATION_HELP = (
    "An activation bends the layer's output so that stacked layers can learn curved decision "
    "boundaries; without one, any stack of Dense layers collapses into a single linear map. "
    "relu for hidden layers, softmax on the last layer to turn scores into class probabilities."
)


@dataclass(frozen=True)
class ParamSpec:
    """One editable parameter of a layer type.

    `kind` is one of "int", "float", "choice", "shape", "text". `maximum_exclusive` marks ranges
    such as a dropout rate, which may approach but never reach 1. `keras_key` is the name in the
    Keras layer's config when it differs, and square kernels are stored as one int (`square=True`).
    A "text" param must match `pattern` (which says what is allowed in `pattern_help`).
    """

    name: str
    kind: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    maximum_exclusive: bool = False
    choices: tuple[str, ...] = ()
    square: bool = False
    keras_key: str | None = None
    pattern: str = ""
    pattern_help: str = ""

    @property
    def key(self) -> str:
        return self.keras_key or self.name

    def allowed(self) -> str:
        """What is allowed, in words, for error messages and the UI."""
        if self.kind == "choice":
            return "one of: " + ", ".join(self.choices)
        if self.kind == "shape":
            return "a list of positive integers (one entry may be -1)"
        if self.kind == "text":
            return self.pattern_help
        noun = "an integer" if self.kind == "int" else "a number"
        if self.minimum is not None and self.maximum is not None:
            upper = f"up to (not including) {self.maximum:g}" if self.maximum_exclusive else f"to {self.maximum:g}"
            return f"{noun} from {self.minimum:g} {upper}"
        if self.minimum is not None:
            return f"{noun} of at least {self.minimum:g}"
        return noun

    def check(self, value: Any) -> str | None:
        """Return why `value` is not allowed, or None when it is."""
        if self.kind == "choice":
            return None if value in self.choices else self.allowed()
        if self.kind == "shape":
            ok = (
                isinstance(value, (list, tuple))
                and len(value) > 0
                and all(isinstance(v, int) and not isinstance(v, bool) and (v > 0 or v == -1) for v in value)
                and list(value).count(-1) <= 1
            )
            return None if ok else self.allowed()
        if self.kind == "text":
            return None if isinstance(value, str) and re.fullmatch(self.pattern, value) else self.allowed()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return self.allowed()
        if isinstance(value, float) and not math.isfinite(value):  # NaN passes every comparison below
            return self.allowed()
        if self.kind == "int" and not (isinstance(value, int) or value.is_integer()):
            return self.allowed()
        if self.minimum is not None and value < self.minimum:
            return self.allowed()
        if self.maximum is not None:
            if value > self.maximum or (self.maximum_exclusive and value >= self.maximum):
                return self.allowed()
        return None

    def to_keras(self, value: Any) -> Any:
        if self.square:
            return (int(value), int(value))
        if self.kind == "shape":
            return tuple(int(v) for v in value)
        if self.kind == "int":
            return int(value)
        return value

    def from_keras(self, value: Any) -> Any:
        if self.square:
            first = value[0] if isinstance(value, (list, tuple)) else value
            return int(first)
        if self.kind == "shape":
            return [int(v) for v in value]
        if self.kind == "float":
            if isinstance(value, (list, tuple)):  # Keras keeps a factor f as the range (-f, f) or (0, f)
                value = value[-1]
            return float(f"{float(value):.7g}")
        return value


@dataclass(frozen=True)
class LayerType:
    """A layer type a user can add: its Keras class, its editable params and what it is for."""

    name: str
    keras_class: str
    category: str
    help: str
    params: tuple[ParamSpec, ...] = field(default_factory=tuple)
    needs_image_input: bool = False
    needs_flat_input: bool = False
    random: bool = False  # acts differently on every training step (augmentation): no feature cache
    fixed: tuple[tuple[str, Any], ...] = ()  # Keras arguments Layerlab sets and the user does not

    def param(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def effective_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The params as Keras will see them: the registry default wherever one is not set."""
        return {**self.defaults(), **params}

    def defaults(self) -> dict[str, Any]:
        return {p.name: (list(p.default) if isinstance(p.default, (list, tuple)) else p.default) for p in self.params}


def _activation(default: str) -> ParamSpec:
    return ParamSpec("activation", "choice", default, ACTIVATION_HELP, choices=ACTIVATIONS)


_PADDING = ParamSpec(
    "padding",
    "choice",
    "valid",
    "'valid' shrinks the image by the window size; 'same' pads the edges so height and width "
    "stay the same (divided by the stride).",
    choices=("valid", "same"),
)


def _pooling(name: str, how: str) -> LayerType:
    return LayerType(
        name,
        name,
        "convolutional",
        f"Shrinks each feature map by taking the {how} of each window: fewer numbers to learn "
        "from downstream, and some tolerance to small shifts.",
        (
            ParamSpec("pool_size", "int", 2, "Side of the square window (2 halves height and width).",
                      minimum=1, maximum=16, square=True),
            _PADDING,
        ),
        needs_image_input=True,
    )


AUGMENTATION_HELP = (" Augmentation: it acts only while training (a new random change at every step); at test "
                     "time and in predictions the image passes unchanged.")


def _factor(name: str, default: float, what: str, maximum: float = 1.0, keras_key: str | None = None) -> ParamSpec:
    return ParamSpec(name, "float", default, what, minimum=0.0, maximum=maximum, keras_key=keras_key)


def _augmentation(name: str, help_text: str, *params: ParamSpec, fixed: tuple = ()) -> LayerType:
    return LayerType(name, name, "augmentation", help_text + AUGMENTATION_HELP, tuple(params),
                     needs_image_input=True, random=True, fixed=fixed)


AUGMENTATION_TYPES = (
    _augmentation("RandomFlip", "Mirrors the image at random, as a photo of a shirt could have been taken either way.",
                  ParamSpec("mode", "choice", "horizontal", "Which mirrorings may happen.",
                            choices=("horizontal", "vertical", "horizontal_and_vertical"))),
    _augmentation("RandomRotation", "Turns the image by a random angle.",
                  _factor("factor", 0.1, "Largest turn as a fraction of a full circle (0.1 = up to 36 degrees).")),
    _augmentation("RandomZoom", "Zooms in or out at random, keeping the aspect ratio.",
                  _factor("factor", 0.1, "Largest zoom as a fraction of the image side.", 0.9,
                          keras_key="height_factor")),
    _augmentation("RandomTranslation", "Shifts the image at random, filling the edge by reflection.",
                  _factor("height_factor", 0.1, "Largest vertical shift as a fraction of the height."),
                  _factor("width_factor", 0.1, "Largest horizontal shift as a fraction of the width.")),
    _augmentation("RandomContrast", "Strengthens or weakens the contrast at random.",
                  _factor("factor", 0.2, "Largest contrast change as a fraction (0.2 = 80% to 120%)."),
                  fixed=(("value_range", (0.0, 1.0)),)),  # Layerlab's images are scaled to [0, 1]
)

BASE_TYPES = (
    LayerType(
        "PretrainedBase", "PretrainedBase", "transfer",
        "A network trained on ImageNet (keras.applications, without its top) that turns a photo into "
        "feature maps; follow it with GlobalAveragePooling2D and a small Dense top. It carries its own "
        "input preprocessing, so it takes the same pixels as every Layerlab model. Frozen (unfreeze last 0), "
        "only the top learns, and its outputs are computed once per dataset and reused every epoch.",
        (
            ParamSpec("base", "choice", "MobileNetV2", "Which network: MobileNetV2 and EfficientNetB0 are "
                      "light; ResNet50 and Xception (the clothing tutorial's) are about ten times heavier.",
                      choices=tuple(BASES)),
            ParamSpec("weights", "choice", "imagenet", "'imagenet': weights learned on ImageNet (from Keras' "
                      "cache, or downloaded once); 'none': random weights, which works offline.",
                      choices=("imagenet", "none")),
            ParamSpec("unfreeze_last", "int", 0, "0 keeps the base frozen; N lets its last N layers learn "
                      "(fine-tuning; BatchNormalization stays in inference mode).", minimum=0, maximum=1000),
        ),
        needs_image_input=True,
    ),
    LayerType(
        "RunBase", "RunBase", "transfer",
        "A finished Layerlab run's model, cut after a chosen layer and frozen: what it learned becomes "
        "the start of a new model. Works offline.",
        (
            ParamSpec("run_id", "text", "", "The finished run to start from (its 10-character id).",
                      pattern=r"([0-9a-f]{10})?", pattern_help="a run id (10 hexadecimal characters)"),
            ParamSpec("cut_layer", "text", "", "Keep the run's layers up to and including this one; empty: "
                      "all but its last layer.", pattern=r"([A-Za-z][A-Za-z0-9_]{0,63})?",
                      pattern_help="a layer name of that run's model, or empty"),
        ),
    ),
)


LAYER_TYPES: dict[str, LayerType] = {
    layer.name: layer
    for layer in (
        LayerType(
            "Dense",
            "Dense",
            "core",
            "Every input connects to every unit: the workhorse of classifiers. Stack two or three "
            "for an MLP; the last one has one unit per class.",
            (
                ParamSpec("units", "int", 128, "How many neurons: more can learn more, and overfit sooner.",
                          minimum=1, maximum=65536),
                _activation("relu"),
            ),
            needs_flat_input=True,
        ),
        LayerType(
            "Conv2D",
            "Conv2D",
            "convolutional",
            "Slides small learned filters over the image to detect local patterns (edges, then "
            "shapes), sharing weights across positions: far fewer parameters than Dense on pixels.",
            (
                ParamSpec("filters", "int", 32, "How many filters, i.e. output channels (feature maps).",
                          minimum=1, maximum=4096),
                ParamSpec("kernel_size", "int", 3, "Side of the square filter window, in pixels.",
                          minimum=1, maximum=31, square=True),
                ParamSpec("strides", "int", 1, "Step between windows: 2 halves height and width.",
                          minimum=1, maximum=8, square=True),
                _PADDING,
                _activation("relu"),
            ),
            needs_image_input=True,
        ),
        _pooling("MaxPooling2D", "maximum"),
        _pooling("AveragePooling2D", "average"),
        LayerType(
            "GlobalAveragePooling2D",
            "GlobalAveragePooling2D",
            "convolutional",
            "Averages each feature map down to one number: a flat vector with no parameters, "
            "often used instead of Flatten at the end of a CNN.",
            needs_image_input=True,
        ),
        LayerType(
            "Flatten",
            "Flatten",
            "core",
            "Unrolls an image (height x width x channels) into one long vector so Dense layers "
            "can read it. It has no parameters.",
        ),
        LayerType(
            "Reshape",
            "Reshape",
            "core",
            "Gives the same numbers a new shape, e.g. a flat 784 back into a 28x28x1 image.",
            (
                ParamSpec("target_shape", "shape", [28, 28, 1],
                          "The new shape without the batch axis; -1 lets Keras work out one size."),
            ),
        ),
        LayerType(
            "Dropout",
            "Dropout",
            "regularization",
            "While training, zeroes a random fraction of its inputs at every step, so the network "
            "cannot lean on any single unit: a simple cure for overfitting. Inactive at test time.",
            (
                ParamSpec("rate", "float", 0.5, "Fraction of inputs dropped during training.",
                          minimum=0.0, maximum=1.0, maximum_exclusive=True),
            ),
        ),
        LayerType(
            "BatchNormalization",
            "BatchNormalization",
            "regularization",
            "Re-centres and re-scales the previous layer's outputs per batch, which keeps "
            "training stable and lets deeper networks learn faster.",
            (
                ParamSpec("momentum", "float", 0.99,
                          "How slowly the running mean and variance used at test time follow the batches.",
                          minimum=0.0, maximum=1.0, maximum_exclusive=True),
            ),
        ),
        LayerType(
            "Activation",
            "Activation",
            "activation",
            "Applies an activation function on its own, e.g. after BatchNormalization.",
            (_activation("relu"),),
        ),
        LayerType(
            "LeakyReLU",
            "LeakyReLU",
            "activation",
            "Like relu, but lets a small slope through for negative inputs so units never die.",
            (
                ParamSpec("negative_slope", "float", 0.3, "The slope for negative inputs.",
                          minimum=0.0, maximum=1.0),
            ),
        ),
        *AUGMENTATION_TYPES,
        *BASE_TYPES,
    )
}

_CLASS_TO_TYPE = {layer.keras_class: layer.name for layer in LAYER_TYPES.values()}

LAYER_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def valid_types() -> str:
    return ", ".join(sorted(LAYER_TYPES))


def get_layer_type(name: str) -> LayerType | None:
    return LAYER_TYPES.get(name)


def closest_type(name: str) -> str | None:
    """The registry type a misspelt name most likely meant (`Dens` -> `Dense`), if any."""
    lowered = {t.lower(): t for t in LAYER_TYPES}
    if str(name).lower() in lowered:
        return lowered[str(name).lower()]
    matches = difflib.get_close_matches(str(name), list(LAYER_TYPES), n=1, cutoff=0.6)
    return matches[0] if matches else None


def type_for_keras_class(class_name: str) -> str | None:
    return _CLASS_TO_TYPE.get(class_name)


def default_layer_name(layer_type: str, taken: set[str] | frozenset[str]) -> str:
    """A readable, unique, explicit name (`dense_2`): Keras' own counters reset with the session."""
    base = re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", layer_type).lower()
    index = 1
    while f"{base}_{index}" in taken:
        index += 1
    return f"{base}_{index}"
