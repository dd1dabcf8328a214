"""Rebuilding an imported model from its Layerlab spec, and giving it only the file's weights.

Keras never deserializes the file: Layerlab builds the model from the spec, checks that each
layer's remaining settings (use_bias, data_format, epsilon...) are the ones Layerlab's layer has,
then reads model.weights.h5 with h5py, metadata first: every link a hard link, every array at a
path the rebuilt model has, with its exact shape and dtype, stored in the file itself (no
external or virtual storage, which read other files), and a cap on the declared bytes, so a
declared 10^12-element array is refused before anything is allocated (CVE-2026-0897). Only
then are the arrays copied, one at a time, into a weights file Layerlab wrote, which Keras loads.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np

from pipelines.io.keras_config_check import CheckedConfig, refuse
from pipelines.modelspec.keras_build import build_model
from pipelines.modelspec.limits import brief, limits
from pipelines.modelspec.spec import ModelSpec

MAX_H5_OBJECTS = 10_000
# Settings that do not change what a trained model computes: carried by its weights, or used only
# while training (a rebuilt model's own initializers, regularizers and constraints are Layerlab's).
# `dtype` is float32 in any file that passed the checker; an activity_regularizer was refused there.
_NOT_COMPARED = {"name", "trainable", "dtype", "seed"}
_NOT_COMPARED_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
_FILTERS = {h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32, 32000}  # 32000: LZF
BYTES_PER_PARAMETER = 4
OPTIMIZER_SLOTS = 3  # the weights, and an optimizer's two slots per weight (Adam's m and v)
# Keras 3 saves an optimizer's variables in the order it made them, its `iterations` counter first.
OPTIMIZER_STEPS = "optimizer/vars/0"


def max_weight_bytes() -> int:
    """The declared bytes a weights file may hold: the largest model's weights and optimizer slots."""
    return limits().max_parameters * BYTES_PER_PARAMETER * OPTIMIZER_SLOTS


def rebuild(spec: ModelSpec, checked: CheckedConfig) -> keras.Model:
    """The model Layerlab builds from the spec, refused where the file's layers compute otherwise."""
    model = build_model(spec)
    for layer, written in zip(model.layers, checked.layers):
        _check_same_settings(written.name, written.class_name, written.config, layer.get_config())
    return model


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-6)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _check_same_settings(name: str, class_name: str, written: dict, rebuilt: dict) -> None:
    rebuilt = json.loads(json.dumps(rebuilt))  # tuples as lists, as the file has them
    for key, value in written.items():
        if key in _NOT_COMPARED or key.endswith(_NOT_COMPARED_SUFFIXES):
            continue
        if key not in rebuilt:
            raise refuse(f"layer {name!r} ({class_name}) sets `{key}`, which Layerlab's {class_name} does not have")
        if not _same(value, rebuilt[key]):
            raise refuse(f"layer {name!r} ({class_name}) sets {key}={brief(value)}; Layerlab's {class_name} has "
                         f"{key}={brief(rebuilt[key])}, so it cannot rebuild this layer as it computes")


def _layout(path: Path) -> tuple[dict[str, tuple[tuple[int, ...], np.dtype]], dict[str, Any]]:
    """A weights file Layerlab wrote: each array's path, shape and dtype, and each group's `name`."""
    arrays, names = {}, {}
    with h5py.File(path, "r") as handle:
        def visit(name: str, obj: Any) -> None:
            if not name.startswith("layers/"):
                return  # the optimizer's state: a rebuilt model starts training afresh
            if isinstance(obj, h5py.Dataset):
                arrays[name] = (tuple(obj.shape), obj.dtype)
            elif "name" in obj.attrs:
                names[name] = obj.attrs["name"]
        handle.visititems(visit)
    return arrays, names


