"""The comparison table: best-epoch values, baseline differences, which setting mattered, repeats."""
import dataclasses
import math

import numpy as np
import pytest

from pipelines.modelspec.presets import get_preset
from pipelines.runs import compare
from pipelines.runs.compare import (best_epoch, curve, differences, ema, repeats, runs_frame,
                                    setting_correlations, varied_settings)
from pipelines.runs.entities import MetricPoint, RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from pipelines.runs.sweeps import best_run, ranking_metric

MLP = get_preset("mlp-128x2").spec


def epoch_points(val_accuracy, start=0.0):
    return [MetricPoint("epoch", e, 10, "val_accuracy", v, start + e) for e, v in enumerate(val_accuracy)]


def test_best_epoch_is_not_the_last():
    assert best_epoch(epoch_points([0.80, 0.86, 0.84])) == (0.86, 2, 0.84)
    train_only = [MetricPoint("epoch", 0, 10, "accuracy", 0.7, 0.0)]
    assert best_epoch(train_only) == (None, None, None)  # training accuracy is not shown as validation
    assert best_epoch([]) == (None, None, None)


@pytest.fixture
def sweep(tmp_path):
    """Four finished runs: learning rates 1e-4..1e-1 (the last one twice more, by seed)."""
    store = SQLiteRunStore(tmp_path)
    runs, points = [], {}
    settings = [(1e-4, 0, [0.70, 0.75]), (1e-3, 0, [0.80, 0.86]), (1e-2, 0, [0.84, 0.85]),
                (1e-1, 0, [0.30, 0.20]), (1e-1, 1, [0.35, 0.25]), (1e-1, 2, [0.40, 0.30])]
    for lr, seed, val in settings:
        spec = MLP.with_compile(learning_rate=lr).with_fit(seed=seed, epochs=2)
        run = store.create_run(f"lr {lr} seed {seed}", "fashion_mnist", spec.to_dict(), total_epochs=2)
        store.claim_next_run(1, 1)
        store.finish_run(run.id, RunStatus.COMPLETED, metrics={"test_accuracy": val[-1] - 0.01})
        runs.append(store.get_run(run.id))
        points[run.id] = epoch_points(val)
    return runs, points


def test_frame_has_the_settings_and_the_best_epoch(sweep):
    runs, points = sweep
    frame = runs_frame(runs, points)
    row = frame.loc[runs[1].id]
    assert (row["architecture"], row["optimizer"], row["learning_rate"]) == ("D128-D128-D10", "adam", 1e-3)
    assert (row["best_val_accuracy"], row["best_epoch"], row["final_val_accuracy"]) == (0.86, 2, 0.86)
    assert frame.loc[runs[2].id, "best_epoch"] == 2 and frame.loc[runs[3].id, "best_epoch"] == 1
    assert varied_settings(frame) == ["learning_rate", "seed"]


def test_runs_without_validation_rank_by_training_accuracy_and_say_so(sweep):
    runs, points = sweep
    assert ranking_metric(runs, points) == "val_accuracy" and best_run(runs, points) == runs[1]
    train_only = {run_id: [dataclasses.replace(p, name="accuracy") for p in run_points]
                  for run_id, run_points in points.items()}
    assert ranking_metric(runs, train_only) == "accuracy" and best_run(runs, train_only) == runs[1]
    assert runs_frame(runs, train_only)["best_val_accuracy"].isna().all()
    # One run with validation is enough to rank them all by it: training accuracy never outranks it.
    train_only[runs[0].id] = points[runs[0].id]
    assert ranking_metric(runs, train_only) == "val_accuracy" and best_run(runs, train_only) == runs[0]


def test_parameters_as_recorded_else_counted_from_the_spec(tmp_path):
    """A stopped or imported run has no recorded count; the table still shows its size."""
    store = SQLiteRunStore(tmp_path)
    spec = MLP.with_fit(epochs=1)
    stopped = store.create_run("stopped", "fashion_mnist", spec.to_dict(), total_epochs=1)
    trained = store.create_run("trained", "fashion_mnist", spec.to_dict(), total_epochs=1)
    store.claim_next_run(1, 1)
    store.finish_run(trained.id, RunStatus.COMPLETED, metrics={"parameters": 7.0})
    frame = runs_frame([store.get_run(stopped.id), store.get_run(trained.id)], {})
    assert frame.loc[stopped.id, "parameters"] == 118_282  # 784*128+128 + 128*128+128 + 128*10+10
    assert frame.loc[trained.id, "parameters"] == 7


def test_differences_from_a_baseline(sweep):
    runs, points = sweep
    delta = differences(runs_frame(runs, points), runs[1].id)
    assert delta.loc[runs[1].id, "best_val_accuracy"] == 0
    assert delta.loc[runs[0].id, "best_val_accuracy"] == pytest.approx(-0.11)


