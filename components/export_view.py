"""Taking a run out: the standalone script, model, spec, history and a zip, with the parity badge.

The parity check builds the script's model and the app's (about 0.1 s, plus TensorFlow's import),
so the training worker runs it when a run completes, while TensorFlow is loaded, and keeps the
verdict in the run's folder. A run without one (imported, trained before, or a check that could
not run) is checked once the user opens Compare's export expander, or by a "Check" button on Train,
so that the page never loads TensorFlow just to draw. A passed check is kept in the run's folder and
any verdict is cached here per run and script, so a rerun never checks again.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from components import run_list, state
from components.text import plain
from pipelines.errors import LayerlabError
from pipelines.execution.tensorboard_logs import tensorboard_dir
from pipelines.io.export import (Parity, bundle, parity_for, recorded_parity, run_script, script_file_name,
                                 sha256)
from pipelines.runs import artifacts
from pipelines.runs.entities import Run
from pipelines.runs.store import RunStore


@st.cache_data(max_entries=256, show_spinner=False)
def _checked(run_dir: str, script_sha256: str, _run: Run, _script: str) -> tuple[Parity | None, str | None]:
    """The check of one run's script, once per server (a failed one too: it would fail again)."""
    try:
        return parity_for(_run, Path(run_dir), _script), None
    except (LayerlabError, OSError, ImportError, ValueError) as exc:
        return None, f"The check could not run: {exc}"


def _parity_badge(page: str, run: Run, run_dir: Path, script: str, check_now: bool) -> Parity | None:
    """The kept verdict, else checked now (`check_now`: the user opened the panel), else a button
    that checks; a failed check is shown with its reasons."""
    parity = recorded_parity(run_dir, script)
    error = None
    if parity is None and (check_now or st.button(
            "Check the script", key=state.key(page, "export", "check"), icon=":material/fact_check:",
            help="Build the model the script builds and compare it with the app's: layer settings, parameter "
                 "count, optimizer and loss")):
        with st.spinner("Checking the script: building both models..."):
            parity, error = _checked(str(run_dir), sha256(script), run, script)
    if error:
        st.error(plain(error, keep_code=True))
    elif parity is not None and parity.ok:
        st.badge(parity.text, icon=":material/check_circle:", color="green")
    elif parity is not None:
        st.error(plain(parity.text))
    return parity


def export_panel(store: RunStore, run: Run, page: str, *, run_files: bool = True, check_now: bool = False) -> None:
    """Download buttons for the run's script, spec, zip (and, with `run_files`, its model.keras and
    history.csv), the parity badge (checked at once with `check_now`), and the command that opens
    its TensorBoard logs. The zip always holds parity.json: without a verdict yet, it is checked
    when the zip is downloaded."""
    run_dir = store.run_dir(run.id)
    try:
        script = run_script(run)
    except LayerlabError as exc:
        st.caption(plain(f"No script for this run: {exc}", keep_code=True))
        return
    st.caption("Take this run out: a standalone Keras script that trains it again (no Layerlab needed), "
               "its files, or all of them in one zip.")
    parity = _parity_badge(page, run, run_dir, script, check_now)
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
    # Tracked, so the check runs once the user opens it, never for a closed expander on page load.
    expander = st.expander("Export a run: Python script, model, spec, history, zip",
                           key=state.key("compare", "export", "open"), on_change="rerun")
    with expander:
        chosen = st.selectbox("Run", list(runs), key=state.key("compare", "export", "run"),
                              format_func=lambda run_id: f"{runs[run_id].name} ({run_id})")
        if chosen is not None:
            export_panel(store, runs[chosen], "compare", check_now=bool(expander.open))
