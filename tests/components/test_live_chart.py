"""The live curves and the doctor's findings are built once per change of a run and shared by every session."""
from components import live_chart
from components.resources import Throttle
from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import MetricPoint, Progress, RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore


def test_sessions_watching_one_run_share_one_figure_until_it_changes(tmp_path):
    store = SQLiteRunStore(tmp_path)
    store.create_run("shared", "mnist", {}, total_epochs=2)
    run = store.claim_next_run(1, 1)
    store.log_metrics(run.id, [MetricPoint("batch", 0, 1, "loss", 2.0, 0.0)])
    first = live_chart.curves(store, store.get_run(run.id))
    second = live_chart.curves(store, store.get_run(run.id))  # another session, nothing new
    assert second.figure is first.figure and first.point_count == 1
    store.log_metrics(run.id, [MetricPoint("batch", 0, 2, "loss", 1.5, 0.0)])
    third = live_chart.curves(store, store.get_run(run.id))
    assert third.figure is not first.figure and third.point_count == 2
    assert list(third.figure.data[0].y) == [2.0, 1.0]  # per batch: the running mean 1.5 after 2.0


def test_the_findings_are_shared_with_the_figure_and_follow_the_run(tmp_path):
    store = SQLiteRunStore(tmp_path)
    spec = get_preset("mlp-128x2").spec.with_compile(learning_rate=1.0).with_fit(epochs=1)
    store.create_run("lr 1", "mnist", spec.to_dict(), total_epochs=1)
    run = store.claim_next_run(1, 1)
    store.update_progress(run.id, Progress(0, 1, 2, 4))
    store.log_metrics(run.id, [MetricPoint("batch", 0, 1, "loss", 2.3, 0.0),
                               MetricPoint("batch", 0, 2, "loss", 25001.15, 0.0)])
    live = live_chart.curves(store, store.get_run(run.id))
    assert [f.kind for f in live.findings] == ["diverged"]
    assert live_chart.curves(store, store.get_run(run.id)).findings is live.findings
    assert any(shape.type == "rect" for shape in live.figure.layout.shapes)
    store.finish_run(run.id, RunStatus.COMPLETED)
    ended = live_chart.curves(store, store.get_run(run.id))  # same points, but the run has ended
    assert ended.figure is not live.figure and [f.kind for f in ended.findings] == ["diverged"]


def test_throttle_lets_one_caller_through_per_interval():
    throttle = Throttle(60.0)
    assert throttle.ready() and not throttle.ready()
    assert Throttle(0.0).ready()
