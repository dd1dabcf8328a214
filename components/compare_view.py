"""The Compare page's parts: the runs table with filters and a multi-row selection kept in the URL,
and, for the selected runs, overlaid curves, a baseline, what differs, parallel coordinates, which
setting mattered, repeats, and two runs compared prediction by prediction.
"""
from __future__ import annotations

import json
import zlib

import pandas as pd
import streamlit as st

from components import evaluation_view, model_cache, state, sweep_panel
from components.figures import compare as figures
from components.text import plain
from pipelines.data.catalog import get_info
from pipelines.errors import LayerlabError
from pipelines.modelspec.diff import differing_settings, layer_changes
from pipelines.runs import compare
from pipelines.runs.compare import CURVE_PREFERENCE
from pipelines.runs.entities import Run, RunStatus
from pipelines.runs.sweeps import best_of
from pipelines.runs.store import RunStore

METRICS = {"validation accuracy": "val_accuracy", "validation loss": "val_loss",
           "training accuracy": "accuracy", "training loss": "loss"}
FILTER_WIDTH = 125  # pixels: four filters in a row at 1024 px, the search beside them from about 1200
SEARCH_WIDTH = 300
NAME_WIDTH = 240  # pixels: a name's leading part (the one that differs, see shown_names) and more
NAME_FITS = 30  # characters a NAME_WIDTH cell shows whole: a name as short stays as written
# Name, Status and the accuracies first: at 1024 px they are what shows without scrolling sideways.
TABLE_COLUMNS = {
    "name": st.column_config.TextColumn("Name", width=NAME_WIDTH),
    "status": st.column_config.TextColumn("Status"),
    **{column.key: st.column_config.NumberColumn(column.short, format="percent", help=column.title)
       for column in compare.RESULTS if column.kind == "accuracy"},
    "best_epoch": st.column_config.NumberColumn("Best epoch"),
    "dataset": st.column_config.TextColumn("Dataset"),
    "architecture": st.column_config.TextColumn("Architecture"),
    "parameters": st.column_config.NumberColumn("Params", format="localized"),
    "optimizer": st.column_config.TextColumn("Optimizer"),
    "learning_rate": st.column_config.NumberColumn("Learning rate", format="%.0e"),
    "batch_size": st.column_config.NumberColumn("Batch"),
    "epochs": st.column_config.NumberColumn("Epochs"),
    "tags": st.column_config.TextColumn("Tags"),
    "wall_seconds": st.column_config.NumberColumn("Wall time", format="%.0f s"),
    "samples_per_second": st.column_config.NumberColumn("Samples/s", format="localized"),
    "sweep": st.column_config.TextColumn("Sweep"),
}


# A difference from the baseline, by the result's kind (printf, as st.column_config takes it).
DELTA_FORMATS = {"accuracy": "%+.1f pts", "loss": "%+.4f", "epoch": "%+d", "seconds": "%+.1f s", "rate": "%+.0f"}
FLIPPED_SHOWN = 12
ROWS_KEPT = 5_000  # rows of runs in a given state, across the homes a server has shown


@st.cache_data(show_spinner=False, max_entries=ROWS_KEPT)
def _row(home: str, signature: tuple, _run: Run) -> dict:
    """One run's row in a given state (`signature`): when one run changes, only its points are
    read again, not every run's."""
    from components import resources

    return compare.run_row(_run, resources.store().get_metrics(_run.id, kind="epoch"), compare.readable_spec(_run))


@st.cache_data(show_spinner=False, max_entries=8)
def _frame(home: str, signature: tuple, _runs: list[Run]) -> pd.DataFrame:
    """The table for a set of runs in a given state; a rerun with nothing changed builds nothing."""
    return compare.frame_of(_runs, [_row(home, row, run) for row, run in zip(signature, _runs)])


