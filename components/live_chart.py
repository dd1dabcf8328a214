"""The live feed behind the training curves: a run's metric points, fetching only new ones.

The figure itself is `components.figures.curves.curves_figure`, a pure function of the points.
"""
from __future__ import annotations

import streamlit as st

from pipelines.runs.feed import MetricFeed


@st.cache_resource(max_entries=32, show_spinner=False)
def metric_feed(home: str, run_id: str) -> MetricFeed:
    """The shared feed of a run in the store at `home` (a cache entry per run, never in session state)."""
    return MetricFeed(run_id)
