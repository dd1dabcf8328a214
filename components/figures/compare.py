"""Figures that compare runs: overlaid curves (with repeats as a mean and a band), parallel
coordinates of the varied settings, which setting mattered, and two runs' confusion matrices and their difference.

Pure functions from data to Plotly figures; run names appear whole in legends and hovers, as text
(through `plotly_text`: a run name is never parsed as Plotly's pseudo-HTML or a hover template).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from components.figures.plotly_text import plotly_text
from pipelines.runs.compare import setting_label

PALETTE = plotly.colors.qualitative.Plotly + plotly.colors.qualitative.D3
HEIGHT = 420


@dataclass(frozen=True)
class Curve:
    """One run's (or one repeat group's) series. `low`/`high` draw a band (repeats' min-max or
    mean ± std); `best` marks the run's best epoch as (x, y)."""

    name: str
    x: np.ndarray
    y: np.ndarray
    best: tuple[float, float] | None = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None


def _rgba(hex_color: str, alpha: float) -> str:
    red, green, blue = plotly.colors.hex_to_rgb(hex_color)
    return f"rgba({red},{green},{blue},{alpha})"


def overlaid_curves(curves: Sequence[Curve], *, y_title: str, x_title: str = "epoch",
                    log_y: bool = False) -> go.Figure:
    """Every curve on one chart, each run's best epoch starred, bands shaded under their line."""
    figure = go.Figure()
    for index, item in enumerate(curves):
        color = PALETTE[index % len(PALETTE)]
        name = plotly_text(item.name)
        if item.low is not None and item.high is not None:
            figure.add_trace(go.Scatter(
                x=np.concatenate([item.x, item.x[::-1]]), y=np.concatenate([item.high, item.low[::-1]]),
                fill="toself", fillcolor=_rgba(color, 0.18), line={"width": 0}, hoverinfo="skip",
                showlegend=False, legendgroup=str(index)))
        figure.add_trace(go.Scatter(
            x=item.x, y=item.y, name=name, legendgroup=str(index), mode="lines+markers",
            line={"color": color, "width": 2}, marker={"size": 5},
            hovertemplate="%{fullData.name}<br>" + x_title + " %{x:.4g}<br>" + y_title + " %{y:.4f}<extra></extra>"))
        if item.best is not None:
            figure.add_trace(go.Scatter(
                x=[item.best[0]], y=[item.best[1]], name=name, mode="markers", legendgroup=str(index),
                showlegend=False,
                marker={"symbol": "star", "size": 14, "color": color, "line": {"color": "white", "width": 1}},
                hovertemplate="best epoch of %{fullData.name}<br>" + x_title + " %{x:.4g}<br>%{y:.4f}<extra></extra>"))
    figure.update_layout(height=HEIGHT, margin={"l": 10, "r": 10, "t": 30, "b": 10}, hovermode="closest",
                         legend={"orientation": "h", "y": -0.2}, xaxis_title=x_title, yaxis_title=y_title)
    if log_y:
        figure.update_yaxes(type="log")
    if x_title == "epoch":
        figure.update_xaxes(dtick=1)  # epochs are whole numbers
    return figure


def parallel_coordinates(frame: pd.DataFrame, settings: Sequence[str], metric: str) -> go.Figure:
    """One line per run through its varied settings and `metric`; the learning rate on a log axis."""
    dimensions = []
    for column in settings:
        values = frame[column]
        if column == "learning_rate":
            logs = np.log10(pd.to_numeric(values, errors="coerce").astype(float))
            ticks = sorted(set(np.round(logs.dropna(), 6)))
            dimensions.append({"label": "learning rate (log)", "values": logs, "tickvals": ticks,
                               "ticktext": [f"{10 ** t:.0e}" for t in ticks]})
        elif pd.api.types.is_numeric_dtype(values):
            dimensions.append({"label": plotly_text(setting_label(column)), "values": values.astype(float)})
        else:
            codes, labels = pd.factorize(values.astype(str))
            dimensions.append({"label": plotly_text(setting_label(column)), "values": codes,
                               "tickvals": list(range(len(labels))),
                               "ticktext": [plotly_text(label) for label in labels]})
    target = pd.to_numeric(frame[metric], errors="coerce").astype(float)
    dimensions.append({"label": metric.replace("_", " "), "values": target})
    figure = go.Figure(go.Parcoords(line={"color": target, "colorscale": "Viridis", "showscale": True},
                                    dimensions=dimensions))
    figure.update_layout(height=HEIGHT, margin={"l": 60, "r": 60, "t": 40, "b": 20})
    return figure


def correlation_bars(correlations: pd.Series, metric: str, chance: float) -> go.Figure:
    """Each varied setting's correlation with `metric`, from -1 to 1, over a grey band from -chance
    to chance: what chance alone reaches one time in 20 with this many runs."""
    colors = ["#2ca02c" if value >= 0 else "#d62728" for value in correlations.values]
    labels = [plotly_text(setting_label(name)) for name in correlations.index]
    figure = go.Figure(go.Bar(x=correlations.values, y=labels, orientation="h", marker_color=colors,
                              hovertemplate="%{y}: %{x:.2f}<extra></extra>"))
    figure.add_vrect(x0=-chance, x1=chance, fillcolor="#7f7f7f", opacity=0.18, line_width=0, layer="below")
    figure.update_layout(height=120 + 40 * len(correlations), margin={"l": 10, "r": 10, "t": 10, "b": 10},
                         xaxis={"range": [-1, 1], "title": f"correlation with {metric.replace('_', ' ')}"})
    return figure


def _confusion_axes(figure: go.Figure) -> go.Figure:
    figure.update_layout(height=HEIGHT, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         xaxis={"title": "predicted", "dtick": 1, "type": "category"},
                         yaxis={"title": "true", "autorange": "reversed", "dtick": 1, "type": "category"})
    return figure


def confusion_matrix(confusion: np.ndarray, class_names: Sequence[str], run_name: str) -> go.Figure:
    """One run's confusion matrix, titled with the run's name, to sit beside the other's."""
    counts = np.asarray(confusion, dtype=int)
    classes = [plotly_text(name) for name in class_names]
    figure = go.Figure(go.Heatmap(
        z=np.sqrt(counts), x=classes, y=classes, text=counts, texttemplate="%{text}", colorscale="Blues",
        showscale=False, hovertemplate="true %{y}, predicted %{x}: %{text:,}<extra></extra>"))
    figure.update_layout(title={"text": plotly_text(run_name), "font": {"size": 14}})
    return _confusion_axes(figure)


def confusion_difference(first: np.ndarray, second: np.ndarray, class_names: Sequence[str],
                         names: tuple[str, str]) -> go.Figure:
    """second - first per cell: where the second run puts more (blue on the diagonal is good)."""
    delta = np.asarray(second, dtype=int) - np.asarray(first, dtype=int)
    bound = max(1, int(np.abs(delta).max()))
    classes = [plotly_text(name) for name in class_names]
    figure = go.Figure(go.Heatmap(
        z=delta, x=classes, y=classes, zmin=-bound, zmax=bound, colorscale="RdBu",
        text=delta, texttemplate="%{text}", meta=[plotly_text(names[0]), plotly_text(names[1])],
        hovertemplate="true %{y}, predicted %{x}: %{z:+d} (%{meta[1]} vs %{meta[0]})<extra></extra>"))
    return _confusion_axes(figure)
