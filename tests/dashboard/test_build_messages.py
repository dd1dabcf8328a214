"""Build's messages through AppTest: each says what was wrong in a user's words, next to the control
it is about (a long run name, a spec file that cannot be loaded, the problems that keep Train
off), and the training settings' line and loss caption say what is true."""
from types import SimpleNamespace

from components import state
from components.training_settings import OWN_VALIDATION, loss_reason, settings_summary
from pipelines.data import added
from pipelines.data.folders import Settings
from pipelines.io.dataset_import import add_dataset
from pipelines.modelspec.presets import get_preset
from pipelines.runs.drafts import MAX_RUN_NAME
from tests.dashboard.rendered import shown
from tests.dashboard.test_build_page import app, run_name_field, session  # noqa: F401
from tests.data.photo_folders import copy_classes

DEVELOPER_WORDS = ("Received:", "compile:", "fit:", "`")


def texts(elements) -> list[str]:
    return [shown(element.value) for element in elements]


def test_a_run_name_too_long_is_kept_in_the_field_and_said_so_beside_it(app):
    long_name = "x" * (MAX_RUN_NAME + 50)
    run_name_field(app).set_value(long_name).run()
    assert run_name_field(app).value == long_name  # kept, for the user to shorten
    assert f"Run names can be at most {MAX_RUN_NAME} characters; this one has 250." in texts(app.error)
    assert app.button(key="build_train").disabled
    default = "D128-D128-D10 · adam 1e-3"
    assert run_name_field(session({"draft": app.query_params["draft"]})).value == default  # not kept in the draft
    run_name_field(app).set_value("x" * MAX_RUN_NAME).run()
    assert not any("Run names can be" in text for text in texts(app.error))
    assert not app.button(key="build_train").disabled
    assert run_name_field(session({"draft": app.query_params["draft"]})).value == "x" * MAX_RUN_NAME


def test_a_spec_file_that_cannot_be_loaded_says_why_under_the_uploader_and_keeps_the_model(app):
    before = app.session_state["build_state_spec"]
    bad = b'{"layers": [], "compile": {"learning_rate": 50}}'
    app.file_uploader(key=state.key("build", "load")).set_value(("fast.json", bad, "application/json")).run()
    assert not app.exception, app.exception
    [said] = [text for text in texts(app.error) if "fast.json" in text]
    assert said.startswith("Could not load fast.json: Learning rate must be a number from 1e-07 to 10; it is 50")
    assert not any(word in said for word in DEVELOPER_WORDS)
    assert app.session_state["build_state_spec"] == before
    assert not any("fast.json" in text for text in texts(app.warning))  # not at the top of the page


def test_the_problems_beside_train_are_in_a_users_words(app):
    [units] = [n for n in app.number_input if n.label == "units"][:1]
    units.set_value(0).run()
    [listed] = [text for text in texts(app.error) if "Train is off" in text]
    assert "Layer 2 (Dense): units must be" in listed and "; it is 0." in listed
    assert "Received:" not in listed and "`" not in listed


def test_a_dataset_with_its_own_validation_folder_says_so_instead_of_a_split(app, shared_datasets, tmp_path):
    photos = tmp_path / "photos"
    copy_classes(shared_datasets, photos / "train", per_class=3)
    copy_classes(shared_datasets, photos / "validation", per_class=2, split="validation")
    add_dataset("own-val", str(photos), Settings(32), home=tmp_path / "home")  # the `app` fixture's home
    try:
        spec = get_preset("mlp-128x2").spec
        assert settings_summary(spec, "own-val").endswith(f"5 epochs of 32 · {OWN_VALIDATION}")
        assert settings_summary(spec, "fashion_mnist").endswith("5 epochs of 32 · 10% validation")
        app.run()
        app.selectbox(key="build_dataset_fashion_mnist").set_value("own-val").run()
        assert any(OWN_VALIDATION in m.value for m in app.markdown)
        [split] = [s for s in app.slider if s.label == "Validation split"]
        assert split.disabled
        assert any(text.startswith("Not used: own-val has a validation/ folder of its own")
                   for text in texts(app.caption))
    finally:
        added.clear_cache()


def result(activation: str, label_mode: str = "sparse") -> SimpleNamespace:
    return SimpleNamespace(output_activation=activation, from_logits=activation not in ("softmax", "sigmoid"),
                           label_mode=label_mode)


def test_the_loss_caption_says_what_the_last_layer_gives_for_each_activation():
    assert loss_reason(result("softmax"), "sparse_categorical_crossentropy").startswith(
        "The last layer's softmax turns its outputs into probabilities, so the loss reads them as they are")
    assert loss_reason(result("linear"), "sparse_categorical_crossentropy").startswith(
        "The last layer is linear, so its outputs are raw scores (logits): the loss applies softmax")
    relu = loss_reason(result("relu"), "sparse_categorical_crossentropy")
    assert relu.startswith("The last layer's activation is relu, so its outputs are not probabilities")
    assert "raw scores ('relu')" not in relu
    assert "applies a sigmoid to them itself" in loss_reason(result("linear", "binary"), "binary_crossentropy")
    mse = loss_reason(result("relu", "one_hot"), "mse")
    assert mse.startswith("Mean squared error compares") and "from_logits" not in mse
    assert mse.endswith("Training feeds labels turned into one-hot vectors.")
