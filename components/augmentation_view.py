"""What the model sees in training: a few augmented copies of a test image, for a model whose first
layers are augmentation (random flips, turns, zooms, shifts, contrast). Nothing for other models."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from components import model_cache, state
from components.text import plain
from pipelines.errors import LayerlabError
from pipelines.inference.augment import augmentation_layers, augmented_samples

if TYPE_CHECKING:
    from pipelines.inference.predict import LoadedModel

SAMPLES = 6


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
