"""Test page: a run on the user's own labelled photos, beside its test accuracy (the clothing bridge).

For a Fashion-MNIST run this shows how each photo becomes what the model sees (grayscale, inverted
when its background is light, fitted to 28x28), so the gap between a benchmark and real photos is
visible. File and class names are the user's text: dataframe cells or `plain`, never Markdown.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from components import state
from components.prediction_view import enlarged
from components.text import plain
from pipelines.data.catalog import get_info
from pipelines.errors import LayerlabError
from pipelines.inference.folder_eval import FolderEvaluation, evaluate_folder
from pipelines.io.dataset_import import unpacked
from pipelines.runs.entities import Run
from pipelines.runs.store import RunStore

SOURCES = ("Upload a .zip", "A folder on this server")
# Widths that show every cell whole ("Sandal or Sneaker or Ankle boot") and fit 1024 px beside the sidebar.
PER_CLASS_COLUMNS = {
    "Your class": st.column_config.TextColumn("Your class", width=110),
    "Counted as": st.column_config.TextColumn("Counted as", width=210),
    "Photos": st.column_config.NumberColumn("Photos", width=70),
    "Right": st.column_config.NumberColumn("Right", width=60),
    "Accuracy": st.column_config.NumberColumn("Accuracy", format="percent", width=80),
}
EXAMPLE_PIXELS = 96  # a photo and its model input side by side, with room under them for a file name


def _key(*parts: object) -> str:
    return state.key("test", "folder", *parts)


def per_class_frame(result: FolderEvaluation) -> pd.DataFrame:
    rows = [{"Your class": name, "Counted as": " or ".join(row["as"]), "Photos": row["total"],
             "Right": row["correct"], "Accuracy": row["accuracy"]} for name, row in result.per_class.items()]
    return pd.DataFrame(rows)


def _run_on(store: RunStore, run: Run, source, what: str) -> None:
    bar = st.progress(0.0, text="Reading the photos ...")
    try:
        with unpacked(source, what=what) as (folder, _):
            result = evaluate_folder(store.run_dir(run.id), run.dataset, folder,
                                     lambda done, total: bar.progress(done / max(total, 1),
                                                                      text=f"{done:,} of {total:,} photos"),
                                     what=what)
    except LayerlabError as exc:
        bar.empty()
        st.error(plain(exc))
        return
    bar.empty()
    state.set_folder_evaluation(run.id, result)


def show(run: Run, result: FolderEvaluation) -> None:
    info = get_info(run.dataset)
    ours, theirs = st.columns(2)
    ours.metric("Accuracy on your photos", "–" if result.accuracy is None else f"{result.accuracy:.1%}",
                help=f"{result.n_images} photos whose class matches one of the run's")
    test_accuracy = run.metrics.get("test_accuracy")
    theirs.metric(plain(f"Test accuracy on {info.title}"), "–" if test_accuracy is None else f"{test_accuracy:.1%}")
    st.dataframe(per_class_frame(result), hide_index=True, column_config=PER_CLASS_COLUMNS)
    if result.unmatched_classes:
        st.caption(plain(f"Left out, as the run has no such class: {', '.join(result.unmatched_classes)}"))
    if result.unreadable:
        with st.expander(f"{len(result.unreadable)} photo(s) could not be read"):
            st.dataframe(pd.DataFrame(result.unreadable, columns=["File", "Reason"]), hide_index=True)
    st.markdown("**What the model sees**: each photo, then the input made from it, and the model's answer.")
    for name, examples in result.examples.items():
        st.caption(plain(name))
        row = st.container(horizontal=True, gap="medium")  # as many pairs a line as fit whole
        for file, photo, model_input, predicted in examples:
            with row.container(width=2 * EXAMPLE_PIXELS + 16):
                with st.container(horizontal=True, gap="small"):
                    st.image(photo, width=EXAMPLE_PIXELS)
                    st.image(enlarged(model_input, pixels=EXAMPLE_PIXELS), width=EXAMPLE_PIXELS)
                st.caption(plain(f"{file} → {predicted}"))


def folder_evaluation(store: RunStore, run: Run) -> None:
    """Evaluate the run on an uploaded zip or a server folder of class folders, and show the result."""
    st.subheader("On your own labelled photos")
    st.caption("A folder of class folders named as the run's classes (for Fashion-MNIST, clothing names such as "
               "pants, shoes or dress are understood). Photos of other classes are left out.")
    kind = st.radio("Photos from", SOURCES, horizontal=True, key=_key("source"))
    if kind == SOURCES[0]:
        upload = st.file_uploader("A .zip of class folders", type=["zip"], key=_key("zip"))
        source, what = upload, upload.name if upload is not None else ""
    else:
        source = what = st.text_input("Folder on the server", key=_key("path"))
    if st.button("Evaluate on these photos", key=_key("go"), disabled=not source):
        _run_on(store, run, source, what)
    result = state.folder_evaluation(run.id)
    if result is not None:
        show(run, result)
