"""Train: every run in a table, and the selected run live: progress, curves, stop or resume, results.

The page never trains: runs are worker processes, and everything here is read back from the run
store, so closing the browser leaves a run going and reopening `?run=ID` finds it. Only the two
fragments (the table, and the selected run) rerun while a run trains; the selected run refreshes
every half second while it is queued or training, and stops refreshing once it has ended.
"""
from __future__ import annotations

import time

import streamlit as st

from components import live_chart, resources, run_list, state
from components.guard import guard
from components.text import plain
from pipelines.runs import artifacts
from pipelines.errors import LayerlabError
from pipelines.runs.entities import Run, RunStatus
from pipelines.runs.feed import MetricFeed
from pipelines.runs.store import RunStore

LIVE_SECONDS = 0.5


def heading(run: Run) -> None:
    title, badge = st.columns([5, 1], vertical_alignment="center")
    title.subheader(plain(run.name), anchor=False)
    badge.badge(run.status.value, color=run_list.STATUS_COLORS[run.status])
    batch_size = run.model_spec.fit.batch_size
    created = time.strftime("%b %d %H:%M:%S", time.localtime(run.created_at))
    st.caption(f"Run `{run.id}` · {plain(run.dataset)} · {run.progress.total_epochs} epoch(s) of batch "
               f"{batch_size} · created {created}")


def where_it_is(store: RunStore, run: Run, feed: MetricFeed) -> None:
    """The progress bar while queued or training; otherwise how the run ended, in words."""
    if run.status is RunStatus.QUEUED:
        st.progress(0.0, text=f"Queued · position {store.queue_position(run.id)} in the queue")
    elif run.status is RunStatus.RUNNING:
        st.progress(run.progress.fraction, text=run_list.progress_text(run, feed.attempt_start, time.time()))
        if run.stop_requested:
            st.caption("Stop requested: the run ends after its current batch.")
    elif run.status is RunStatus.COMPLETED:
        st.success(f"Completed {run.epochs_done} epoch(s).")
    elif run.status is RunStatus.STOPPED:
        st.info(f"Stopped after {run.epochs_done} finished epoch(s). Resume continues from there.")
    elif run.status is RunStatus.INTERRUPTED:
        st.warning(plain(run.error or "The run was interrupted. Resume continues from its last finished epoch.",
                         keep_code=True))
    else:
        st.error(plain(run.error or "The run failed.", keep_code=True))


def actions(store: RunStore, run: Run) -> None:
    """Stop while queued or training, Resume once stopped or interrupted; then redraw the page."""
    stop = run.status.is_active and st.button(
        "Stop", key=state.key("train", "stop"), icon=":material/stop:", disabled=run.stop_requested,
        help="End the run after its current batch; Resume continues it")
    resume = run.status.can_resume and st.button(
        "Resume", key=state.key("train", "resume"), icon=":material/play_arrow:", type="primary",
        help="Queue the run again; it continues from its last finished epoch")
    if not (stop or resume):
        return
    try:
        if stop:
            resources.scheduler().stop(run.id)
        else:
            resources.scheduler().resume(run.id, spare=1)
    except LayerlabError as exc:
        st.error(plain(exc, keep_code=True))
        return
    st.rerun()


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


def selected_run(store: RunStore, run_id: str, live: bool) -> None:
    """The run, refreshed every LIVE_SECONDS while `live`; a change of liveness redraws the page."""

    @st.fragment(run_every=LIVE_SECONDS if live else None)
    @guard("the selected run")
    def run_view() -> None:
        try:
            run = store.get_run(run_id)
        except LayerlabError as exc:
            st.error(plain(exc, keep_code=True))
            return
        if run.status.is_active != live:
            st.rerun()  # started or ended: redraw, so the refresh starts or stops with it
        figure, feed, point_count = live_chart.curves(store, run)
        heading(run)
        where_it_is(store, run, feed)
        actions(store, run)
        if run.status.is_terminal:
            results(store, run)
        st.plotly_chart(figure, key=state.key("train", "chart"), config={"displaylogo": False})
        if not point_count and run.status.is_active:
            st.caption("The curves appear with the first batch.")

    run_view()


st.title("Train")
if notice := state.pop_notice():
    st.info(plain(notice, keep_code=True))
store = resources.store()
run, problem = run_list.run_to_show(store)
if problem:
    st.warning(problem)
run_list.show(store, run.id if run else None)
if run is not None:
    st.divider()
    selected_run(store, run.id, live=run.status.is_active)
