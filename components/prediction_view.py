"""What a model made of one input: the class probabilities with the top class called out, and the
input itself as the model received it, pixel for pixel.

The figure and image functions are pure (tested without Streamlit); `show_prediction` and
`show_model_input` draw them.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

TOP_COLOR = "#FF4B4B"
OTHER_COLOR = "#C3C8D4"
BAR_PIXELS = 26  # chart height per class
MODEL_INPUT_PIXELS = 168  # how large "what the model sees" is drawn (28x28 becomes 6x)


def top_classes(probabilities: np.ndarray, class_names: Sequence[str], k: int = 3) -> list[tuple[str, float]]:
    """The k likeliest classes and their probabilities, likeliest first."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(class_names[i], float(probabilities[i])) for i in order]


def percent(probability: float) -> str:
    """98%, 9.6%, 0.3%, <0.1%: whole percents where that is precise enough, and never 100%."""
    value = 100 * probability
    if value >= 99.5:
        return f"{min(value, 99.9):.1f}%"
    if value >= 10:
        return f"{value:.0f}%"
    if value >= 0.05:
        return f"{value:.1f}%"
    return "<0.1%"


def top_class_text(probabilities: np.ndarray, class_names: Sequence[str]) -> str:
    """"7 · 98%": the likeliest class and how sure the model is of it."""
    name, probability = top_classes(probabilities, class_names, 1)[0]
    return f"{name} · {percent(probability)}"


def probability_figure(probabilities: np.ndarray | None, class_names: Sequence[str]) -> go.Figure:
    """One horizontal bar per class in class order, top to bottom, the likeliest in colour;
    `None` gives the empty chart, waiting for an input."""
    names = list(class_names)
    top = None if probabilities is None else int(np.argmax(probabilities))
    values = [0.0] * len(names) if probabilities is None else [float(p) for p in probabilities]
    figure = go.Figure(go.Bar(
        x=values, y=names, orientation="h",
        marker={"color": [TOP_COLOR if i == top else OTHER_COLOR for i in range(len(names))]},
        text=None if probabilities is None else [percent(p) for p in values], textposition="outside",
        cliponaxis=False, hoverinfo="skip",
    ))
    figure.update_xaxes(range=[0, 1.12], tickformat=".0%", showgrid=True, fixedrange=True,
                        tickvals=[0, 0.25, 0.5, 0.75, 1.0])
    figure.update_yaxes(type="category", autorange="reversed", fixedrange=True, ticksuffix="  ")
    figure.update_layout(height=BAR_PIXELS * len(names) + 50, margin={"l": 10, "r": 10, "t": 10, "b": 30},
                         bargap=0.25, showlegend=False)
    return figure


def enlarged(array: np.ndarray, pixels: int = MODEL_INPUT_PIXELS) -> np.ndarray:
    """A model input (H, W, C) in [0, 1] as uint8 pixels, each repeated so the longer side is
    about `pixels` long: nearest neighbour, so the model's pixels stay visible."""
    height, width = array.shape[:2]
    scale = max(1, round(pixels / max(height, width)))
    image = np.clip(np.rint(np.asarray(array, np.float32) * 255), 0, 255).astype(np.uint8)
    image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    return image[..., 0] if image.shape[-1] == 1 else image


def png_data_url(pixels: np.ndarray) -> str:
    """uint8 pixels as an inline PNG, which reaches the browser with the rest of the answer
    instead of by a request of its own."""
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def show_prediction(probabilities: np.ndarray | None, class_names: Sequence[str], key: str) -> None:
    """The top class as a big figure, and every class' probability as a bar; `None` shows the
    empty chart only (it also has the browser load the charting code before the first answer)."""
    if probabilities is not None:
        with st.container(key=key):
            st.metric("Prediction", top_class_text(probabilities, class_names))
    st.plotly_chart(probability_figure(probabilities, class_names), key=f"{key}_chart",
                    config={"displayModeBar": False, "staticPlot": True})


def show_model_input(array: np.ndarray, caption: str | None = None) -> None:
    """The exact array the model received, enlarged without smoothing."""
    height, width, channels = array.shape
    st.image(png_data_url(enlarged(array)), caption=caption or f"{width}×{height}×{channels}, as the model gets it")
