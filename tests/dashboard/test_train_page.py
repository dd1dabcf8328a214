"""The Train page through Streamlit's AppTest, on runs faked directly in a temp store (no workers)."""
import os
import time
from pathlib import Path

import json

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from components import live_chart, resources, run_list
from pipelines.runs import artifacts
from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import MetricPoint, Progress, RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.dashboard.rendered import shown

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
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
    """The app on the Train page (the whole app, so that page links and page switches resolve)."""
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("views/train.py")
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
    assert list(frame["Progress"]) == pytest.approx([0.0, 0.0, 100.0])  # percent
    assert frame["Test accuracy"].iloc[2] == pytest.approx(87.12)
    assert list(frame["Run"]) == [third.id, second.id, first.id]


def test_run_list_tells_runs_apart_by_their_settings(store):
    run = completed(store, "first")
    store.create_run("fast", "mnist", get_preset("mlp-512").spec.with_compile(learning_rate=1.0).to_dict())
    frame = page().dataframe[0].value
    assert list(frame["Dataset"]) == ["MNIST", "Fashion-MNIST"]  # titles, never fashion_mnist
    assert list(frame["Params"]) == [407_050, 118_282]  # as Keras counts them
    assert list(frame["Optimizer"]) == ["RMSprop", "Adam"]
    assert list(frame["Learning rate"]) == ["1e0", "1e-3"]
    assert list(frame["Epochs"]) == [5, 3]
    assert frame["Best val. accuracy"].iloc[1] == pytest.approx(50.0) and pd.isna(frame["Best val. accuracy"].iloc[0])
    column = run_list.COLUMNS["Best val. accuracy"]
    assert column["type_config"]["format"] == "%.1f%%"  # one decimal, as everywhere
    assert run_list.run_label(store.get_run(run.id)) == (
        f"first · Fashion-MNIST · 118,282 params · Adam 1e-3 · 3 epochs · 87.1% test accuracy · {run.id}")


def test_query_param_selects_the_run_else_the_newest(store):
    older, _ = completed(store, "older"), queued(store, "newer")
    assert page().subheader[0].value == "newer"
    assert page(older.id).subheader[0].value == "older"


def test_running_run_shows_progress_text_chart_and_stop(store):
    run = running(store)
    at = page(run.id)
    (bar,) = at.get("progress")
    assert bar.text.startswith("Epoch 2/3 · batch 120/1,688 · ETA ")
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
    assert metrics["Test accuracy"] == "87.1%"
    assert metrics["Test loss"] == "0.3600"
    assert metrics["Validation accuracy"] == "87.5%" and metrics["Train loss"] == "0.3100"
    assert metrics["Wall time"] == "42 s" and metrics["Samples/s"] == "12,345"
    labels = [b.label for b in at.download_button]
    assert labels[:2] == ["Download model (.keras)", "Download history (.csv)"]
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


# --- Before the first point, the doctor, and opening a run again -------------------------------

def diverged(store):
    """mlp-128x2 at learning rate 1, COMPLETED: its loss jumped from 2.3 to 5e4 at batch 2 of 4."""
    spec = get_preset("mlp-128x2").spec.with_compile(learning_rate=1.0).with_fit(epochs=1)
    run = store.create_run("lr 1", "mnist", spec.to_dict(), total_epochs=1)
    assert store.claim_next_run(os.getpid(), 10).id == run.id
    store.update_progress(run.id, Progress(0, 1, 4, 4))
    store.log_metrics(run.id, [MetricPoint("batch", 0, step, "loss", mean, 0.0)  # Keras' running means
                               for step, mean in ((1, 2.3), (2, 25001.15), (3, 16667.4), (4, 12500.6))])
    store.set_epochs_done(run.id, 1, 0)
    return store.finish_run(run.id, RunStatus.COMPLETED, metrics={"test_accuracy": 0.1})


def chart_spec(at) -> dict:
    (figure,) = chart(at)
    return json.loads(figure.proto.spec)


def test_before_the_first_batch_the_chart_spans_the_planned_epochs_and_accuracy_0_to_1(store):
    run = queued(store)
    layout = chart_spec(page(run.id))["layout"]
    assert layout["xaxis"]["range"] == [0, 3] and layout["xaxis2"]["range"] == [0, 3]
    assert layout["yaxis2"]["range"] == [0, 1]


