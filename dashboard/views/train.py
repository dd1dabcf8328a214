"""Train: every run in a table, and the selected run live: progress, curves with the training
doctor's findings, stop or resume, edit or train again, results.

The page never trains: runs are worker processes, and everything here is read back from the run
store, so closing the browser leaves a run going and reopening `?run=ID` finds it. Only the two
fragments (the table, and the selected run) rerun while a run trains; the selected run refreshes
every half second while it is queued or training, and stops refreshing once it has ended.
"""
from __future__ import annotations

import time

import streamlit as st

from components import export_view, live_chart, model_cache, resources, run_list, state
from components.guard import guard
from components.live_chart import Curves
from components.text import plain
from pipelines.errors import LayerlabError, SpecError
from pipelines.runs import artifacts
from pipelines.runs.doctor import Finding, Remedy, apply_remedy
from pipelines.runs.entities import Run, RunStatus
from pipelines.runs.store import RunStore

LIVE_SECONDS = 0.5
BUILD_PAGE = "views/build.py"
FINDING_ICONS = {"error": ":material/error:", "warning": ":material/warning:"}


def heading(run: Run) -> None:
    title, badge = st.columns([5, 1], vertical_alignment="center")
    title.subheader(plain(run.name), anchor=False)
    badge.badge(run.status.value, color=run_list.STATUS_COLORS[run.status])
    batch_size = run.spec.get("fit", {}).get("batch_size", "?")
    created = time.strftime("%b %d %H:%M:%S", time.localtime(run.created_at))
    about = " · ".join(part for part in (run_list.dataset_title(run.dataset), run_list.settings(run).text()) if part)
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


def actions(store: RunStore, run: Run) -> None:
    """Stop while queued or training, Resume once stopped or interrupted; Edit in Build and Train
    again for every run; Test for a run with a model. Each redraws the page or opens another."""
    row = st.container(horizontal=True, vertical_alignment="center")
    if run.status.is_active:
        # A callback, so the stop is requested before this fragment redraws (it then says "Stop
        # requested"), and no app rerun is asked from the live fragment: two app reruns from
        # fragments at once can leave the browser with a stale element tree and a blank page.
        row.button("Stop", key=state.key("train", "stop"), icon=":material/stop:", disabled=run.stop_requested,
                   help="End the run after its current batch; Resume continues it", on_click=request_stop,
                   args=(run.id,))
    resume = run.status.can_resume and row.button(
        "Resume", key=state.key("train", "resume"), icon=":material/play_arrow:", type="primary",
        help="Queue the run again; it continues from its last finished epoch")
    readable = _spec_reads(run)
    edit = row.button("Edit in Build", key=state.key("train", "edit"), icon=":material/stacks:", disabled=not readable,
                      help="Open this run's model and settings on the Build page, to change them and train anew")
    again = run.status.is_terminal and row.button(
        "Train again", key=state.key("train", "again"), icon=":material/replay:", disabled=not readable,
        help="Queue a new run of exactly this model, dataset and settings (the same seed, so the same curves); "
             "to change something first, use Edit in Build")
    if run.status in model_cache.USABLE_STATUSES and model_cache.model_path(store, run).is_file():
        row.page_link("views/test.py", label="Test this model", icon=":material/search:",
                      query_params=state.run_query(run.id))
    if edit:
        state.open_in_build(run.model_spec, run.dataset, f"Run {run.name} ({run.id}) is open in Build with its exact "
                                                         "settings: change what you like and train it as a new run.")
        st.switch_page(BUILD_PAGE)
    try:
        if resume:
            resources.scheduler().resume(run.id, spare=1)
        elif again:
            state.set_current_run(train_again(store, run).id)
        else:
            return
    except LayerlabError as exc:
        st.error(plain(exc, keep_code=True))
        return
    st.rerun()


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
    one-click fix that opens Build with the change made."""
    for index, finding in enumerate(curves.findings):
        with st.container(border=True, key=state.key("train", "finding", index)):
            st.markdown(f"{FINDING_ICONS.get(finding.severity, '')} **Epochs {finding.start:.1f}–{finding.end:.1f}** "
                        f"(shaded on the chart): {plain(finding.message)}")
            if finding.remedy is not None and st.button(
                    finding.remedy.label, key=state.key("train", "fix", index), icon=":material/build:",
                    help="Opens Build with this change made to the run's model; train it from there"):
                open_fix(run, finding, finding.remedy)


def open_fix(run: Run, finding: Finding, remedy: Remedy) -> None:
    try:
        fixed = apply_remedy(run.model_spec, remedy)
    except SpecError as exc:
        st.error(plain(exc, keep_code=True))
        return
    state.open_in_build(fixed, run.dataset, f"{remedy.label}: run {run.name} ({run.id}) {finding.verdict}, and "
                                            "this is its model with that change. Train it as a new run to compare.")
    st.switch_page(BUILD_PAGE)


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