def test_correlation_of_each_setting_with_the_metric(sweep):
    runs, points = sweep
    correlations = setting_correlations(runs_frame(runs[:4], points))
    assert list(correlations.index) == ["learning_rate"]
    assert -1 <= correlations["learning_rate"] < 0  # larger rates did worse here


def test_repeats_show_the_noise(sweep):
    runs, points = sweep
    groups = repeats(runs_frame(runs, points))
    assert len(groups) == 1
    group = groups.iloc[0]
    assert group["runs"] == 3 and group["mean"] == pytest.approx(0.35)
    assert group["std"] == pytest.approx(0.05) and (group["min"], group["max"]) == (0.30, 0.40)


def test_ema_and_curves():
    np.testing.assert_allclose(ema([1.0, 1.0, 1.0], 0.9), [1.0, 1.0, 1.0])  # debiased: no pull to 0
    assert ema([0.0, 10.0], 0.0).tolist() == [0.0, 10.0]
    with pytest.raises(ValueError, match="smoothing"):
        ema([1.0], 1.0)
    x, y = curve(epoch_points([0.5, 0.6], start=100.0), "val_accuracy", by="time")
    assert x.tolist() == [0.0, 1.0] and y.tolist() == [0.5, 0.6]
    assert curve(epoch_points([0.5, math.nan]), "val_accuracy")[1].tolist() == [0.5]


def test_repeats_become_one_mean_line_with_a_min_max_band():
    first = (np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.7, 0.8]))
    second = (np.array([1.0, 2.0]), np.array([0.7, 0.9]))  # still training: epoch 3 not reached
    x, mean, low, high = compare.mean_band([first, second])
    assert x.tolist() == [1.0, 2.0]
    assert mean == pytest.approx([0.6, 0.8])
    assert low.tolist() == [0.5, 0.7] and high.tolist() == [0.7, 0.9]
    assert all(len(part) == 0 for part in compare.mean_band([]))


def finished_runs(store, specs_and_accuracies):
    runs, points = [], {}
    for index, (spec, accuracy) in enumerate(specs_and_accuracies):
        run = store.create_run(f"run {index}", "fashion_mnist", spec.to_dict(), total_epochs=spec.fit.epochs)
        store.claim_next_run(1, 1)
        store.finish_run(run.id, RunStatus.COMPLETED, metrics={})
        runs.append(store.get_run(run.id))
        points[run.id] = epoch_points([accuracy])
    return runs, points


def test_repeats_are_the_same_whole_spec_with_different_seeds(tmp_path):
    """An activation, a validation split or a repeated seed is not run-to-run noise."""
    from pipelines.modelspec import edit

    tanh = edit.set_param(MLP, 1, "activation", "tanh")
    runs, points = finished_runs(SQLiteRunStore(tmp_path), [
        (MLP.with_fit(seed=1), 0.80), (MLP.with_fit(seed=2), 0.82),
        (tanh.with_fit(seed=1), 0.70), (tanh.with_fit(seed=2), 0.74),
        (MLP.with_fit(seed=3, validation_split=0.3), 0.60),   # another split: nobody's repeat
        (tanh.with_fit(seed=2), 0.99)])                        # tanh seed 2 again: not a third seed
    groups = repeats(runs_frame(runs, points))
    assert sorted(groups["runs"]) == [2, 2]
    by_members = {frozenset(ids): row for ids, (_, row) in zip(groups["ids"], groups.iterrows())}
    relu = by_members[frozenset({runs[0].id, runs[1].id})]
    assert relu["mean"] == pytest.approx(0.81)
    assert frozenset({runs[2].id, runs[3].id}) in by_members
    assert runs[4].id not in {i for ids in groups["ids"] for i in ids}


def test_a_sweep_of_a_layer_setting_is_compared_and_correlated(tmp_path):
    """The tutorials' inner-size sweep (units of layer 2: 10, 100, 1000) has its own axis and bar."""
    from pipelines.modelspec import edit

    from pipelines.runs.entities import PlannedRun

    store = SQLiteRunStore(tmp_path)
    planned = [PlannedRun(f"units {units}", edit.set_param(MLP, 1, "units", units).to_dict(), 5, {"units@2": units})
               for units in (10, 100, 1000)]
    sweep = store.create_sweep("inner size", "fashion_mnist", MLP.to_dict(), [("units@2", (10, 100, 1000))], planned)
    runs = sorted(store.list_runs(sweep_id=sweep.id), key=lambda run: run.sweep_settings["units@2"])
    points = {run.id: epoch_points([accuracy]) for run, accuracy in zip(runs, (0.80, 0.86, 0.88))}
    baseline = store.create_run("baseline", "fashion_mnist", MLP.to_dict(), total_epochs=5)
    frame = runs_frame([*runs, baseline], {**points, baseline.id: epoch_points([0.85])})
    assert frame["units@2"].tolist() == [10, 100, 1000, 128]  # the baseline's from its spec
    assert varied_settings(frame) == ["units@2"]
    correlations = setting_correlations(frame)
    assert list(correlations.index) == ["units@2"] and correlations["units@2"] > 0
    assert compare.setting_label("units@2") == "units of layer 2"


