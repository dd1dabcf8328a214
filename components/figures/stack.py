"""The model's layer stack as a diagram: one block per layer, sized by its output shape.

A pure function of the `Validation` (which Keras already built), so it is tested without Keras
or a browser.
"""
from __future__ import annotations

import math

import plotly.graph_objects as go

from pipelines.modelspec.validation import Validation, shape_text

BLOCK_COLOURS = {
    "Conv2D": "#4C78A8", "MaxPooling2D": "#9ECAE9", "AveragePooling2D": "#9ECAE9",
    "GlobalAveragePooling2D": "#9ECAE9", "Dense": "#F58518", "Flatten": "#BAB0AC", "Reshape": "#BAB0AC",
    "Dropout": "#E45756", "BatchNormalization": "#72B7B2", "Activation": "#54A24B", "LeakyReLU": "#54A24B",
}


def _dims(shape) -> str:
    return "×".join(str(d) for d in shape[1:]) if shape else "?"


def _block_size(shape) -> tuple[float, float]:
    """Height from the spatial size, width from the channels or units (log-scaled, as in the
    classic diagrams where a 28x28 map is tall and a 10-unit output is a thin sliver)."""
    dims = [d for d in (shape or ())[1:] if d]
    if len(dims) == 3:
        height = 1.0 + 2.2 * math.log2(max(dims[0], 1)) / math.log2(64)
        width = 0.25 + 0.6 * math.log2(max(dims[2], 1)) / 9
    elif len(dims) == 1:
        height = 0.6 + 3.4 * math.log2(max(dims[0], 1)) / math.log2(8192)
        width = 0.22
    else:
        height, width = 1.0, 0.3
    return height, width


def stack_diagram(result: Validation) -> go.Figure:
    """Blocks left to right, each sized by its output shape and labelled with type and shape."""
    fig = go.Figure()
    blocks = [("Input", (None, *result.input_shape), 0)] + [
        (row.type, row.output_shape, row.params) for row in result.rows]
    x = 0.0
    for i, (kind, shape, params) in enumerate(blocks):
        height, width = _block_size(shape)
        colour = BLOCK_COLOURS.get(kind, "#BBBBBB") if shape else "#FF4B4B"
        fig.add_shape(type="rect", x0=x, x1=x + width, y0=-height / 2, y1=height / 2,
                      fillcolor=colour, line=dict(color="#333333", width=1), opacity=0.9)
        label_y = height / 2 + 0.15 if i % 2 == 0 else -height / 2 - 0.15
        fig.add_annotation(x=x + width / 2, y=label_y, text=f"<b>{kind}</b><br>{_dims(shape)}",
                           showarrow=False, font=dict(size=10), yanchor="bottom" if i % 2 == 0 else "top")
        fig.add_trace(go.Scatter(x=[x + width / 2], y=[0], mode="markers", marker=dict(opacity=0, size=18),
                                 hovertemplate=f"{kind}<br>output {shape_text(shape)}<br>{params:,} params<extra></extra>",
                                 showlegend=False))
        x += width + 0.35
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), plot_bgcolor="white",
                      xaxis=dict(visible=False, range=[-0.2, max(x, 1.0)]),
                      yaxis=dict(visible=False, range=[-2.9, 2.9]))
    return fig
