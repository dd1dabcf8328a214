"""Sweeps: one spec, one to three settings varied over lists of values, expanded into one spec per
combination, as the tutorials loop over learning rates, inner sizes and dropout rates by hand.

A setting is named as in the CLI's `--vary`: `lr`, `optimizer`, `batch_size`, `epochs`, `seed`,
or a layer's param with its 1-based position: `units@2`, `filters@1`, `rate@4`.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.errors import SpecError
from pipelines.modelspec import edit
from pipelines.modelspec.limits import brief
from pipelines.modelspec.spec import ModelSpec

MAX_AXES = 3
MAX_RUNS = 100
# Checked before anything is parsed, so a pasted megabyte costs nothing: one axis can never need
# more values than the sweep may have runs, nor (at up to 20 characters a value) more characters.
MAX_VALUES = MAX_RUNS
MAX_VALUES_CHARS = 20 * MAX_VALUES
COMPILE_NAMES = {"lr": "learning_rate", "learning_rate": "learning_rate", "optimizer": "optimizer"}
FIT_NAMES = {"batch_size": "batch_size", "epochs": "epochs", "seed": "seed"}
LAYER_PARAMS = {"units": "Dense", "filters": "Conv2D", "rate": "Dropout"}
GLOBAL_SETTINGS = ("lr", "optimizer", "batch_size", "epochs", "seed")  # as a user picks them
# The tutorials' own sweeps, one click each on the Build page.
TUTORIAL_SWEEPS = {
    "learning rate": ("lr", (1e-4, 1e-3, 1e-2, 1e-1)),
    "inner size": ("units", (10, 100, 1000)),
    "dropout": ("rate", (0.0, 0.2, 0.5, 0.8)),
}


@dataclass(frozen=True)
class Axis:
    """One varied setting and its values."""

    setting: str
    values: tuple[Any, ...]


def parse_axis(text: str) -> Axis:
    """`lr=1e-4,1e-3` or `units@2=64,128` (the CLI's --vary) as an Axis."""
    if "=" not in text:
        raise SpecError(f"--vary takes SETTING=V1,V2,... (e.g. lr=1e-4,1e-3). Received: {brief(text)}")
    setting, raw = text.split("=", 1)
    if len(raw) > MAX_VALUES_CHARS:
        raise SpecError(f"Sweep setting {brief(setting.strip())}: its values are {len(raw):,} characters long; "
                        f"at most {MAX_VALUES_CHARS:,} are allowed.")
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if len(parts) > MAX_VALUES:
        raise SpecError(f"Sweep setting {brief(setting.strip())} has more than {MAX_VALUES} values; a sweep makes "
                        f"at most {MAX_RUNS} runs.")
    return Axis(setting.strip(), tuple(_parse_value(part) for part in parts))


def _parse_value(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def apply_setting(spec: ModelSpec, setting: str, value: Any) -> ModelSpec:
    """The spec with one sweep setting changed."""
    if setting in COMPILE_NAMES:
        return spec.with_compile(**{COMPILE_NAMES[setting]: value})
    if setting in FIT_NAMES:
        return spec.with_fit(**{FIT_NAMES[setting]: value})
    param, _, position = setting.partition("@")
    if param in LAYER_PARAMS and position.isdigit():
        index = int(position) - 1
        if not 0 <= index < len(spec.layers) or spec.layers[index].type != LAYER_PARAMS[param]:
            raise SpecError(f"Sweep setting {setting!r}: layer {position} must be a {LAYER_PARAMS[param]} "
                            f"layer of this model.")
        return edit.set_param(spec, index, param, value)
    known = ", ".join([*COMPILE_NAMES, *FIT_NAMES, *(f"{p}@N" for p in LAYER_PARAMS)])
    raise SpecError(f"Unknown sweep setting {brief(setting)}. Expected one of: {known}")


def sweepable_settings(spec: ModelSpec) -> list[str]:
    """What a sweep of this model may vary, as `parse_axis` spells it: the global settings, then
    each layer param by position (`units@2`), not the output layer's units (the class count)."""
    options = list(GLOBAL_SETTINGS)
    hidden = [i for i, layer in enumerate(spec.layers) if layer.type == "Dense"][:-1]
    for index, layer in enumerate(spec.layers):
        for param, layer_type in LAYER_PARAMS.items():
            if layer.type == layer_type and (layer_type != "Dense" or index in hidden):
                options.append(f"{param}@{index + 1}")
    return options


def default_position(spec: ModelSpec, param: str) -> int | None:
    """Where a tutorial sweep of `param` applies: the first hidden Dense for units, the first
    Dropout for rate, the first Conv2D for filters (1-based); None if the model has none."""
    wanted = LAYER_PARAMS.get(param)
    candidates = [i for i, layer in enumerate(spec.layers) if layer.type == wanted]
    if param == "units":
        candidates = candidates[:-1]  # the output layer's units are the class count
    return candidates[0] + 1 if candidates else None


def expand(spec: ModelSpec, axes: Sequence[Axis]) -> list[tuple[dict[str, Any], ModelSpec]]:
    """Every combination of the axes' values: (the settings it takes, the spec with them), in order."""
    if not 1 <= len(axes) <= MAX_AXES:
        raise SpecError(f"A sweep varies 1 to {MAX_AXES} settings. Received: {len(axes)}")
    names = [axis.setting for axis in axes]
    if len(set(names)) != len(names):
        raise SpecError(f"A sweep setting appears twice: {', '.join(names)}")
    for axis in axes:
        if not axis.values:
            raise SpecError(f"Sweep setting {axis.setting!r} has no values.")
    count = 1
    for axis in axes:
        count *= len(axis.values)
    if count > MAX_RUNS:
        raise SpecError(f"The sweep makes {count:,} runs; the limit is {MAX_RUNS}.")
    combos = []
    for values in itertools.product(*(axis.values for axis in axes)):
        changed = spec
        for axis, value in zip(axes, values):
            changed = apply_setting(changed, axis.setting, value)
        combos.append((dict(zip(names, values)), changed))
    return combos
