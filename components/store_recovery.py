"""When the run store cannot be opened (deleted, emptied, damaged): say so, naming the file, and
offer to rebuild its index from the run folders, which each hold their run's record."""
from __future__ import annotations

import hashlib

import streamlit as st

from components import resources, state
from components.text import plain
from pipelines import paths
from pipelines.errors import LayerlabError, StoreUnavailableError
from pipelines.runs.sqlite_recovery import rebuild_store


def _rebuild() -> None:
    try:
        count = rebuild_store(paths.home_dir())
    except LayerlabError as exc:
        state.push_notice(f"The rebuild failed: {exc}")
        return
    resources.store.clear()
    resources.scheduler.clear()
    state.push_notice(f"Rebuilt the run store from the run folders: {count} run(s) listed again.")


def offer_rebuild(error: StoreUnavailableError, where: str) -> None:
    """The store's problem in words, and a button that rebuilds it (nothing is deleted: a damaged
    file is kept beside the new one)."""
    st.error(plain(str(error), keep_code=True), icon=":material/database:")
    digest = hashlib.sha1(where.encode()).hexdigest()[:8]
    st.button("Rebuild the index from the run folders", key=state.key("store", "rebuild", digest),
              on_click=_rebuild, type="primary", icon=":material/build:",
              help="Reads every run folder's run.json and writes a new runs.db; the old file is kept.")
