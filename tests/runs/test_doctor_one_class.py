"""The doctor's "predicts one class": accuracy pinned at the largest class's share, on curves shaped
like the ones the issue saw (clothing photos, 81 t-shirts among 341 validation photos), and on a real
run of a frozen MobileNetV2 with random weights, whose counts come from its dataset's manifest."""
import threading

import pytest

from pipelines.data import added
from pipelines.data.folders import Settings
from pipelines.execution.training import execute_run
from pipelines.io.dataset_import import add_dataset
from pipelines.modelspec.presets import get_preset
from pipelines.modelspec.spec import ModelSpec
from pipelines.runs.doctor import apply_remedy, class_counts, diagnose, diagnose_run
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.data.photo_folders import copy_classes
from tests.modelspec.transfer_helpers import CLOTHING_CLASSES, offline
from tests.runs.test_doctor import epochs

# clothing-small's photos per class, in CLOTHING_CLASSES' order (t-shirt last, the largest).
TRAIN = [241, 123, 455, 184, 468, 290, 198, 202, 112, 795]
VALIDATION = [32, 14, 49, 24, 49, 29, 26, 25, 12, 81]
OWN_VALIDATION = {"train": TRAIN, "validation": VALIDATION}
RANDOM_BASE = offline(get_preset("clothing-mobilenet").spec)
SMALL_CNN = ModelSpec.from_dict({"layers": [
    {"type": "Conv2D", "name": "conv", "params": {"filters": 16, "kernel_size": 3, "activation": "relu"}},
    {"type": "MaxPooling2D", "name": "pool"}, {"type": "Flatten", "name": "flat"},
    {"type": "Dense", "name": "out", "params": {"units": 10, "activation": "softmax"}}]})
SHARES_LOSS = 2.117  # the cross-entropy of knowing only how common each class is in TRAIN


def flat(value: float, count: int = 5, loss: float = SHARES_LOSS, accuracy: float = 0.259) -> list:
    """`count` epochs with validation accuracy `value` and the losses stuck at `loss`."""
    return epochs(loss=[loss] * count, accuracy=[accuracy] * count, val_loss=[loss] * count,
                  val_accuracy=[value] * count)


def one_class(points, spec, counts=OWN_VALIDATION, **kwargs):
    return diagnose(points, num_classes=10, spec=spec, class_counts=counts, class_names=CLOTHING_CLASSES, **kwargs)


def test_a_frozen_random_base_at_the_t_shirt_share_predicts_one_class_not_a_plateau():
    """The issue's run: 23.8 % for epochs on end, which the doctor called a plateau (lower the rate)."""
    [finding] = one_class(flat(81 / 341), RANDOM_BASE)
    assert finding.kind == "one_class" and finding.severity == "error" and (finding.start, finding.end) == (0.0, 5.0)
    assert finding.message.startswith(
        "Predicts one class: validation accuracy has stayed at 23.8% for 5 epochs, the share of 't-shirt' in the "
        "validation images (81 of 341): the model gives nearly every image that class. Its frozen MobileNetV2 has "
        "random weights (weights none)")
    assert finding.title == "One class" and finding.verdict == "predicts one class"
    assert finding.remedy.label == "Use ImageNet weights" and "learning rate" not in finding.remedy.label
    assert apply_remedy(RANDOM_BASE, finding.remedy).layers[0].params["weights"] == "imagenet"
    assert [f.kind for f in diagnose(flat(81 / 341), num_classes=10, spec=RANDOM_BASE)] == ["plateau"]  # no counts


def test_a_small_cnn_labelling_every_photo_t_shirt_predicts_one_class():
    """The issue's 22.3 %: a little under the share, as a model that gives nearly every photo one class is."""
    [finding] = one_class(flat(0.223), SMALL_CNN)
    assert finding.kind == "one_class" and "has stayed at 22.3% for 5 epochs, the share of 't-shirt'" in finding.message
    assert "It has learned only how common each class is" in finding.message
    assert finding.remedy.changes == (("learning_rate", 0.0001),)


def test_one_class_the_fix_follows_what_was_seen():
    """A rate above the optimizer's usual one goes back to it; a loss under what the class shares give,
    still falling, is a model still learning: train longer."""
    [too_fast] = one_class(flat(0.2375), SMALL_CNN.with_compile(learning_rate=0.01))
    assert too_fast.remedy.changes == (("learning_rate", 0.001),) and "Adam learns well near 0.001" in too_fast.message
    learning = epochs(loss=[2.0, 1.9, 1.8], accuracy=[0.26] * 3, val_loss=[2.0, 1.95, 1.9], val_accuracy=[0.2375] * 3)
    [slow] = one_class(learning, SMALL_CNN.with_fit(epochs=3))
    assert slow.remedy.changes == (("epochs", 6),)
    assert "Its training loss (1.8) is under what the class shares alone give (2.12) and still falling" in slow.message


