"""The last guard: an unexpected exception in a page, or in a fragment rerunning alone, shows one
short error without its text, path or traceback, and its traceback goes to the server's log."""
import logging
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components import model_builder, resources
from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.dashboard.rendered import markdown_strings, shown

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
SECRET = "boom /secret/path"


@pytest.fixture
def store(tmp_path, monkeypatch, shared_datasets):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
    monkeypatch.setattr("pipelines.execution.scheduler.Scheduler.ensure_workers", lambda *a, **k: [])
    resources.store.clear()
    resources.scheduler.clear()
    with SQLiteRunStore(tmp_path / "home") as store:
        run = store.create_run("a run", "fashion_mnist", get_preset("mlp-128x2").spec.to_dict(), total_epochs=3)
        assert store.claim_next_run(os.getpid(), 10).id == run.id
        store.finish_run(run.id, RunStatus.STOPPED)
        yield store
    resources.store.clear()
    resources.scheduler.clear()


def boom(*args, **kwargs):
    raise RuntimeError(SECRET)


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(page).run()
    assert not at.exception, at.exception  # nothing reached Streamlit's own error display
    return at


def page_text(at) -> str:
    return "\n".join(shown(markdown) for _, markdown in markdown_strings(at))


def assert_one_short_error(at, where: str, caplog) -> None:
    (error,) = at.error
    assert f"Something went wrong in {where}" in shown(error.value)
    for leak in ("boom", "/secret", "Traceback", "RuntimeError"):
        assert leak not in page_text(at)
    (record,) = [r for r in caplog.records if r.name == "layerlab.dashboard"]
    assert record.exc_info[0] is RuntimeError and SECRET in str(record.exc_info[1])
    assert where in record.getMessage() and record.args[1] in shown(error.value)
    assert "Traceback (most recent call last)" in caplog.text and SECRET in caplog.text


@pytest.mark.parametrize("page, target, where", [
    ("views/train.py", "pipelines.runs.sqlite_store.SQLiteRunStore.list_runs", "the Train page"),
    ("views/build.py", "components.model_builder.validate", "the Build page"),
    ("views/data.py", "components.resources.load", "the Data page"),
])
def test_an_exception_in_a_page_is_one_short_error_and_a_logged_traceback(store, monkeypatch, caplog, page,
                                                                          target, where):
    monkeypatch.setattr(target, boom)
    resources.dataset_overview.clear()  # cached results would not call the broken function
    model_builder._validate_cached.clear()
    with caplog.at_level(logging.ERROR, logger="layerlab.dashboard"):
        at = open_page(page)
    assert_one_short_error(at, where, caplog)


def test_an_exception_in_a_fragment_leaves_the_rest_of_the_page(store, monkeypatch, caplog):
    monkeypatch.setattr("pipelines.runs.sqlite_store.SQLiteRunStore.get_run", boom)  # only the run view reads it
    with caplog.at_level(logging.ERROR, logger="layerlab.dashboard"):
        at = open_page("views/train.py")
    assert_one_short_error(at, "the selected run", caplog)
    assert list(at.dataframe[0].value["Name"]) == ["a run"]  # the run list, drawn by its own fragment


def test_st_stop_and_st_rerun_still_work_behind_the_guard(store, tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "empty"))
    resources.store.clear()
    at = open_page("views/test.py")  # no trained model: the page stops early with st.stop()
    assert "No trained model yet" in at.info[0].value and not at.error
