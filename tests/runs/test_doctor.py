"""The training doctor on synthetic curves (each diagnosis fires where it should and nowhere else)
and on curves recorded from real runs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.errors import SpecError
from pipelines.modelspec.presets import get_preset
from pipelines.modelspec.spec import ModelSpec
from pipelines.runs.doctor import Remedy, apply_remedy, diagnose
from pipelines.runs.entities import MetricPoint
from pipelines.runs.sqlite_store import SQLiteRunStore

REPO = Path(__file__).resolve().parents[2]
SPEC = get_preset("mlp-128x2").spec


def epochs(**series: list[float]) -> list[MetricPoint]:
    """Epoch points: epochs(loss=[...], val_loss=[...]) in store order."""
    count = max(len(values) for values in series.values())
    return [MetricPoint("epoch", e, 100, name, values[e], 0.0)
            for e in range(count) for name, values in series.items() if e < len(values)]


def batches(losses: list[float], steps: int = 100) -> list[MetricPoint]:
    """Batch points as the worker records them: Keras' running mean of each epoch so far."""
    points = []
    for i, _ in enumerate(losses):
        epoch, step = divmod(i, steps)
        so_far = losses[epoch * steps:i + 1]
        points.append(MetricPoint("batch", epoch, step + 1, "loss", sum(so_far) / len(so_far), 0.0))
    return points


HEALTHY = epochs(loss=[0.55, 0.40, 0.36], accuracy=[0.81, 0.86, 0.87], val_loss=[0.45, 0.40, 0.38],
                 val_accuracy=[0.84, 0.86, 0.87])


def kinds(findings) -> list[str]:
    return [f.kind for f in findings]


def test_a_healthy_run_gets_no_finding():
    assert diagnose(HEALTHY, num_classes=10, spec=SPEC) == []


DIVERGING = batches([2.3, 2.2, 2.6, 40.0, 5e4, 3e4]) + epochs(loss=[1e4], accuracy=[0.1])


def test_divergence_from_batch_losses_lowers_the_learning_rate_to_the_optimizers_usual_one():
    """Adam at 1: a tenth (0.1) does not learn either, so the fix goes straight to Adam's 0.001, and says why."""
    [finding] = diagnose(DIVERGING, num_classes=10, spec=SPEC.with_compile(learning_rate=1.0), steps_per_epoch=100)
    assert finding.kind == "diverged" and finding.severity == "error"
    assert finding.start == pytest.approx(0.04)
    assert finding.message == ("Diverged in epoch 1: the loss jumped from 2.3 to 5e+04. The steps are too big: lower "
                               "the learning rate. Adam learns well near 0.001; a tenth of 1 would still be 100 "
                               "times that, so the fix goes straight to 0.001.")
    assert finding.remedy == Remedy("Lower the learning rate to 0.001", (("learning_rate", 0.001),))


@pytest.mark.parametrize("compile_settings, rate, reason", [
    ({"optimizer": "sgd", "learning_rate": 10.0}, 0.1, "SGD learns well near 0.1; a tenth of 10 would still be 10 "
                                                       "times that"),
    ({"optimizer": "sgd", "learning_rate": 1.0, "momentum": 0.9}, 0.01, "SGD with momentum 0.9 learns well near 0.01"),
    ({"optimizer": "rmsprop", "learning_rate": 1.0}, 0.001, "RMSprop learns well near 0.001; a tenth of 1"),
    ({"optimizer": "adam", "learning_rate": 0.003}, 0.001, "Adam learns well near 0.001, so the fix goes back to 0.001"),
    ({"optimizer": "adam", "learning_rate": 0.001}, 0.0001, "0.001 is no higher than Adam's usual 0.001, so the "
                                                            "fix takes a tenth of it"),
    ({"optimizer": "sgd", "learning_rate": 0.05}, 0.005, "0.05 is no higher than SGD's usual 0.1"),
])
def test_the_rate_after_a_divergence_depends_on_the_optimizer(compile_settings, rate, reason):
    [finding] = diagnose(DIVERGING, num_classes=10, spec=SPEC.with_compile(**compile_settings), steps_per_epoch=100)
    assert finding.remedy.changes == (("learning_rate", rate),) and reason in finding.message
    assert finding.remedy.label == f"Lower the learning rate to {rate:g}"


