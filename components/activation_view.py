"""See inside: what each layer made of an input: the drawing, an upload, or any image of the test set
(numbered as the Evaluate tab numbers them).

Feature maps (layers that keep an image's layout) or one bar per unit (flat layers); the figures
are `components.figures.activations`, pure functions of the layer's output.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from components import model_cache, prediction_view, state
from components.figures.activations import feature_maps_figure, unit_strip_figure
from components.text import plain
from pipelines.errors import LayerlabError

if TYPE_CHECKING:
    from pipelines.inference.predict import Activation, LoadedModel

TEST_IMAGE = "An image of the test set"
PICKER_PIXELS = 300  # a layer's label ("14. batch_normalization_5 (BatchNormalization) → 128") whole


def layer_label(activation: Activation) -> str:
    shape = "×".join(str(d) for d in activation.values.shape)
    return f"{activation.index + 1}. {activation.name} ({activation.type}) → {shape}"


def test_image(loaded: LoadedModel, dataset: str, run_id: str) -> tuple[np.ndarray, str] | None:
    """A test-set image picked by its number, scaled as training scaled it, and its caption; None
    (with the reason on the page) when the test set cannot be read."""
    try:
        data = model_cache.evaluation_data(dataset)
    except LayerlabError as exc:
        st.error(plain(exc, keep_code=True))
        return None
    last = len(data.x_test) - 1
    index = int(st.number_input(f"Test image number (0 to {last:,})", min_value=0, max_value=last, value=0, step=1,
                                key=state.key("test", "inside", "index", run_id),
                                help="The Evaluate tab shows each picture's number (#123) under it"))
    image = data.x_test[index].astype(np.float32) / 255  # as training scales it
    return image.reshape(loaded.input_shape), f"test image #{index}, truly {loaded.class_names[data.y_test[index]]}"


def see_inside(loaded: LoadedModel, run_id: str, dataset: str) -> None:
    """Pick an input (the drawing, an upload or a test-set image) and a layer; see that layer's output for it."""
    inputs = state.prepared_inputs(run_id)
    if not inputs:
        st.caption("Draw something on the **Draw** tab or upload a picture on the **Upload** tab to see its path "
                   "through the model; meanwhile, here is an image of the test set.")
    labels = [*inputs, TEST_IMAGE]
    # Side by side where both pickers show their values whole, one above the other below that.
    pickers = st.grid(2, min_column_width=PICKER_PIXELS)
    choose_input, choose_layer = pickers.cell(), pickers.cell()
    with choose_input:
        label = st.selectbox("Input", labels, key=state.key("test", "inside", "input", run_id))
        if label == TEST_IMAGE:
            picked = test_image(loaded, dataset, run_id)
            if picked is None:
                return
            x, caption = picked
        else:
            x, caption = inputs[label], label
    layers = model_cache.activations(loaded, x)
    # Start at the first feature maps, else at the first layer that does more than reshape.
    first = next((i for i, a in enumerate(layers) if a.values.ndim == 3),
                 next((i for i, a in enumerate(layers) if a.type != "Flatten"), 0))
    index = choose_layer.selectbox("Layer", range(len(layers)), format_func=lambda i: layer_label(layers[i]),
                                   index=first, key=state.key("test", "inside", "layer", run_id))
    activation = layers[index]

    row = st.container(horizontal=True, gap="large")
    given, shown = row.container(width=prediction_view.MODEL_INPUT_PIXELS + 12), row.container()
    with given:
        prediction_view.show_model_input(x, caption=f"{plain(caption)}, as the model gets it")
    with shown:
        values = activation.values
        if values.ndim in (2, 3):
            count = values.shape[-1] if values.ndim == 3 else 1
            colours = ("blue above zero, red below" if (values < 0).any() else "white is strong, black is zero")
            st.caption(f"{count:,} feature map(s) of {values.shape[0]}×{values.shape[1]}, each scaled to its "
                       f"own strongest value: {colours}")
            st.plotly_chart(feature_maps_figure(values), key=state.key("test", "inside", "maps"),
                            config={"displayModeBar": False})
        else:
            last = activation.index == len(layers) - 1 and values.size == len(loaded.class_names)
            st.caption(f"{values.size:,} unit(s)" + (": the model's output, one per class" if last else ""))
            st.plotly_chart(unit_strip_figure(values, loaded.class_names if last else None),
                            key=state.key("test", "inside", "units"), config={"displayModeBar": False})
