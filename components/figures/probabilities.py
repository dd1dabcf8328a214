"""A model's class probabilities as bars, the likeliest in colour, each labelled with its percent.

`percent` lives here because the bar labels need it and this package must not import the
Streamlit-side `components.prediction_view`, which draws the chart.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from components.figures.plotly_text import plotly_text

TOP_COLOR = "#FF4B4B"
OTHER_COLOR = "#C3C8D4"
BAR_PIXELS = 26  # chart height per class


def percent(probability: float) -> str:
    """98.0%, 9.6%, 0.3%, <0.1%: one decimal, as every percentage in Layerlab, and never 100%
    (a model that is 99.97% sure is not certain)."""
    value = 100 * probability
    if value >= 0.05:
        return f"{min(value, 99.9):.1f}%"
    return "<0.1%"


def probability_figure(probabilities: np.ndarray | None, class_names: Sequence[str]) -> go.Figure:
    """One horizontal bar per class in class order, top to bottom, the likeliest in colour;
    `None` gives the empty chart, waiting for an input."""
    names = [plotly_text(name) for name in class_names]  # user folder names: shown as written
    top = None if probabilities is None else int(np.argmax(probabilities))
    values = [0.0] * len(names) if probabilities is None else [float(p) for p in probabilities]
    figure = go.Figure(go.Bar(
        x=values, y=names, orientation="h",
        marker={"color": [TOP_COLOR if i == top else OTHER_COLOR for i in range(len(names))]},
        text=None if probabilities is None else [percent(p) for p in values], textposition="outside",
        cliponaxis=False, hoverinfo="skip",
    ))
    figure.update_xaxes(range=[0, 1.12], tickformat=".0%", showgrid=True, fixedrange=True,
                        tickvals=[0, 0.25, 0.5, 0.75, 1.0])
    figure.update_yaxes(type="category", autorange="reversed", fixedrange=True, ticksuffix="  ")
    figure.update_layout(height=BAR_PIXELS * len(names) + 50, margin={"l": 10, "r": 10, "t": 10, "b": 30},
                         bargap=0.25, showlegend=False)
    return figure