def _problem(untrusted: h5py.File, path: str, link: Any, expected: dict, state: dict) -> str | None:
    """Why one link of the file is refused, or None; `state` counts objects and declared bytes."""
    state["objects"] += 1
    if state["objects"] > MAX_H5_OBJECTS:
        return f"the weights file holds over {MAX_H5_OBJECTS:,} objects"
    if not isinstance(link, h5py.HardLink):
        return f"the weights file links {path!r} to another place or file; only plain groups and arrays are allowed"
    obj = untrusted.get(path)
    if isinstance(obj, h5py.Group):
        return None
    if not isinstance(obj, h5py.Dataset):
        return f"the weights file holds {path!r}, which is neither a group nor an array"
    if obj.is_virtual or obj.external:
        return f"weights array {path!r} is stored in another file; arrays must be stored in the file itself"
    plist = obj.id.get_create_plist()
    filters = {plist.get_filter(index)[0] for index in range(plist.get_nfilters())}
    if not filters <= _FILTERS:  # an unknown filter would have HDF5 look for a plugin library to load
        return f"weights array {path!r} is compressed with filter {sorted(filters - _FILTERS)[0]}; allowed: gzip, lzf"
    if obj.dtype.kind not in "fiub" or obj.dtype.itemsize > 8:
        return f"weights array {path!r} holds {obj.dtype}; weights are numbers"
    state["bytes"] += math.prod(int(d) for d in obj.shape) * obj.dtype.itemsize
    if state["bytes"] > max_weight_bytes():
        return (f"the weights file declares over {max_weight_bytes():,} bytes of arrays (LAYERLAB_MAX_PARAMETERS "
                f"weights with their optimizer slots); {path!r} is {brief(tuple(obj.shape))}")
    if path in expected:
        shape, dtype = expected[path]
        if tuple(obj.shape) != shape or obj.dtype != dtype:
            return f"weights array {path!r} is {brief(tuple(obj.shape))} {obj.dtype}; the model needs {shape} {dtype}"
    elif not path.startswith("optimizer/"):
        return f"the weights file holds the array {path!r}, which the model does not have"
    return None


def check_weights(untrusted: h5py.File, expected: dict[str, tuple[tuple[int, ...], np.dtype]],
                  names: dict[str, Any]) -> None:
    """Refuse the file unless its arrays are the rebuilt model's, declared within the byte cap."""
    state = {"objects": 0, "bytes": 0}
    # h5py stops visiting at the first non-None return; an exception raised inside would be mangled.
    problem = untrusted.visititems_links(lambda path, link: _problem(untrusted, path, link, expected, state))
    if problem:
        raise refuse(problem)
    missing = sorted(set(expected) - set(_datasets(untrusted, expected)))
    if missing:
        raise refuse(f"the weights file has no array {missing[0]!r}, which the model needs")
    for group, name in names.items():
        found = untrusted.get(group)
        small = found is not None and "name" in found.attrs and found.attrs.get_id("name").get_storage_size() <= 256
        if not small or found.attrs["name"] != name:
            raise refuse(f"the weights of layer {brief(name)} are not where the model has them ({group!r})")


def _datasets(untrusted: h5py.File, expected: dict) -> list[str]:
    return [path for path in expected if isinstance(untrusted.get(path, getlink=True), h5py.HardLink)]


def optimizer_steps(checked: h5py.File) -> int | None:
    """The training steps (batches) the file's optimizer had taken when it was saved: all the file
    tells of how long the model trained (Keras keeps no epoch count). None for a file saved before
    its optimizer was built (uncompiled, or never trained), or whose counter is not a count."""
    found = checked.get(OPTIMIZER_STEPS)
    if not isinstance(found, h5py.Dataset) or found.shape != () or found.dtype.kind not in "iu":
        return None
    steps = int(found[()])
    return steps if steps >= 0 else None


def load_weights(model: keras.Model, weights_path: Path, scratch: Path) -> int | None:
    """Give `model` the checked arrays of `weights_path` (a file from the archive); return the
    file's `optimizer_steps`, read once the file has passed."""
    expected_path = scratch / "expected.weights.h5"
    model.save_weights(expected_path)
    expected, names = _layout(expected_path)
    try:
        untrusted = h5py.File(weights_path, "r")
    except OSError as error:
        raise refuse(f"model.weights.h5 is not a readable HDF5 file: {error}") from None
    with untrusted, h5py.File(expected_path, "r+") as target:
        check_weights(untrusted, expected, names)
        for path in expected:
            target[path][...] = untrusted[path][()]
        steps = optimizer_steps(untrusted)
    model.load_weights(expected_path)
    return steps
