"""See inside: what each layer made of the current input (the drawing, or an upload).

Feature maps (layers that keep an image's layout) or one bar per unit (flat layers); the figures
are `components.figures.activations`, pure functions of the layer's output.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from components import model_cache, prediction_view, state
from components.figures.activations import feature_maps_figure, unit_strip_figure
from components.text import plain

if TYPE_CHECKING:
    from pipelines.inference.predict import Activation, LoadedModel


def layer_label(activation: Activation) -> str:
    shape = "×".join(str(d) for d in activation.values.shape)
    return f"{activation.index + 1}. {activation.name} ({activation.type}) → {shape}"


def see_inside(loaded: LoadedModel, run_id: str) -> None:
    """Pick an input and a layer; see that layer's output for it."""
    inputs = state.prepared_inputs(run_id)
    if not inputs:
        st.info("Draw something on the **Draw** tab or upload a picture on the **Upload** tab: "
                "its path through the model shows here.", icon=":material/layers:")
        return
    labels = list(inputs)
    choose_input, choose_layer = st.columns([1, 2])
    label = choose_input.selectbox("Input", labels, key=state.key("test", "inside", "input", run_id))
    x = inputs[label]
    layers = model_cache.activations(loaded, x)
    # Start at the first feature maps, else at the first layer that does more than reshape.
    first = next((i for i, a in enumerate(layers) if a.values.ndim == 3),
                 next((i for i, a in enumerate(layers) if a.type != "Flatten"), 0))
    index = choose_layer.selectbox("Layer", range(len(layers)), format_func=lambda i: layer_label(layers[i]),
                                   index=first, key=state.key("test", "inside", "layer", run_id))
    activation = layers[index]

    given, shown = st.columns([1, 5], gap="large")
    with given:
        prediction_view.show_model_input(x, caption=f"{plain(label)}, as the model gets it")
    with shown:
        values = activation.values
        if values.ndim in (2, 3):
            count = values.shape[-1] if values.ndim == 3 else 1
            colours = ("blue above zero, red below" if (values < 0).any() else "white is strong, black is zero")
            st.caption(f"{count} feature map(s) of {values.shape[0]}×{values.shape[1]}, each scaled to its "
                       f"own strongest value: {colours}")
            st.plotly_chart(feature_maps_figure(values), key=state.key("test", "inside", "maps"),
                            config={"displayModeBar": False})
        else:
            last = activation.index == len(layers) - 1 and values.size == len(loaded.class_names)
            st.caption(f"{values.size} unit(s)" + (": the model's output, one per class" if last else ""))
            st.plotly_chart(unit_strip_figure(values, loaded.class_names if last else None),
                            key=state.key("test", "inside", "units"), config={"displayModeBar": False})