def runs_table(store: RunStore) -> pd.DataFrame:
    """Every run, as the comparison table (newest first)."""
    runs = store.list_runs()
    # Everything the table shows of a run: a tag, a note or a repeat group set on Compare must show
    # at once, though no epoch ended.
    signature = tuple((run.id, run.status.value, run.resume_count, run.epochs_done, run.name,
                       tuple(sorted(run.metrics.items())), run.tags, run.note, run.sweep_id, run.repeat_group,
                       json.dumps(run.sweep_settings, sort_keys=True, default=str)) for run in runs)
    return _frame(str(store.home), signature, runs)


def filtered(frame: pd.DataFrame) -> pd.DataFrame:
    """The table narrowed by the filters above it."""
    if frame.empty:
        return frame
    # A row that wraps rather than columns that shrink: at 1024 px five columns cut every placeholder.
    def pick(label: str, options: list, part: str) -> list:
        return st.multiselect(label, options, key=state.key("compare", part), width=FILTER_WIDTH,
                              placeholder="Any" if options else "None yet")

    with st.container(horizontal=True, key=state.key("compare", "filters")):
        datasets = pick("Dataset", sorted(frame["dataset"].unique()), "ds")
        statuses = pick("Status", sorted(frame["status"].unique()), "st")
        tags = pick("Tag", sorted({tag.strip() for tags in frame["tags"] for tag in tags.split(",") if tag.strip()}),
                    "tag")
        chosen_sweeps = pick("Sweep", sorted(s for s in frame["sweep"].dropna().unique() if s), "sw")
        text = st.text_input("Search names, tags and architectures", key=state.key("compare", "q"),
                             width=SEARCH_WIDTH)
    keep = pd.Series(True, index=frame.index)
    if datasets:
        keep &= frame["dataset"].isin(datasets)
    if statuses:
        keep &= frame["status"].isin(statuses)
    if chosen_sweeps:
        keep &= frame["sweep"].isin(chosen_sweeps)
    if tags:
        keep &= frame["tags"].apply(lambda text: bool(set(tags) & {t.strip() for t in text.split(",")}))
    if text:
        haystack = frame["name"].str.cat([frame["tags"], frame["architecture"]], sep=" ").str.lower()
        keep &= haystack.str.contains(text.lower(), regex=False)
    return frame[keep]


def merged_selection(previous: list[str], picked: list[str], hidden: list[str]) -> tuple[list[str], int]:
    """The selection after a click in the table: the runs picked in the visible rows plus the
    selected runs the filters hide (a filter narrows the view, not the comparison), earlier picks
    first; at most COMPARE_MAX_RUNS, with how many were left out beyond that."""
    kept = [run_id for run_id in previous if run_id in picked or run_id in hidden]
    wanted = list(dict.fromkeys([*kept, *picked, *hidden]))
    return wanted[: state.COMPARE_MAX_RUNS], max(0, len(wanted) - state.COMPARE_MAX_RUNS)


def selectable_table(frame: pd.DataFrame, everything: pd.DataFrame) -> list[str]:
    """The (filtered) table `frame` with multi-row selection; the selection is kept in `?runs=` and
    returned. Selected runs of `everything` that the filters hide stay selected."""
    previous = [run_id for run_id in state.compare_selection() if run_id in everything.index]
    hidden = [run_id for run_id in previous if run_id not in frame.index]
    rows = [frame.index.get_loc(run_id) for run_id in previous if run_id in frame.index]
    shown_rows = zlib.crc32(",".join(frame.index).encode())  # new rows, new widget: no stale row numbers
    names = compare.distinct_names(list(frame["name"]), NAME_FITS)
    shown = frame[[c for c in TABLE_COLUMNS if c in frame]].assign(name=names)
    event = st.dataframe(
        shown, hide_index=True, column_config=TABLE_COLUMNS,
        on_select="rerun", selection_mode="multi-row", key=state.key("compare", "table", shown_rows),
        selection_default={"selection": {"rows": rows}} if rows else None, height=min(38 * (len(frame) + 1), 420))
    chosen, left_out = merged_selection(previous, [frame.index[i] for i in event.selection.rows], hidden)
    if hidden:
        st.caption(f"{len(hidden)} selected run(s) are hidden by the filters; they stay in the comparison.")
    if left_out:
        st.warning(f"At most {state.COMPARE_MAX_RUNS} runs are compared at once: the last {left_out} selected "
                   "were left out.")
    state.set_compare_selection(chosen)  # also drops what was not a run id from the URL
    return chosen


