"""Live training curves: a run's metric points as loss and accuracy panels.

Loss and accuracy side by side, train against validation per epoch, the batch-level train curve as
a thin light line behind them (per-batch values, see `pipelines.runs.feed.batch_values`), the best
epoch marked, and the training doctor's findings shaded. Epochs are numbered from 1 on the x axis
and an epoch's point sits at its end, where its last batch is: batch `s` of `S` in epoch `e`
(0-based) is at x = e + s/S. `components.live_chart` fetches the points as a run trains.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pipelines.runs.doctor import Finding
from pipelines.runs.entities import MetricPoint
from pipelines.runs.feed import batch_values

PANELS = (("loss", "Loss"), ("accuracy", "Accuracy"))
TRAIN_COLOR = "#1f77b4"
VALIDATION_COLOR = "#ff7f0e"
BEST_COLOR = "#2ca02c"
BATCH_OPACITY = 0.35
BATCH_LINE_WIDTH = 1
EPOCH_LINE_WIDTH = 2.5
CHART_HEIGHT = 380
FINDING_COLORS = {"error": "#d62728", "warning": "#e377c2"}
FINDING_OPACITY = 0.12
LOG_LOSS_SPAN = 1000.0  # a loss spanning more than this factor is drawn on a log scale
# Batch points drawn per panel at most: a long run logs tens of thousands, which no chart 700 px wide
# can show apart, and each one costs every watching session time to build and send.
MAX_BATCH_POINTS = 600


def infer_steps_per_epoch(points: Sequence[MetricPoint]) -> int:
    """Batches per epoch as the points tell it: an epoch point's `step`, else the largest batch step."""
    for point in points:
        if point.kind == "epoch" and point.step > 0:
            return point.step
    return max((point.step for point in points if point.kind == "batch"), default=0)


def batch_x(point: MetricPoint, steps_per_epoch: int) -> float:
    """Where a batch point sits on the epoch axis: its epoch (0-based) plus the share of it done."""
    return point.epoch + (point.step / steps_per_epoch if steps_per_epoch > 0 else 1.0)


def _series(points: Sequence[MetricPoint], kind: str, name: str) -> list[MetricPoint]:
    return [p for p in points if p.kind == kind and p.name == name]


