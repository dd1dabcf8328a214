"""Reading a `.keras` file's config.json as plain data, before Keras sees anything of the file.

Keras rebuilds a model by importing whatever `module`/`class_name` the config names, so a config
is code (CVE-2025-1550, CVE-2025-9906, CVE-2025-8747, CVE-2026-1462, CVE-2025-12058). Layerlab
never hands it to Keras: this module walks all of it, each key at its own place, against an
allow-list (a Sequential of registry layers, or a Functional chain of them; keras' own objects by
name; shapes in `build_config`), and keeps the layer configs, from which `import_spec` makes a
Layerlab spec to rebuild. Known attacks are named first (keras_attacks.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipelines.errors import ModelImportError, SpecError
from pipelines.io.keras_attacks import dicts, named_attack
from pipelines.modelspec.layers import LAYER_NAME_PATTERN, LAYER_TYPES
from pipelines.modelspec.limits import SpecLimits, brief, limits, load_spec_json, nesting_depth

CONFIG_MAX_BYTES = 1024 * 1024  # Keras writes about 1 KB per layer; the registry allows 200 layers
# model > config > layers > layer > inbound_nodes > node > args > tensor > config > a shape (Functional)
CONFIG_MAX_DEPTH = 10
MAX_LAYER_KEYS = 40
MAX_LIST_ITEMS = 8
MAX_TEXT_CHARS = 200

MODEL_MODULES = {"keras", "keras.models", "keras.src.models.sequential", "keras.src.models.functional"}
MODEL_CONFIG_KEYS = {"Sequential": {"name", "trainable", "dtype", "layers", "build_input_shape"},
                     "Functional": {"name", "trainable", "dtype", "layers", "input_layers", "output_layers"}}
FUNCTIONAL_LAYER_KEYS = {"name", "inbound_nodes"}  # a Functional model's layers also say what they are called on
LAYER_MODULE = re.compile(r"keras\.layers|keras\.src\.layers(\.[a-z_][a-z0-9_]*){0,3}")
# Layerlab's own blocks (a pretrained base, a finished run as base) are whole networks of custom
# classes, not keras' own layers: a file naming them is refused like any other custom object.
LAYER_CLASSES = frozenset({t.keras_class for t in LAYER_TYPES.values() if t.category != "transfer"} | {"InputLayer"})
# keras' own objects by name, as `dir(keras.<module>)` lists them in Keras 3 (a test checks each exists).
KERAS_ACTIVATIONS = frozenset({
    "celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu", "hard_swish",
    "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "selu",
    "sigmoid", "silu", "soft_shrink", "softmax", "softplus", "softsign", "sparse_plus", "sparse_sigmoid",
    "sparsemax", "squareplus", "swish", "tanh", "tanh_shrink", "threshold"})
LAYER_OBJECTS = {  # a layer config key's suffix -> the module and classes an object under it may name
    "dtype": ("keras", frozenset({"DTypePolicy", "FloatDTypePolicy"})),
    "_initializer": ("keras.initializers", frozenset({
        "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity", "LecunNormal",
        "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "TruncatedNormal",
        "VarianceScaling", "Zeros"})),
    "_regularizer": ("keras.regularizers", frozenset({"L1", "L1L2", "L2", "OrthogonalRegularizer"})),
    "_constraint": ("keras.constraints", frozenset({"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"})),
}
COMPILE_OBJECTS = {  # compile_config's objects, each at its one place
    "optimizer": ("keras.optimizers", frozenset({"SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Nadam"})),
    "schedule": ("keras.optimizers.schedules", frozenset({  # the ones starting at `initial_learning_rate`
        "CosineDecay", "CosineDecayRestarts", "ExponentialDecay", "InverseTimeDecay", "PolynomialDecay"})),
    "loss": ("keras.losses", frozenset({"SparseCategoricalCrossentropy", "CategoricalCrossentropy",
                                        "BinaryCrossentropy", "MeanSquaredError"})),
    "metric": ("keras.metrics", frozenset({"Accuracy", "BinaryAccuracy", "CategoricalAccuracy",
                                           "SparseCategoricalAccuracy"})),
}
OBJECTS = {**LAYER_OBJECTS, **COMPILE_OBJECTS}
ORIGIN_KEYS = ("module", "class_name", "registered_name")  # what makes a dict something Keras imports
KERAS_OBJECT_KEYS = {*ORIGIN_KEYS, "config", "shared_object_id"}
LAYER_KEYS = KERAS_OBJECT_KEYS | {"build_config"}
MODEL_KEYS = {*ORIGIN_KEYS, "config", "build_config", "compile_config"}
DTYPES = {"float32"}

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ConfigLayer:
    """One layer of the checked config: its Keras class, its name and its config as written."""

    class_name: str
    name: str
    config: dict


@dataclass(frozen=True)
class CheckedConfig:
    """What a config that passed holds: the model's name, input shape, layers and compile settings."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[ConfigLayer, ...]
    compile: dict


