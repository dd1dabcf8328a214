"""The live training curves of a run, with the training doctor's findings, shared by every session
that watches it.

The points come from one feed per run (fetching only new ones), and the figure and the findings
are built once per change of the run's curves (or of what else they depend on: its error, whether it
has ended) and handed to every session, so eight people watching one run cost the server about what
one does. The figure itself is `components.figures.curves.curves_figure`.
"""
from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st

from components.figures.curves import curves_figure
from pipelines.runs.doctor import Finding, diagnose_run
from pipelines.runs.entities import MetricPoint, Run
from pipelines.runs.feed import MetricFeed
from pipelines.runs.store import RunStore


@dataclass(frozen=True, eq=False)
class Curves:
    """A run's curves as of now: the shared figure (read-only), the doctor's findings, the feed
    (for the ETA) and how many points the curves hold."""

    figure: go.Figure
    findings: tuple[Finding, ...]
    feed: MetricFeed
    point_count: int


@st.cache_resource(max_entries=32, show_spinner=False)
def metric_feed(home: str, run_id: str) -> MetricFeed:
    """The shared feed of a run in the store at `home` (a cache entry per run, never in session state)."""
    return MetricFeed(run_id)


@st.cache_resource(max_entries=32, show_spinner=False)
def _shared(home: str, run_id: str, resume_count: int, point_count: int, best_epoch: int | None,
            steps_per_epoch: int, total_epochs: int, error: str | None, ended: bool,
            _run: Run, _points: tuple[MetricPoint, ...]) -> tuple[go.Figure, tuple[Finding, ...]]:
    """One figure and diagnosis per state of a run's curves, keyed on everything that changes them
    (the points and the run themselves are not hashed). Shared: every caller treats them as read-only."""
    findings = tuple(diagnose_run(_run, _points))
    figure = curves_figure(_points, best_epoch=best_epoch, steps_per_epoch=steps_per_epoch, revision=run_id,
                           total_epochs=total_epochs, findings=findings)
    return figure, findings


def _planned_epochs(run: Run) -> int:
    """The epochs the run's spec plans, for a run whose progress does not know them yet."""
    fit = run.spec.get("fit") if isinstance(run.spec, dict) else None
    epochs = fit.get("epochs") if isinstance(fit, dict) else None
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0 else 0


def curves(store: RunStore, run: Run) -> Curves:
    """The run's curves and findings as of now."""
    feed = metric_feed(str(store.home), run.id)
    points = feed.update(store, run)
    planned = run.progress.total_epochs or _planned_epochs(run)
    figure, findings = _shared(str(store.home), run.id, run.resume_count, len(points), run.best_epoch,
                               run.progress.steps_per_epoch, planned, run.error, run.status.is_terminal, run,
                               tuple(points))
    return Curves(figure, findings, feed, len(points))
