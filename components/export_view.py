"""Taking a run out: the standalone script, model, spec, history and a zip, with the parity badge.

Everything here reads files or writes text; only "Check" loads TensorFlow (to build the script's
model and the app's), and its verdict is kept in the run's folder, so the badge shows at once on
every later visit.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from components import run_list, state
from components.text import plain
from pipelines.errors import LayerlabError
from pipelines.execution.tensorboard_logs import tensorboard_dir
from pipelines.io.export import (Parity, bundle, parity_for, recorded_parity, run_script, script_file_name)
from pipelines.runs import artifacts
from pipelines.runs.entities import Run
from pipelines.runs.store import RunStore


def _parity_badge(page: str, run: Run, run_dir: Path, script: str) -> Parity | None:
    """The kept verdict, or a button that checks now; a failed check is shown with its reasons."""
    parity = recorded_parity(run_dir, script)
    if parity is None and st.button("Check the script", key=state.key(page, "export", "check"),
                                    icon=":material/fact_check:",
                                    help="Build the model the script builds and compare it with the app's: layer "
                                         "settings, parameter count, optimizer and loss"):
        try:
            with st.spinner("Building both models..."):
                parity = parity_for(run, run_dir, script)
        except (LayerlabError, OSError, ImportError, ValueError) as exc:
            st.error(plain(f"The check could not run: {exc}", keep_code=True))
            return None
    if parity is not None and parity.ok:
        st.badge(parity.text, icon=":material/check_circle:", color="green")
    elif parity is not None:
        st.error(plain(parity.text))
    return parity


def export_panel(store: RunStore, run: Run, page: str, *, run_files: bool = True) -> None:
    """Download buttons for the run's script, spec, zip (and, with `run_files`, its model.keras and
    history.csv), the parity badge, and the command that opens its TensorBoard logs."""
    run_dir = store.run_dir(run.id)
    try:
        script = run_script(run)
    except LayerlabError as exc:
        st.caption(plain(f"No script for this run: {exc}", keep_code=True))
        return
    st.caption("Take this run out: a standalone Keras script that trains it again (no Layerlab needed), "
               "its files, or all of them in one zip.")
    parity = _parity_badge(page, run, run_dir, script)
    files = [("script", "Download script (.py)", script_file_name(run), "text/x-python", lambda: script)]
    for name, label, file_name, mime in (("model", "Download model (.keras)", artifacts.MODEL_FILE,
                                          "application/octet-stream"),
                                         ("spec", "Download spec (.json)", artifacts.SPEC_FILE, "application/json"),
                                         ("history", "Download history (.csv)", artifacts.HISTORY_FILE, "text/csv")):
        path = run_dir / file_name
        if path.is_file() and (run_files or name == "spec"):
            files.append((name, label, run_list.download_name(run, file_name), mime, path.read_bytes))
    files.append(("zip", "Download all (.zip)", run_list.download_name(run, ".zip"), "application/zip",
                  lambda: bundle(run, run_dir, script, parity)))
    row = st.container(horizontal=True)
    for name, label, file_name, mime, data in files:
        row.download_button(label, data=data, file_name=file_name, mime=mime, key=state.key(page, "export", name),
                            on_click="ignore", icon=":material/download:")
    logs = tensorboard_dir(run_dir)
    if logs.is_dir():
        st.caption("TensorBoard logs of this run (epoch scalars and the model graph); open them with:")
        st.code(f"tensorboard --logdir {logs}", language="bash")


def compare_exports(store: RunStore, run_ids: list[str]) -> None:
    """An expander on the Compare page: pick one of the selected runs and take it out."""
    runs = {}
    for run_id in run_ids:
        try:
            runs[run_id] = store.get_run(run_id)
        except LayerlabError:
            continue
    if not runs:
        return
    with st.expander("Export a run: Python script, model, spec, history, zip"):
        chosen = st.selectbox("Run", list(runs), key=state.key("compare", "export", "run"),
                              format_func=lambda run_id: f"{runs[run_id].name} ({run_id})")
        if chosen is not None:
            export_panel(store, runs[chosen], "compare")