def _curve(run_id: str, frame: pd.DataFrame, points: dict, metric: str, by: str, smoothing: float) -> figures.Curve:
    """One run's line; its best epoch starred where that epoch sits on the line drawn (by epoch or
    by time, smoothed or not): by validation accuracy, or by training accuracy for a run without a
    validation split, as a sweep ranks them."""
    x, y = compare.curve(points[run_id], metric, by=by)
    shown = compare.ema(y, smoothing) if len(y) else y
    epochs, _ = compare.curve(points[run_id], metric, by="epoch")  # the same points, in the same order
    epoch = frame.loc[run_id, "best_epoch"]
    if pd.isna(epoch) and (by_training := best_of(points[run_id], "accuracy")):
        epoch = by_training[1]
    best = None
    if pd.notna(epoch) and int(epoch) in epochs:
        at = list(epochs).index(int(epoch))
        best = (float(x[at]), float(shown[at]))
    return figures.Curve(frame.loc[run_id, "name"], x, shown, best)


def _with_bands(items: list[figures.Curve], selected: list[str], groups: pd.DataFrame) -> list[figures.Curve]:
    """Each repeat group's curves replaced by one: their mean, with their min-max as a band."""
    by_id = dict(zip(selected, items))
    out = [item for run_id, item in by_id.items() if not any(run_id in ids for ids in groups.get("ids", []))]
    for _, group in groups.iterrows():
        members = [by_id[run_id] for run_id in group["ids"] if len(by_id[run_id].x)]
        x, mean, low, high = compare.mean_band([(item.x, item.y) for item in members])
        out.append(figures.Curve(f"{group['group']} (mean of {len(members)} seeds)", x, mean, low=low, high=high))
    return out


def shown_names(frame: pd.DataFrame, run_ids: list[str]) -> dict[str, str]:
    """The runs' names, each with the part that tells it from the others first, for the cells and
    pickers too narrow for a whole name (a sweep's runs differ only at the end of theirs)."""
    return dict(zip(run_ids, compare.distinct_names([frame.loc[run_id, "name"] for run_id in run_ids], NAME_FITS)))


def epoch_points(store: RunStore, selected: list[str]) -> dict:
    """The selected runs' epoch points, read once per page run for every tab that draws them."""
    return {run_id: store.get_metrics(run_id, kind="epoch") for run_id in selected}