def refuse(reason: str) -> ModelImportError:
    return ModelImportError(f"Refused: {reason}.")


def parse_config(data: bytes) -> Any:
    """config.json's text as JSON data, within a size, depth and number-length cap."""
    if len(data) > CONFIG_MAX_BYTES:
        raise refuse(f"config.json is {len(data):,} bytes; at most {CONFIG_MAX_BYTES:,} are allowed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse("config.json is not UTF-8 text") from None
    depth = nesting_depth(text)
    if depth > CONFIG_MAX_DEPTH:
        raise refuse(f"config.json nests objects and lists {depth:,} deep; a model of registry "
                     f"layers needs at most {CONFIG_MAX_DEPTH}")
    try:
        return load_spec_json(text, SpecLimits(max_bytes=CONFIG_MAX_BYTES, max_depth=CONFIG_MAX_DEPTH,
                                                     max_digits=32))
    except SpecError as error:
        raise refuse(f"config.json: {str(error).replace('The spec', 'it').rstrip('.')}") from None


def check_config(data: Any) -> CheckedConfig:
    """The config as a CheckedConfig, or ModelImportError with the first reason it is refused."""
    attack = named_attack(data)
    if attack:
        raise refuse(attack)
    if not isinstance(data, dict):
        raise refuse(f"config.json must hold a model object. Received: {type(data).__name__}")
    _check_object_keys(data, "the model", MODEL_KEYS)
    module, class_name = data.get("module"), data.get("class_name")
    if class_name not in MODEL_CONFIG_KEYS:
        raise refuse(f"the file holds a {brief(class_name)} model; Layerlab imports Sequential models, and "
                     "Functional ones that are one chain of layers")
    _check_origin(data, module, MODEL_MODULES, "the model")
    _check_build_config("the model", data.get("build_config"))
    config = data.get("config")
    if not isinstance(config, dict) or not set(config) <= MODEL_CONFIG_KEYS[class_name]:
        raise refuse(f"the model's config may hold only {', '.join(sorted(MODEL_CONFIG_KEYS[class_name]))}. "
                     f"Received: {brief(config)}")
    if not isinstance(config.get("trainable", True), bool):
        raise refuse(f"the model's `trainable` must be true or false. Received: {brief(config['trainable'])}")
    if "dtype" in config:
        _check_value("the model", "dtype", config["dtype"])
    if not _shape_like(config.get("build_input_shape")):
        raise refuse(f"the model's `build_input_shape` must be a shape. Received: {brief(config['build_input_shape'])}")
    raw_layers = config.get("layers")
    most = limits().max_layers
    if not isinstance(raw_layers, list) or not 0 < len(raw_layers) <= most + 1:
        raise refuse(f"the model's `layers` must be a list of 1 to {most} layers. Received: {brief(raw_layers)}")
    layers = _checked_layers(raw_layers, functional=class_name == "Functional")
    if class_name == "Functional":
        _check_chain(raw_layers, config)
    input_shape = _input_shape(layers, config.get("build_input_shape"))
    name = config.get("name", "imported")
    if not isinstance(name, str) or len(name) > MAX_TEXT_CHARS:
        raise refuse(f"the model's name must be text of at most {MAX_TEXT_CHARS} characters")
    compile_config = data.get("compile_config") or {}
    _check_compile(compile_config)
    return CheckedConfig(name=name, input_shape=input_shape,
                         layers=tuple(layer for layer in layers if layer.class_name != "InputLayer"),
                         compile=compile_config)


def _check_object_keys(data: dict, where: str, allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed, key=str)
    if extra:
        raise refuse(f"{where} has the unknown key {brief(extra[0])}; allowed: {', '.join(sorted(allowed))}")
    shared = data.get("shared_object_id")
    if shared is not None and (not isinstance(shared, int) or isinstance(shared, bool)):
        raise refuse(f"{where}: `shared_object_id` must be a number. Received: {brief(shared)}")


def _shape_like(value: Any) -> bool:
    """A shape as Keras writes one: None, sizes, plain-identifier text, lists of those (never an object)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return True
    if isinstance(value, str):
        return len(value) <= 64 and _WORD.fullmatch(value) is not None
    return isinstance(value, list) and len(value) <= MAX_LIST_ITEMS and all(_shape_like(item) for item in value)


def _check_build_config(where: str, build_config: Any) -> None:
    """`build_config` is {"input_shape": a shape}: Keras builds the layer from it, so nothing else may hide there."""
    if build_config is None:
        return
    if not isinstance(build_config, dict) or not set(build_config) <= {"input_shape"}:
        raise refuse(f"{where}: `build_config` may hold only `input_shape`. Received: {brief(build_config)}")
    shape = build_config.get("input_shape")
    if not _shape_like(shape):
        found = next((item for item in dicts(shape) if set(item) & set(ORIGIN_KEYS)), None)
        held = f"an object naming {brief({k: found[k] for k in ORIGIN_KEYS if k in found})}" if found else brief(shape)
        raise refuse(f"{where}: `build_config.input_shape` holds {held}; a shape is a list of sizes and None")


def _calls(node: Any, previous: str) -> bool:
    """Whether one inbound node of a Functional layer is a plain call on `previous`'s output."""
    if not isinstance(node, dict) or not set(node) <= {"args", "kwargs"}:
        return False
    args, kwargs = node.get("args"), node.get("kwargs", {})
    if not (isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict)):
        return False
    tensor, config = args[0], args[0].get("config")
    return (set(tensor) <= {"class_name", "config"} and tensor.get("class_name") == "__keras_tensor__"
            and isinstance(config, dict) and set(config) <= {"shape", "dtype", "keras_history"}
            and _shape_like(config.get("shape")) and config.get("dtype", "float32") in DTYPES
            and config.get("keras_history") == [previous, 0, 0]
            and isinstance(kwargs, dict) and set(kwargs) <= {"training", "mask"}
            and all(value is None or isinstance(value, bool) for value in kwargs.values()))


