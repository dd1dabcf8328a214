"""Sweeps from the Build page through AppTest: a tutorial sweep in one click, its size and time
estimated, started into the store as one grouped sweep, and followed on Compare."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components import resources
from components.compare_view import _frame
from components.sweep_panel import settings_for
from pipelines.modelspec.presets import get_preset
from pipelines.runs.sqlite_store import SQLiteRunStore

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture
def home(tmp_path, monkeypatch, shared_datasets):
    home = tmp_path / "home"
    monkeypatch.setenv("LAYERLAB_HOME", str(home))
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
    monkeypatch.setattr("pipelines.execution.scheduler.Scheduler.ensure_workers", lambda *a, **k: [])
    for cache in (resources.store, resources.scheduler, _frame):
        cache.clear()
    yield home
    for cache in (resources.store, resources.scheduler, _frame):
        cache.clear()


def test_settings_offered_are_the_models_own():
    options = settings_for(get_preset("mlp-128x2").spec)
    assert options[:5] == ["lr", "optimizer", "batch_size", "epochs", "seed"]
    assert "units@2" in options and "units@3" in options and "units@4" not in options  # not the output layer


def test_the_learning_rate_sweep_in_two_clicks(home):
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/build.py").run()
    assert not at.exception
    at.button(key="build_sweep_tutorial_lr").click().run()
    assert not at.exception
    assert at.text_input(key="build_sweep_values_0").value == "0.0001, 0.001, 0.01, 0.1"
    assert any("4 runs, about" in m.value for m in at.markdown)
    at.button(key="build_sweep_start").click().run()
    assert not at.exception
    with SQLiteRunStore(home) as store:
        [sweep] = store.list_sweeps()
        runs = store.list_runs(sweep_id=sweep.id)
    assert sorted(run.model_spec.compile.learning_rate for run in runs) == [1e-4, 1e-3, 1e-2, 1e-1]
    compare = AppTest.from_file(APP, default_timeout=120)
    compare.query_params["sweep"] = sweep.id
    compare.query_params["runs"] = ",".join(run.id for run in runs)
    compare.switch_page("views/compare.py").run()
    assert not compare.exception
    assert "0 of 4 done" in compare.get("progress")[0].proto.text
    compare.button(key=f"compare_cancel_{sweep.id}").click().run()
    with SQLiteRunStore(home) as store:
        assert {run.status.value for run in store.list_runs(sweep_id=sweep.id)} == {"STOPPED"}
