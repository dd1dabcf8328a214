"""Comparing runs: one row per run with the settings and results that tell runs apart, the best
epoch's figures (early stopping makes "last" misleading), differences from a baseline, which
setting mattered, and run-to-run noise across repeats. Pure pandas over runs and their points.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.data.catalog import get_info
from pipelines.errors import DatasetError, SpecError
from pipelines.modelspec.counting import count_parameters
from pipelines.modelspec.describe import architecture
from pipelines.modelspec.spec import ModelSpec
from pipelines.modelspec.sweep import LAYER_PARAMS
from pipelines.runs.entities import MetricPoint, Run
from pipelines.runs.results import FIELDS
from pipelines.runs.sweeps import duration_text, epoch_series

SETTING_COLUMNS = ("optimizer", "learning_rate", "batch_size", "epochs", "seed")
# Besides these, a layer's param a sweep varied gets a column named as the sweep names it: `units@2`.


@dataclass(frozen=True)
class ResultColumn:
    """A result the comparison shows: its column; its title, and a short one for a table's header;
    its kind (a `ResultField.kind` of the results schema, or "epoch"), which says how a value or a
    difference reads; and what it means."""

    key: str
    title: str
    short: str
    kind: str
    meaning: str


def _schema(key: str, short: str, column: str | None = None, note: str = "") -> ResultColumn:
    field = FIELDS[key]
    return ResultColumn(column or key, f"{field.title}{note}", short, field.kind, field.meaning)


# The accuracies first: on a narrow screen they are what stays in view.
RESULTS = (
    _schema("val_accuracy", "Val acc (best)", "best_val_accuracy", " (best epoch)"),
    _schema("test_accuracy", "Test acc"),
    _schema("val_accuracy", "Val acc (last)", "final_val_accuracy", " (last epoch)"),
    ResultColumn("best_epoch", "Best epoch", "Best epoch", "epoch",
                 "the epoch (from 1) of the highest validation accuracy"),
    _schema("wall_seconds", "Wall time"),
    _schema("samples_per_second", "Samples/s"),
)
RESULT_COLUMNS = tuple(column.key for column in RESULTS)
LOG_SETTINGS = ("learning_rate",)  # compared on a log scale: 1e-4 .. 1e-1 are steps of equal weight
# Fewer runs than this get no "which setting mattered" correlation: among 7 runs with no real
# effect, chance alone gives a correlation beyond ±0.75 one time in 20 (see chance_correlation),
# so only a near-perfect trend would stand out; a tutorial's 4-run sweep would need ±0.95.
MIN_RUNS_TO_CORRELATE = 8
# The curve Compare opens on is the first of these that a selected run has a value of: validation
# accuracy, unless the runs keep no validation split (the mlp-512 tutorial) or none has ended an epoch.
CURVE_PREFERENCE = ("val_accuracy", "accuracy", "val_loss", "loss")


def best_epoch(points: Sequence[MetricPoint]) -> tuple[float | None, int | None, float | None]:
    """(best validation accuracy, its epoch counted from 1, the last epoch's) from epoch points;
    all None for a run that keeps no validation split: its training accuracy is not shown as one."""
    series = epoch_series(points, "val_accuracy")
    if not series:
        return None, None, None
    best = max(series, key=lambda p: p.value)
    return best.value, best.epoch + 1, series[-1].value


def best_value(points: Sequence[MetricPoint], metric: str) -> float | None:
    """The best epoch value of `metric` in a run: the lowest of a loss, the highest of anything
    else; None if the run recorded none."""
    values = [p.value for p in epoch_series(points, metric)]
    if not values:
        return None
    return min(values) if metric.endswith("loss") else max(values)


def curves_default(points: Mapping[str, Sequence[MetricPoint]]) -> str | None:
    """The metric the curves open on: the first of CURVE_PREFERENCE any run has a finite epoch value
    of, so the chart never opens empty while another metric has points; None before any has one."""
    return next((metric for metric in CURVE_PREFERENCE
                 if any(epoch_series(run_points, metric) for run_points in points.values())), None)


def with_best(frame: pd.DataFrame, points: Mapping[str, Sequence[MetricPoint]], metric: str,
              column: str) -> pd.DataFrame:
    """The frame with `column`: each run's best value of `metric` (the one the page compares by)."""
    values = [best_value(points.get(run_id, ()), metric) for run_id in frame.index]
    return frame.assign(**{column: pd.to_numeric(pd.Series(values, index=frame.index, dtype=object),
                                                 errors="coerce")})


def _title(dataset: str) -> str:
    try:
        return get_info(dataset).title
    except DatasetError:
        return dataset


def parameters(run: Run, spec: ModelSpec | None) -> int | None:
    """As training recorded it, else counted from the spec: a run that was stopped early or
    imported still shows its size."""
    recorded = run.metrics.get("parameters")
    if recorded is not None:
        return int(recorded)
    if spec is None:
        return None
    try:
        shape = spec.input_shape or get_info(run.dataset).input_shape
    except DatasetError:
        return None
    return count_parameters(spec, shape)


def setting_key(run: Run, spec: ModelSpec | None) -> str | None:
    """A digest of everything a run trains with but its seed: the dataset and the whole spec (every
    layer param, compile and fit setting). Two runs with the same key differ only by their seed;
    None when the spec cannot be read (such a run is nobody's repeat)."""
    if spec is None:
        return None
    data = spec.with_fit(seed=0).to_dict()
    # Names are labels, not settings; a spec queued from Build has its dataset's input shape filled in.
    data.pop("name", None)
    data["layers"] = [{key: value for key, value in layer.items() if key != "name"} for layer in data["layers"]]
    if data.get("input_shape") is None:
        try:
            data["input_shape"] = list(get_info(run.dataset).input_shape)
        except DatasetError:
            pass
    data["dataset"] = run.dataset
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def readable_spec(run: Run) -> ModelSpec | None:
    """The run's spec, or None for a hand-edited or damaged record (the run still has a row)."""
    try:
        return run.model_spec
    except SpecError:
        return None


def run_row(run: Run, points: Sequence[MetricPoint], spec: ModelSpec | None) -> dict:
    """The comparable facts of one run (`spec`: its readable spec, parsed once by the caller)."""
    best, at, final = best_epoch(points)
    return {
        "id": run.id, "name": run.name, "dataset": _title(run.dataset), "status": run.status.value,
        "sweep": run.sweep_id, "tags": ", ".join(run.tags), "note": run.note, "repeat_group": run.repeat_group,
        "architecture": architecture(spec) if spec else "?",
        "parameters": parameters(run, spec),
        "optimizer": spec.compile.optimizer if spec else None,
        "learning_rate": spec.compile.learning_rate if spec else None,
        "batch_size": spec.fit.batch_size if spec else None,
        "epochs": spec.fit.epochs if spec else None,
        "seed": spec.fit.seed if spec else None,
        "setting_key": setting_key(run, spec),
        "layer_settings": layer_settings(spec),  # frame_of keeps those a sweep among the runs varied
        "final_val_accuracy": final, "best_val_accuracy": best, "best_epoch": at,
        "test_accuracy": run.metrics.get("test_accuracy"),
        "wall_seconds": run.metrics.get("wall_seconds"),
        "samples_per_second": run.metrics.get("samples_per_second"),
        "created_at": pd.Timestamp(run.created_at, unit="s"),
    }


def layer_settings(spec: ModelSpec | None) -> dict:
    """Every layer setting a sweep could vary in the spec, as the sweep names it: {"units@2": 128,
    "rate@3": 0.2, ...}; empty when the spec cannot be read."""
    if spec is None:
        return {}
    return {f"{param}@{index + 1}": layer.params.get(param) for index, layer in enumerate(spec.layers)
            for param, layer_type in LAYER_PARAMS.items() if layer.type == layer_type}


def runs_frame(runs: Sequence[Run], points: Mapping[str, Sequence[MetricPoint]]) -> pd.DataFrame:
    """One row per run (in the order given), indexed by run id."""
    return frame_of(runs, [run_row(run, points.get(run.id, ()), readable_spec(run)) for run in runs])


def frame_of(runs: Sequence[Run], rows: Sequence[Mapping]) -> pd.DataFrame:
    """The table from each run's `run_row` (which a page may keep per run, to re-read only the runs
    that changed). Each layer setting a sweep among them varied (`units@2`, `rate@3`) is a column
    too, from every run's spec, so that a run outside the sweep (a baseline) sits on the same axis
    (None where its spec has no such layer there)."""
    varied = sorted({key for run in runs for key in run.sweep_settings if "@" in key})
    frame = pd.DataFrame([{**{key: value for key, value in row.items() if key != "layer_settings"},
                           **{setting: row["layer_settings"].get(setting) for setting in varied}} for row in rows])
    return frame.set_index("id", drop=False) if not frame.empty else frame


NAME_PARTS = " · "  # what joins the parts of a name a sweep, a repeat or Build makes: "model · lr=0.001 · seed 43"


def distinct_names(names: Sequence[str], fits: int = 0) -> list[str]:
    """Each name with the part that tells it from the others first, for a cell or a picker too
    narrow for it whole: the leading parts (split at " · ") it shares with another name move to
    its end, so "Conv32-Pool-D10 · adam · lr=0.001" beside "Conv32-Pool-D10 · adam · lr=0.01" shows
    as "lr=0.001 · Conv32-Pool-D10 · adam". A name of at most `fits` characters (it shows whole),
    one that shares nothing with the others, or one only the same name shares, stays as written.
    Linear in the names: a table may hold thousands."""
    split = {name: name.split(NAME_PARTS) for name in names}
    starts = Counter(tuple(parts[:count]) for parts in split.values() for count in range(1, len(parts)))
    shown = []
    for name in names:
        parts = split[name]
        lead = next((count for count in range(len(parts) - 1, 0, -1) if starts[tuple(parts[:count])] > 1), 0)
        shown.append(NAME_PARTS.join(parts[lead:] + parts[:lead]) if lead and len(name) > fits else name)
    return shown


def setting_columns(frame: pd.DataFrame) -> list[str]:
    """The settings a comparison looks at: the global ones, then the layer settings in the frame."""
    return [*SETTING_COLUMNS, *(column for column in frame.columns if "@" in str(column))]


def setting_label(column: str) -> str:
    """`units@2` as "units of layer 2"; `learning_rate` as "learning rate"."""
    param, at, position = column.partition("@")
    return f"{param} of layer {position}" if at else column.replace("_", " ")


def differences(frame: pd.DataFrame, baseline_id: str, columns: Sequence[str] = RESULT_COLUMNS) -> pd.DataFrame:
    """Each run's numeric results minus the baseline run's (the baseline's own row is zeros)."""
    if baseline_id not in frame.index:
        raise KeyError(baseline_id)
    numeric = frame[list(columns)].apply(pd.to_numeric, errors="coerce")
    return numeric - numeric.loc[baseline_id]


def against_baseline(frame: pd.DataFrame, baseline_id: str) -> tuple[pd.DataFrame, list[ResultColumn]]:
    """The baseline's table: each run's results minus the baseline's, under their short titles, with
    accuracies in percentage points (0.861 against 0.850 is +1.1), and the results shown. A result
    the baseline lacks (no test accuracy while it trains), or no other run has, is left out: its
    column would say nothing."""
    delta = differences(frame, baseline_id)
    shown = [column for column in RESULTS if delta[column.key].notna().sum() > 1]  # the baseline's and another
    table = pd.DataFrame({column.short: delta[column.key] * (100 if column.kind == "accuracy" else 1)
                          for column in shown}, index=delta.index)
    return table, shown


def result_text(column: ResultColumn, value: float) -> str:
    """One result's value as a person reads it after its title: "86.1 %", "1 min 2 s", "5,120", "3"."""
    if column.kind == "accuracy":
        return f"{value:.1%}".replace("%", " %")
    if column.kind == "seconds":
        return duration_text(value)
    if column.kind in ("rate", "epoch"):
        return f"{value:,.0f}"
    return f"{value:.4f}"


def varied_settings(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> list[str]:
    """The settings (by default every one of `setting_columns`) that take more than one value among
    the rows."""
    columns = setting_columns(frame) if columns is None else columns
    return [c for c in columns if c in frame and frame[c].nunique(dropna=True) > 1]


def setting_correlations(frame: pd.DataFrame, metric: str = "best_val_accuracy") -> pd.Series:
    """Pearson correlation of each varied numeric setting with `metric` (learning rate on a log
    scale); NaN-free, largest effect first. Categorical settings (the optimizer) are left out."""
    result = {}
    target = pd.to_numeric(frame[metric], errors="coerce")
    for column in varied_settings(frame):
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().all():
            continue
        if column in LOG_SETTINGS:
            values = np.log10(values.where(values > 0))
        both = pd.concat([values, target], axis=1).dropna()
        if len(both) >= 3 and both.iloc[:, 0].nunique() > 1 and both.iloc[:, 1].nunique() > 1:
            result[column] = float(both.iloc[:, 0].corr(both.iloc[:, 1]))
    series = pd.Series(result, dtype=float)
    return series.reindex(series.abs().sort_values(ascending=False).index)


def chance_correlation(runs: int) -> float:
    """The size of correlation that chance alone exceeds one time in 20 among `runs` runs of a
    setting with no effect (two-sided, by Fisher's z: tanh(1.96 / sqrt(n - 3)), within 0.01 of the
    exact t-test figure from 4 runs on): 0.96 for 4 runs, 0.71 for 8, 0.44 for 20; 1 below 4."""
    return math.tanh(1.96 / math.sqrt(runs - 3)) if runs > 3 else 1.0


def repeats(frame: pd.DataFrame, metric: str = "best_val_accuracy") -> pd.DataFrame:
    """Groups of runs that differ only by seed (two or more different seeds of one setting): count,
    mean, std, min, max of `metric` and the ids, so a learner sees run-to-run noise before calling a
    difference real. Runs of one setting with the same seed are one result trained twice, not
    noise: only the first of them (the newest, in the table's order) counts."""
    columns = ["group", "runs", "mean", "std", "min", "max", "ids"]
    if frame.empty or "setting_key" not in frame:
        return pd.DataFrame(columns=columns)
    rows = []
    keyed = frame[frame["setting_key"].notna()]
    for _, members in keyed.groupby("setting_key", sort=False):
        members = members[~members["seed"].duplicated()]
        if len(members) < 2:
            continue
        values = pd.to_numeric(members[metric], errors="coerce").dropna()
        first = members.iloc[0]
        grouped = isinstance(first.get("repeat_group"), str) and first["repeat_group"]
        label = first["name"] if grouped else " · ".join(
            str(first[part]) for part in ("dataset", "architecture", "optimizer", "learning_rate", "batch_size",
                                          "epochs"))
        rows.append({"group": label, "runs": len(members),
                     "mean": values.mean(), "std": values.std(ddof=1) if len(values) > 1 else float("nan"),
                     "min": values.min(), "max": values.max(), "ids": list(members.index)})
    return pd.DataFrame(rows, columns=columns)


def ema(values: Sequence[float], smoothing: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average, debiased so the start is not pulled
    towards zero. `smoothing` 0 leaves the values as they are; 0.99 is very smooth."""
    if not 0 <= smoothing < 1:
        raise ValueError(f"`smoothing` must be in [0, 1). Received: smoothing={smoothing!r}")
    out, last, weight = [], 0.0, 0.0
    for value in values:
        last = last * smoothing + (1 - smoothing) * value
        weight = weight * smoothing + (1 - smoothing)
        out.append(last / weight if weight else value)
    return np.array(out, dtype=float)


def curve(points: Sequence[MetricPoint], metric: str, *, by: str = "epoch") -> tuple[np.ndarray, np.ndarray]:
    """One epoch-level series of a run: x as the epoch (from 1) or seconds since its first point."""
    series = epoch_series(points, metric)
    if by == "epoch":
        x = np.array([p.epoch + 1 for p in series], dtype=float)
    elif by == "time":
        start = min((p.timestamp for p in points), default=0.0)
        x = np.array([p.timestamp - start for p in series], dtype=float)
    else:
        raise ValueError(f"`by` must be 'epoch' or 'time'. Received: by={by!r}")
    return x, np.array([p.value for p in series], dtype=float)


def mean_band(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Repeats as one line: the mean at every x all of them reached, with their min and max as a
    band. A repeat still training shortens the line rather than bending the mean."""
    if not series:
        empty = np.array([], dtype=float)
        return empty, empty, empty, empty
    common = sorted(set.intersection(*(set(np.asarray(x).tolist()) for x, _ in series)))
    if not common:
        empty = np.array([], dtype=float)
        return empty, empty, empty, empty
    stacked = np.array([[dict(zip(np.asarray(x).tolist(), np.asarray(y).tolist()))[at] for at in common]
                        for x, y in series], dtype=float)
    return np.array(common, dtype=float), stacked.mean(axis=0), stacked.min(axis=0), stacked.max(axis=0)
