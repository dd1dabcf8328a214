"""A deleted run store, seen from the dashboard: the message names the file, nothing is created
silently, and one click rebuilds the index from the run folders."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components import live_chart, resources
from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.dashboard.rendered import shown

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("LAYERLAB_HOME", str(home))
    monkeypatch.setattr("pipelines.execution.scheduler.Scheduler.ensure_workers", lambda *a, **k: [])
    for cache in (resources.store, resources.scheduler, live_chart.metric_feed):
        cache.clear()
    yield home
    for cache in (resources.store, resources.scheduler, live_chart.metric_feed):
        cache.clear()


def test_a_deleted_store_is_named_and_rebuilt_with_one_click(home):
    with SQLiteRunStore(home) as store:
        spec = get_preset("mlp-128x2").spec.to_dict()
        kept = [store.create_run(f"kept {i}", "fashion_mnist", spec, total_epochs=2) for i in range(3)]
        store.claim_next_run(1, 1)
        store.finish_run(kept[0].id, RunStatus.COMPLETED, metrics={"test_accuracy": 0.9})
    (home / "runs.db").unlink()

    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("views/train.py").run()
    assert not at.exception
    errors = shown(" ".join(e.value for e in at.error))
    assert "runs.db" in errors and "Traceback" not in errors
    assert not (home / "runs.db").exists()  # nothing was created over the run folders
    rebuild = next(b for b in at.button if b.label == "Rebuild the index from the run folders")
    rebuild.click().run()
    assert not at.exception
    assert "3 run(s) listed again" in shown(" ".join(i.value for i in at.info))
    with SQLiteRunStore(home) as store:
        runs = {run.name: run for run in store.list_runs()}
    assert set(runs) == {"kept 0", "kept 1", "kept 2"}
    assert runs["kept 0"].status is RunStatus.COMPLETED and runs["kept 0"].metrics["test_accuracy"] == 0.9
