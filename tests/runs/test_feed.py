"""The metric feed that fetches only new points, and the ETA of a run's current attempt."""
import dataclasses

import pytest

from pipelines.runs.entities import MetricPoint, Progress, RunStatus
from pipelines.runs.feed import MetricFeed, attempt_start, eta_seconds
from pipelines.runs.sqlite_store import SQLiteRunStore


def batch(epoch, step, name, value, timestamp=0.0):
    return MetricPoint("batch", epoch, step, name, value, timestamp)


@pytest.fixture
def store(tmp_path):
    with SQLiteRunStore(tmp_path / "home") as store:
        yield store


def running_run(store):
    store.create_run("feed", "mnist", {"fit": {"epochs": 4}}, total_epochs=4)
    return store.claim_next_run(1, 1)


def test_feed_fetches_only_new_points_and_starts_over_after_a_resume(store, monkeypatch):
    run = running_run(store)
    feed = MetricFeed(run.id)
    store.log_metrics(run.id, [batch(0, 1, "loss", 2.0)])
    assert [p.value for p in feed.update(store, run)] == [2.0]
    asked = []
    original = store.get_metrics_since
    monkeypatch.setattr(store, "get_metrics_since", lambda *a, **k: asked.append(a) or original(*a, **k))
    store.log_metrics(run.id, [batch(0, 2, "loss", 1.5)])
    assert [p.value for p in feed.update(store, run)] == [2.0, 1.5]
    assert asked[-1][1] > 0  # asked only for points after the last one seen
    store.delete_metrics_from_epoch(run.id, 0)
    store.log_metrics(run.id, [batch(0, 1, "loss", 1.9)])
    resumed = dataclasses.replace(store.get_run(run.id), resume_count=1)
    assert [p.value for p in feed.update(store, resumed)] == [1.9]


def test_attempt_start_of_a_fresh_and_of_a_resumed_run(store):
    run = running_run(store)
    assert attempt_start(run, now=run.started_at + 50) == (run.started_at, 0.0)
    store.update_progress(run.id, Progress(1, 4, 5, 10))
    store.set_epochs_done(run.id, 2, 1)
    store.finish_run(run.id, RunStatus.STOPPED)
    store.request_resume(run.id)
    resumed = store.claim_next_run(1, 1)
    # Its progress is still the last attempt's: it starts from its 2 finished epochs of 4.
    assert attempt_start(resumed, now=1234.0) == (1234.0, 0.5)
    store.update_progress(run.id, Progress(2, 4, 5, 10))
    assert attempt_start(store.get_run(run.id), now=1235.0) == (1235.0, pytest.approx(2.5 / 4))


def test_eta_from_the_pace_since_the_attempt_started():
    assert eta_seconds(0.5, None, now=10.0) is None  # no pace yet
    assert eta_seconds(0.25, (0.0, 0.0), now=10.0) == pytest.approx(30.0)
    assert eta_seconds(0.75, (10.0, 0.5), now=20.0) == pytest.approx(10.0)  # a resumed attempt's own pace
    assert eta_seconds(0.5, (10.0, 0.5), now=20.0) is None  # nothing done yet in this attempt
