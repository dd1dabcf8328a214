"""The Train page through Streamlit's AppTest, on runs faked directly in a temp store (no workers)."""
import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components import live_chart, resources, run_list
from pipelines.runs import artifacts
from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import MetricPoint, Progress, RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.dashboard.rendered import shown

REPO = Path(__file__).resolve().parents[2]
PAGE = str(REPO / "dashboard" / "views" / "train.py")
NAN_ERROR = "loss became NaN at epoch 2, batch 140: try a lower learning rate"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("pipelines.execution.scheduler.Scheduler.ensure_workers", lambda *a, **k: [])
    resources.store.clear()
    resources.scheduler.clear()
    live_chart.metric_feed.clear()
    with SQLiteRunStore(tmp_path / "home") as store:
        yield store
    resources.store.clear()
    resources.scheduler.clear()
    live_chart.metric_feed.clear()


def queued(store, name="run"):
    return store.create_run(name, "fashion_mnist", get_preset("mlp-128x2").spec.with_fit(epochs=3).to_dict())


def running(store, name="running"):
    run = queued(store, name)
    assert store.claim_next_run(os.getpid(), 10).id == run.id
    now = time.time()
    store.update_progress(run.id, Progress(1, 3, 120, 1688))
    store.log_metrics(run.id, [MetricPoint("batch", 0, step, metric, value, now)
                               for step in (1, 16, 1688) for metric, value in (("loss", 1 / step), ("accuracy", 0.8))])
    store.log_metrics(run.id, [MetricPoint("epoch", 0, 1688, metric, 0.5, now)
                               for metric in ("loss", "accuracy", "val_loss", "val_accuracy")])
    store.set_epochs_done(run.id, 1, 0)
    return store.get_run(run.id)


def completed(store, name="completed"):
    run = running(store, name)
    run_dir = store.ensure_run_dir(run.id)
    (run_dir / artifacts.MODEL_FILE).write_bytes(b"a keras zip")
    (run_dir / artifacts.HISTORY_FILE).write_text("epoch,loss\n1,0.5\n")
    return store.finish_run(run.id, RunStatus.COMPLETED, metrics={
        "train_loss": 0.31, "train_accuracy": 0.885, "val_loss": 0.34, "val_accuracy": 0.875,
        "test_loss": 0.36, "test_accuracy": 0.8712, "wall_seconds": 42.0, "samples_per_second": 12345.0})


def page(query_run=None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    if query_run:
        at.query_params["run"] = query_run
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at) -> str:
    elements = [*at.markdown, *at.caption, *at.error, *at.warning, *at.info, *at.success, *at.subheader]
    return "\n".join(str(e.value) for e in elements)


def chart(at):
    return [e for e in at.get("plotly_chart") if e.key == "train_chart"]


def test_no_runs_yet_says_how_to_start_one(store):
    at = page()
    assert "No runs yet" in texts(at)
    assert not chart(at)


def test_run_list_shows_every_run_newest_first(store):
    first = completed(store, "first")
    second, third = queued(store, "second"), queued(store, "third")
    frame = page().dataframe[0].value
    assert list(frame["Name"]) == ["third", "second", "first"]
    assert list(frame["Status"]) == ["QUEUED", "QUEUED", "COMPLETED"]
    assert list(frame["Queue"].astype("object").fillna(0)) == [2, 1, 0]
    assert list(frame["Progress"]) == pytest.approx([0.0, 0.0, 1.0])
    assert frame["Test accuracy"].iloc[2] == pytest.approx(0.8712)
    assert list(frame["Run"]) == [third.id, second.id, first.id]


def test_query_param_selects_the_run_else_the_newest(store):
    older, _ = completed(store, "older"), queued(store, "newer")
    assert page().subheader[0].value == "newer"
    assert page(older.id).subheader[0].value == "older"


def test_running_run_shows_progress_text_chart_and_stop(store):
    run = running(store)
    at = page(run.id)
    (bar,) = at.get("progress")
    assert bar.text.startswith("Epoch 2/3 · batch 120/1688 · ETA ")
    assert bar.value == int(100 * run.progress.fraction)
    (figure,) = chart(at)
    assert figure.proto.spec  # the figure's JSON
    assert at.button(key="train_stop").label == "Stop"
    assert not at.button(key="train_stop").disabled


def test_stop_on_a_running_run_requests_a_stop(store):
    run = running(store)
    at = page(run.id)
    at.button(key="train_stop").click().run()
    assert not at.exception, at.exception
    after = store.get_run(run.id)
    assert after.stop_requested and after.status is RunStatus.RUNNING
    assert "Stop requested" in texts(at)
    assert at.button(key="train_stop").disabled


def test_queued_run_shows_its_place_in_the_queue(store):
    queued(store, "first")
    second = queued(store, "second")
    (bar,) = page(second.id).get("progress")
    assert bar.text == "Queued · position 2 in the queue"


def test_completed_run_shows_final_metrics_and_downloads(store):
    run = completed(store)
    at = page(run.id)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"] == "87.12%"
    assert metrics["Test loss"] == "0.3600"
    assert metrics["Validation accuracy"] == "87.50%" and metrics["Train loss"] == "0.3100"
    assert metrics["Wall time"] == "42 s" and metrics["Samples/s"] == "12,345"
    labels = [b.label for b in at.download_button]
    assert labels == ["Download model (.keras)", "Download history (.csv)"]
    assert chart(at)
    assert not any(b.key in ("train_stop", "train_resume") for b in at.button)


def test_failed_run_shows_its_reason_in_words(store):
    run = running(store)
    store.finish_run(run.id, RunStatus.FAILED, error=NAN_ERROR)
    at = page(run.id)
    assert [shown(e.value) for e in at.error] == [NAN_ERROR]
    assert not any(b.key == "train_resume" for b in at.button)


def test_interrupted_run_offers_resume_which_requeues_it(store):
    run = running(store)
    store.mark_interrupted(run.id, "The worker process (pid 1) stopped without finishing, after 1 finished epoch(s).")
    at = page(run.id)
    assert "stopped without finishing" in at.warning[0].value
    at.button(key="train_resume").click().run()
    assert not at.exception, at.exception
    after = store.get_run(run.id)
    assert after.status is RunStatus.QUEUED and after.resume_count == 1
    assert at.get("progress")[0].text == "Queued · position 1 in the queue"


def test_stopped_run_offers_resume(store):
    run = running(store)
    store.finish_run(run.id, RunStatus.STOPPED)
    at = page(run.id)
    assert "Stopped after 1 finished epoch(s)" in texts(at)
    assert at.button(key="train_resume").label == "Resume"


def test_unknown_run_in_the_url_says_so_and_keeps_the_list(store):
    completed(store)
    at = page("abcdef1234")
    assert "No run `abcdef1234`" in at.warning[0].value and "pick one from the list" in at.warning[0].value
    assert len(at.dataframe[0].value) == 1
    assert not chart(at)


@pytest.mark.parametrize("bad_value", ["../../etc", "[x](http://127.0.0.1:9/)", "ABCDEF1234", "abcdef12345"])
def test_a_url_value_that_is_no_run_id_is_refused_in_fixed_words(store, bad_value):
    completed(store)
    at = page(bad_value)
    assert [w.value for w in at.warning] == [run_list.MALFORMED_RUN_LINK]
    assert len(at.dataframe[0].value) == 1
    assert not chart(at)