def test_a_completed_run_that_diverged_says_so_and_its_chart_marks_where(store):
    run = diverged(store)
    at = page(run.id)
    (status,) = at.warning
    assert shown(status.value).startswith("Completed 1 epoch(s), but diverged: the loss jumped from 2.3 to 5e+04")
    assert not at.success
    figure = chart_spec(at)
    regions = [shape for shape in figure["layout"]["shapes"] if shape["type"] == "rect"]
    assert regions and regions[0]["x0"] == pytest.approx(0.5) and regions[0]["x1"] == pytest.approx(1.0)
    assert "Diverged" in [a["text"] for a in figure["layout"]["annotations"]]
    assert "Diverged in epoch 1: the loss jumped" in shown(texts(at))  # the sentence under the chart
    (fix,) = links(at, FIX_LABEL)
    assert fix.page == "build" and f"from_run={run.id}" in fix.query_string and "fix=0" in fix.query_string


def links(at, label: str) -> list:
    """The page links whose label starts with `label` (Train opens Build through links, never a page switch)."""
    return [link.proto for link in at.get("page_link") if link.proto.label.startswith(label)]


def follow(link) -> AppTest:
    """What a click on a Train page link to Build opens: Build with the link's query params."""
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("views/build.py")
    for pair in link.query_string.split("&"):
        name, _, value = pair.partition("=")
        at.query_params[name] = value
    at.run()
    return at


FIX_LABEL = "Lower the learning rate to "


def test_the_fix_opens_build_with_the_lower_learning_rate(store):
    run = diverged(store)
    (fix,) = links(page(run.id), FIX_LABEL)
    at = follow(fix)
    assert not at.exception, at.exception
    assert at.title[0].value == "Build"
    assert "from_run" not in at.query_params and "fix" not in at.query_params  # a refresh opens it no more
    (rate,) = [s for s in at.select_slider if s.label == "Learning rate (log scale)"]
    assert rate.value == pytest.approx(float(shown(fix.label).removeprefix(FIX_LABEL).split()[0]))
    assert any(shown(fix.label) in shown(w.value) for w in at.warning)


def test_edit_in_build_opens_the_runs_exact_spec(store):
    run = completed(store, "to edit")
    (edit,) = links(page(run.id), "Edit in Build")
    at = follow(edit)
    assert not at.exception, at.exception
    assert at.title[0].value == "Build"
    (epochs,) = [n for n in at.number_input if n.label == "Epochs"]
    assert epochs.value == 3  # the run's, not the preset's 5
    assert any(f"Run to edit ({run.id}) is open in Build" in shown(w.value) for w in at.warning)


def test_train_again_queues_a_copy_under_a_new_name_and_shows_it(store, shared_datasets, monkeypatch):
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
    run = completed(store, "twice")
    at = page(run.id)
    at.button(key="train_again").click().run()
    assert not at.exception, at.exception
    newest = store.list_runs(limit=1)[0]
    assert newest.id != run.id and newest.name == "twice (2)" and newest.status is RunStatus.QUEUED
    assert newest.dataset == run.dataset
    assert (newest.model_spec.layers, newest.model_spec.compile, newest.model_spec.fit) == \
        (run.model_spec.layers, run.model_spec.compile, run.model_spec.fit)
    assert at.query_params["run"] == newest.id and shown(at.subheader[0].value) == "twice (2)"


def test_a_run_with_a_model_links_to_the_test_page_with_itself(store):
    run = completed(store)
    links = {link.proto.label: link.proto for link in page(run.id).get("page_link")}
    assert links["Test this model"].page == "test" and f"run={run.id}" in links["Test this model"].query_string
    assert "Test this model" not in {link.proto.label for link in page(queued(store).id).get("page_link")}


def test_a_build_link_that_names_no_run_says_so_and_keeps_the_draft(store):
    at = follow(type("Link", (), {"query_string": "from_run=0123456789&fix=0"})())
    assert not at.exception, at.exception
    assert any("Could not open that run in Build" in shown(w.value) for w in at.warning)
    at = follow(type("Link", (), {"query_string": "from_run=../../etc&fix=x"})())
    assert not at.exception, at.exception
    assert any("is not a run id" in shown(w.value) for w in at.warning)


def test_again_names_count_up():
    assert run_list.again_name("mlp-512", set()) == "mlp-512 (2)"
    assert run_list.again_name("mlp-512 (2)", {"mlp-512 (2)"}) == "mlp-512 (3)"
    assert run_list.again_name("a (2)", {"a (2)", "a (3)"}) == "a (4)"