def test_a_validation_split_drawn_from_the_training_images_is_judged_with_its_sampling_error():
    """No validation/ folder: a random tenth of 3,068 photos holds about 25.9 % t-shirts, give or take 2.5 points."""
    train_only = {"train": TRAIN}
    [finding] = one_class(flat(0.223), SMALL_CNN, train_only)
    assert "about the share of 't-shirt' in the training images (25.9%)" in finding.message
    assert [f.kind for f in one_class(flat(0.35), SMALL_CNN, train_only)] == ["plateau"]
    assert [f.kind for f in one_class(flat(0.205), SMALL_CNN, train_only)] == ["one_class"]
    assert [f.kind for f in one_class(flat(0.205), SMALL_CNN.with_fit(validation_split=0.5), train_only)] == \
        ["plateau"]  # 1,534 validation photos hold 25.9 % t-shirts give or take 1.1 points: 20.5 % is not that


def test_without_validation_the_training_accuracy_is_judged():
    points = epochs(loss=[SHARES_LOSS] * 3, accuracy=[795 / 3068] * 3)
    [finding] = one_class(points, SMALL_CNN.with_fit(validation_split=0.0), {"train": TRAIN})
    assert "training accuracy has stayed at 25.9% for 3 epochs, the share of 't-shirt' in the training images " \
           "(795 of 3,068)" in finding.message


def test_no_one_class_for_a_run_that_passes_the_share_or_a_balanced_dataset_or_too_soon():
    passing = epochs(loss=[2.0, 1.5, 1.0], accuracy=[0.3, 0.5, 0.7], val_loss=[1.9, 1.4, 1.0],
                     val_accuracy=[0.2375, 0.45, 0.62])
    assert "one_class" not in [f.kind for f in one_class(passing, SMALL_CNN)]
    balanced = {"train": [300] * 10, "validation": [34] * 10}
    assert [f.kind for f in one_class(flat(0.1, 3, 2.3, 0.1), SMALL_CNN, balanced)] == ["not_learning"]
    first_epoch = flat(0.2375, count=1)
    assert one_class(first_epoch, SMALL_CNN, finished=False) == []
    [finished] = one_class(first_epoch, SMALL_CNN)
    assert "validation accuracy is 23.8%, the share" in finished.message


def test_class_counts_come_from_an_added_datasets_manifest(tmp_path, monkeypatch, shared_datasets):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    assert class_counts("mnist", 10) is None  # built-ins are balanced near enough: "not learning" tells
    root = tmp_path / "shop"
    copy_classes(shared_datasets, root / "train", ("hat", "t-shirt"), per_class=3)
    copy_classes(shared_datasets, root / "validation", ("hat", "t-shirt"), per_class=2, split="validation")
    add_dataset("shop", root, Settings(32))
    assert class_counts("shop", 2) == {"train": [3, 3], "validation": [2, 2]}
    assert class_counts("shop", 3) is None and class_counts("gone", 2) is None


# --- A real run: a frozen MobileNetV2 with random weights on unbalanced photos --------------------


@pytest.mark.slow
def test_a_real_frozen_random_base_is_diagnosed_as_predicting_one_class(tmp_path, monkeypatch, shared_datasets):
    """Twelve t-shirts to every three of each other class: the run's validation accuracy sits at the
    t-shirt share, and the doctor, reading the counts from the dataset's manifest, says so."""
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    added.clear_cache()
    classes = ("dress", "hat", "pants", "shoes")
    root = tmp_path / "photos"
    for split, few, many in (("train", 20, 80), ("validation", 5, 20)):
        copy_classes(shared_datasets, root / split, classes, per_class=few, split=split)
        copy_classes(shared_datasets, root / split, ("t-shirt",), per_class=many, split=split)
    add_dataset("unbalanced", root, Settings(64))
    spec = ModelSpec.from_dict({
        "layers": [{"type": "PretrainedBase", "name": "base", "params": {"base": "MobileNetV2", "weights": "none"}},
                   {"type": "GlobalAveragePooling2D", "name": "pool"},
                   {"type": "Dense", "name": "inner", "params": {"units": 100, "activation": "relu"}},
                   {"type": "Dropout", "name": "drop", "params": {"rate": 0.2}},
                   {"type": "Dense", "name": "out", "params": {"units": 5, "activation": "linear"}}],
        "fit": {"epochs": 4, "batch_size": 16}})
    store = SQLiteRunStore(tmp_path / "home")
    store.create_run("random base", "unbalanced", spec.to_dict(), total_epochs=4)
    run = store.claim_next_run(1, 1)
    try:
        outcome = execute_run(store, run, threading.Event())
    finally:
        added.clear_cache()
    assert outcome.status is RunStatus.COMPLETED, outcome.error
    store.finish_run(run.id, outcome.status, error=outcome.error, metrics=outcome.metrics)
    [finding] = diagnose_run(store.get_run(run.id), store.get_metrics(run.id))
    assert finding.kind == "one_class", finding.message
    assert "the share of 't-shirt' in the validation images (20 of 40)" in finding.message
    assert finding.remedy.changes == (("base.weights", "imagenet"),)
