"""Checking a spec against a dataset: per-layer shapes and parameter counts, and its problems.

Shapes and counts come from Keras itself, by calling each layer on a symbolic input: nothing
here derives a shape by hand. Each problem names the layer's position and type and the bad
param or shape, and where there is an obvious remedy carries a `Fix` the UI can apply in one
click (`edit.apply_fix`, which imports `Fix` from here, so this module never imports `edit`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.data.catalog import DatasetInfo, get_info
from pipelines.errors import SpecError
from pipelines.modelspec.limits import brief, limits
from pipelines.modelspec.pretrained import weights_problem
from pipelines.modelspec.layers import ACTIVATIONS, LAYER_NAME_PATTERN, LAYER_TYPES, closest_type, default_layer_name, valid_types
from pipelines.modelspec.spec import LOSSES, LayerSpec, ModelSpec, from_logits, output_activation

MESSAGE_LINES = 20  # problems listed in one message; the rest are counted


@dataclass(frozen=True)
class Fix:
    """A one-click remedy. `action` is "insert" (a `layer_type` at `index`), "set" (`param` to
    `value` on layer `index`), "retype" (layer `index` to `value`), "move" (layer `index` to
    position `value`), "remove" (layer `index`), or "compile" (`param` to `value`)."""

    action: str
    label: str
    index: int | None = None
    layer_type: str | None = None
    param: str | None = None
    value: Any = None


@dataclass(frozen=True)
class Problem:
    """What is wrong, where: `index` is the 0-based layer position, None for the whole model."""

    message: str
    index: int | None = None
    param: str | None = None
    fix: Fix | None = None


@dataclass(frozen=True)
class LayerRow:
    index: int
    name: str
    type: str
    output_shape: tuple | None
    params: int
    trainable_params: int


@dataclass(frozen=True)
class Validation:
    rows: tuple[LayerRow, ...]
    total_params: int
    trainable_params: int
    problems: tuple[Problem, ...]
    input_shape: tuple[int, ...]
    output_activation: str
    from_logits: bool
    label_mode: str
    warnings: tuple[Problem, ...] = ()  # Problems that never keep Train off: it trains, but hardly learns

    @property
    def ok(self) -> bool:
        return not self.problems

    def problems_for(self, index: int | None) -> list[Problem]:
        return [p for p in self.problems if p.index == index]

    def message(self) -> str:
        """The problems as one message, for the CLI and for refusing to create a run; a spec with
        hundreds of problems gives the first MESSAGE_LINES and a count of the rest."""
        lines = [p.message for p in self.problems[:MESSAGE_LINES]]
        if len(self.problems) > MESSAGE_LINES:
            lines.append(f"... and {len(self.problems) - MESSAGE_LINES:,} more problems.")
        return "\n".join(lines)


def _where(index: int, layer: LayerSpec) -> str:
    return f"Layer {index + 1} ({layer.type})"


def shape_text(shape: tuple | None) -> str:
    """A Keras shape as Keras prints it: (None, 26, 26, 32); "?" when unknown."""
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _check_params(index: int, layer: LayerSpec) -> list[Problem]:
    layer_type = LAYER_TYPES[layer.type]
    problems = []
    known = {p.name for p in layer_type.params}
    for name in sorted(set(layer.params) - known):
        expected = ", ".join(sorted(known)) or "none"
        problems.append(Problem(
            f"{_where(index, layer)} has no parameter `{name}`. Expected: {expected}",
            index, name, Fix("set", f"Remove `{name}`", index, param=name, value=None),
        ))
    for param in layer_type.params:
        value = layer.params.get(param.name, param.default)
        allowed = param.check(value)
        if allowed:
            problems.append(Problem(
                f"{_where(index, layer)}: `{param.name}` must be {allowed}. Received: {param.name}={brief(value)}",
                index, param.name,
                Fix("set", f"Set {param.name} to {param.default}", index, param=param.name, value=param.default),
            ))
    return problems


def _check_identity(index: int, layer: LayerSpec, spec: ModelSpec, seen_names: dict[str, int]) -> list[Problem]:
    """The layer's type, its params and its name, before anything is built."""
    problems = []
    if layer.type not in LAYER_TYPES:
        guess = closest_type(layer.type)
        problems.append(Problem(
            f"Layer {index + 1}: unknown layer type {layer.type!r}. Expected one of: {valid_types()}",
            index, None, Fix("retype", f"Change to {guess}", index, value=guess) if guess else None,
        ))
    else:
        problems.extend(_check_params(index, layer))
    if not LAYER_NAME_PATTERN.match(layer.name or ""):
        problems.append(Problem(
            f"Layer {index + 1} ({layer.type}): name must start with a letter and hold only letters, "
            f"digits and underscores (at most 64). Received: name={brief(layer.name)}", index, "name"))
    elif layer.name in seen_names:
        new_name = default_layer_name(layer.type, set(seen_names) | {l.name for l in spec.layers})
        problems.append(Problem(
            f"{_where(index, layer)}: name {layer.name!r} is already used by layer "
            f"{seen_names[layer.name] + 1}; names must be unique.",
            index, "name", Fix("set", f"Rename to {new_name}", index, param="name", value=new_name)))
    seen_names.setdefault(layer.name, index)
    return problems