def _check_chain(raw_layers: list, config: dict) -> None:
    """A Functional model that Layerlab can rebuild as a Sequential: Input, then each layer called
    once on the one before it, the first layer its input and the last its output."""
    names = [layer["config"]["name"] for layer in raw_layers]
    if raw_layers[0].get("class_name") != "InputLayer" or raw_layers[0].get("inbound_nodes") not in ([], None):
        raise refuse("a Functional model must start with its keras.Input")
    for index, layer in enumerate(raw_layers):
        if layer.get("name", names[index]) != names[index]:
            raise refuse(f"layer {index + 1} is named {brief(layer.get('name'))} and {names[index]!r}")
        nodes = layer.get("inbound_nodes")
        if index and not (isinstance(nodes, list) and len(nodes) == 1 and _calls(nodes[0], names[index - 1])):
            raise refuse(f"layer {names[index]!r} is not called once on the layer before it; Layerlab imports "
                         "Functional models that are one chain of layers")
    for key, name in (("input_layers", names[0]), ("output_layers", names[-1])):
        if config.get(key) not in ([name, 0, 0], [[name, 0, 0]]):
            raise refuse(f"the model's `{key}` must be [{name!r}, 0, 0]: one input and one output. "
                         f"Received: {brief(config.get(key))}")


