"""Draw and see: a canvas (white ink on black, as MNIST's digits are), and after every stroke the
model's probabilities and the exact input it was given.

The pad is a fragment: a stroke reruns the pad alone, not the page, so the answer follows the pen.
The canvas sends a stroke about 0.2 s after the mouse is released (its own debounce); the rest of
the wait is this fragment and the browser drawing its answer. Streamlit calls
`keras.backend.clear_session()` after every script run, fragments included, and that costs twice:
- it runs a full `gc.collect()`, which walks the 350,000 objects of TensorFlow, Keras and the rest:
  0.4-0.6 s at a load of 8-13 on this 2-core machine, holding the GIL while the answer waits to
  be sent. `keep_out_of_collections`
  moves what exists once a model is loaded into the collector's permanent generation
  (`gc.freeze`), so each later collection walks only what is new;
- it empties TensorFlow's kernel cache, so a plain traced call sets its kernels up again every
  time (15-50 ms for LeNet). The pad predicts through an XLA-compiled function for one image
  instead, whose compiled program survives that (about 2 ms for LeNet; the compile takes 0.3 s,
  2.4 s for Xception); a model XLA cannot compile falls back to the plain path.
"""
from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from components import model_cache, prediction_view, state
from components.guard import guard
from pipelines.inference.preprocess import preprocess_drawing

if TYPE_CHECKING:
    from pipelines.inference.predict import LoadedModel

LOG = logging.getLogger(__name__)
CANVAS_PIXELS = 280  # 10x MNIST's 28, so the pen's width maps to a digit's stroke
CANVAS_COLUMN_PIXELS = CANVAS_PIXELS + 4
# Fixed widths that wrap: at 1024 px with the sidebar open the main column is about 560 px wide,
# which holds the canvas and the answer side by side, with what the model sees below them; from
# about 1200 px all three stand in one row.
PREDICTION_COLUMN_PIXELS = 240
INPUT_COLUMN_PIXELS = 200
PEN_WIDTHS = (6, 40)
DEFAULT_PEN = 20
DRAWING_LABEL = "Your drawing"
# The canvas component (0.13) has its own toolbar (send, undo, redo, edit, reset) and no option to
# hide it but `disabled`. It floats above the canvas' top edge, so a frame that clips its overflow
# hides it, leaving Layerlab's Clear button as the one way to start over.
CANVAS_FRAME = state.key("test", "canvas_frame")
FRAME_STYLE = f"<style>.st-key-{CANVAS_FRAME} {{ overflow: hidden; position: relative; }}</style>"

_compiled: weakref.WeakKeyDictionary[LoadedModel, Callable[[np.ndarray], object] | None] = weakref.WeakKeyDictionary()
_preparing = threading.Lock()


@dataclass(frozen=True, eq=False)
class DrawnPrediction:
    """The model input made from a drawing, its class probabilities, and the time both took."""

    array: np.ndarray
    probabilities: np.ndarray
    seconds: float


def keep_out_of_collections() -> None:
    """Collect once, then leave everything alive now (TensorFlow, Keras, the loaded models) out of
    later collections, which Streamlit runs after every rerun. Unfreezing first lets a model the
    cache has dropped since the last call be collected."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _compile_for_one_image(loaded: LoadedModel) -> Callable[[np.ndarray], object] | None:
    """The model's forward pass for a batch of one, compiled with XLA (a fraction of a second for a
    small CNN, seconds for a MobileNet); None for a model XLA cannot compile."""
    import tensorflow as tf  # only once a model is there

    model = loaded.model  # not `loaded`: the cache below holds this function weakly keyed by it
    compiled = tf.function(lambda x: model(x, training=False), jit_compile=True,
                           input_signature=[tf.TensorSpec((1, *loaded.input_shape), tf.float32)])
    try:
        compiled(np.zeros((1, *loaded.input_shape), np.float32))
    except Exception as error:  # an op XLA does not compile: the plain path answers as well
        LOG.info("XLA cannot compile this model (%s); the drawing pad predicts without it", error)
        return None
    return compiled


def prepare(loaded: LoadedModel) -> None:
    """Ready the pad for this model before the first stroke: compile its one-image function and
    take what loading it left alive out of later collections. Once per loaded model."""
    with _preparing:
        if loaded not in _compiled:
            _compiled[loaded] = _compile_for_one_image(loaded)
            keep_out_of_collections()


def predict_one(loaded: LoadedModel, x: np.ndarray) -> np.ndarray:
    """Class probabilities (1, classes) for a float32 batch of one in [0, 1]."""
    prepare(loaded)
    compiled = _compiled.get(loaded)
    if compiled is None:
        return model_cache.predict(loaded, x)
    from pipelines.inference.predict import probabilities_from_outputs

    return probabilities_from_outputs(np.asarray(compiled(x)), loaded.from_logits)


def predict_drawing(loaded: LoadedModel, rgba: np.ndarray | None) -> DrawnPrediction | None:
    """The canvas' RGBA pixels prepared for the model and classified; None while the canvas holds
    no ink."""
    if rgba is None:
        return None
    prepare(loaded)  # once per model, and not part of a stroke's time
    started = time.perf_counter()
    array = preprocess_drawing(rgba, loaded.input_shape)
    if array is None:
        return None
    probabilities = predict_one(loaded, array[np.newaxis].astype(np.float32, copy=False))[0]
    return DrawnPrediction(array, probabilities, time.perf_counter() - started)


def prompt(class_names) -> str:
    if tuple(class_names) == tuple(str(digit) for digit in range(10)):
        return "Draw a digit"
    return f"Draw one of: {', '.join(class_names)}"


def drawing_pad(loaded: LoadedModel, run_id: str) -> None:
    """The canvas with its pen and Clear button; the prediction beside it, or under it when the
    page is too narrow for both."""
    # Imported here: the component registers itself on import, which needs a running app.
    from streamlit_drawable_canvas import st_canvas

    prepare(loaded)  # before the first stroke, not on it

    @st.fragment
    @guard("the drawing pad")
    def pad() -> None:
        row = st.container(horizontal=True, horizontal_alignment="distribute")
        canvas_column = row.container(width=CANVAS_COLUMN_PIXELS)
        prediction_column = row.container(width=PREDICTION_COLUMN_PIXELS)
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
