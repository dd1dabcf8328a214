"""The run table, and the short texts that say what a run is and where it is: its settings, queue
place, progress, ETA, results.

The table lives in a fragment of its own that refreshes every second (so runs queued from the CLI
or another tab show up), and keeps the worker pool going on each tick. Selecting a row opens that run (`?run=ID`). Runs of one
preset differ in their settings, so the table shows what tells them apart: dataset, parameter
count, optimizer, learning rate, epochs and the best validation accuracy.
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import math
import re

import pandas as pd
import streamlit as st

from components import resources, state
from components.guard import guard, log
from components.text import plain
from pipelines.data.catalog import CATALOG
from pipelines.errors import LayerlabError, SpecError
from pipelines.io.keras_import import imported_training
from pipelines.modelspec.counting import count_parameters
from pipelines.modelspec.describe import rate_text
from pipelines.modelspec.spec import OPTIMIZERS, ModelSpec
from pipelines.runs.compare import distinct_names
from pipelines.runs.entities import Run, RunStatus
from pipelines.runs.results import FINAL_METRICS, GROUPS, ResultField
from pipelines.runs.store import RunStore

LIVE_SECONDS = 1.0
NAME_FITS = 30  # characters the Name column shows whole
TABLE_ROWS = 6  # rows shown before the table scrolls
ROW_PIXELS = 35

STATUS_COLORS = {
    RunStatus.QUEUED: "gray",
    RunStatus.RUNNING: "blue",
    RunStatus.COMPLETED: "green",
    RunStatus.STOPPED: "orange",
    RunStatus.FAILED: "red",
    RunStatus.INTERRUPTED: "violet",
}
# Percentages are stored from 0 to 100 so that one printf format gives one decimal everywhere.
PERCENT = "%.1f%%"
# What tells runs apart leads, so a 1024 px window shows it without scrolling sideways: the name,
# where the run is, and how well it did; the settings follow.
COLUMNS = {
    "Name": st.column_config.TextColumn("Name", width=220),
    "Status": st.column_config.TextColumn("Status", width=105),
    "Params": st.column_config.NumberColumn("Params", format="localized", help="Weights in the model"),
    "Learning rate": st.column_config.TextColumn("Learning rate"),
    "Epochs": st.column_config.NumberColumn("Epochs", help="Epochs planned", width="small"),
    "Best val. accuracy": st.column_config.NumberColumn(
        "Best val. acc.", format=PERCENT, width=105, help="The highest validation accuracy of any epoch so far"),
    "Test accuracy": st.column_config.NumberColumn("Test acc.", format=PERCENT, width=85,
                                                   help="Accuracy on the test set, once the run has completed"),
    "Queue": st.column_config.NumberColumn("Queue", help="Place in the queue (1 starts next)", width="small"),
    "Progress": st.column_config.ProgressColumn("Progress", min_value=0.0, max_value=100.0, format="%.0f%%",
                                                width=110),
    "Created": st.column_config.DatetimeColumn("Created", format="MMM D, HH:mm:ss"),
}
MALFORMED_RUN_LINK = ("This link's `run` value is not a run id (10 lowercase hexadecimal characters), "
                      "so it names no run; pick one here instead.")


def result_groups(run: Run) -> list[list[ResultField]]:
    """The run's recorded final figures, one list per column on the page (train, validation, ...)."""
    groups = [[f for f in FINAL_METRICS if f.group == group and f.key in run.metrics and f.key != "fit_seconds"]
              for group in GROUPS]
    return [group for group in groups if group]


def run_to_show(store: RunStore) -> tuple[Run | None, str | None]:
    """The run named by `?run=`, else the newest; and a message (Markdown) when `?run=` names no
    run. A value that is not a run id is never echoed."""
    if state.run_param_is_malformed():
        return None, MALFORMED_RUN_LINK
    requested = state.current_run_id()
    if requested:
        try:
            return store.get_run(requested), None
        except LayerlabError:
            return None, f"No run `{requested}` in this store; pick one from the list."
    newest = store.list_runs(limit=1)
    return (newest[0] if newest else None), None


def dataset_title(name: str) -> str:
    """"Fashion-MNIST" for `fashion_mnist`: the name people know a dataset by."""
    info = CATALOG.get(name)
    return info.title if info else name