def curves(points: dict, frame: pd.DataFrame, selected: list[str]) -> str:
    """The chosen metric of every selected run, on one chart; repeats optionally as mean and band.
    Returns the metric's label, which the other tabs compare by."""
    default = compare.curves_default(points)
    # Cells that wrap onto a second row rather than squeeze: at 1024 px four columns left the Metric
    # picker too narrow for "validation accuracy".
    grid = st.grid(4, min_column_width=200, gap="small")
    left, middle, right, far = (grid.cell() for _ in range(4))
    # Keyed by the default, which changes only when the first points of a metric arrive (a sweep
    # that had not ended an epoch when the page opened): the picker then moves to a curve with data.
    label = left.selectbox("Metric", list(METRICS), index=list(METRICS.values()).index(default or CURVE_PREFERENCE[0]),
                           key=state.key("compare", "metric", default or "none"))
    by = middle.radio("X axis", ["epoch", "time"], horizontal=True, key=state.key("compare", "by"))
    smoothing = right.slider("Smoothing (EMA)", 0.0, 0.95, 0.0, 0.05, key=state.key("compare", "ema"))
    log_y = far.toggle("Log scale", key=state.key("compare", "log"))
    groups = compare.repeats(frame.loc[selected])
    banded = len(groups) > 0 and st.toggle(
        "Draw repeats as mean and band", key=state.key("compare", "bands"),
        help="Runs that differ only by their seed become one line, their mean, with their min-max range "
             "shaded: if two settings' bands overlap, the difference between them may be luck.")
    lines = [_curve(run_id, frame, points, METRICS[label], by, smoothing) for run_id in selected]
    if default is None:
        st.info("None of the selected runs has finished an epoch yet, so there is no curve to draw. The "
                "curves and the table catch up when the page next redraws (refresh, or change anything here).",
                icon=":material/hourglass_top:")
        return label
    training = {RunStatus.QUEUED.value, RunStatus.RUNNING.value}
    empty = [(run_id, line.name) for run_id, line in zip(selected, lines) if not len(line.x)]
    waiting = [name for run_id, name in empty if not points[run_id] and frame.loc[run_id, "status"] in training]
    missing = [name for run_id, name in empty if points[run_id] or frame.loc[run_id, "status"] not in training]
    if waiting:
        st.caption(plain(f"No epoch ended yet: {', '.join(waiting)}."))
    if missing:
        guess = " (trained without a validation split?)" if METRICS[label].startswith("val_") else ""
        st.caption(plain(f"No {label} recorded for: {', '.join(missing)}{guess}."))
    items = _with_bands(lines, selected, groups if banded else groups.iloc[0:0])
    x_title = "epoch" if by == "epoch" else "seconds since the run's first point"
    st.plotly_chart(figures.overlaid_curves(items, y_title=label, x_title=x_title, log_y=log_y),
                    key=state.key("compare", "curves"), config={"displaylogo": False})
    return label


def baseline_and_differences(store: RunStore, frame: pd.DataFrame, selected: list[str]) -> None:
    """A baseline run, every other run's results against it, and what differs in their specs."""
    names = shown_names(frame, selected)
    baseline = st.selectbox("Baseline", selected, format_func=lambda i: f"{names[i]} ({i})",
                            key=state.key("compare", "baseline"))
    delta, shown = compare.against_baseline(frame.loc[selected], baseline)
    if shown:
        own = ", ".join(f"{column.title.lower()} {compare.result_text(column, frame.loc[baseline, column.key])}"
                        for column in shown)
        st.caption(plain(f"The baseline: {own}. Below, each run's results minus the baseline's: "
                         "accuracies in percentage points (+1.0 pts: one more image in a hundred right), "
                         "times in seconds."))
        delta.insert(0, "Name", [names[i] for i in delta.index])
        config = {"Name": st.column_config.TextColumn("Name", width=NAME_WIDTH),
                  **{column.short: st.column_config.NumberColumn(column.short, format=DELTA_FORMATS[column.kind],
                                                                 help=f"{column.title}: {column.meaning}")
                     for column in shown}}
        st.dataframe(delta, hide_index=True, column_config=config, key=state.key("compare", "delta"))
    else:
        st.caption("No result to compare yet: the baseline, or every other selected run, has not ended an epoch.")
    read = {run_id: compare.readable_spec(store.get_run(run_id)) for run_id in selected}
    specs = {run_id: spec for run_id, spec in read.items() if spec is not None}
    unreadable = [run_id for run_id in selected if run_id not in specs]  # the others still compare
    st.markdown("**What differs**")
    if unreadable:
        st.warning(plain("Left out, their model spec cannot be read: "
                         + ", ".join(f"{names[i]} ({i})" for i in unreadable)))
    readable = [i for i in selected if i in specs]
    settings = differing_settings([specs[i] for i in readable]) if readable else {}
    if settings:
        table = pd.DataFrame(settings, index=[names[i] for i in readable])
        st.dataframe(table, key=state.key("compare", "differs"))
    elif len(readable) > 1:
        st.caption("The training settings are the same in every selected run.")
    if baseline not in specs:
        return
    for run_id in readable:
        if run_id == baseline:
            continue
        changes = layer_changes(specs[baseline], specs[run_id])
        if changes:
            st.text(f"{names[run_id]} against the baseline: " + "; ".join(c.text() for c in changes))