def _check_fits_input(index: int, layer: LayerSpec, spec: ModelSpec, input_shape: tuple,
                      previous: tuple[int, LayerSpec] | None) -> list[Problem]:
    """Whether the layer can take its input's rank (flat vs image) and, for windows, its size."""
    rank = len(input_shape) - 1
    layer_type = LAYER_TYPES[layer.type]
    if layer_type.needs_flat_input and rank > 1:
        return [Problem(
            f"{_where(index, layer)} gets a {rank}-D tensor {shape_text(input_shape)}"
            + (f" from layer {previous[0] + 1} ({previous[1].type})" if previous else "")
            + f"; {layer.type} expects a flat vector: insert Flatten before it.",
            index, None, Fix("insert", "Insert Flatten", index, layer_type="Flatten"),
        )]
    if layer_type.needs_image_input and rank != 3:
        flatten_at = next((i for i in range(index - 1, -1, -1) if spec.layers[i].type == "Flatten"), None)
        after = f" after Flatten (layer {flatten_at + 1})" if flatten_at is not None else ""
        return [Problem(
            f"{_where(index, layer)} needs an image-shaped input (height, width, channels) but gets "
            f"{shape_text(input_shape)}{after}: move it before the Flatten, or insert a Reshape.",
            index, None,
            Fix("move", f"Move before layer {flatten_at + 1}", index, value=flatten_at)
            if flatten_at is not None else None,
        )]
    if layer_type.needs_image_input:
        return _check_window(index, layer, input_shape)
    return []


def _check_colour(index: int, layer: LayerSpec, input_shape: tuple, info: DatasetInfo) -> list[Problem]:
    """A pretrained base reads colour photos only: its first convolution and its preprocess_input
    both expect 3 channels, and Keras' own error (a shape mismatch, or a slice out of bounds) comes
    only at training time. No one-click fix: the remedy is other data, not another param."""
    channels = input_shape[-1]
    if layer.type != "PretrainedBase" or channels == 3:
        return []
    if info.input_shape[-1] != 3:
        remedy = (f"{info.name} has {info.input_shape[-1]} channel(s). Use a colour dataset: for your own "
                  "photos, add them again with colour rgb")
    else:
        remedy = "make the layer before it give 3 channels, or remove it"
    return [Problem(f"{_where(index, layer)}: a pretrained base takes colour images with 3 channels (RGB), "
                    f"but its input {shape_text(input_shape)} has {channels}. {remedy}.", index)]


def _check_weights(index: int, layer: LayerSpec, input_shape: tuple) -> list[Problem]:
    """A pretrained base whose ImageNet weights can be neither found nor downloaded: say which file
    to place where, and offer random weights."""
    params = LAYER_TYPES[layer.type].effective_params(dict(layer.params))
    if layer.type != "PretrainedBase" or params["weights"] != "imagenet":
        return []
    problem = weights_problem(params["base"], input_shape[1:])
    return [Problem(f"{_where(index, layer)}: {problem}", index, "weights",
                    Fix("set", "Use random weights (none)", index, param="weights", value="none"))] if problem else []


def random_features(index: int, layer: LayerSpec) -> Problem | None:
    """A frozen pretrained base without ImageNet weights trains (offline too), but on random features:
    a warning, since the run tends to give every image the largest class (the doctor's "one class")."""
    params = LAYER_TYPES["PretrainedBase"].effective_params(dict(layer.params))
    if layer.type != "PretrainedBase" or params["weights"] != "none" or params["unfreeze_last"] != 0:
        return None
    return Problem(f"{_where(index, layer)}: frozen with random weights (weights none), its features are random: "
                   "expect the top to give every image the largest class. Use ImageNet weights, or unfreeze it "
                   "(unfreeze_last), which is far slower.",
                   index, "weights", Fix("set", "Use ImageNet weights", index, param="weights", value="imagenet"))