def _check_origin(data: dict, module: Any, modules: Any, where: str) -> None:
    """`module` allowed, and `registered_name` none or the class itself (no custom object)."""
    if isinstance(modules, re.Pattern):
        allowed = isinstance(module, str) and modules.fullmatch(module) is not None
    else:
        allowed = module in modules
    if not allowed:
        raise refuse(f"{where} names module {brief(module)}, outside keras' own (arbitrary import: CVE-2025-1550)")
    registered = data.get("registered_name")
    if registered not in (None, data.get("class_name")):
        raise refuse(f"{where} is the registered custom object {brief(registered)}; custom objects run code "
                     "from outside keras")


def _checked_layers(raw_layers: list, functional: bool = False) -> list[ConfigLayer]:
    layers: list[ConfigLayer] = []
    seen: set[str] = set()
    for index, layer in enumerate(raw_layers):
        where = f"layer {index + 1}"
        if not isinstance(layer, dict):
            raise refuse(f"{where} must be an object. Received: {brief(layer)}")
        _check_object_keys(layer, where, LAYER_KEYS | (FUNCTIONAL_LAYER_KEYS if functional else set()))
        class_name = layer.get("class_name")
        if class_name not in LAYER_CLASSES:
            raise refuse(f"{where} is a {brief(class_name)}; Layerlab imports only the layers of its registry: "
                         f"{', '.join(sorted(LAYER_CLASSES))}")
        _check_origin(layer, layer.get("module"), LAYER_MODULE, where)
        config = layer.get("config")
        if not isinstance(config, dict) or len(config) > MAX_LAYER_KEYS:
            raise refuse(f"{where} ({class_name}) needs a config object of at most {MAX_LAYER_KEYS} keys")
        name = config.get("name")
        if not isinstance(name, str) or not LAYER_NAME_PATTERN.fullmatch(name):
            raise refuse(f"{where} ({class_name}) is named {brief(name)}; a layer name must be a plain identifier "
                         "(a letter, then letters, digits or _; at most 64): a name with '/' or '..' wrote files "
                         "outside their folder (CVE-2026-12479)")
        if name in seen:
            raise refuse(f"{where} ({class_name}) is named {name!r} like an earlier layer; names must be unique")
        seen.add(name)
        if class_name == "InputLayer" and index != 0:
            raise refuse(f"{where} is an InputLayer; only the first layer may be one")
        _check_build_config(f"layer {name!r}", layer.get("build_config"))
        for key, value in config.items():
            _check_value(f"layer {name!r}", key, value)
        layers.append(ConfigLayer(class_name, name, config))
    return layers


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float)) or (
        isinstance(value, str) and len(value) <= MAX_TEXT_CHARS)


def _check_plain_entry(where: str, key: Any, value: Any) -> None:
    """Any config entry: a plain-identifier key that is not one Keras imports by, and a dtype of float32."""
    if not isinstance(key, str) or not _WORD.fullmatch(key) or len(key) > 64:
        raise refuse(f"{where} has the config key {brief(key)}; keys must be plain identifiers")
    if key in ORIGIN_KEYS:
        raise refuse(f"{where} has `{key}`={brief(value)} in its config; only keras' own objects, at the "
                     "places that take one, may name a module or class")
    if key == "dtype" and isinstance(value, str) and value not in DTYPES:
        raise refuse(f"{where} computes in {brief(value)}; Layerlab rebuilds float32 models")


def _check_value(where: str, key: Any, value: Any) -> None:
    """One entry of a layer's config: a scalar, a short list of numbers, or an allowed keras object."""
    _check_plain_entry(where, key, value)
    if key == "activation" and value not in KERAS_ACTIVATIONS:
        raise refuse(f"{where} uses the activation {brief(value)}; allowed: keras' own, by name "
                     f"({', '.join(sorted(KERAS_ACTIVATIONS))})")
    if key == "activity_regularizer" and value is not None:
        named = value.get("class_name") if isinstance(value, dict) else value
        raise refuse(f"{where} has the activity_regularizer {brief(named)}; Layerlab's layers have none, so "
                     "its rebuilt model would train differently")
    if isinstance(value, list):
        if len(value) > MAX_LIST_ITEMS or not all(_scalar(item) and not isinstance(item, str) for item in value):
            raise refuse(f"{where}: `{key}` must be a list of at most {MAX_LIST_ITEMS} numbers. "
                         f"Received: {brief(value)}")
    elif isinstance(value, dict):
        kind = next((suffix for suffix in LAYER_OBJECTS
                     if key == suffix or (suffix.startswith("_") and key.endswith(suffix))), None)
        if kind is None:
            raise refuse(f"{where}: `{key}` holds an object; objects are allowed only for dtype, initializers, "
                         "regularizers and constraints")
        _check_keras_object(where, key, value, kind)
    elif not _scalar(value):
        raise refuse(f"{where}: `{key}` holds {brief(value)}; allowed: numbers, short text, lists of numbers")


