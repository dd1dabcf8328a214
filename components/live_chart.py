"""The live training curves of a run, shared by every session that watches it.

The points come from one feed per run (fetching only new ones), and the figure is built once per
change of the run's curves and handed to every session, so eight people watching one run cost the
server about what one does. The figure itself is `components.figures.curves.curves_figure`.
"""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from components.figures.curves import curves_figure
from pipelines.runs.entities import MetricPoint, Run
from pipelines.runs.feed import MetricFeed
from pipelines.runs.store import RunStore


@st.cache_resource(max_entries=32, show_spinner=False)
def metric_feed(home: str, run_id: str) -> MetricFeed:
    """The shared feed of a run in the store at `home` (a cache entry per run, never in session state)."""
    return MetricFeed(run_id)


@st.cache_resource(max_entries=32, show_spinner=False)
def _shared_figure(home: str, run_id: str, resume_count: int, point_count: int, best_epoch: int | None,
                   steps_per_epoch: int, _points: tuple[MetricPoint, ...]) -> go.Figure:
    """One figure per state of a run's curves (keyed on everything that changes it; the points
    themselves are not hashed). Shared: every caller treats it as read-only."""
    return curves_figure(_points, best_epoch=best_epoch, steps_per_epoch=steps_per_epoch, revision=run_id)


def curves(store: RunStore, run: Run) -> tuple[go.Figure, MetricFeed, int]:
    """The run's curves as of now, its feed (for the ETA) and how many points they hold."""
    feed = metric_feed(str(store.home), run.id)
    points = feed.update(store, run)
    figure = _shared_figure(str(store.home), run.id, run.resume_count, len(points), run.best_epoch,
                            run.progress.steps_per_epoch, tuple(points))
    return figure, feed, len(points)
