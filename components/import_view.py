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
from pipelines.io.keras_import import ImportLimits, check_size
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


def import_panel(store: RunStore, *, expanded: bool = False) -> None:
    """An expander with the uploader, the dataset and a name; a new run is opened by its id."""
    if notice := state.pop_notice():
        st.success(plain(notice))
    with st.expander("Import a .keras model", icon=":material/upload_file:", expanded=expanded):
        st.caption("A Keras 3 .keras file of a Sequential model made of Layerlab's layers. It is checked "
                   "without running anything in it, rebuilt by Layerlab and evaluated on the test set; "
                   "Lambda layers, custom objects and .h5 files are refused with the reason.")
        cap_mb = ImportLimits.from_env().max_bytes // 2**20
        upload = st.file_uploader(f"Model file (.keras, up to {cap_mb:,} MB)", key=state.key(PAGE, "file"),
                                  max_upload_size=cap_mb)
        names = list(CATALOG)
        current = state.dataset()
        dataset = st.selectbox("Trained on", names, index=names.index(current) if current in names else 0,
                               format_func=lambda name: get_info(name).title, key=state.key(PAGE, "dataset"))
        name = st.text_input("Run name (optional)", key=state.key(PAGE, "name"), max_chars=200)
        if not st.button("Import", icon=":material/input:", disabled=upload is None, key=state.key(PAGE, "go")):
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
