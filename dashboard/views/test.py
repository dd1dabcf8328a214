"""Test: pick a finished run and try its model: draw, upload pictures, evaluate it on the test set,
and see what each layer made of an input.

Draw and Upload are always drawn, so the canvas and the uploaded files survive a change of tab;
Evaluate and See inside run only while open. The model is loaded once per run for every session
(components/model_cache.py); TensorFlow is imported only when a run is there to load.
"""
from __future__ import annotations

import dataclasses

import streamlit as st

from components import (activation_view, augmentation_view, drawing_pad, evaluation_view, folder_eval_view, import_view,
                        model_cache, resources, run_list, state, upload_view)
from components.text import plain
from pipelines.data.catalog import get_info
from pipelines.errors import LayerlabError
from pipelines.runs.entities import Run

TABS = ("Draw", "Upload", "Evaluate", "See inside")


def picker_label(run: Run) -> str:
    """"mlp-128x2 · 88.5% test accuracy · Adam 1e-3 · 5 epochs · 1a2b3c4d5e": the settings that tell
    runs of one model apart, short enough to show whole at 1024 px (the caption under the picker
    names the dataset and the parameter count)."""
    accuracy = run.metrics.get("test_accuracy")
    result = f"{accuracy:.1%} test accuracy" if accuracy is not None else run.status.value.lower()
    settings = dataclasses.replace(run_list.settings(run), parameters=None).text()
    return " · ".join(part for part in (run.name, result, settings, run.id) if part)


def pick_run(runs: list[Run]) -> Run:
    """The run `?run=` names (the Train page's "Test this model" carries it), else the newest;
    picking another puts it in the URL. Each is shown with the settings that tell it apart."""
    by_id = {run.id: run for run in runs}
    requested = state.current_run_id()
    if state.run_param_is_malformed():
        st.warning(run_list.MALFORMED_RUN_LINK)
    elif requested and requested not in by_id:
        st.warning(f"Run `{requested}` has no trained model to try (it is unknown, unfinished or failed). "
                   "Pick a finished run below.")
    ids = list(by_id)
    # Keyed by the URL's run: when something else names a run (an import, "Test this model"),
    # the picker shows it instead of keeping its last pick.
    picker = state.key("test", "run", requested if requested in by_id else "newest")
    chosen = st.selectbox("Model", ids, index=ids.index(requested if requested in by_id else ids[0]),
                          format_func=lambda run_id: picker_label(by_id[run_id]), key=picker,
                          on_change=lambda: state.set_current_run(state.widget_value(picker)))
    return by_id[chosen]


def about(run: Run) -> None:
    info = get_info(run.dataset)
    with st.container(horizontal=True, vertical_alignment="center"):  # the link goes under the text when both do not fit
        parameters = run_list.settings(run).parameters
        st.caption(plain(" · ".join(part for part in (
            info.title, f"{parameters:,} params" if parameters is not None else None,
            f"{run.status.value.lower()} after {run.epochs_done} epoch(s)", f"input {'×'.join(map(str, info.input_shape))}",
            f"classes: {', '.join(info.class_names)}") if part)))
        st.page_link("views/train.py", label="Training details", icon=":material/monitoring:",
                     query_params=state.run_query(run.id), width="content")


st.title("Test")
store = resources.store()
runs = model_cache.usable_runs(store)
import_view.import_panel(store, expanded=not runs)
if not runs:
    st.info("No trained model yet. Build a model, train it, and once its run has finished it can be tried here.",
            icon=":material/info:")
    with st.container(horizontal=True):
        st.page_link("views/build.py", label="Build a model", icon=":material/stacks:")
        st.page_link("views/train.py", label="See the runs", icon=":material/monitoring:")
    st.stop()

run = pick_run(runs)
about(run)
try:
    loaded = model_cache.model(store, run)
except LayerlabError as exc:
    st.error(plain(exc, keep_code=True))
    st.stop()

draw, upload, evaluate, inside = st.tabs(TABS, key=state.key("test", "tab"), on_change="rerun")
with draw:
    drawing_pad.drawing_pad(loaded, run.id)
with upload:
    upload_view.uploads(loaded, run.id, run.dataset)
if evaluate.open:
    with evaluate:
        evaluation_view.evaluation(store, run)
        folder_eval_view.folder_evaluation(store, run)
if inside.open:
    with inside:
        activation_view.see_inside(loaded, run.id, run.dataset)
        augmentation_view.what_the_model_sees(loaded, run.id, run.dataset)