def thinned(points: Sequence[MetricPoint], limit: int = MAX_BATCH_POINTS) -> Sequence[MetricPoint]:
    """Every k-th point, so that at most `limit` remain, always keeping the last (the newest)."""
    if len(points) <= limit:
        return points
    stride = -(-len(points) // limit)
    kept = list(points[::stride])
    if kept[-1] is not points[-1]:
        kept.append(points[-1])
    return kept


def curves_figure(points: Sequence[MetricPoint], *, best_epoch: int | None = None,
                  steps_per_epoch: int | None = None, revision: str | None = None, total_epochs: int = 0,
                  findings: Sequence[Finding] = ()) -> go.Figure:
    """Loss and accuracy panels for one run's points (in the order the store keeps them).

    `best_epoch` is 0-based, as the store keeps it; `steps_per_epoch` places the batch points
    (inferred from the points when not given); `revision` is Plotly's `uirevision`, so a zoom
    survives the live updates of the same run. `total_epochs` (the planned epochs) spans the epoch
    axis from the start, so the curves grow into a fixed frame; `findings` (the training doctor's)
    are shaded over the stretch they concern. No points give the empty panels, on sensible axes.
    """
    steps = steps_per_epoch or infer_steps_per_epoch(points)
    figure = make_subplots(rows=1, cols=len(PANELS), subplot_titles=[title for _, title in PANELS],
                           horizontal_spacing=0.08)
    per_batch = batch_values(points)
    for col, (metric, title) in enumerate(PANELS, start=1):
        _add_panel(figure, col, metric, thinned(_series(per_batch, "batch", metric)), points, steps)
    _frame_axes(figure, points, per_batch, steps, total_epochs)
    if best_epoch is not None:
        mark_best_epoch(figure, points, best_epoch)
    mark_findings(figure, findings)
    figure.update_layout(height=CHART_HEIGHT, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         legend={"orientation": "h", "y": -0.2}, hovermode="closest",
                         uirevision=revision)
    return figure


def _add_panel(figure: go.Figure, col: int, metric: str, batches: Sequence[MetricPoint],
               points: Sequence[MetricPoint], steps: int) -> None:
    """One panel: the per-batch curve behind the train and validation curves by epoch."""
    first_panel = col == 1
    # numpy arrays: Plotly validates a list element by element, an array at once (7x faster here).
    figure.add_trace(go.Scatter(
        x=np.array([batch_x(p, steps) for p in batches], float), y=np.array([p.value for p in batches], float),
        name="train (batches)", legendgroup="batches", showlegend=first_panel, mode="lines",
        line={"color": TRAIN_COLOR, "width": BATCH_LINE_WIDTH}, opacity=BATCH_OPACITY,
        hovertemplate="epoch %{x:.2f}<br>" + metric + " %{y:.4f}<extra>batches</extra>",
    ), row=1, col=col)
    for name, label, color, dash in ((metric, "train", TRAIN_COLOR, "solid"),
                                     (f"val_{metric}", "validation", VALIDATION_COLOR, "dash")):
        epochs = _series(points, "epoch", name)
        figure.add_trace(go.Scatter(
            x=np.array([p.epoch + 1 for p in epochs], float), y=np.array([p.value for p in epochs], float),
            name=label, legendgroup=label, showlegend=first_panel, mode="lines+markers",
            line={"color": color, "width": EPOCH_LINE_WIDTH, "dash": dash}, marker={"size": 8},
            hovertemplate="epoch %{x}<br>" + name + " %{y:.4f}<extra>" + label + "</extra>",
        ), row=1, col=col)


def _frame_axes(figure: go.Figure, points: Sequence[MetricPoint], per_batch: Sequence[MetricPoint], steps: int,
                total_epochs: int) -> None:
    """Epochs from 0 to the planned last one; before the first point accuracy spans 0-1 and loss
    0-1, not Plotly's default -1 to 4. A loss spanning more than LOG_LOSS_SPAN (a diverged run's
    5e4 beside 0.3) is drawn on a log scale, where both ends stay readable."""
    last_x = max([batch_x(p, steps) for p in per_batch] + [p.epoch + 1.0 for p in points if p.kind == "epoch"],
                 default=0.0)
    epoch_axis = {"title_text": "epoch", "rangemode": "tozero"}
    if total_epochs > 0:
        epoch_axis["range"] = [0, max(total_epochs, last_x)]
    figure.update_xaxes(**epoch_axis)
    if not points:
        figure.update_yaxes(range=[0, 1])
    losses = [p.value for p in per_batch if p.name == "loss" and p.value > 0] + \
        [p.value for p in points if p.kind == "epoch" and p.name.endswith("loss") and p.value > 0]
    log_loss = bool(losses) and max(losses) > LOG_LOSS_SPAN * min(losses)
    figure.update_yaxes(title_text="loss (log scale)" if log_loss else "loss", row=1, col=1,
                        **({"type": "log"} if log_loss else {}))
    figure.update_yaxes(title_text="accuracy", row=1, col=2)


def mark_findings(figure: go.Figure, findings: Sequence[Finding]) -> None:
    """Each finding as a shaded stretch of both panels, labelled with its title at the top left;
    hovering the label shows the finding's sentence (the page prints it under the chart too)."""
    for index, finding in enumerate(findings):
        color = FINDING_COLORS.get(finding.severity, FINDING_COLORS["warning"])
        figure.add_vrect(x0=finding.start, x1=max(finding.end, finding.start + 0.02), fillcolor=color,
                         opacity=FINDING_OPACITY, line_width=0, layer="below", row="all", col="all")
        for axis in ("x", "x2"):
            figure.add_annotation(
                x=finding.start, y=1, xref=axis, yref=f"{axis.replace('x', 'y')} domain", text=finding.title,
                hovertext=finding.message, showarrow=False, xanchor="left", yanchor="top", xshift=4,
                yshift=-20 * (index + 1), font={"color": color, "size": 13},
            )


def mark_best_epoch(figure: go.Figure, points: Sequence[MetricPoint], best_epoch: int) -> None:
    """A dotted vertical line labelled "best epoch N" across both panels, and a star on the
    validation loss (or, without validation, the train loss) of that epoch."""
    x = best_epoch + 1
    figure.add_vline(x=x, line={"color": BEST_COLOR, "width": 1.5, "dash": "dot"}, row="all", col="all")
    figure.add_annotation(x=x, y=1, xref="x", yref="y domain", text=f"best epoch {x}", showarrow=False, xshift=-4,
                          xanchor="right", yanchor="top", font={"color": BEST_COLOR})
    monitored = _series(points, "epoch", "val_loss") or _series(points, "epoch", "loss")
    best = [p for p in monitored if p.epoch == best_epoch]
    if best:
        figure.add_trace(go.Scatter(
            x=[x], y=[best[-1].value], name="best epoch", mode="markers",
            marker={"symbol": "star", "size": 16, "color": BEST_COLOR},
            hovertemplate="best epoch %{x}<br>" + best[-1].name + " %{y:.4f}<extra></extra>",
        ), row=1, col=1)
