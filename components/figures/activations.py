"""What one layer made of an input, as a figure: feature maps tiled into a grid, or a strip of bars.

Layers that keep an image's layout (convolutions, pooling, and whatever follows them before
Flatten) give one feature map per channel, tiled into a grid; flat layers (Dense, Flatten) give
one value per unit, shown as a strip of bars. `components.activation_view` picks which to draw.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from components.figures.plotly_text import plotly_text

MAP_PIXELS = 130  # how large one feature map is drawn
MAX_GRID_COLUMNS = 8
POSITIVE_COLOR = "#1C83E1"
NEGATIVE_COLOR = "#FF4B4B"


def grid_shape(count: int, max_columns: int = MAX_GRID_COLUMNS) -> tuple[int, int]:
    """(rows, columns) for `count` maps: as square as it gets, at most `max_columns` wide."""
    columns = min(max_columns, math.ceil(math.sqrt(count))) if count else 0
    return (math.ceil(count / columns), columns) if columns else (0, 0)


def tile_feature_maps(values: np.ndarray, max_columns: int = MAX_GRID_COLUMNS, gap: int = 1) -> np.ndarray:
    """(H, W, C) feature maps tiled row by row into one (rows*(H+gap)-gap, columns*(W+gap)-gap)
    array, each map scaled to [0, 1] by its own largest magnitude; gaps and empty tiles are NaN."""
    maps = np.asarray(values, np.float32)
    if maps.ndim == 2:
        maps = maps[..., np.newaxis]
    if maps.ndim != 3:
        raise ValueError(f"`values` must be (height, width, channels). Received: shape={maps.shape}")
    height, width, count = maps.shape
    rows, columns = grid_shape(count, max_columns)
    tiled = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan, np.float32)
    peaks = np.abs(maps).max(axis=(0, 1))
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        scale = peaks[index] if peaks[index] > 0 else 1.0
        tiled[top:top + height, left:left + width] = maps[..., index] / scale
    return tiled


def feature_maps_figure(values: np.ndarray, max_columns: int = MAX_GRID_COLUMNS) -> go.Figure:
    """Every channel of a (H, W, C) output as a small grey image, numbered from 1 in reading order."""
    maps = values if values.ndim == 3 else values[..., np.newaxis]
    height, width, count = maps.shape
    rows, columns = grid_shape(count, max_columns)
    tiled = tile_feature_maps(maps, max_columns)
    has_negative = bool((maps < 0).any())
    figure = go.Figure(go.Heatmap(
        z=tiled, colorscale="RdBu" if has_negative else "gray", zmid=0 if has_negative else None,
        zmin=-1 if has_negative else 0, zmax=1, showscale=False, hoverinfo="skip",
    ))
    for index in range(count):
        row, column = divmod(index, columns)
        figure.add_annotation(x=column * (width + 1) - 0.5, y=row * (height + 1) - 0.5, text=str(index + 1),
                              showarrow=False, xanchor="left", yanchor="top", font={"size": 10, "color": "#F9C80E"})
    figure.update_xaxes(visible=False, constrain="domain", fixedrange=True)
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain", fixedrange=True)
    figure.update_layout(height=min(900, rows * MAP_PIXELS + 20), margin={"l": 0, "r": 0, "t": 10, "b": 10},
                         plot_bgcolor="rgba(0,0,0,0)")
    return figure


def unit_strip_figure(values: np.ndarray, unit_names: Sequence[str] | None = None) -> go.Figure:
    """One bar per unit of a flat output; negative values in a second colour."""
    flat = np.asarray(values, np.float32).ravel()
    x = [plotly_text(name) for name in unit_names] if unit_names is not None else list(range(1, len(flat) + 1))
    figure = go.Figure(go.Bar(
        x=x, y=flat, marker={"color": [NEGATIVE_COLOR if v < 0 else POSITIVE_COLOR for v in flat]},
        hovertemplate="unit %{x}: %{y:.4f}<extra></extra>" if unit_names is None
        else "%{x}: %{y:.4f}<extra></extra>",
    ))
    figure.update_xaxes(type="category" if unit_names is not None else "linear",
                        title_text="class" if unit_names is not None else "unit", fixedrange=True)
    figure.update_yaxes(title_text="activation", fixedrange=True)
    figure.update_layout(height=280, margin={"l": 10, "r": 10, "t": 10, "b": 10}, bargap=0.1 if len(flat) < 64 else 0)
    return figure
