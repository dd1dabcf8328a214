"""What the preset tests need for the clothing presets when no clothing dataset has been added."""
from dataclasses import replace

from pipelines.data.catalog import CATALOG, DatasetInfo
from pipelines.modelspec.presets import Preset
from pipelines.modelspec.spec import ModelSpec

CLOTHING_CLASSES = ("dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt")


def preset_target(preset: Preset) -> DatasetInfo:
    """The preset's dataset, or for a dataset not added here one of the preset's own image size."""
    if preset.dataset in CATALOG:
        return CATALOG[preset.dataset]
    return DatasetInfo(preset.dataset, preset.title, CLOTHING_CLASSES, tuple(preset.spec.input_shape), "", "", "")


def offline(spec: ModelSpec) -> ModelSpec:
    """The spec with random weights in every pretrained base: tests must not need the internet."""
    layers = tuple(replace(layer, params={**layer.params, "weights": "none"}) if layer.type == "PretrainedBase"
                   else layer for layer in spec.layers)
    return replace(spec, layers=layers)
