"""Every edit the Build page offers, as pure functions: a spec in, a new spec out.

Specs are frozen, so an edit never changes the spec it is given; the page keeps the old one for
undo. Keeping the list surgery here, away from Streamlit, lets it be tested without a page and
gives the CLI or a notebook the same edits. A bad index raises `SpecError` naming the argument
and echoing the value, as Keras does, instead of an `IndexError` from deep in a list.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from pipelines.errors import SpecError
from pipelines.modelspec.layers import LAYER_TYPES, LayerType, default_layer_name, valid_types
from pipelines.modelspec.spec import LayerSpec, ModelSpec
from pipelines.modelspec.validation import Fix


def _check_index(spec: ModelSpec, index: Any, name: str = "index", *, end: bool = False) -> int:
    """`index` as a layer position; with `end`, one past the last layer is allowed (an insertion point)."""
    last = len(spec.layers) if end else len(spec.layers) - 1
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= last:
        if last < 0:
            raise SpecError(f"`{name}` must name a layer, but the model has no layers. Received: {name}={index!r}")
        raise SpecError(f"`{name}` must be from 0 to {last}. Received: {name}={index!r}")
    return index


def _layer_type(layer_type: Any) -> LayerType:
    if layer_type not in LAYER_TYPES:
        raise SpecError(f"Unknown layer type {layer_type!r}. Expected one of: {valid_types()}")
    return LAYER_TYPES[layer_type]


def _with_layers(spec: ModelSpec, layers: list[LayerSpec]) -> ModelSpec:
    return replace(spec, layers=tuple(layers))


def _taken(spec: ModelSpec) -> set[str]:
    return {layer.name for layer in spec.layers}


def insert_layer(spec: ModelSpec, layer_type: str, position: int | None = None) -> tuple[ModelSpec, int]:
    """A new `layer_type` layer with its registry defaults and a fresh name, at `position` (None: at the
    end). Returns the spec and where the layer went, so the caller can select it."""
    defaults = _layer_type(layer_type).defaults()
    position = len(spec.layers) if position is None else _check_index(spec, position, "position", end=True)
    layers = list(spec.layers)
    layers.insert(position, LayerSpec(layer_type, default_layer_name(layer_type, _taken(spec)), defaults))
    return _with_layers(spec, layers), position


def _move_to(spec: ModelSpec, index: int, target: int, name: str) -> ModelSpec:
    _check_index(spec, index)
    _check_index(spec, target, name)
    layers = list(spec.layers)
    layers.insert(target, layers.pop(index))
    return _with_layers(spec, layers)


def move_layer(spec: ModelSpec, index: int, offset: int) -> ModelSpec:
    """Layer `index` moved `offset` places (-1: up one). Moving past either end is refused, not clamped,
    so a stale click cannot land a layer somewhere the user did not ask for."""
    _check_index(spec, index)
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= index + offset < len(spec.layers):
        raise SpecError(f"`offset` must keep layer {index} in the stack, so be from {-index} to "
                        f"{len(spec.layers) - 1 - index}. Received: offset={offset!r}")
    return _move_to(spec, index, index + offset, "offset")


def duplicate_layer(spec: ModelSpec, index: int) -> ModelSpec:
    """A copy of layer `index` right after it, under a fresh name: names must stay unique."""
    original = spec.layers[_check_index(spec, index)]
    copy = replace(original, name=default_layer_name(original.type, _taken(spec)), params=dict(original.params))
    layers = list(spec.layers)
    layers.insert(index + 1, copy)
    return _with_layers(spec, layers)


def delete_layer(spec: ModelSpec, index: int) -> ModelSpec:
    """The spec without layer `index`."""
    layers = list(spec.layers)
    layers.pop(_check_index(spec, index))
    return _with_layers(spec, layers)


def set_param(spec: ModelSpec, index: int, name: str, value: Any) -> ModelSpec:
    """Layer `index` with param `name` set to `value`. The value is not checked here: `validate` reports a
    bad one on its card, so a half-typed value never loses the rest of the stack."""
    layers = list(spec.layers)
    layer = layers[_check_index(spec, index)]
    layers[index] = replace(layer, params={**layer.params, name: value})
    return _with_layers(spec, layers)


def _remove_param(spec: ModelSpec, index: int, name: str) -> ModelSpec:
    layers = list(spec.layers)
    params = dict(layers[_check_index(spec, index)].params)
    params.pop(name, None)
    layers[index] = replace(layers[index], params=params)
    return _with_layers(spec, layers)


def _rename(spec: ModelSpec, index: int, name: str) -> ModelSpec:
    layers = list(spec.layers)
    layers[index] = replace(layers[_check_index(spec, index)], name=name)
    return _with_layers(spec, layers)


def _retype(spec: ModelSpec, index: int, layer_type: str) -> ModelSpec:
    """The old params rarely fit the new type, so the layer starts over from its defaults; the name stays."""
    defaults = _layer_type(layer_type).defaults()
    layers = list(spec.layers)
    layers[index] = LayerSpec(layer_type, layers[_check_index(spec, index)].name, defaults)
    return _with_layers(spec, layers)


def clear_layers(spec: ModelSpec) -> ModelSpec:
    """An empty stack that keeps the compile and fit settings, so starting over does not reset training."""
    return replace(spec, layers=())


def apply_fix(spec: ModelSpec, fix: Fix) -> ModelSpec:
    """The spec with one of `validate`'s suggested fixes applied (see `Fix` for the actions)."""
    if fix.action == "insert":
        return insert_layer(spec, fix.layer_type, fix.index)[0]
    if fix.action == "set" and fix.param == "name":
        return _rename(spec, fix.index, fix.value)
    if fix.action == "set" and fix.value is None:
        return _remove_param(spec, fix.index, fix.param)
    if fix.action == "set":
        return set_param(spec, fix.index, fix.param, fix.value)
    if fix.action == "retype":
        return _retype(spec, fix.index, fix.value)
    if fix.action == "move":
        return _move_to(spec, fix.index, fix.value, "value")
    if fix.action == "remove":
        return delete_layer(spec, fix.index)
    if fix.action == "compile":
        return spec.with_compile(**{fix.param: fix.value})
    raise SpecError(f"Unknown fix action {fix.action!r}. Expected one of: insert, set, retype, move, remove, compile")


def import_spec(data: str | bytes) -> ModelSpec:
    """A spec from a JSON file a user loads. Beyond `ModelSpec.from_json`'s structural checks, it refuses
    unknown layer types and repeated names, so a bad file leaves the current model in place rather than
    replacing it with one that cannot build (and repeated names would give two cards one widget key)."""
    spec = ModelSpec.from_json(data)
    unknown = sorted({layer.type for layer in spec.layers} - set(LAYER_TYPES))
    if unknown:
        raise SpecError(f"unknown layer type {unknown[0]!r}. Expected one of: {valid_types()}")
    names = [layer.name for layer in spec.layers]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated:
        raise SpecError(f"the layer name {repeated!r} is used more than once; layer names must be unique.")
    return spec
