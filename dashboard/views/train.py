"""Train: every run in a table, and the selected run live: progress, curves with the training
doctor's findings, stop or resume, edit or train again, results.

The page never trains: runs are worker processes, and everything here is read back from the run
store, so closing the browser leaves a run going and reopening `?run=ID` finds it.

The page is built so that Streamlit's front end is never handed two overlapping redraws it cannot
place (its "Bad delta path index" crash, a blank page): the table and the selected run are two
fragments that refresh on fixed timers, whatever the runs do, and neither ever reruns the app.
Buttons act in callbacks; "Edit in Build" and the doctor's fixes are links to Build.
"""
from __future__ import annotations

import time

import streamlit as st

from components import export_view, live_chart, model_cache, resources, run_list, state
from components.guard import guard
from components.live_chart import Curves
from components.text import plain
from pipelines.errors import LayerlabError, SpecError
from pipelines.io.keras_import import imported_training
from pipelines.runs import artifacts
from pipelines.runs.entities import Run, RunStatus
from pipelines.runs.store import RunStore

LIVE_SECONDS = 0.5
SELECTED_FRAGMENT = "train_selected"
BUILD_PAGE = "views/build.py"
FINDING_ICONS = {"error": ":material/error:", "warning": ":material/warning:"}


def heading(run: Run) -> None:
    """The run's name, then its status as a badge beside what it is: a badge in a column of its
    own was cut short ("INTERRUP…") in a narrow window."""
    st.subheader(plain(run.name), anchor=False)
    batch_size = run.spec.get("fit", {}).get("batch_size", "?")
    created = time.strftime("%b %d %H:%M:%S", time.localtime(run.created_at))
    about = " · ".join(part for part in (run_list.dataset_title(run.dataset), run_list.settings(run).text()) if part)
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.badge(run.status.value, color=run_list.STATUS_COLORS[run.status])
        st.caption(f"Run `{run.id}` · {plain(about)} of batch {batch_size} · created {created}")


def where_it_is(store: RunStore, run: Run, curves: Curves) -> None:
    """The progress bar while queued or training; otherwise how the run ended, in words. A run that
    completed with a diagnosis says so here, not in green."""
    if run.status is RunStatus.QUEUED:
        st.progress(0.0, text=f"Queued · position {store.queue_position(run.id)} in the queue")
    elif run.status is RunStatus.RUNNING:
        eta = curves.feed.eta_seconds(run, time.time())
        st.progress(run.progress.fraction, text=run_list.progress_text(run, eta))
        if run.stop_requested:
            st.caption("Stop requested: the run ends after its current batch.")
    elif run.status is RunStatus.COMPLETED and (imported := imported_training(run)):
        st.info(plain(f"{imported[:1].upper()}{imported[1:]}, so there are no epochs or curves to show."))
    elif run.status is RunStatus.COMPLETED and curves.findings:
        worst, more = curves.findings[0], len(curves.findings) - 1
        st.warning(plain(f"Completed {run.epochs_done} epoch(s), but {worst.verdict}: {worst.detail}"
                         + (f" ({more} more finding(s) under the chart.)" if more else "")),
                   icon=FINDING_ICONS.get(worst.severity))
    elif run.status is RunStatus.COMPLETED:
        st.success(f"Completed {run.epochs_done} epoch(s).")
    elif run.status is RunStatus.STOPPED:
        st.info(f"Stopped after {run.epochs_done} finished epoch(s). Resume continues from there.")
    elif run.status is RunStatus.INTERRUPTED:
        st.warning(plain(run.error or "The run was interrupted. Resume continues from its last finished epoch.",
                         keep_code=True))
    else:
        st.error(plain(run.error or "The run failed.", keep_code=True))


def request_stop(run_id: str) -> None:
    try:
        resources.scheduler().stop(run_id)
    except LayerlabError as exc:  # it ended meanwhile, say: the next redraw shows how
        state.push_notice(str(exc))


def request_resume(run_id: str) -> None:
    try:
        resources.scheduler().resume(run_id, spare=1)
    except LayerlabError as exc:
        state.push_notice(str(exc))


def request_again(run_id: str) -> None:
    store = resources.store()
    try:
        state.set_current_run(train_again(store, store.get_run(run_id)).id)
    except LayerlabError as exc:
        state.push_notice(str(exc))