def _build_on(index: int, layer: LayerSpec, x) -> tuple[Any, LayerRow, list[Problem], Any]:
    """Call a fresh Keras layer on the symbolic input `x`: its output, its table row, its problems,
    and the layer (None if it could not be made).

    The output is None when the layer cannot be built or leaves no pixels.
    """
    from pipelines.modelspec.keras_build import keras_layer

    try:
        keras_obj = keras_layer(layer)
        y = keras_obj(x)
    except Exception as exc:  # Keras' own message is the best description left
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problem = Problem(f"{_where(index, layer)}: Keras cannot build this layer on input "
                          f"{shape_text(x.shape)}: {first_line}", index)
        return None, LayerRow(index, layer.name, layer.type, None, 0, 0), [problem], None
    if any(d is not None and d <= 0 for d in y.shape[1:]):
        layer_type = LAYER_TYPES.get(layer.type)
        problem = Problem(
            f"{_where(index, layer)}: its output {shape_text(y.shape)} has no pixels left; the input "
            f"{shape_text(x.shape)} is too small for it. Use padding 'same' or a smaller window.",
            index, "padding", Fix("set", "Use padding 'same'", index, param="padding", value="same")
            if layer_type is not None and "padding" in layer_type.param_names() else None)
        return None, LayerRow(index, layer.name, layer.type, tuple(y.shape), 0, 0), [problem], keras_obj
    trainable = sum(int(_size(w.shape)) for w in keras_obj.trainable_weights)
    total = sum(int(_size(w.shape)) for w in keras_obj.weights)
    return y, LayerRow(index, layer.name, layer.type, tuple(y.shape), total, trainable), [], keras_obj


def validate(spec: ModelSpec, dataset: str | DatasetInfo, *, max_params: int | None = None) -> Validation:
    """Build the spec symbolically on the dataset's input and report shapes, counts and problems.

    No weight is ever allocated: the layers are built inside a Keras StatelessScope, where a
    variable keeps only its shape, so a spec of billions of parameters costs no more memory to
    check than a small one, and is refused over `max_params` (LAYERLAB_MAX_PARAMETERS).
    """
    import keras  # Keras, and so TensorFlow, only once a spec is checked: pages that list runs stay light

    max_params = limits().max_parameters if max_params is None else max_params
    info = dataset if isinstance(dataset, DatasetInfo) else get_info(dataset)
    input_shape = tuple(info.input_shape)
    problems: list[Problem] = []
    rows: list[LayerRow] = []
    if not spec.layers:
        problems.append(Problem(
            f"The model has no layers. Start with Flatten and a Dense layer of {info.num_classes} units "
            "with softmax, or load a preset."))

    seen_names: dict[str, int] = {}
    pending_before = _pending_variables()
    previous: tuple[int, LayerSpec] | None = None
    with keras.StatelessScope(initialize_variables=False):
        x = keras.Input(shape=input_shape)
        for index, layer in enumerate(spec.layers):
            layer_problems = _check_identity(index, layer, spec, seen_names)
            if not layer_problems:
                layer_problems = (_check_fits_input(index, layer, spec, tuple(x.shape), previous)
                                  or _check_colour(index, layer, tuple(x.shape), info)
                                  or _check_weights(index, layer, tuple(x.shape)))
            if layer_problems:
                row = LayerRow(index, layer.name, layer.type, None, 0, 0)
            else:
                y, row, layer_problems, _ = _build_on(index, layer, x)
                x = y if y is not None else x
            problems.extend(layer_problems)
            rows.append(row)
            previous = (index, layer)
    _forget_deferred_variables(pending_before)

    total = sum(row.params for row in rows)
    trainable_total = sum(row.trainable_params for row in rows)
    if total > max_params:
        problems.append(Problem(
            f"The model has {total:,} parameters, over the cap of {max_params:,}: use fewer units, or "
            "pooling or strides before Flatten."))

    loss = spec.compile.loss
    activation = output_activation(spec)
    if spec.layers and not problems:
        problems.extend(_check_output(spec, info, tuple(x.shape), activation))
    if loss == "binary_crossentropy" and info.num_classes != 2:
        problems.append(Problem(
            f"compile: `loss` binary_crossentropy needs 2 classes, but {info.name} has {info.num_classes}: "
            "use sparse_categorical_crossentropy.", None, "loss",
            Fix("compile", "Use sparse categorical cross-entropy", param="loss",
                value="sparse_categorical_crossentropy")))
    flagged = {problem.index for problem in problems}
    warnings = tuple(w for i, layer in enumerate(spec.layers) if i not in flagged and (w := random_features(i, layer)))

    return Validation(
        rows=tuple(rows),
        total_params=total,
        trainable_params=trainable_total,
        problems=tuple(problems),
        input_shape=input_shape,
        output_activation=activation,
        from_logits=from_logits(spec),
        label_mode=LOSSES[loss]["label_mode"],
        warnings=warnings,
    )