def test_divergence_is_judged_per_batch_not_on_keras_running_means():
    """One batch at 30 among twenty at 2.3: its running mean (3.7) hides it, its own value does not."""
    points = batches([2.3] * 10 + [30.0] + [2.3] * 10, steps=21)
    [finding] = diagnose(points, num_classes=10, spec=SPEC, steps_per_epoch=21)
    assert finding.start == pytest.approx(11 / 21) and "jumped from 2.3 to 30" in finding.message


def test_a_second_epoch_starting_lower_than_the_first_ended_is_no_divergence():
    """Keras' running mean restarts each epoch: epoch 1's mean of 2.0 then epoch 2's first batch of 0.3."""
    points = batches([2.3, 2.0, 1.7, 0.4, 0.3, 0.3], steps=3)
    assert diagnose(points, num_classes=10, spec=SPEC, steps_per_epoch=3) == []


def test_a_nan_failure_is_a_divergence():
    [finding] = diagnose(batches([2.3, 2.1]), num_classes=10, error="loss became NaN at epoch 1, batch 3: ...")
    assert finding.kind == "diverged" and "the loss became NaN" in finding.message and finding.remedy is None


AT_CHANCE = epochs(loss=[2.30, 2.30], accuracy=[0.10, 0.11])


def test_accuracy_near_chance_is_not_learning():
    [finding] = diagnose(AT_CHANCE, num_classes=10, spec=SPEC.with_compile(learning_rate=1e-6))
    assert finding.kind == "not_learning" and "near chance (10.0%)" in finding.message
    assert "1e-06 is far below Adam's usual 0.001: in 2 epoch(s) the weights barely move" in finding.message
    assert finding.remedy == Remedy("Raise the learning rate to 0.001", (("learning_rate", 0.001),))


def test_not_learning_at_a_rate_too_high_goes_to_the_usual_rate_and_at_the_usual_rate_blames_something_else():
    [too_high] = diagnose(AT_CHANCE, num_classes=10, spec=SPEC.with_compile(learning_rate=0.1))
    assert "can silence every ReLU" in too_high.message and too_high.remedy.changes == (("learning_rate", 0.001),)
    [usual] = diagnose(AT_CHANCE, num_classes=10, spec=SPEC.with_compile(optimizer="sgd", learning_rate=0.05))
    assert "0.05 is about SGD's usual one, so it is likely not the cause" in usual.message and usual.remedy is None


def test_not_learning_on_a_frozen_random_base_asks_for_its_weights_not_another_rate():
    spec = ModelSpec.from_dict({"layers": [
        {"type": "PretrainedBase", "name": "features", "params": {"base": "MobileNetV2", "weights": "none"}},
        {"type": "GlobalAveragePooling2D", "name": "pool"},
        {"type": "Dense", "name": "out", "params": {"units": 10, "activation": "softmax"}}]})
    [finding] = diagnose(AT_CHANCE, num_classes=10, spec=spec)
    assert "Its frozen MobileNetV2 has random weights (weights none)" in finding.message
    assert finding.remedy == Remedy("Use ImageNet weights", (("features.weights", "imagenet"),))
    assert apply_remedy(spec, finding.remedy).layers[0].params["weights"] == "imagenet"


def test_overfitting_from_the_best_epoch_offers_early_stopping():
    points = epochs(loss=[0.5, 0.4, 0.3, 0.2, 0.1], accuracy=[0.8, 0.85, 0.9, 0.93, 0.96],
                    val_loss=[0.50, 0.45, 0.50, 0.56, 0.62])
    [finding] = diagnose(points, num_classes=10, spec=SPEC)
    assert finding.kind == "overfitting" and (finding.start, finding.end) == (2.0, 5.0)
    assert "from epoch 2" in finding.message and "epoch 2 is kept" in finding.message
    assert finding.remedy.changes == (("early_stopping_patience", 2),)
    with_patience = SPEC.with_fit(early_stopping_patience=3)
    assert diagnose(points, num_classes=10, spec=with_patience)[0].remedy.changes == (("epochs", 2),)


def test_rising_validation_with_rising_training_loss_is_not_overfitting():
    points = epochs(loss=[0.5, 0.4, 0.45, 0.5], accuracy=[0.8, 0.85, 0.84, 0.83], val_loss=[0.5, 0.45, 0.5, 0.56])
    assert "overfitting" not in kinds(diagnose(points, num_classes=10, spec=SPEC))


def test_a_plateau_at_the_end():
    points = epochs(loss=[0.6, 0.45, 0.44, 0.44, 0.44], accuracy=[0.8, 0.85, 0.85, 0.85, 0.85],
                    val_loss=[0.5, 0.45, 0.449, 0.448, 0.4485])
    [finding] = diagnose(points, num_classes=10, spec=SPEC)
    assert finding.kind == "plateau" and (finding.start, finding.end) == (2.0, 5.0)


