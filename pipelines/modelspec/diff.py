"""What differs between specs: their settings, and their layers (added, removed, changed).

Compare shows only what differs between the runs it holds, as a learner reads the tutorials'
experiments: "layer 3 Dense: units 128 -> 512".
"""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.modelspec.spec import ModelSpec

SETTINGS = (("optimizer", "compile"), ("learning_rate", "compile"), ("loss", "compile"), ("momentum", "compile"),
            ("epochs", "fit"), ("batch_size", "fit"), ("validation_split", "fit"),
            ("early_stopping_patience", "fit"), ("seed", "fit"))


@dataclass(frozen=True)
class LayerChange:
    """One difference between two layer stacks; `index` is 1-based in the stack it refers to."""

    kind: str  # "added", "removed" or "changed"
    index: int
    layer_type: str
    changes: tuple[tuple[str, Any, Any], ...] = ()  # (param, before, after) for "changed"

    def text(self) -> str:
        if self.kind != "changed":
            return f"layer {self.index} {self.layer_type} {self.kind}"
        params = ", ".join(f"{name} {before!r} -> {after!r}".replace("'", "") for name, before, after in self.changes)
        return f"layer {self.index} {self.layer_type}: {params}"


def settings(spec: ModelSpec) -> dict[str, Any]:
    """The compile and fit settings of a spec by name, plus its layer count."""
    values = {name: getattr(getattr(spec, section), name) for name, section in SETTINGS}
    values["layers"] = len(spec.layers)
    return values


def differing_settings(specs: Sequence[ModelSpec]) -> dict[str, list[Any]]:
    """Only the settings whose values are not all equal, each with one value per spec."""
    table = [settings(spec) for spec in specs]
    return {name: [row[name] for row in table] for name in table[0]
            if len({repr(row[name]) for row in table}) > 1} if table else {}


def layer_changes(before: ModelSpec, after: ModelSpec) -> list[LayerChange]:
    """How `after`'s layers differ from `before`'s, aligned by type (difflib on the type sequence),
    so an inserted Dropout is one addition, not a change of every layer below it."""
    old, new = before.layers, after.layers
    matcher = difflib.SequenceMatcher(a=[l.type for l in old], b=[l.type for l in new], autojunk=False)
    result: list[LayerChange] = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            for i, j in zip(range(a0, a1), range(b0, b1)):
                changed = tuple((name, old[i].params.get(name), new[j].params.get(name))
                                for name in sorted(set(old[i].params) | set(new[j].params))
                                if old[i].params.get(name) != new[j].params.get(name))
                if changed:
                    result.append(LayerChange("changed", j + 1, new[j].type, changed))
            continue
        result += [LayerChange("removed", i + 1, old[i].type) for i in range(a0, a1)]
        result += [LayerChange("added", j + 1, new[j].type) for j in range(b0, b1)]
    return result