def actions(store: RunStore, run: Run) -> None:
    """Stop while queued or training, Resume once stopped or interrupted; Edit in Build and Train
    again for every run; Test for a run with a model. Buttons act in callbacks, before the fragment
    redraws, so the redraw shows their outcome; pages open through links (see the docstring)."""
    row = st.container(horizontal=True, vertical_alignment="center")
    if run.status.is_active:
        row.button("Stop", key=state.key("train", "stop"), icon=":material/stop:", disabled=run.stop_requested,
                   help="End the run after its current batch; Resume continues it", on_click=request_stop,
                   args=(run.id,))
    if run.status.can_resume:
        row.button("Resume", key=state.key("train", "resume"), icon=":material/play_arrow:", type="primary",
                   help="Queue the run again; it continues from its last finished epoch", on_click=request_resume,
                   args=(run.id,))
    readable = _spec_reads(run)
    row.page_link(BUILD_PAGE, label="Edit in Build", icon=":material/stacks:", disabled=not readable,
                  query_params=state.build_handoff_query(run.id),
                  help="Open this run's model and settings on the Build page, to change them and train anew")
    if run.status.is_terminal:
        row.button("Train again", key=state.key("train", "again"), icon=":material/replay:", disabled=not readable,
                   help="Queue a new run of exactly this model, dataset and settings (the same seed, so the same "
                        "curves); to change something first, use Edit in Build", on_click=request_again,
                   args=(run.id,))
    if run.status in model_cache.USABLE_STATUSES and model_cache.model_path(store, run).is_file():
        row.page_link("views/test.py", label="Test this model", icon=":material/search:",
                      query_params=state.run_query(run.id))


def _spec_reads(run: Run) -> bool:
    try:
        return run.model_spec is not None
    except SpecError:
        return False


def train_again(store: RunStore, run: Run) -> Run:
    """Queue a copy of the run: the same spec, dataset and settings, named "<name> (2)" (or the next
    free number), so the two are told apart in the list."""
    scheduler = resources.scheduler()
    taken = {other.name for other in store.list_runs()}
    again = scheduler.submit(run.model_spec, run.dataset, name=run_list.again_name(run.name, taken))
    scheduler.ensure_workers(spare=1)
    return again


def findings(run: Run, curves: Curves) -> None:
    """The doctor's findings under the chart: what happened over which epochs, what to try, and a
    one-click fix, a link that opens Build with the change made."""
    for index, finding in enumerate(curves.findings):
        with st.container(border=True, key=state.key("train", "finding", index)):
            st.markdown(f"{FINDING_ICONS.get(finding.severity, '')} **Epochs {finding.start:.1f}–{finding.end:.1f}** "
                        f"(shaded on the chart): {plain(finding.message)}")
            if finding.remedy is not None:
                with st.container(key=state.key("train", "fix", index)):
                    st.page_link(BUILD_PAGE, label=plain(finding.remedy.label), icon=":material/build:",
                                 query_params=state.build_handoff_query(run.id, index),
                                 help="Opens Build with this change made to the run's model; train it from there")


def results(store: RunStore, run: Run) -> None:
    """Final train / validation / test figures, speed, and the model and history to download."""
    groups = run_list.result_groups(run)
    if groups:
        for column, group in zip(st.columns(len(groups)), groups):
            for field in group:
                column.metric(field.title, run_list.metric_text(run.metrics[field.key], field.kind))
    run_dir = store.run_dir(run.id)
    downloads = [(artifacts.MODEL_FILE, "Download model (.keras)", "application/octet-stream", "model"),
                 (artifacts.HISTORY_FILE, "Download history (.csv)", "text/csv", "history")]
    columns = st.columns(len(downloads))
    for column, (file_name, label, mime, name) in zip(columns, downloads):
        path = run_dir / file_name
        if path.exists():
            column.download_button(label, data=path.read_bytes, file_name=run_list.download_name(run, file_name),
                                   mime=mime, key=state.key("train", "download", name), on_click="ignore",
                                   icon=":material/download:", width="stretch")


@st.fragment(run_every=LIVE_SECONDS, key=SELECTED_FRAGMENT)
@guard("the selected run")
def selected_run(store: RunStore) -> None:
    """The run the URL names (else the newest), redrawn every LIVE_SECONDS whatever its state, so
    no start or end of a run changes the page's structure or asks for an app rerun."""
    if notice := state.pop_notice():  # what a button's callback had to say
        st.info(plain(notice, keep_code=True))
    run, _problem = run_list.run_to_show(store)
    if run is None:
        return
    curves = live_chart.curves(store, run)
    heading(run)
    where_it_is(store, run, curves)
    actions(store, run)
    if run.status.is_terminal:
        results(store, run)
        export_view.export_panel(store, run, "train", run_files=False)
    st.plotly_chart(curves.figure, key=state.key("train", "chart"), config={"displaylogo": False})
    if not curves.point_count and run.status.is_active:
        st.caption("The curves appear with the first batch.")
    findings(run, curves)


st.title("Train")
if notice := state.pop_notice():
    st.info(plain(notice, keep_code=True))
store = resources.store()
run, problem = run_list.run_to_show(store)
if problem:
    st.warning(problem)
elif run is not None:
    state.set_current_run(run.id)  # the newest run stays the one shown, however many start after it
run_list.show(store, SELECTED_FRAGMENT)
st.divider()
selected_run(store)
