"""Short descriptions of a spec, to tell runs apart: "Conv32-Pool-D128-D10 · adam 1e-3".

A run list shows dozens of runs of one preset; the architecture and the optimizer settings are
what make them different, so they make the default run name and the Compare table's summary.
"""
from __future__ import annotations

from pipelines.modelspec.spec import OPTIMIZERS, LayerSpec, ModelSpec

# Layers that change nothing a learner compares (or are implied by their neighbours) stay out.
_SILENT = {"Flatten", "Activation", "Reshape"}
_SHORT = {"BatchNormalization": "BN", "LeakyReLU": "LReLU"}


def layer_token(layer: LayerSpec) -> str | None:
    """One layer as a token: D128, Conv32, Pool, Drop0.5, BN; None for layers left out."""
    params = layer.params
    if layer.type in _SILENT:
        return None
    if layer.type == "Dense":
        return f"D{params.get('units', '?')}"
    if layer.type == "Conv2D":
        return f"Conv{params.get('filters', '?')}"
    if layer.type.endswith("Pooling2D"):
        return "Pool"
    if layer.type == "Dropout":
        return f"Drop{params.get('rate', '?'):g}" if isinstance(params.get("rate"), (int, float)) else "Drop"
    return _SHORT.get(layer.type, layer.type)


def architecture(spec: ModelSpec) -> str:
    """The layer stack in a line: "Conv32-Pool-Conv64-Pool-D128-D10" ("empty" without layers)."""
    tokens = [token for token in (layer_token(layer) for layer in spec.layers) if token]
    return "-".join(tokens) or "empty"


def rate_text(rate: float) -> str:
    """A learning rate as a person writes it: 1e-3, 3e-4, 0.01 -> 1e-2."""
    mantissa, exponent = f"{rate:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def run_title(spec: ModelSpec) -> str:
    """The default name of a run: its architecture, optimizer and learning rate."""
    optimizer = OPTIMIZERS[spec.compile.optimizer]["title"].lower()
    return f"{architecture(spec)} · {optimizer} {rate_text(spec.compile.learning_rate)}"
