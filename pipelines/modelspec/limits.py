"""What a spec may hold, checked before anything is built from it, and a JSON reader that keeps to it.

A spec arrives from users (a file on the Build page, `--spec` in the CLI), so its size, depth,
layer count and numbers are bounded before the parser or Keras allocate anything for it. Each
limit is a setting: an environment variable with a sane default (the README lists them).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields
from typing import Any

from pipelines.errors import SpecError

ECHO_CHARACTERS = 80  # how much of a bad value an error message repeats


@dataclass(frozen=True)
class SpecLimits:
    """Bounds on one spec. `max_parameters` bounds the model's weights, counted before allocation."""

    max_bytes: int = 256 * 1024  # LAYERLAB_MAX_SPEC_BYTES: the JSON text
    max_depth: int = 12  # LAYERLAB_MAX_SPEC_DEPTH: nested objects and lists
    max_layers: int = 200  # LAYERLAB_MAX_SPEC_LAYERS
    max_layer_params: int = 32  # LAYERLAB_MAX_LAYER_PARAMS: keys in one layer's `params`
    max_digits: int = 20  # LAYERLAB_MAX_NUMBER_DIGITS: characters in one JSON number
    max_parameters: int = 50_000_000  # LAYERLAB_MAX_PARAMETERS: the model's weights

    @classmethod
    def from_env(cls) -> SpecLimits:
        values = {}
        for spec_field in fields(cls):
            variable = _ENV_NAMES[spec_field.name]
            raw = os.environ.get(variable)
            if raw is None:
                continue
            try:
                values[spec_field.name] = int(raw)
            except ValueError:
                values[spec_field.name] = 0
            if values[spec_field.name] < 1:
                raise SpecError(f"{variable} must be a positive integer. Received: {brief(raw)}")
        return cls(**values)


_ENV_NAMES = {
    "max_bytes": "LAYERLAB_MAX_SPEC_BYTES",
    "max_depth": "LAYERLAB_MAX_SPEC_DEPTH",
    "max_layers": "LAYERLAB_MAX_SPEC_LAYERS",
    "max_layer_params": "LAYERLAB_MAX_LAYER_PARAMS",
    "max_digits": "LAYERLAB_MAX_NUMBER_DIGITS",
    "max_parameters": "LAYERLAB_MAX_PARAMETERS",
}


def limits() -> SpecLimits:
    """The limits in force: read from the environment each time, so a test or a server can set them."""
    return SpecLimits.from_env()


def brief(value: Any, limit: int = ECHO_CHARACTERS) -> str:
    """`repr(value)` cut to `limit` characters, for error messages that echo what they received.

    Containers are summarised first, so echoing a huge list never builds its whole repr."""
    if isinstance(value, (list, tuple, dict)) and len(value) > 8:
        kind = type(value).__name__
        return f"<a {kind} of {len(value):,} items>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def nesting_depth(text: str) -> int:
    """The deepest nesting of objects and lists in a JSON text, found without parsing it.

    Python's json module recurses once per level, so a deep enough text would end in a
    RecursionError; this pass needs no stack at all."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def load_spec_json(data: str | bytes, spec_limits: SpecLimits | None = None) -> Any:
    """Parse a spec's JSON text within the limits; every refusal is one SpecError line."""
    bound = spec_limits or limits()
    size = len(data)
    if size > bound.max_bytes:
        raise SpecError(f"The spec is {size:,} bytes; the limit is {bound.max_bytes:,} (LAYERLAB_MAX_SPEC_BYTES).")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(f"The spec is not UTF-8 text: {exc.reason} at byte {exc.start}.") from None
    depth = nesting_depth(data)
    if depth > bound.max_depth:
        raise SpecError(f"The spec nests objects and lists {depth:,} deep; the limit is {bound.max_depth} "
                        "(LAYERLAB_MAX_SPEC_DEPTH).")

    def number(text: str, convert):
        if len(text) > bound.max_digits:
            raise SpecError(f"The spec holds a number of {len(text):,} characters ({brief(text, 24)}); the limit "
                            f"is {bound.max_digits} (LAYERLAB_MAX_NUMBER_DIGITS).")
        value = convert(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"The spec holds {text}, which is not a finite number.")
        return value

    def constant(name: str):
        raise SpecError(f"The spec holds {name}, which is not a number JSON allows; use a finite number.")

    try:
        return json.loads(data, parse_int=lambda t: number(t, int), parse_float=lambda t: number(t, float),
                          parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise SpecError(f"The spec is not valid JSON: {exc}") from None
    except RecursionError:  # unreachable within max_depth; a last guard all the same
        raise SpecError("The spec nests too deeply to read.") from None
