"""The Build page's toolbar (dataset, presets, undo, save and load) and its cached validation."""
from __future__ import annotations

import streamlit as st

from components import state
from components import resources
from components.text import plain
from pipelines.data.catalog import CATALOG
from pipelines.errors import LayerlabError, SpecError
from pipelines.modelspec import edit
from pipelines.modelspec.presets import PRESETS
from pipelines.modelspec.spec import ModelSpec
from pipelines.modelspec.validation import Validation, validate


TRAIN_PAGE = "views/train.py"


@st.cache_data(max_entries=256, show_spinner=False)
def _validate_cached(spec_json: str, dataset: str) -> Validation:
    return validate(ModelSpec.from_json(spec_json), dataset)


def validation(spec: ModelSpec, dataset: str) -> Validation:
    """`validate` builds the layers in Keras; the same spec is not built twice."""
    with st.spinner("Checking the model with Keras ..."):
        return _validate_cached(spec.to_json(), dataset)


def input_text(result: Validation) -> str:
    return "×".join(str(d) for d in result.input_shape)


def _load_preset(name: str) -> None:
    preset = PRESETS[name]
    state.set_spec(preset.spec, refresh_widgets=True)
    state.select_layer(None)
    if preset.dataset != state.dataset():
        state.set_dataset(preset.dataset)
        state.push_notice(f"Loaded '{preset.title}' and switched the dataset to {CATALOG[preset.dataset].title}, "
                          "the one its tutorial uses.")


def _clear() -> None:
    state.set_spec(edit.clear_layers(state.spec()), refresh_widgets=True)
    state.select_layer(None)


def _pick_dataset(widget_key: str) -> None:
    state.set_dataset(state.widget_value(widget_key))


def _import_spec(widget_key: str) -> None:
    upload = state.widget_value(widget_key)
    if upload is None:
        return
    try:
        spec = edit.import_spec(upload.getvalue())
    except SpecError as exc:
        state.push_notice(f"Could not load {upload.name}: {exc}")
        return
    state.set_spec(spec, refresh_widgets=True)
    state.push_notice(f"Loaded {upload.name}.")


def toolbar() -> None:
    """Dataset, presets, undo, and the spec as a JSON file."""
    names = list(CATALOG)
    dataset_col, preset_col, undo_col, clear_col = st.columns([2, 5, 1, 1], vertical_alignment="bottom")
    dataset_key = state.key("build", "dataset", state.dataset())
    dataset_col.selectbox("Dataset", names, index=names.index(state.dataset()),
                          format_func=lambda n: CATALOG[n].title, key=dataset_key,
                          on_change=_pick_dataset, args=(dataset_key,))
    with preset_col:
        st.caption("Start from a tutorial model:")
        columns = st.columns(len(PRESETS))
        for column, preset in zip(columns, PRESETS.values()):
            column.button(preset.name, key=state.key("build", "preset", preset.name), help=preset.description,
                          on_click=_load_preset, args=(preset.name,), width="stretch")
    undo_col.button("↶ Undo", key=state.key("build", "undo"), disabled=not state.can_undo(), on_click=state.undo,
                    help="Undo the last change", width="stretch")
    clear_col.button("Clear", key=state.key("build", "clear"), on_click=_clear, disabled=not state.spec().layers,
                     help="Start from an empty stack (Undo brings it back)", width="stretch")
    with st.expander("Save or load this model as JSON"):
        spec = state.spec()
        st.download_button("Save spec (.json)", spec.to_json(), file_name=f"{spec.name or 'model'}.json",
                           mime="application/json", key=state.key("build", "save"))
        upload_key = state.key("build", "load")
        st.file_uploader("Load a spec", type=["json"], key=upload_key, on_change=_import_spec, args=(upload_key,))


def train_button(spec: ModelSpec, result: Validation) -> None:
    """Queue a run of the current spec and open it on the Train page."""
    if not st.button("Train this model", icon=":material/play_arrow:", type="primary", disabled=not result.ok,
                     key=state.key("build", "train"), width="stretch",
                     help="Queue a training run of this model" if result.ok else
                     "Fix the problems shown on the cards first."):
        return
    try:
        scheduler = resources.scheduler()
        run = scheduler.submit(spec, state.dataset())
        scheduler.ensure_workers(spare=1)
    except LayerlabError as exc:
        st.error(plain(exc, keep_code=True))
        return
    state.set_current_run(run.id)
    st.switch_page(TRAIN_PAGE, query_params=state.run_query(run.id))