def _pending_variables() -> list:
    """Keras' per-thread list of variables waiting to be initialised (keras.src: no public API)."""
    from keras.src.backend.common import global_state

    return list(global_state.get_global_attribute("uninitialized_variables") or [])


def _forget_deferred_variables(before: list) -> None:
    """Drop every variable `validate` left uninitialised (layer weights, and the state of the seed
    generators Dropout and the like create) from Keras' list: they will never be used, and the
    list would otherwise grow with every check in a long-lived server. `before` is the list as it
    was when the check began; the list is per thread, so whatever was added since is ours."""
    from keras.src.backend.common import global_state

    kept = {id(variable) for variable in before}
    global_state.set_global_attribute("uninitialized_variables", [v for v in _pending_variables() if id(v) in kept])


def _size(shape) -> int:
    size = 1
    for d in shape:
        size *= int(d)
    return size


def _check_window(index: int, layer: LayerSpec, input_shape: tuple) -> list[Problem]:
    """A kernel or pool window larger than its 'valid'-padded input gives an empty output."""
    params = LAYER_TYPES[layer.type].effective_params(dict(layer.params))
    name = "kernel_size" if "kernel_size" in params else "pool_size"
    window = params.get(name)
    if params.get("padding", "valid") != "valid" or not isinstance(window, int):
        return []
    height, width = input_shape[1], input_shape[2]
    if height is not None and width is not None and (window > height or window > width):
        return [Problem(
            f"{_where(index, layer)}: `{name}` {window} is larger than its input ({height}x{width}). "
            f"Use a window of at most {min(height, width)}, or padding 'same'.",
            index, name, Fix("set", f"Set {name} to {min(height, width)}", index, param=name,
                             value=min(height, width)))]
    return []


def _last_index(spec: ModelSpec, types: tuple[str, ...]) -> int | None:
    return next((i for i in range(len(spec.layers) - 1, -1, -1) if spec.layers[i].type in types), None)


def _check_output(spec: ModelSpec, info: DatasetInfo, output_shape: tuple, activation: str) -> list[Problem]:
    problems = []
    binary = spec.compile.loss == "binary_crossentropy"
    expected_units = 1 if binary else info.num_classes
    last_dense = _last_index(spec, ("Dense",))
    if len(output_shape) != 2:
        problems.append(Problem(
            f"The model's output is {shape_text(output_shape)}, but a classifier must end in one score per "
            f"class ({expected_units}): add Flatten and Dense {expected_units}.",
            None, None, Fix("insert", "Add Flatten at the end", len(spec.layers), layer_type="Flatten")))
        return problems
    if output_shape[-1] != expected_units:
        where = _where(last_dense, spec.layers[last_dense]) if last_dense is not None else "The last layer"
        what = f"{info.name} has {info.num_classes} classes" if not binary else "binary_crossentropy needs 1"
        problems.append(Problem(
            f"{where}: the output has {output_shape[-1]} units but {what}: set `units` to {expected_units}.",
            last_dense, "units",
            Fix("set", f"Set units to {expected_units}", last_dense, param="units", value=expected_units)
            if last_dense is not None else None))
    fitting = {"binary_crossentropy": ("sigmoid", "linear"), "mse": ACTIVATIONS_ANY}.get(
        spec.compile.loss, ("softmax", "linear"))
    if activation not in fitting:
        owner = _last_index(spec, ("Dense", "Activation", "Conv2D", "LeakyReLU"))
        wanted = fitting[0]
        loss_title = LOSSES[spec.compile.loss]["title"].lower()
        fix = None
        if owner is not None and "activation" in LAYER_TYPES[spec.layers[owner].type].param_names():
            fix = Fix("set", f"Use {wanted}", owner, param="activation", value=wanted)
        problems.append(Problem(
            f"{_where(owner, spec.layers[owner]) if owner is not None else 'The last layer'}: the last activation "
            f"{activation!r} does not fit {loss_title}: use {wanted!r} (or 'linear' for raw scores).",
            owner, "activation", fix))
    return problems


ACTIVATIONS_ANY = (*ACTIVATIONS, "leaky_relu")


def ensure_valid(spec: ModelSpec, dataset: str | DatasetInfo) -> Validation:
    """Validate, and raise one SpecError listing every problem (used before creating a run)."""
    result = validate(spec, dataset)
    if not result.ok:
        raise SpecError(result.message())
    return result
