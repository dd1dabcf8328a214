"""The confusion matrix as a clickable heatmap, and the cell a click on it names.

Plotly heatmaps do not take part in selections, so the matrix carries an invisible marker at the
centre of every cell whose `customdata` is (true, predicted, count, true name, predicted name):
clicking a cell selects that marker, and `selected_cell` reads the cell back from it. Both live
here because they share that layout.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from components.figures.plotly_text import plotly_text

CELL_PIXELS = 42
AXES_PIXELS = 70  # room for the tick labels and axis titles
HIGHLIGHT_COLOR = "#FF4B4B"


def confusion_figure(confusion: np.ndarray, class_names: Sequence[str],
                     selected: tuple[int, int] | None = None) -> go.Figure:
    """Counts written in their cells, true classes down and predicted across; colour grows with
    the square root of the count, so that mistakes stay visible beside the diagonal."""
    classes = len(class_names)
    counts = np.asarray(confusion)
    cells = np.arange(classes)
    predicted_at, true_at = np.meshgrid(cells, cells)
    figure = go.Figure(go.Heatmap(
        z=np.sqrt(counts), x=cells, y=cells, text=[[f"{c:,}" if c else "" for c in row] for row in counts],
        texttemplate="%{text}", colorscale="Blues", showscale=False, hoverinfo="skip", xgap=1, ygap=1,
    ))
    names = np.asarray([plotly_text(name) for name in class_names], dtype=object)
    figure.add_trace(go.Scatter(
        x=predicted_at.ravel(), y=true_at.ravel(), mode="markers", showlegend=False,
        marker={"size": CELL_PIXELS * 0.8, "symbol": "square", "opacity": 0},
        selected={"marker": {"opacity": 0}}, unselected={"marker": {"opacity": 0}},
        customdata=np.stack([true_at.ravel(), predicted_at.ravel(), counts.ravel(),
                             names[true_at.ravel()], names[predicted_at.ravel()]], axis=1),
        hovertemplate="true %{customdata[3]} · predicted %{customdata[4]}: %{customdata[2]:,} image(s)"
                      "<br>click to see them<extra></extra>",
    ))
    if selected is not None:
        true_class, predicted_class = selected
        figure.add_shape(type="rect", x0=predicted_class - 0.5, x1=predicted_class + 0.5,
                         y0=true_class - 0.5, y1=true_class + 0.5, line={"color": HIGHLIGHT_COLOR, "width": 3})
    ticks = {"tickvals": list(cells), "ticktext": list(names), "showgrid": False, "zeroline": False,
             "fixedrange": True}
    figure.update_xaxes(title_text="predicted class", side="top", constrain="domain", **ticks)
    figure.update_yaxes(title_text="true class", autorange="reversed", scaleanchor="x", constrain="domain", **ticks)
    longest = max((len(name) for name in class_names), default=1)
    if longest > 2:
        figure.update_xaxes(tickangle=-40)
    side = CELL_PIXELS * classes + AXES_PIXELS + (7 * longest if longest > 2 else 0)
    figure.update_layout(width=side, height=side - 30, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                         clickmode="event+select", dragmode=False, hovermode="closest",
                         plot_bgcolor="rgba(0,0,0,0)")
    return figure


def selected_cell(selection) -> tuple[int, int] | None:
    """The (true, predicted) cell a chart selection points at, if any."""
    for point in (selection or {}).get("points", []):
        data = point.get("customdata")
        if data is not None and len(data) >= 2:
            return int(data[0]), int(data[1])
    return None