@dataclasses.dataclass(frozen=True)
class Settings:
    """What tells runs of one model apart; None where the stored spec no longer reads."""

    parameters: int | None
    optimizer: str | None
    learning_rate: str | None
    epochs: int | None
    trained: str | None = None  # how an imported run was trained, instead of its spec's epochs

    def text(self) -> str:
        """"100,480 params · Adam 1e-3 · 5 epochs"."""
        parts = [f"{self.parameters:,} params" if self.parameters is not None else None,
                 f"{self.optimizer} {self.learning_rate}" if self.optimizer else None,
                 self.trained or (f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}" if self.epochs else None)]
        return " · ".join(part for part in parts if part)


@st.cache_data(max_entries=2000, show_spinner=False)
def _settings(run_id: str, created_at: float, dataset: str, _spec: dict, parameters: float | None) -> Settings:
    """A run's settings, once per run: its spec never changes."""
    try:
        spec = ModelSpec.from_dict(_spec)
    except SpecError:
        return Settings(None if parameters is None else int(parameters), None, None, None)
    info = CATALOG.get(dataset)
    count = parameters if parameters is not None else count_parameters(
        spec, spec.input_shape or (info.input_shape if info else None))
    return Settings(None if count is None else int(count), OPTIMIZERS[spec.compile.optimizer]["title"],
                    rate_text(spec.compile.learning_rate), spec.fit.epochs)


def settings(run: Run) -> Settings:
    """The run's parameter count (as recorded, else counted from its spec), optimizer, learning rate, epochs."""
    facts = _settings(run.id, run.created_at, run.dataset, run.spec, run.metrics.get("parameters"))
    trained = imported_training(run)
    return dataclasses.replace(facts, trained=trained) if trained else facts


@st.cache_data(max_entries=2000, show_spinner=False)
def _best_val_accuracy(home: str, run_id: str, epochs_done: int, resume_count: int, _store: RunStore) -> float | None:
    values = [p.value for p in _store.get_metrics(run_id, kind="epoch")
              if p.name == "val_accuracy" and math.isfinite(p.value)]
    return max(values) if values else None


def best_val_accuracy(store: RunStore, run: Run) -> float | None:
    """The highest validation accuracy of any finished epoch, read once per epoch of the run."""
    return _best_val_accuracy(str(store.home), run.id, run.epochs_done, run.resume_count, store)


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def runs_frame(store: RunStore, runs: list[Run], positions: dict[str, int]) -> pd.DataFrame:
    """One row per run, newest first, as the table shows it."""
    facts = [settings(run) for run in runs]
    return pd.DataFrame({
        # The part of a name that tells a run from the others first ("lr=0.01 · Conv32-…"): the cell cuts the rest.
        "Name": distinct_names([run.name for run in runs], NAME_FITS),
        "Status": [run.status.value for run in runs],
        "Best val. accuracy": [_percent(best_val_accuracy(store, run)) for run in runs],
        "Test accuracy": [_percent(run.metrics.get("test_accuracy")) for run in runs],
        "Progress": [100.0 if run.status is RunStatus.COMPLETED else 100 * run.progress.fraction for run in runs],
        "Epochs": pd.array([f.epochs for f in facts], dtype="Int64"),
        "Dataset": [dataset_title(run.dataset) for run in runs],
        "Params": pd.array([f.parameters for f in facts], dtype="Int64"),
        "Optimizer": [f.optimizer for f in facts],
        "Learning rate": [f.learning_rate for f in facts],
        "Queue": pd.array([positions.get(run.id) for run in runs], dtype="Int64"),
        "Created": [datetime.datetime.fromtimestamp(run.created_at) for run in runs],
        "Run": [run.id for run in runs],
    })


def run_label(run: Run) -> str:
    """A run in one line, for a picker (plain text, not Markdown): "mlp-512 · MNIST · 407,050 params ·
    RMSprop 1e-3 · 5 epochs · 92.3% test accuracy · 1a2b3c4d5e"."""
    accuracy = run.metrics.get("test_accuracy")
    result = f"{accuracy:.1%} test accuracy" if accuracy is not None else run.status.value.lower()
    return " · ".join(part for part in (run.name, dataset_title(run.dataset), settings(run).text(), result, run.id)
                      if part)


RUNS_FRAGMENT = "train_runs"


def _select_row(widget_key: str, ids: list[str], redraw: str) -> None:
    """Open the run of the clicked row, and redraw the table and the `redraw` fragment at once."""
    event = state.widget_value(widget_key)
    rows = event.selection.rows if event is not None else []
    if rows and rows[0] < len(ids):
        state.set_current_run(ids[rows[0]])
        st.rerun([RUNS_FRAGMENT, redraw])


def show(store: RunStore, redraw: str) -> None:
    """The run table with the run the URL names highlighted; a click on another row opens that run
    and redraws the fragment keyed `redraw`, which shows it.

    It refreshes every LIVE_SECONDS whatever the runs do, and never reruns the app: a refresh rate
    that follows the runs needs an app rerun from inside a fragment, and two of those at once can
    leave the browser with a stale element tree ("Bad delta path index") and a blank page."""

    @st.fragment(run_every=LIVE_SECONDS, key=RUNS_FRAGMENT)
    @guard("the run list")
    def run_table() -> None:
        keep_workers()
        runs = store.list_runs()
        if not runs:
            st.info("No runs yet. Build a model on the Build page and click **Train this model**.")
            return
        ids = [run.id for run in runs]
        selected_id = state.current_run_id()
        positions = {run.id: store.queue_position(run.id) for run in runs if run.status is RunStatus.QUEUED}
        default = {"selection": {"rows": [ids.index(selected_id)]}} if selected_id in ids else None
        # A new key whenever the set of runs or the selected run changes, so the highlight follows.
        widget_key = state.key("train", "runs", hashlib.sha1(f"{selected_id} {' '.join(ids)}".encode()).hexdigest()[:8])
        st.dataframe(
            runs_frame(store, runs, positions), hide_index=True, column_config=COLUMNS, placeholder="",
            height=ROW_PIXELS * (min(len(runs), TABLE_ROWS) + 1) + 3, key=widget_key,
            on_select=functools.partial(_select_row, widget_key, ids, redraw), selection_mode="single-row",
            selection_default=default,
        )

    run_table()


def keep_workers_on_a_timer() -> None:
    """Reap dead workers and keep the warm spare once a second on a page without a run table
    (Build): a fragment of its own, so the page itself does not rerun."""

    @st.fragment(run_every=LIVE_SECONDS)
    @guard("the training workers' upkeep")
    def worker_tick() -> None:
        keep_workers()

    worker_tick()


def keep_workers() -> None:
    """Start workers for queued runs, keep one warm spare, and mark runs whose worker died; at most
    once a second for the whole server, however many sessions are open."""
    if not resources.worker_upkeep().ready():
        return
    try:
        resources.scheduler().ensure_workers(spare=1)
    except LayerlabError as exc:
        st.caption(f"Could not start a training worker: {plain(exc)}")
    except Exception:  # a busy database or a failed spawn must not break the page
        log.warning("Could not start a training worker; retrying", exc_info=True)
        st.caption("Could not start a training worker; retrying (the server log says why).")


def duration_text(seconds: float) -> str:
    """12 s, 3 min 05 s, 1 h 02 min."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_text(run: Run, eta: float | None) -> str:
    """"Epoch 2/3 · batch 120/1,688 · ETA 12 s" for a running run (`eta` in seconds, None if unknown)."""
    progress = run.progress
    if progress.steps_per_epoch == 0:
        return "Preparing the data and the model …"
    epoch = min(progress.epoch + 1, progress.total_epochs)
    return (f"Epoch {epoch}/{progress.total_epochs} · batch {progress.step:,}/{progress.steps_per_epoch:,} · "
            f"ETA {'…' if eta is None else duration_text(eta)}")


def metric_text(value: float, kind: str) -> str:
    """A final figure as every page writes it: accuracies as percents with one decimal."""
    if kind == "accuracy":
        return f"{value:.1%}"
    if kind == "seconds":
        return duration_text(value)
    if kind == "rate":
        return f"{value:,.0f}"
    return f"{value:.4f}"


def again_name(name: str, taken: set[str]) -> str:
    """The name of a run trained again: "mlp-512 (2)", or the next number no run has yet."""
    stem = re.sub(r" \((\d+)\)$", "", name)
    number = 2
    while f"{stem} ({number})" in taken:
        number += 1
    return f"{stem} ({number})"


def download_name(run: Run, file_name: str) -> str:
    """`<run name>-<id>.<ext>`, with the name made safe for a file system."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", run.name).strip("-.") or "run"
    return f"{stem}-{run.id}{file_name[file_name.rindex('.'):]}"