def settings_effects(points: dict, frame: pd.DataFrame, selected: list[str], label: str) -> None:
    """Parallel coordinates of the varied settings, and each one's correlation with `label`, the
    metric chosen on Curves (its best epoch value)."""
    column = f"best {label}"
    chosen = compare.with_best(frame.loc[selected], points, METRICS[label], column)
    varied = compare.varied_settings(chosen)
    if not varied:
        st.caption("The selected runs vary no numeric setting: nothing to correlate.")
        return
    # `column` is made of this module's own metric labels, never of user text.
    st.caption(f"Against each run's {column} (the metric chosen on Curves; its "
               f"{'lowest' if label.endswith('loss') else 'highest'} epoch value).")
    st.plotly_chart(figures.parallel_coordinates(chosen, varied, column), key=state.key("compare", "parcoords"))
    _correlations(chosen, column)
    groups = compare.repeats(chosen, column)
    if len(groups):
        st.markdown("**Repeats**: runs that differ only by their seed")
        spread = "{:.2%} ± {:.2%}" if label.endswith("accuracy") else "{:.4f} ± {:.4f}"
        shown = groups.assign(**{column: [spread.format(m, s) for m, s in zip(groups["mean"], groups["std"])]})
        st.dataframe(shown[["group", "runs", column, "min", "max"]], hide_index=True,
                     key=state.key("compare", "repeats"))


def _correlations(chosen: pd.DataFrame, column: str) -> None:
    """Each varied setting's correlation with `column`, against what chance alone gives with this
    many runs; below MIN_RUNS_TO_CORRELATE runs none is drawn, and the page says why."""
    runs = int(chosen[column].notna().sum())
    chance = compare.chance_correlation(runs)
    if runs < compare.MIN_RUNS_TO_CORRELATE:
        reach = f"chance alone gives a correlation beyond ±{chance:.2f} one time in 20" if chance < 1 else \
            "chance alone can give any correlation, even ±1"
        count = "1 run" if runs == 1 else f"{runs} runs"
        st.info(f"**Which setting mattered** needs at least {compare.MIN_RUNS_TO_CORRELATE} runs: {count} cannot "
                f"separate a setting's effect from run-to-run noise (with {runs}, {reach}), so no correlation is "
                "drawn. Read each run on the lines above, repeat the best ones with more seeds to see the noise, or "
                "select more runs.", icon=":material/info:")
        return
    correlations = compare.setting_correlations(chosen, column)
    if not len(correlations):
        return
    st.markdown(f"**Which setting mattered** (correlation with the {column}, over {runs} runs)")
    st.caption(f"A bar inside the grey band (±{chance:.2f}) is no more than chance alone gives one time in 20 with "
               f"{runs} runs. A correlation measures a straight-line trend: a setting that is best in the middle "
               "(a learning rate, often) shows a weak one, so read the lines above too.")
    st.plotly_chart(figures.correlation_bars(correlations, column, chance), key=state.key("compare", "correlation"))


