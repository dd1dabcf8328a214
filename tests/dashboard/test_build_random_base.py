"""Build warns on a frozen pretrained base with random weights, on its card, with a one-click fix,
and still lets the model train (a warning, not a problem)."""
from pipelines.data.folders import Settings
from pipelines.io.dataset_import import add_dataset
from tests.dashboard.rendered import shown
from tests.dashboard.test_build_page import app, click  # noqa: F401  (the Build page in a temp home)
from tests.data.photo_folders import copy_classes


def _warnings(at) -> list[str]:
    return [shown(w.value) for w in at.warning if "its features are random" in w.value]


def test_a_frozen_random_base_is_warned_about_on_its_card_and_train_stays_on(app, monkeypatch, shared_datasets,
                                                                            tmp_path):
    monkeypatch.setattr("pipelines.modelspec.validation.weights_problem", lambda base, shape: None)  # no probe
    add_dataset("clothes", copy_classes(shared_datasets, tmp_path / "clothes", per_class=4), Settings(32))
    app.run()  # the picker lists the new dataset
    app.selectbox(key="build_dataset_fashion_mnist").set_value("clothes").run()
    click(app, "build_clear")
    for layer_type in ("PretrainedBase", "GlobalAveragePooling2D", "Dense"):
        click(app, f"build_add_{layer_type}")
    [units] = [n for n in app.number_input if n.label == "units"]
    units.set_value(3).run()
    [activation] = [s for s in app.selectbox if s.label == "activation"]
    activation.set_value("softmax").run()
    assert _warnings(app) == [] and not app.error  # ImageNet weights: no warning

    [weights] = [s for s in app.selectbox if s.label == "weights"]
    weights.set_value("none").run()
    [warning] = _warnings(app)
    assert warning.startswith("Layer 1 (PretrainedBase): frozen with random weights (weights none)")
    assert not app.error and not app.button(key="build_train").disabled  # it may still be trained

    [fix] = [b for b in app.button if b.label == "Use ImageNet weights"]
    fix.click().run()
    assert not app.exception and _warnings(app) == []
    assert [s for s in app.selectbox if s.label == "weights"][0].value == "imagenet"
