"""Sweeps from the Build page, and their progress on Compare.

On Build: vary one to three settings of the current model over lists of values (or take one of the
tutorials' sweeps in one click), see how many runs that makes and how long they should take, and
start it. On Compare: "k of n done" with an ETA while it trains, Cancel, and once it has ended the
best run marked, with one click to train that setting again for longer.
"""
from __future__ import annotations

import dataclasses

import streamlit as st

from components import resources, run_list, state
from components.guard import guard
from components.text import plain
from components.user_words import user_words
from pipelines.errors import LayerlabError
from pipelines.modelspec.spec import EPOCHS_MAX, ModelSpec
from pipelines.modelspec.sweep import (LAYER_PARAMS, MAX_AXES, MAX_VALUES_CHARS, TUTORIAL_SWEEPS, Axis,
                                      default_position, parse_axis, sweepable_settings)
from pipelines.runs.entities import Run
from pipelines.runs.sweeps import best_run, default_sweep_name, ranking_metric, settings_text

LIVE_SECONDS = 2.0
REPEAT_SEEDS = 3


def _tutorial(name: str, spec: ModelSpec) -> None:
    """Fill the first row with one of the tutorials' sweeps (a callback, before the widgets draw)."""
    setting, values = TUTORIAL_SWEEPS[name]
    if setting in LAYER_PARAMS:
        position = default_position(spec, setting)
        if position is None:
            state.push_notice(f"This model has no {LAYER_PARAMS[setting]} layer to sweep the {name} of.")
            return
        setting = f"{setting}@{position}"
    st.session_state[state.key("build", "sweep", "setting", 0)] = setting
    st.session_state[state.key("build", "sweep", "values", 0)] = ", ".join(f"{v:g}" for v in values)
    for row in range(1, MAX_AXES):
        st.session_state[state.key("build", "sweep", "setting", row)] = None


def _axes() -> list[Axis]:
    axes = []
    for row in range(MAX_AXES):
        setting = st.session_state.get(state.key("build", "sweep", "setting", row))
        values = st.session_state.get(state.key("build", "sweep", "values", row)) or ""
        if setting and values.strip():
            axes.append(parse_axis(f"{setting}={values}"))
    return axes


def build_panel(spec: ModelSpec, dataset: str, blocked: str | None, name: str) -> None:
    """The sweep controls under Train; `blocked` says why the model cannot train (as for Train).
    The sweep and its runs are named after `name`, the run name the user typed on Build ("" when
    they typed none: then after the model's description, as Build names a run)."""
    # Keyed, with its state on the server: the page redraws every second (reaping workers), and a
    # redraw that remounts an unkeyed expander would close it under the user's pointer.
    with st.expander("Sweep: train several versions of this model and compare them",
                     key=state.key("build", "sweep", "open"), on_change="rerun"):
        st.caption("The tutorials' own sweeps:")
        buttons = st.columns(len(TUTORIAL_SWEEPS))
        for column, tutorial in zip(buttons, TUTORIAL_SWEEPS):
            column.button(tutorial.capitalize(),
                          key=state.key("build", "sweep", "tutorial", TUTORIAL_SWEEPS[tutorial][0]),
                          on_click=_tutorial, args=(tutorial, spec), width="stretch")
        options = sweepable_settings(spec)
        for row in range(MAX_AXES):
            left, right = st.columns([1, 2])
            left.selectbox(f"Setting {row + 1}", options, index=None, placeholder="vary nothing",
                           key=state.key("build", "sweep", "setting", row))
            right.text_input(f"Values {row + 1}", placeholder="e.g. 1e-4, 1e-3, 1e-2", max_chars=MAX_VALUES_CHARS,
                             key=state.key("build", "sweep", "values", row))
        repeats = st.number_input("Repeats (seeds per setting)", 1, 5, 1, key=state.key("build", "sweep", "repeats"),
                                  help="Train each setting with several seeds to see the run-to-run noise.")
        try:
            axes = _axes()
            estimate = resources.scheduler().estimate_sweep(spec, dataset, axes, repeats=int(repeats)) if axes else None
        except LayerlabError as exc:
            st.warning(plain(user_words(exc), keep_code=True))
            return
        if estimate is None:
            st.caption("Pick a setting and its values, or one of the tutorials' sweeps.")
            return
        st.write(plain(estimate.text()))
        base = name or default_sweep_name(spec, axes)
        first = settings_text({axis.setting: axis.values[0] for axis in axes})
        st.caption(plain(f"Its runs are named “{base} · {first}” and so on"
                         + ("." if name else ": type a run name above to name them yourself.")))
        if blocked:
            st.caption(plain(f"Sweeping is off: {blocked}"))
        if st.button(f"Start the sweep ({estimate.runs} runs)", key=state.key("build", "sweep", "start"),
                     type="primary", disabled=bool(blocked)):
            _start(spec, dataset, axes, int(repeats), base)