def predictions(store: RunStore, first: Run, second: Run) -> None:
    """Two runs on the same test set: both confusion matrices, their difference, and the flipped
    examples."""
    from pipelines.inference.evaluate import flipped  # with the models: TensorFlow is loaded by now

    try:
        a, b = model_cache.evaluation(store, first), model_cache.evaluation(store, second)
        flips = {first.id: flipped(a, b), second.id: flipped(b, a)}
    except LayerlabError as exc:
        st.warning(plain(exc, keep_code=True))
        return
    for column, run, result, side in zip(st.columns(2), (first, second), (a, b), ("a", "b")):
        column.plotly_chart(figures.confusion_matrix(result.confusion, result.class_names, run.name),
                            key=state.key("compare", "confusion", side))
    st.markdown("**Their difference** (B minus A: blue where B puts more images)")
    st.plotly_chart(figures.confusion_difference(a.confusion, b.confusion, a.class_names, (first.name, second.name)),
                    key=state.key("compare", "confusion"))
    images = model_cache.evaluation_data(first.dataset).x_test
    names = get_info(first.dataset).class_names
    for run, right, wrong in ((first, a, b), (second, b, a)):
        title, indices = run.name, flips[run.id]
        st.markdown(f"**Right in {plain(title)}, wrong in the other**: {len(indices):,} test images")
        shown = indices[:FLIPPED_SHOWN]
        captions = [f"true {names[right.labels[i]]}: {names[right.predicted[i]]} {right.confidence[i]:.0%} vs "
                    f"{names[wrong.predicted[i]]} {wrong.confidence[i]:.0%}" for i in shown]
        if len(shown):
            evaluation_view.gallery(images[shown], captions)


def _apply(change, *args) -> None:
    """A callback: make a change to the store, and show the result (or why not) after the rerun."""
    try:
        change(*args)
    except LayerlabError as exc:
        state.push_notice(str(exc))


def _delete_runs(store: RunStore, run_ids: list[str]) -> None:
    """Delete each run that may go; say which went and which were refused (a RUNNING run), and keep
    the refused ones selected."""
    deleted, refused, kept = [], [], []
    for run_id in run_ids:
        try:
            name = store.get_run(run_id).name
            store.delete_run(run_id)
        except LayerlabError as exc:
            refused.append(str(exc))
            kept.append(run_id)
        else:
            deleted.append(f"{name} ({run_id})")
    state.set_compare_selection(kept)
    parts = [f"Deleted {len(deleted)} run(s) and their files: {', '.join(deleted)}."] if deleted else []
    if refused:
        parts.append(f"Not deleted: {' '.join(refused)}")
    state.push_notice(" ".join(parts))


def manage(store: RunStore, frame: pd.DataFrame, selected: list[str]) -> None:
    """Rename, tag, note, repeat or delete the selected runs (delete asks first: the files go too)."""
    with st.expander(f"Rename, tag, write a note, repeat with more seeds, or delete ({len(selected)} selected)"):
        if len(selected) == 1:
            run = store.get_run(selected[0])
            seeds = st.number_input("More seeds", 1, 10, sweep_panel.REPEAT_SEEDS, key=state.key("compare", "seeds"),
                                    help="Train this run again with other seeds, to see how much of its "
                                         "result is the setting and how much is luck.")
            if st.button(f"Repeat with {int(seeds)} more seeds", key=state.key("compare", "repeat", run.id)):
                sweep_panel.repeat(run, int(seeds), selected)
            name = st.text_input("Name", run.name, key=state.key("compare", "name", run.id), max_chars=200)
            note = st.text_area("Note", run.note, key=state.key("compare", "note", run.id), max_chars=2000)
            if st.button("Save name and note", key=state.key("compare", "save", run.id)):
                _apply(store.rename_run, run.id, name)
                _apply(store.set_note, run.id, note)
                st.rerun()
        tags = st.text_input("Tags for the selected runs (comma-separated; replaces their tags)",
                             key=state.key("compare", "tags"), max_chars=500)
        if st.button("Set tags", key=state.key("compare", "set_tags")):
            for run_id in selected:
                _apply(store.set_tags, run_id, [t for t in tags.split(",") if t.strip()])
            st.rerun()
        sure = st.checkbox(f"Yes, delete the {len(selected)} selected run(s) and their files",
                           key=state.key("compare", "sure"))
        st.button("Delete", key=state.key("compare", "delete"), disabled=not sure, type="primary",
                  on_click=_apply, args=(_delete_runs, store, selected))
