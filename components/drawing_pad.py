"""Draw and see: a canvas (white ink on black, as MNIST's digits are), and after every stroke the
model's probabilities and the exact input it was given.

The pad is a fragment: a stroke reruns the pad alone, not the page, so the answer follows the pen.
The canvas sends a stroke about 0.2 s after the mouse is released (its own debounce). Streamlit
calls `keras.backend.clear_session()` after every script run, which empties TensorFlow's kernel
cache, so each stroke's prediction sets the model's traced function up again: about 25 ms of CPU
of the time the pad reports, where preparing the drawing takes about 1 ms.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from components import model_cache, prediction_view, state
from components.guard import guard
from pipelines.inference.preprocess import preprocess_drawing

if TYPE_CHECKING:
    from pipelines.inference.predict import LoadedModel

CANVAS_PIXELS = 280  # 10x MNIST's 28, so the pen's width maps to a digit's stroke
PEN_WIDTHS = (6, 40)
DEFAULT_PEN = 20
INPUT_COLUMN_PIXELS = 200
DRAWING_LABEL = "Your drawing"
# The canvas component (0.13) has its own toolbar (send, undo, redo, edit, reset) and no option to
# hide it but `disabled`. It floats above the canvas' top edge, so a frame that clips its overflow
# hides it, leaving Layerlab's Clear button as the one way to start over.
CANVAS_FRAME = state.key("test", "canvas_frame")
FRAME_STYLE = f"<style>.st-key-{CANVAS_FRAME} {{ overflow: hidden; position: relative; }}</style>"


@dataclass(frozen=True, eq=False)
class DrawnPrediction:
    """The model input made from a drawing, its class probabilities, and the time both took."""

    array: np.ndarray
    probabilities: np.ndarray
    seconds: float


def predict_drawing(loaded: LoadedModel, rgba: np.ndarray | None) -> DrawnPrediction | None:
    """The canvas' RGBA pixels prepared for the model and classified; None while the canvas holds
    no ink."""
    if rgba is None:
        return None
    started = time.perf_counter()
    array = preprocess_drawing(rgba, loaded.input_shape)
    if array is None:
        return None
    probabilities = model_cache.predict(loaded, array[np.newaxis])[0]
    return DrawnPrediction(array, probabilities, time.perf_counter() - started)


def prompt(class_names) -> str:
    if tuple(class_names) == tuple(str(digit) for digit in range(10)):
        return "Draw a digit"
    return f"Draw one of: {', '.join(class_names)}"


def drawing_pad(loaded: LoadedModel, run_id: str) -> None:
    """The canvas with its pen and Clear button; the prediction beside it."""
    # Imported here: the component registers itself on import, which needs a running app.
    from streamlit_drawable_canvas import st_canvas

    @st.fragment
    @guard("the drawing pad")
    def pad() -> None:
        row = st.container(horizontal=True, gap="large", wrap=False)
        canvas_column = row.container(width=CANVAS_PIXELS + 4)
        prediction_column = row.container()
        input_column = row.container(width=INPUT_COLUMN_PIXELS, key=state.key("test", "model_input"))
        with canvas_column:
            st.markdown(f"**{DRAWING_LABEL}**")
            pen = state.widget_value(state.key("test", "pen")) or DEFAULT_PEN
            st.html(FRAME_STYLE)
            with st.container(key=CANVAS_FRAME):
                result = st_canvas(stroke_color="#FFFFFF", background_color="#000000", stroke_width=pen,
                                   height=CANVAS_PIXELS, width=CANVAS_PIXELS, drawing_mode="freedraw",
                                   return_image_data=True, update_streamlit=True, key=state.canvas_key())
            with st.container(horizontal=True, vertical_alignment="bottom"):
                st.slider("Pen width", *PEN_WIDTHS, DEFAULT_PEN, key=state.key("test", "pen"), width=170)
                st.button("Clear", icon=":material/ink_eraser:", key=state.key("test", "clear"),
                          on_click=state.clear_canvas)
        drawn = predict_drawing(loaded, result.image_data)
        state.set_prepared_inputs(state.TEST_DRAWING, run_id, {DRAWING_LABEL: drawn.array} if drawn else {})
        with prediction_column:
            if drawn is None:
                st.info(f"{prompt(loaded.class_names)} on the black square, and the model's answer appears here.",
                        icon=":material/draw:")
            prediction_view.show_prediction(drawn.probabilities if drawn else None, loaded.class_names,
                                            key=state.key("test", "top_class"))
        with input_column:
            st.markdown("**What the model sees**")
            if drawn is None:
                st.caption("The drawing, cut out, scaled and centred as the training images were.")
            else:
                prediction_view.show_model_input(drawn.array)
                st.caption(f"Prepared and predicted in {drawn.seconds * 1000:.0f} ms")

    pad()
