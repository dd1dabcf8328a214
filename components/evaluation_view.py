"""A model on its whole test set: accuracy and loss, each class' accuracy, the confusion matrix
(click a cell to see its images) and the mistakes the model was surest of.

The matrix itself is `components.figures.confusion`. The cell shown is held by two selectboxes
(true class, predicted class), which a click on the matrix sets.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from components import model_cache, prediction_view, state
from components.figures.confusion import confusion_figure, selected_cell
from components.guard import guard
from components.text import plain
from pipelines.errors import LayerlabError
from pipelines.runs.entities import Run
from pipelines.runs.store import RunStore

if TYPE_CHECKING:
    from pipelines.inference.evaluate import Evaluation

GALLERY_PIXELS = 84  # a 28x28 image at 3x
CELL_IMAGES = 40
WORST_MISTAKES = 24


PER_CLASS_COLUMNS = {
    "Class": st.column_config.TextColumn("Class", width=60),
    "Accuracy": st.column_config.ProgressColumn("Accuracy", min_value=0.0, max_value=1.0, format="percent",
                                                width=120),
    "Right": st.column_config.TextColumn("Right", width=100, help="Images predicted right, of all of the class"),
    "Most common mistake": st.column_config.TextColumn("Most common mistake", width=170,
                                                       help="The wrong class this class was most often predicted "
                                                            "as, and how many of its test images that was"),
}


PER_CLASS_PIXELS = sum(column["width"] for column in PER_CLASS_COLUMNS.values()) + 2  # every column whole


def per_class_frame(evaluation: Evaluation) -> pd.DataFrame:
    """One row per class: its accuracy, how many of its test images were right, and its likeliest
    mistake in words ("predicted 6: 7 times"), which a bare "6 (7)" was not."""
    confusion = evaluation.confusion
    mistaken = confusion - np.diag(np.diag(confusion))
    rows = []
    for row in evaluation.per_class:
        index = row["class"]
        worst = int(np.argmax(mistaken[index]))
        rows.append({
            "Class": row["name"], "Accuracy": row["accuracy"], "Right": f"{row['correct']:,} / {row['count']:,}",
            "Most common mistake": (mistake_text(evaluation.class_names[worst], int(mistaken[index, worst]))
                                    if mistaken[index, worst] else "—"),
        })
    return pd.DataFrame(rows)


def mistake_text(predicted: str, count: int) -> str:
    return f"predicted {predicted}: {count:,} time{'s' if count != 1 else ''}"


def worst_caption(true_name: str, predicted_name: str, confidence: float) -> str:
    """Under a wrong answer: "predicted 6, truly 7 · 98.0% sure"."""
    return f"predicted {predicted_name}, truly {true_name} · {prediction_view.percent(confidence)} sure"


def default_cell(confusion: np.ndarray) -> tuple[int, int]:
    """The most frequent mistake (true, predicted), or (0, 0) when there is none."""
    mistaken = confusion - np.diag(np.diag(confusion))
    if not mistaken.any():
        return 0, 0
    true_class, predicted_class = np.unravel_index(int(np.argmax(mistaken)), mistaken.shape)
    return int(true_class), int(predicted_class)


def _cell_keys() -> tuple[str, str]:
    return state.key("test", "cell", "true"), state.key("test", "cell", "predicted")


def _follow_click(chart_key: str) -> None:
    """A click on the matrix sets the two selectboxes (before they are drawn again)."""
    event = state.widget_value(chart_key)
    cell = selected_cell(event.get("selection") if event else None)
    if cell is not None:
        for widget_key, value in zip(_cell_keys(), cell):
            state.set_widget_value(widget_key, value)


def gallery(images: np.ndarray, captions: Sequence[str]) -> None:
    """Test images enlarged without smoothing, each with its caption. Streamlit renders image
    captions as Markdown and captions hold class names (an image folder's names are the user's),
    so each goes through `plain`."""
    st.image([prediction_view.enlarged(image.astype(np.float32) / 255, GALLERY_PIXELS) for image in images],
             caption=[plain(caption) for caption in captions], width=GALLERY_PIXELS)


def _cell_view(result: Evaluation, images: np.ndarray) -> None:
    """The test images of the cell the two selectboxes name (a click on the matrix sets them)."""
    from pipelines.inference.evaluate import cell_indices  # TensorFlow: only once needed

    names = result.class_names
    classes = list(range(len(names)))
    true_key, predicted_key = _cell_keys()
    with st.container(key=state.key("test", "cell_view")):
        pick_true, pick_predicted, _ = st.columns([1, 1, 2])
        true_class = pick_true.selectbox("True class", classes, format_func=names.__getitem__, key=true_key)
        predicted_class = pick_predicted.selectbox("Predicted class", classes, format_func=names.__getitem__,
                                                   key=predicted_key)
        indices = cell_indices(result, true_class, predicted_class)
        verdict = "right" if true_class == predicted_class else "wrong"
        st.caption(f"{len(indices):,} test image(s) of {plain(names[true_class])} predicted as "
                   f"{plain(names[predicted_class])} ({verdict})"
                   + (f"; the first {CELL_IMAGES} shown" if len(indices) > CELL_IMAGES else "")
                   + (". Under each: its number in the test set, and how sure the model was" if len(indices) else ""))
        shown = indices[:CELL_IMAGES]
        if len(shown):
            gallery(images[shown], [f"#{i} · {prediction_view.percent(result.confidence[i])}" for i in shown])


def evaluation(store: RunStore, run: Run) -> None:
    """The Evaluate tab; a click in the matrix reruns this part alone."""

    @st.fragment
    @guard("the evaluation")
    def results() -> None:
        from pipelines.inference.evaluate import worst_mistakes  # TensorFlow: only once needed

        try:
            result = model_cache.evaluation(store, run)
            images = model_cache.evaluation_data(run.dataset).x_test
        except LayerlabError as exc:  # this fragment reruns alone, so it is an edge of its own
            st.error(plain(exc, keep_code=True))
            return
        names = result.class_names
        mistakes = int((result.predicted != result.labels).sum())
        for column, (label, value) in zip(st.columns(4), (
                ("Accuracy", f"{result.accuracy:.1%}"), ("Cross-entropy", f"{result.loss:.4f}"),
                ("Test images", f"{len(result.labels):,}"), ("Mistakes", f"{mistakes:,}"))):
            column.metric(label, value)

        true_key, predicted_key = _cell_keys()
        classes = list(range(len(names)))
        for widget_key, value in zip((true_key, predicted_key), default_cell(result.confusion)):
            if state.widget_value(widget_key) not in classes:
                state.set_widget_value(widget_key, value)
        cell = (state.widget_value(true_key), state.widget_value(predicted_key))

        # The matrix at its own size and the table whole, side by side where both fit, else one
        # under the other (a matrix squeezed into a column had cells too small to read or click).
        figure = confusion_figure(result.confusion, names, cell)
        row = st.container(horizontal=True, gap="medium")
        matrix, table = row.container(width=int(figure.layout.width)), row.container(width=PER_CLASS_PIXELS)
        with matrix:
            st.markdown("**Confusion matrix** · click a cell to see its images")
            chart_key = state.key("test", "confusion")
            st.plotly_chart(figure, key=chart_key, width="content",
                            on_select=lambda: _follow_click(chart_key), selection_mode="points",
                            config={"displayModeBar": False})
        with table:
            st.markdown("**Accuracy per class**")
            st.dataframe(per_class_frame(result), hide_index=True, key=state.key("test", "per_class"),
                         column_config=PER_CLASS_COLUMNS)

        _cell_view(result, images)

        st.markdown("**Worst mistakes** · the wrong answers the model was surest of")
        worst = worst_mistakes(result, WORST_MISTAKES)
        if len(worst):
            gallery(images[worst], [f"#{i} · " + worst_caption(names[result.labels[i]], names[result.predicted[i]],
                                                               result.confidence[i]) for i in worst])
        else:
            st.success("No mistakes on the test set.")

    results()