def _start(spec: ModelSpec, dataset: str, axes: list[Axis], repeats: int, name: str) -> None:
    """Queue the sweep and follow it on Compare. The scheduler names a sweep and its runs after the
    spec's name, and a draft's spec keeps the name of the tutorial model it started from however
    much the user has changed it ("mlp-128x2" on a CNN of their own): so the spec sent carries the
    user's name instead."""
    scheduler = resources.scheduler()
    try:
        sweep = scheduler.submit_sweep(dataclasses.replace(spec, name=name), dataset, axes, repeats=repeats)
        scheduler.ensure_workers()
    except LayerlabError as exc:
        st.error(plain(user_words(exc), keep_code=True))
        return
    runs = [run.id for run in scheduler.sweep_runs(sweep.id)]
    st.switch_page("views/compare.py", query_params={**state.compare_query(runs), **state.sweep_query(sweep.id)})


def compare_status(sweep_id: str) -> None:
    """A sweep's progress on Compare, live while it trains; Cancel; then its best run."""
    scheduler = resources.scheduler()
    try:
        sweep = scheduler.store.get_sweep(sweep_id)
    except LayerlabError:
        st.warning("The sweep in the link is not in this store.")
        return
    live = not scheduler.sweep_progress(sweep_id).finished

    # The refresh is set once per page run and the fragment never reruns the app: an app rerun
    # from a fragment racing its own redraw can leave the browser with a blank page (see
    # dashboard/views/train.py). When the sweep ends, a link redraws the page with its results.
    @st.fragment(run_every=LIVE_SECONDS if live else None)
    @guard("the sweep's progress")
    def status() -> None:
        if live:
            # As Build and Train do: start workers for the queued runs and reap dead ones (a stop past
            # its grace period, a killed worker), or "k of n done" would stall on this page.
            run_list.keep_workers()
        progress = scheduler.sweep_progress(sweep_id)
        st.progress(progress.fraction, text=plain(f"Sweep {sweep.name}: {progress.text()}"))
        if not progress.finished:
            cancelled = scheduler.store.get_sweep(sweep_id).cancelled
            st.button("Cancel the sweep", key=state.key("compare", "cancel", sweep_id), disabled=cancelled,
                      on_click=scheduler.cancel_sweep, args=(sweep_id,))
            return
        if live:
            st.page_link("views/compare.py", label="The sweep has ended: show its results", icon=":material/refresh:",
                         query_params={**state.compare_query([run.id for run in scheduler.sweep_runs(sweep_id)]),
                                       **state.sweep_query(sweep_id)})
            return
        runs = scheduler.sweep_runs(sweep_id)
        points = {run.id: scheduler.store.get_metrics(run.id, kind="epoch") for run in runs}
        best = best_run(runs, points)
        if best is None:
            return
        by = "validation accuracy" if ranking_metric(runs, points) == "val_accuracy" else \
            "training accuracy (these runs keep no validation split)"
        st.success(plain(f"Best run: {best.name}, by its best epoch's {by}"), icon=":material/star:")
        longer = best.model_spec.with_fit(epochs=min(EPOCHS_MAX, best.model_spec.fit.epochs * 2))
        if longer.fit.epochs > best.model_spec.fit.epochs and st.button(
                f"Train the best setting again for {longer.fit.epochs} epochs",
                key=state.key("compare", "again", sweep_id)):
            run = scheduler.submit(longer, best.dataset, name=f"{best.name} · {longer.fit.epochs} epochs")
            scheduler.ensure_workers()
            st.switch_page("views/train.py", query_params=state.run_query(run.id))
        if st.button(f"Repeat the best run with {REPEAT_SEEDS} more seeds (does its lead hold?)",
                     key=state.key("compare", "repeat_best", sweep_id)):
            repeat(best, REPEAT_SEEDS, [run.id for run in runs])

    status()


def repeat(run: Run, count: int, selection: list[str]) -> None:
    """Queue `count` more seeds of `run` and add them to the comparison, so that their spread
    shows whether the run's result was the setting or luck."""
    scheduler = resources.scheduler()
    try:
        repeats = scheduler.repeat_run(run.id, count)
    except LayerlabError as exc:
        st.error(plain(user_words(exc), keep_code=True))
        return
    scheduler.ensure_workers()
    state.set_compare_selection(list(dict.fromkeys([*selection, run.id, *(r.id for r in repeats)])))
    state.push_notice(f"Queued {count} more seeds of {run.name}. They join the table as they train; "
                      "on Curves, turn on 'Draw repeats as mean and band' to see the spread.")
    st.rerun(scope="app")
