"""What a model made of one input: the class probabilities with the top class called out, and the
input itself as the model received it, pixel for pixel.

The bar chart and `percent` live in `components.figures.probabilities`; `percent` is imported here
too, so every page formats probabilities alike through `prediction_view.percent`. The text and image
functions here are pure; `show_prediction` and `show_model_input` draw them.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import streamlit as st
from PIL import Image

from components.figures.probabilities import percent, probability_figure

MODEL_INPUT_PIXELS = 168  # how large "what the model sees" is drawn (28x28 becomes 6x)


def top_classes(probabilities: np.ndarray, class_names: Sequence[str], k: int = 3) -> list[tuple[str, float]]:
    """The k likeliest classes and their probabilities, likeliest first."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(class_names[i], float(probabilities[i])) for i in order]


def top_class_text(probabilities: np.ndarray, class_names: Sequence[str]) -> str:
    """"7 · 98.0%": the likeliest class and how sure the model is of it."""
    name, probability = top_classes(probabilities, class_names, 1)[0]
    return f"{name} · {percent(probability)}"


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
