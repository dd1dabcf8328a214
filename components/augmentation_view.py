"""What the model sees in training: a few augmented copies of an image. On the Test page, a test
image through a trained model's leading augmentation layers (nothing for a model without); on the
Data page, a dataset's sample through the Build draft's augmentation, or a default flip and turn.

TensorFlow loads only when the Data page's preview is asked for (its toggle): the page itself
draws without it.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from components import model_cache, state
from components.text import plain
from pipelines.errors import LayerlabError
from pipelines.inference.augment import augmentation_layers, augmented_samples
from pipelines.modelspec.layers import get_layer_type
from pipelines.modelspec.spec import LayerSpec, ModelSpec

if TYPE_CHECKING:
    from pipelines.inference.predict import LoadedModel

SAMPLES = 6
# What the Data page previews when the Build draft has no augmentation of its own.
DEFAULT_AUGMENTATION = (LayerSpec("RandomFlip", "random_flip", {"mode": "horizontal"}),
                        LayerSpec("RandomRotation", "random_rotation", {"factor": 0.1}))


def what_the_model_sees(loaded: LoadedModel, run_id: str, dataset: str) -> None:
    layers = augmentation_layers(loaded)
    if not layers:
        return
    with st.expander("What the model sees in training (augmentation)", key=state.key("test", "augment", run_id)):
        st.caption(plain(f"In training, every image passes through {', '.join(type(l).__name__ for l in layers)} "
                         "first, with new random settings at each step; at test time it passes unchanged. "
                         "A few such copies of one test image:"))
        try:
            data = model_cache.evaluation_data(dataset)
        except LayerlabError as exc:
            st.error(plain(exc, keep_code=True))
            return
        last = len(data.x_test) - 1
        index = int(st.number_input(f"Test image number (0 to {last:,})", min_value=0, max_value=last, value=0,
                                    step=1, key=state.key("test", "augment", "index", run_id)))
        image = data.x_test[index].astype(np.float32) / 255
        samples = augmented_samples(loaded, image.reshape(loaded.input_shape), SAMPLES)
        st.image([sample.squeeze() for sample in samples], width=120, clamp=True,
                 caption=[f"copy {i + 1}" for i in range(len(samples))])


def leading_augmentation(spec: ModelSpec) -> tuple[LayerSpec, ...]:
    """The spec's augmentation layers that come before anything else (where they act in training)."""
    found = []
    for layer in spec.layers:
        layer_type = get_layer_type(layer.type)
        if layer_type is None or not layer_type.random:
            break
        found.append(layer)
    return tuple(found)


def _keras_layers(layers: tuple[LayerSpec, ...]) -> list:
    from pipelines.modelspec.keras_build import keras_layer  # TensorFlow: only once the preview is asked for

    return [keras_layer(layer) for layer in layers]


def dataset_preview(overview: dict, class_names: tuple[str, ...], input_shape: tuple[int, ...]) -> None:
    """A few augmented copies of one training sample of the chosen class, through the Build draft's
    augmentation (or a default flip and turn), behind a toggle so the page loads without TensorFlow."""
    with st.expander("Augmentation preview", icon=":material/flip:"):
        own = leading_augmentation(state.spec())
        layers = own or DEFAULT_AUGMENTATION
        source = "the Build page's model" if own else "a default set (the Build page's model has no augmentation)"
        st.caption(plain(f"In training, augmentation layers change each image at random, at every step: "
                         f"{', '.join(layer.type for layer in layers)}, from {source}."))
        labels = [label for label, images in overview["samples"].items() if len(images)]
        if not labels or not st.toggle("Show augmented samples", key=state.key("data", "augment", "show")):
            return
        label = st.selectbox("Class", labels, format_func=lambda i: class_names[i],
                             key=state.key("data", "augment", "class"))
        image = overview["samples"][label][0].astype(np.float32) / 255
        try:
            keras_layers = _keras_layers(layers)
        except LayerlabError as exc:
            st.error(plain(exc))
            return
        copies = augmented_samples(SimpleNamespace(model=SimpleNamespace(layers=keras_layers)),
                                   image.reshape(input_shape), SAMPLES)
        st.image([image.squeeze(), *(copy.squeeze() for copy in copies)], width=120, clamp=True,
                 caption=["original", *(f"copy {i + 1}" for i in range(len(copies)))])