def test_the_best_value_of_a_loss_is_its_lowest():
    points = [MetricPoint("epoch", e, 10, "val_loss", v, e) for e, v in enumerate([0.5, 0.3, 0.4])]
    assert compare.best_value(points, "val_loss") == 0.3
    assert compare.best_value(epoch_points([0.5, 0.7, 0.6]), "val_accuracy") == 0.7
    assert compare.best_value(points, "accuracy") is None


def test_the_curves_open_on_a_metric_that_has_points():
    def points(*names):
        return [MetricPoint("epoch", 0, 10, name, 0.5, 0.0) for name in names]

    assert compare.curves_default({"a": [], "b": []}) is None  # nothing has ended an epoch yet
    assert compare.curves_default({"a": [], "b": points("loss", "accuracy", "val_loss", "val_accuracy")}) == \
        "val_accuracy"
    assert compare.curves_default({"a": points("loss", "accuracy")}) == "accuracy"  # no validation split
    assert compare.curves_default({"a": points("loss", "val_loss")}) == "val_loss"  # compiled without metrics
    assert compare.curves_default({"a": points("loss")}) == "loss"
    nan = [MetricPoint("epoch", 0, 10, "val_accuracy", float("nan"), 0.0), *points("accuracy")]
    assert compare.curves_default({"a": nan}) == "accuracy"  # a NaN is no point on a chart


def test_the_baseline_table_titles_its_results_and_counts_accuracy_in_points(sweep):
    runs, points = sweep
    frame = runs_frame(runs, points)
    frame.loc[runs[0].id, "wall_seconds"], frame.loc[runs[1].id, "wall_seconds"] = 40.0, 59.9227
    table, shown = compare.against_baseline(frame, runs[1].id)
    assert [column.title for column in shown] == [
        "Validation accuracy (best epoch)", "Test accuracy", "Validation accuracy (last epoch)", "Best epoch",
        "Wall time"]  # no run has samples/s: no empty column
    assert list(table.columns) == [column.short for column in shown]
    assert "Test acc" not in compare.against_baseline(frame.assign(test_accuracy=None), runs[1].id)[0]
    assert table.loc[runs[0].id, "Val acc (best)"] == pytest.approx(-11.0)  # 0.75 vs 0.86
    assert table.loc[runs[0].id, "Wall time"] == pytest.approx(-19.9227)  # seconds stay seconds
    assert math.isnan(table.loc[runs[2].id, "Wall time"])
    by_key = {column.key: column for column in compare.RESULTS}
    assert compare.result_text(by_key["best_val_accuracy"], 0.8612) == "86.1 %"
    assert compare.result_text(by_key["wall_seconds"], 83.4) == "1 min 23 s"
    assert compare.result_text(by_key["samples_per_second"], 5120.4) == "5,120"
    assert compare.result_text(by_key["best_epoch"], 3.0) == "3"


def test_the_correlation_chance_gives_shrinks_with_more_runs():
    # The exact two-sided 5 % critical values of Pearson's r, from the t distribution with n - 2 df.
    for runs, exact in ((4, 0.950), (5, 0.878), (8, 0.707), (10, 0.632), (20, 0.444), (50, 0.279)):
        assert compare.chance_correlation(runs) == pytest.approx(exact, abs=0.012)
    assert compare.chance_correlation(3) == compare.chance_correlation(2) == 1.0
    assert compare.chance_correlation(compare.MIN_RUNS_TO_CORRELATE - 1) > 0.74  # why fewer runs draw none


def test_names_lead_with_the_part_that_tells_them_apart():
    sweep = [f"Conv32-Pool-D128-Drop0.5-D10 · adam · lr={lr}" for lr in ("0.0001", "0.001")]
    repeat = "Conv32-Pool-D128-Drop0.5-D10 · adam · lr=0.001 · seed 43"
    single = "Conv32-Pool-D128-Drop0.5-D10 · adam 1e-3"
    assert compare.distinct_names([*sweep, repeat, single, "baseline", "my · own"]) == [
        "lr=0.0001 · Conv32-Pool-D128-Drop0.5-D10 · adam", "lr=0.001 · Conv32-Pool-D128-Drop0.5-D10 · adam",
        "lr=0.001 · seed 43 · Conv32-Pool-D128-Drop0.5-D10 · adam", "adam 1e-3 · Conv32-Pool-D128-Drop0.5-D10",
        "baseline", "my · own"]  # nothing shared: as written
    assert compare.distinct_names(["same · name", "same · name"]) == ["same · name", "same · name"]  # no help
    assert compare.distinct_names([*sweep, "Conv32-Pool-D128-Drop0.5-D10 · sgd"], fits=35)[2] == \
        "Conv32-Pool-D128-Drop0.5-D10 · sgd"  # short enough to show whole
    assert compare.distinct_names([]) == [] and compare.distinct_names(["alone · run"]) == ["alone · run"]
