"""The live curves are built once per change of a run's points and shared by every session."""
from components import live_chart
from components.resources import Throttle
from pipelines.runs.entities import MetricPoint
from pipelines.runs.sqlite_store import SQLiteRunStore


def test_sessions_watching_one_run_share_one_figure_until_it_changes(tmp_path):
    store = SQLiteRunStore(tmp_path)
    store.create_run("shared", "mnist", {}, total_epochs=2)
    run = store.claim_next_run(1, 1)
    store.log_metrics(run.id, [MetricPoint("batch", 0, 1, "loss", 2.0, 0.0)])
    first, _, count = live_chart.curves(store, store.get_run(run.id))
    second, _, _ = live_chart.curves(store, store.get_run(run.id))  # another session, nothing new
    assert second is first and count == 1
    store.log_metrics(run.id, [MetricPoint("batch", 0, 2, "loss", 1.5, 0.0)])
    third, _, count = live_chart.curves(store, store.get_run(run.id))
    assert third is not first and count == 2 and list(third.data[0].y) == [2.0, 1.5]


def test_throttle_lets_one_caller_through_per_interval():
    throttle = Throttle(60.0)
    assert throttle.ready() and not throttle.ready()
    assert Throttle(0.0).ready()
