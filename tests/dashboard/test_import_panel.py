"""The import panel on the Test and Compare pages (AppTest), and an imported run compared with a
trained one: a run with no epoch curves must not break the page. Uploading is in tests/e2e."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components import resources
from components.compare_view import _frame, _row
from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import MetricPoint, RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
MLP = get_preset("mlp-128x2").spec


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("pipelines.execution.scheduler.Scheduler.ensure_workers", lambda *a, **k: [])
    for cache in (resources.store, resources.scheduler, _frame, _row):
        cache.clear()
    with SQLiteRunStore(tmp_path / "home") as store:
        yield store
    for cache in (resources.store, resources.scheduler, _frame, _row):
        cache.clear()


def test_the_test_page_offers_the_import_open_when_there_is_no_model_yet(store):
    at = AppTest.from_file(APP, default_timeout=60).switch_page("views/test.py").run()
    assert not at.exception
    panel = [e for e in at.expander if e.label == "Import a .keras model"]
    assert panel and panel[0].proto.expanded
    assert at.button(key="import_go").disabled  # nothing uploaded yet


def test_an_imported_run_without_curves_compares_with_a_trained_one(store, tmp_path):
    trained = store.create_run("trained", "fashion_mnist", MLP.to_dict(), total_epochs=2)
    store.claim_next_run(1, 1)
    store.log_metrics(trained.id, [MetricPoint("epoch", e, 10, "val_accuracy", 0.8, 100.0 + e) for e in range(2)])
    store.finish_run(trained.id, RunStatus.COMPLETED, metrics={"test_accuracy": 0.8})
    files = tmp_path / "files"
    files.mkdir()
    imported = store.add_finished_run("teammate", "fashion_mnist", MLP.to_dict(), files,
                                      metrics={"test_accuracy": 0.85}, tags=("imported",))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["runs"] = f"{trained.id},{imported.id}"
    at = at.switch_page("views/compare.py").run()
    assert not at.exception
    assert at.subheader[0].value == "2 runs"
    assert any(e.label == "Import a .keras model" for e in at.expander)


def test_an_imported_run_opens_on_the_train_page(store, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    imported = store.add_finished_run("teammate", "fashion_mnist", MLP.to_dict(), files,
                                      metrics={"test_accuracy": 0.85, "test_loss": 0.4}, tags=("imported",))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = imported.id
    at = at.switch_page("views/train.py").run()
    assert not at.exception
    assert any(metric.value == "85.0%" for metric in at.metric)


def test_a_refused_upload_shows_its_reason_as_text_and_stores_nothing(store):
    at = AppTest.from_file(APP, default_timeout=60).switch_page("views/test.py").run()
    name = "[team](http://example.test/x) ![t](http://example.test/t.png).keras"
    at.file_uploader(key="import_file").set_value((name, b"\x89HDF\r\n\x1a\n" + b"\0" * 64,
                                                   "application/octet-stream")).run()
    at.button(key="import_go").click().run()
    assert not at.exception
    (error,) = at.error
    assert "HDF5" in error.value and "\\[team\\]\\(http" in error.value  # the name escaped: no link, no image
    assert store.list_runs() == []


def test_an_upload_over_the_import_cap_is_refused_by_its_size_before_a_byte_is_copied(store, monkeypatch):
    from components.import_view import _import
    from pipelines.errors import ModelImportError

    class Upload:
        name, size = "huge.keras", 3 * 2**20

        def getbuffer(self):
            raise AssertionError("the upload was read")

    monkeypatch.setenv("LAYERLAB_IMPORT_MAX_MB", "2")
    with pytest.raises(ModelImportError, match=r"huge.keras is 3.0 MB; at most 2 MB \(LAYERLAB_IMPORT_MAX_MB\)"):
        _import(store, Upload(), "mnist", "")
    assert store.list_runs() == []