def _check_keras_object(where: str, key: str, value: Any, kind: str) -> None:
    """A serialized keras object (dtype policy, initializer, optimizer...) of the kind its place allows."""
    module, classes = OBJECTS[kind]
    if not isinstance(value, dict):
        raise refuse(f"{where}: `{key}` must be a keras object. Received: {brief(value)}")
    _check_object_keys(value, f"{where}: `{key}`", KERAS_OBJECT_KEYS)
    if value.get("class_name") not in classes:
        raise refuse(f"{where}: `{key}` is a {brief(value.get('class_name'))}; allowed: {', '.join(sorted(classes))}")
    _check_origin(value, value.get("module"), {module}, f"{where}: `{key}`")
    config = value.get("config", {})
    if not isinstance(config, dict) or len(config) > MAX_LAYER_KEYS:
        raise refuse(f"{where}: `{key}` needs a config object. Received: {brief(config)}")
    for name, item in config.items():
        _check_plain_entry(f"{where}: `{key}`", name, item)
        if kind == "optimizer" and name == "learning_rate" and isinstance(item, dict):
            _check_keras_object(where, "learning_rate", item, "schedule")  # import_spec keeps its initial rate
        elif not (_scalar(item) or (isinstance(item, list) and len(item) <= MAX_LIST_ITEMS
                                    and all(_scalar(v) for v in item))):
            raise refuse(f"{where}: `{key}.{name}` holds {brief(item)}; allowed: numbers, short text, short lists")
    if kind == "dtype" and config.get("name") not in DTYPES:
        raise refuse(f"{where} computes in {brief(config.get('name'))}; Layerlab rebuilds float32 models")
    if kind == "schedule" and "initial_learning_rate" not in config:
        raise refuse(f"{where}: the learning-rate schedule {value['class_name']} has no `initial_learning_rate`")


def _input_shape(layers: list[ConfigLayer], build_input_shape: Any) -> tuple[int, ...]:
    shape = layers[0].config.get("batch_shape") if layers[0].class_name == "InputLayer" else build_input_shape
    if layers[0].class_name == "InputLayer":
        extra = {k: v for k, v in layers[0].config.items() if k in ("sparse", "ragged", "optional") and v}
        if extra or layers[0].config.get("dtype", "float32") not in DTYPES:
            raise refuse(f"the input layer must take dense float32 input. Received: {brief(layers[0].config)}")
    if not (isinstance(shape, list) and len(shape) >= 2 and shape[0] is None
            and all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 100_000 for d in shape[1:])):
        raise refuse(f"the model's input shape must be known: [None, sizes...]. Received: {brief(shape)}")
    return tuple(shape[1:])


def _check_compile(compile_config: Any) -> None:
    if not isinstance(compile_config, dict):
        raise refuse(f"`compile_config` must be an object. Received: {brief(compile_config)}")
    for key, value in compile_config.items():
        _check_plain_entry("compile_config", key, value)
        if key in ("optimizer", "loss") and isinstance(value, dict):
            _check_keras_object("compile_config", key, value, key)
        elif key == "metrics":
            if value is not None and not (isinstance(value, list) and len(value) <= MAX_LIST_ITEMS):
                raise refuse(f"compile_config: `metrics` must be a list of metrics. Received: {brief(value)}")
            for metric in value or ():
                if isinstance(metric, dict):
                    _check_keras_object("compile_config", "metrics", metric, "metric")
                elif not (isinstance(metric, str) and len(metric) <= 64):
                    raise refuse(f"compile_config: a metric must be a name or one of keras' accuracy metrics. "
                                 f"Received: {brief(metric)}")
        elif not _scalar(value):
            raise refuse(f"compile_config: `{brief(key)}` holds {brief(value)}; allowed: names and numbers")
