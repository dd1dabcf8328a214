"""Sweeps from the Build page through AppTest: a tutorial sweep in one click, its size and time
estimated, started into the store as one grouped sweep, and followed on Compare."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components import resources
from components.compare_view import _frame, _row
from components.text import plain
from tests.dashboard.rendered import shown
from pipelines.modelspec.presets import get_preset
from pipelines.runs.sqlite_store import SQLiteRunStore

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture
def home(tmp_path, monkeypatch, shared_datasets):
    home = tmp_path / "home"
    monkeypatch.setenv("LAYERLAB_HOME", str(home))
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
    monkeypatch.setattr("pipelines.execution.scheduler.Scheduler.ensure_workers", lambda *a, **k: [])
    for cache in (resources.store, resources.scheduler, _frame, _row):
        cache.clear()
    yield home
    for cache in (resources.store, resources.scheduler, _frame, _row):
        cache.clear()


def test_the_learning_rate_sweep_in_two_clicks(home):
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/build.py").run()
    assert not at.exception
    at.button(key="build_sweep_tutorial_lr").click().run()
    assert not at.exception
    assert at.text_input(key="build_sweep_values_0").value == "0.0001, 0.001, 0.01, 0.1"
    assert at.text_input(key="build_sweep_values_1").proto.max_chars == 2000  # a paste is cut, not parsed
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


def test_a_finished_sweep_marks_its_best_and_repeats_it_with_three_seeds(home):
    from pipelines.execution.scheduler import Scheduler, SchedulerSettings
    from pipelines.modelspec.sweep import parse_axis
    from pipelines.runs.entities import MetricPoint, RunStatus

    with SQLiteRunStore(home) as store:
        scheduler = Scheduler(store, SchedulerSettings.from_env())
        sweep = scheduler.submit_sweep(get_preset("mlp-128x2").spec.with_fit(epochs=1), "mnist",
                                       [parse_axis("lr=0.001,0.01")])
        for _ in range(2):
            run = store.claim_next_run(1, 1)
            value = 0.9 if run.model_spec.compile.learning_rate == 0.001 else 0.8
            store.log_metrics(run.id, [MetricPoint("epoch", 0, 10, "val_accuracy", value, 100.0)])
            store.finish_run(run.id, RunStatus.COMPLETED, metrics={})
        runs = store.list_runs(sweep_id=sweep.id)
        [best] = [r for r in runs if r.model_spec.compile.learning_rate == 0.001]
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["sweep"] = sweep.id
    at.query_params["runs"] = ",".join(run.id for run in runs)
    at.switch_page("views/compare.py").run()
    assert not at.exception
    assert [s.value for s in at.success] == [plain(f"Best run: {best.name}, by its best epoch's validation accuracy")]
    at.button(key=f"compare_repeat_best_{sweep.id}").click().run()
    assert not at.exception
    with SQLiteRunStore(home) as store:
        repeats = [r for r in store.list_runs(repeat_group=best.id) if r.id != best.id]
    assert len(repeats) == 3 and {r.model_spec.compile.learning_rate for r in repeats} == {0.001}
    selection = at.query_params["runs"]
    selection = selection[0] if isinstance(selection, list) else selection
    assert {r.id for r in repeats} <= set(selection.split(","))


def test_compare_keeps_the_workers_going_while_it_follows_a_sweep(home, monkeypatch):
    from pipelines.execution.scheduler import Scheduler, SchedulerSettings
    from pipelines.modelspec.sweep import parse_axis

    calls = []
    monkeypatch.setattr("pipelines.execution.scheduler.Scheduler.ensure_workers",
                        lambda self, **kwargs: calls.append(kwargs) or [])
    resources.worker_upkeep.clear()
    with SQLiteRunStore(home) as store:
        sweep = Scheduler(store, SchedulerSettings.from_env()).submit_sweep(
            get_preset("mlp-128x2").spec.with_fit(epochs=1), "mnist", [parse_axis("lr=0.001,0.01")])
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["sweep"] = sweep.id
    at.switch_page("views/compare.py").run()
    assert not at.exception
    assert {"spare": 1} in calls


def test_the_retrain_label_states_the_capped_epochs(home):
    from pipelines.execution.scheduler import Scheduler, SchedulerSettings
    from pipelines.modelspec.sweep import parse_axis
    from pipelines.runs.entities import MetricPoint, RunStatus

    with SQLiteRunStore(home) as store:
        sweep = Scheduler(store, SchedulerSettings.from_env()).submit_sweep(
            get_preset("mlp-128x2").spec.with_fit(epochs=600), "mnist", [parse_axis("lr=0.001,0.01")])
        for value in (0.9, 0.8):
            run = store.claim_next_run(1, 1)
            store.log_metrics(run.id, [MetricPoint("epoch", 0, 10, "val_accuracy", value, 100.0)])
            store.finish_run(run.id, RunStatus.COMPLETED, metrics={})
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["sweep"] = sweep.id
    at.switch_page("views/compare.py").run()
    assert not at.exception
    assert at.button(key=f"compare_again_{sweep.id}").label == "Train the best setting again for 1000 epochs"


def build_a_cnn(at):
    """A CNN of the user's own, clicked together from an empty stack (the draft started from the
    mlp-128x2 tutorial model, whose name its spec still carries)."""
    at.button(key="build_clear").click().run()
    for layer_type in ("Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"):
        at.button(key=f"build_add_{layer_type}").click().run()
        assert not at.exception
    [n for n in at.number_input if n.label == "units"][-1].set_value(10).run()
    [s for s in at.selectbox if s.label == "activation"][-1].set_value("softmax").run()
    assert not at.exception and not at.button(key="build_train").disabled
    return at


def start_the_learning_rate_sweep(at, home, first_name):
    at.button(key="build_sweep_tutorial_lr").click().run()
    assert any(f"named “{first_name}”" in shown(c.value) for c in at.caption)  # said before it starts
    at.button(key="build_sweep_start").click().run()
    assert not at.exception
    with SQLiteRunStore(home) as store:
        sweep = max(store.list_sweeps(), key=lambda s: s.created_at)
        return sweep, sorted(store.list_runs(sweep_id=sweep.id), key=lambda r: r.model_spec.compile.learning_rate)


def test_a_sweep_of_your_own_model_is_named_after_it_not_after_a_tutorial_model(home):
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/build.py").run()
    build_a_cnn(at)
    sweep, runs = start_the_learning_rate_sweep(at, home, "Conv32-Pool-D128-D10 · adam · lr=0.0001")
    # Named as Build names a run of this model, less the learning rate the sweep varies: no run's
    # name claims "adam 1e-3" while it trains at 1e-4.
    assert sweep.name == "Conv32-Pool-D128-D10 · adam: lr"
    assert [run.name for run in runs] == [f"Conv32-Pool-D128-D10 · adam · lr={lr}" for lr in ("0.0001", "0.001",
                                                                                            "0.01", "0.1")]

    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/build.py").run()
    [t for t in at.text_area if t.label == "Run name"][0].set_value("my  cnn").run()
    sweep, runs = start_the_learning_rate_sweep(at, home, "my cnn · lr=0.0001")
    assert sweep.name == "my cnn: lr"
    assert [run.name for run in runs] == ["my cnn · lr=0.0001", "my cnn · lr=0.001", "my cnn · lr=0.01",
                                          "my cnn · lr=0.1"]
    with SQLiteRunStore(home) as store:
        assert not [run.name for run in store.list_runs() if "mlp" in run.name]
