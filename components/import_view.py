"""Import a `.keras` model as a new run, on the Test and Compare pages: a teammate's model, to try
and compare like any run of one's own.

The file is checked and rebuilt in a sandboxed process (pipelines/io/keras_import.py); the page
waits for it, then shows the new run's name and id, or the reason the file was refused. The
uploader accepts any file, so that a `.h5` or a picture gets its reason rather than a silent
refusal. File and run names are the user's text: they reach Markdown only through `plain`.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import streamlit as st

from components import state
from components.text import plain
from pipelines.data.catalog import CATALOG, get_info
from pipelines.errors import LayerlabError
from pipelines.io.keras_import import ImportLimits, check_size, fitting_datasets, model_input_shape
from pipelines.runs.drafts import MAX_RUN_NAME
from pipelines.runs.store import RunStore

PAGE = "import"


def _import(store: RunStore, upload, dataset: str, name: str):
    """Write the upload to a private temp folder, import it, and remove the folder whatever happens."""
    from pipelines.io.keras_import import import_model

    check_size(upload.size, upload.name, ImportLimits.from_env().max_bytes)  # before a byte is copied
    folder = Path(tempfile.mkdtemp(prefix="layerlab-import-"))
    try:
        path = folder / "upload.keras"
        path.write_bytes(upload.getbuffer())
        return import_model(store, path, dataset, name=name, filename=upload.name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@st.cache_data(max_entries=4, show_spinner=False)
def _input_shape(file_id: str, _upload) -> tuple[int, ...] | None:
    """The uploaded model's input shape from its config.json, read once per upload."""
    return model_input_shape(_upload, _upload.name)


def _fitting(upload) -> tuple[tuple[int, ...] | None, list[str]]:
    """The upload's input shape and the datasets whose images it takes."""
    shape = _input_shape(upload.file_id, upload) if upload is not None else None
    return shape, fitting_datasets(shape) if shape else []


def _fit_picker_to_upload(file_key: str, dataset_key: str) -> None:
    """A new upload whose model does not take the picked dataset's images switches "Trained on" to
    one it takes: the dataset being worked on if it fits, else the first. A pick that fits stays."""
    _, fitting = _fitting(state.widget_value(file_key))
    picked = state.widget_value(dataset_key) or state.dataset()
    if fitting and picked not in fitting:
        state.set_widget_value(dataset_key, state.dataset() if state.dataset() in fitting else fitting[0])


def _dataset_picker(upload) -> str:
    """"Trained on", with a line saying which datasets the uploaded model's input shape fits."""
    names, dataset_key = list(CATALOG), state.key(PAGE, "dataset")
    picked = state.widget_value(dataset_key)
    first = names.index(state.dataset()) if state.dataset() in names else 0
    dataset = st.selectbox("Trained on", names, index=None if picked in names else first, key=dataset_key,
                           format_func=lambda name: get_info(name).title)
    shape, fitting = _fitting(upload)
    size = "×".join(map(str, shape or ()))
    if fitting:
        titles = " and ".join(get_info(name).title for name in fitting)
        st.caption(plain(f"The model takes {size} images, as {titles} {'has' if len(fitting) == 1 else 'have'}"
                         + (": pick the one it was trained on." if len(fitting) > 1 else ".")))
    elif shape:
        st.caption(plain(f"The model takes {size} images; no dataset here has that size. Add its photos on the "
                         "Data page at that size first."))
    return dataset or names[first]


def _name_field() -> tuple[str, str | None]:
    """The run's name, and why it cannot be used (None when it can). No `max_chars`: Streamlit's
    browser side drops a paste that would pass it without a word, so the length is checked here."""
    name = " ".join(str(st.text_input("Run name (optional)", key=state.key(PAGE, "name")) or "").split())
    if len(name) > MAX_RUN_NAME:
        return name, f"Run names can be at most {MAX_RUN_NAME} characters; this one has {len(name):,}."
    return name, None


def import_panel(store: RunStore, *, expanded: bool = False) -> None:
    """An expander with the uploader, the dataset and a name; a new run is opened by its id."""
    if notice := state.pop_notice():
        st.success(plain(notice))
    with st.expander("Import a .keras model", icon=":material/upload_file:", expanded=expanded):
        st.caption("A Keras 3 .keras file of a Sequential model made of Layerlab's layers. It is checked "
                   "without running anything in it, rebuilt by Layerlab and evaluated on the test set; "
                   "Lambda layers, custom objects and .h5 files are refused with the reason.")
        cap_mb = ImportLimits.from_env().max_bytes // 2**20
        file_key = state.key(PAGE, "file")
        upload = st.file_uploader(f"Model file (.keras, up to {cap_mb:,} MB)", key=file_key, max_upload_size=cap_mb,
                                  on_change=_fit_picker_to_upload, args=(file_key, state.key(PAGE, "dataset")))
        dataset = _dataset_picker(upload)
        name, name_problem = _name_field()
        if name_problem:
            st.error(name_problem, icon=":material/short_text:")
        if not st.button("Import", icon=":material/input:", disabled=upload is None or name_problem is not None,
                         key=state.key(PAGE, "go")):
            return
        with st.spinner("Checking the file in a separate process…"):
            try:
                run = _import(store, upload, dataset, name)
            except LayerlabError as error:
                st.error(plain(error))
                return
    state.set_current_run(run.id)
    state.push_notice(f"Imported {run.name} as run {run.id}. {run.note}")  # the note says what was mapped
    st.rerun()