def test_underfitting_when_still_falling_and_still_poor():
    points = epochs(loss=[1.5, 1.2], accuracy=[0.5, 0.6], val_loss=[1.6, 1.3])
    [finding] = diagnose(points, num_classes=10, spec=SPEC.with_fit(epochs=2))
    assert finding.kind == "underfitting" and finding.remedy.changes == (("epochs", 4),)


def test_underfitting_waits_for_the_end_of_the_run():
    points = epochs(loss=[1.5, 1.2], accuracy=[0.5, 0.6], val_loss=[1.6, 1.3])
    assert diagnose(points, num_classes=10, spec=SPEC, finished=False) == []


def test_a_finding_as_json_data():
    [finding] = diagnose(DIVERGING, num_classes=10, spec=SPEC.with_compile(learning_rate=1.0), steps_per_epoch=100)
    record = finding.to_dict()
    assert record == {"kind": "diverged", "severity": "error", "start": 0.04, "end": 1.0,
                      "message": finding.message,
                      "remedy": {"label": "Lower the learning rate to 0.001", "changes": {"learning_rate": 0.001}}}
    assert json.loads(json.dumps(record)) == record
    assert finding.title == "Diverged"


def test_apply_remedy_changes_the_spec_and_refuses_unknown_settings():
    changed = apply_remedy(SPEC, Remedy("x", (("learning_rate", 0.01), ("epochs", 9), ("dense_1.units", 64))))
    assert (changed.compile.learning_rate, changed.fit.epochs, changed.layers[1].params["units"]) == (0.01, 9, 64)
    with pytest.raises(SpecError, match="Unknown remedy setting 'units'"):
        apply_remedy(SPEC, Remedy("x", (("units", 3),)))
    with pytest.raises(SpecError, match=r"Unknown remedy setting 'gone.units'.*<layer name>.<param> for a layer"):
        apply_remedy(SPEC, Remedy("x", (("gone.units", 3),)))


def _train(home: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "pipelines", "train", "--home", str(home), *args], cwd=REPO,
                            capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(result.stdout.strip().splitlines()[-1])["run_id"]


def _findings(home: Path, run_id: str):
    store = SQLiteRunStore(home)
    run = store.get_run(run_id)
    return diagnose(store.get_metrics(run_id), num_classes=10, spec=run.model_spec, error=run.error,
                    steps_per_epoch=run.progress.steps_per_epoch)


@pytest.mark.slow
def test_recorded_runs_healthy_and_diverged(tmp_path, shared_datasets):
    """A real mlp-128x2 run gets no warning; the same model at learning rate 1 is marked diverged."""
    os.environ.setdefault("LAYERLAB_DATA_DIR", str(shared_datasets))
    home = tmp_path / "home"
    try:
        healthy = _train(home, "--dataset", "mnist", "--preset", "mlp-128x2", "--epochs", "3",
                         "--data-dir", str(shared_datasets))
        diverged = _train(home, "--dataset", "mnist", "--preset", "mlp-128x2", "--epochs", "2", "--lr", "1",
                          "--data-dir", str(shared_datasets))
        assert _findings(home, healthy) == []
        assert kinds(_findings(home, diverged)) == ["diverged"]
    finally:
        from pipelines.execution.scheduler import Scheduler, SchedulerSettings
        Scheduler(SQLiteRunStore(home), SchedulerSettings()).end_workers()


def test_divergence_within_the_first_recorded_stretch_of_batches():
    """Keras ran 17 batches per call: the first point is already the mean of a diverging stretch."""
    per_batch = [2.3] + [9e4] + [2.3] * 32
    running = [sum(per_batch[:k]) / k for k in range(1, len(per_batch) + 1)]
    points = [MetricPoint("batch", 0, step, "loss", running[step - 1], 0.0) for step in (17, 34)]
    [finding] = diagnose(points, num_classes=10, spec=SPEC, steps_per_epoch=34)
    assert finding.kind == "diverged" and finding.start == pytest.approx(0.5)
    assert "jumped from 2.3 to 5.3e+03" in finding.message
    healthy = [MetricPoint("batch", 0, step, "loss", value, 0.0) for step, value in ((17, 2.0), (34, 1.5))]
    assert diagnose(healthy, num_classes=10, spec=SPEC, steps_per_epoch=34) == []
