"""The import panel's "Trained on" (AppTest): a model's input shape, read from its file on upload,
moves the picker to a dataset whose images it takes, and keeps a pick that fits; a run name over
the limit is said so beside the field and keeps Import off."""
import keras
import pytest
from streamlit.testing.v1 import AppTest

from components import state
from pipelines.runs.drafts import MAX_RUN_NAME
from tests.dashboard.rendered import shown
from tests.dashboard.test_import_panel import APP, store  # noqa: F401 - the fixture is used by name
from tests.io.keras_files import plain_keras_model, save

PICKER = state.key("import", "dataset")


@pytest.fixture
def files(tmp_path):
    colour = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(10, activation="softmax")])
    return {"gray": save(plain_keras_model(16), tmp_path / "gray.keras").read_bytes(),
            "colour": save(colour, tmp_path / "colour.keras").read_bytes()}


def open_test_page():
    at = AppTest.from_file(APP, default_timeout=60).switch_page("views/test.py").run()
    assert not at.exception, at.exception
    return at


def upload(at, name: str, data: bytes):
    at.file_uploader(key=state.key("import", "file")).set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at


def test_trained_on_follows_the_models_input_shape(store, files):
    at = open_test_page()
    at.selectbox(key=PICKER).set_value("mnist").run()
    upload(at, "colour.keras", files["colour"])
    assert at.selectbox(key=PICKER).value == "cifar10"
    assert "The model takes 32×32×3 images, as CIFAR-10 has." in [shown(c.value) for c in at.caption]
    upload(at, "gray.keras", files["gray"])
    assert at.selectbox(key=PICKER).value == "fashion_mnist"  # the dataset being worked on, which fits
    assert ("The model takes 28×28×1 images, as MNIST and Fashion-MNIST have: pick the one it was trained on."
            in [shown(c.value) for c in at.caption])


def test_a_pick_that_fits_the_model_is_kept(store, files):
    at = open_test_page()
    at.selectbox(key=PICKER).set_value("mnist").run()
    upload(at, "gray.keras", files["gray"])
    assert at.selectbox(key=PICKER).value == "mnist"


def test_an_import_name_over_the_limit_is_said_so_and_keeps_import_off(store, files):
    at = upload(open_test_page(), "gray.keras", files["gray"])
    at.text_input(key=state.key("import", "name")).input("n" * (MAX_RUN_NAME + 1)).run()
    assert f"Run names can be at most {MAX_RUN_NAME} characters; this one has 201." in [e.value for e in at.error]
    assert at.button(key=state.key("import", "go")).disabled
    assert at.text_input(key=state.key("import", "name")).value == "n" * (MAX_RUN_NAME + 1)
