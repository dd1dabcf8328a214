"""The metric feed that fetches only new points, and the ETA of a run's current attempt."""
import dataclasses

import pytest

from pipelines.runs.entities import MetricPoint, Progress, RunStatus
from pipelines.runs.feed import MetricFeed, attempt_started_at, batch_values, eta_seconds
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
    assert attempt_started_at(run, now=run.started_at + 50) == run.started_at
    store.update_progress(run.id, Progress(1, 4, 5, 10))
    store.set_epochs_done(run.id, 2, 1)
    store.finish_run(run.id, RunStatus.STOPPED)
    store.request_resume(run.id)
    resumed = store.claim_next_run(1, 1)
    assert attempt_started_at(resumed, now=1234.0) == 1234.0  # the store keeps only the first start


def test_eta_goes_by_the_batches_not_by_the_set_up_before_them():
    """A run claimed at t=0 spends 9 s loading and tracing; its batches then take 0.1 s each."""
    steps = [batch(0, 1, "loss", 2.0, timestamp=9.0), batch(0, 11, "loss", 1.0, timestamp=10.0)]
    # 11 of 100 batches done, 10 of them in 1 s: 89 to go take 8.9 s (timed from t=0: 80.9 s).
    assert eta_seconds(steps, 1, 100, since=0.0, now=10.0) == pytest.approx(8.9)
    assert eta_seconds(steps, 1, 100, since=0.0, now=11.0) == pytest.approx(7.9)  # time since the newest point
    assert eta_seconds(steps, 2, 50, since=0.0, now=10.0) == pytest.approx(8.9)  # epochs do not matter
    assert eta_seconds(steps[:1], 1, 100, since=0.0, now=10.0) is None  # one point: no pace yet
    assert eta_seconds(steps, 1, 100, since=9.5, now=10.0) is None  # a resumed attempt: only its own points
    assert eta_seconds(steps, 0, 0, since=0.0, now=10.0) is None  # the plan is not known yet
    assert eta_seconds(steps, 1, 100, since=0.0, now=100.0) == 0.0


def test_the_feed_times_a_fresh_run_from_its_first_batch(store):
    run = running_run(store)
    start = run.started_at
    store.update_progress(run.id, Progress(0, 4, 11, 100))
    store.log_metrics(run.id, [batch(0, 1, "loss", 2.0, timestamp=start + 3.0),
                               batch(0, 11, "loss", 1.0, timestamp=start + 4.0)])
    feed = MetricFeed(run.id)
    run = store.get_run(run.id)
    feed.update(store, run)
    # 10 batches a second, 389 of 400 to go.
    assert feed.eta_seconds(run, now=start + 4.0) == pytest.approx(38.9)


def test_batch_values_undo_keras_running_means_per_epoch():
    """Keras logs the mean of the epoch so far; each point becomes the mean of the batches it covers."""
    per_batch = [4.0, 2.0, 3.0, 1.0]
    running = [sum(per_batch[:k]) / k for k in range(1, 5)]
    points = ([batch(0, step, "loss", running[step - 1]) for step in (1, 2, 4)]
              + [MetricPoint("epoch", 0, 4, "loss", running[-1], 0.0)]
              + [batch(1, 1, "loss", 0.5), batch(1, 2, "accuracy", 0.5), batch(1, 4, "accuracy", 0.75)])
    values = batch_values(points)
    assert [(p.epoch, p.step, p.name) for p in values] == [
        (0, 1, "loss"), (0, 2, "loss"), (0, 4, "loss"), (1, 1, "loss"), (1, 2, "accuracy"), (1, 4, "accuracy")]
    assert [p.value for p in values] == pytest.approx([4.0, 2.0, 2.0, 0.5, 0.5, 1.0])  # (3+1)/2, then epoch 2


def test_batch_values_stay_in_range_and_keep_points_out_of_order():
    rounded = [batch(0, 1, "accuracy", 0.9999999), batch(0, 2, "accuracy", 1.0), batch(0, 1, "loss", 1e-8),
               batch(0, 2, "loss", 0.0), batch(0, 2, "loss", 0.3)]
    assert [p.value for p in batch_values(rounded)] == pytest.approx([0.9999999, 1.0, 1e-8, 0.0, 0.3])
