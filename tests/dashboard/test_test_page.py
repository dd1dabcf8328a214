"""The Test page: its pure helpers (its figures are tested in tests/components/figures), its parts on a
real (tiny) trained LeNet, and the page itself through Streamlit's AppTest on a fake COMPLETED run
in a temp store."""
import dataclasses
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from components import (activation_view, drawing_pad, evaluation_view, model_cache, prediction_view, resources,
                        run_list, state, upload_view)
from components.figures import activations
from pipelines.runs.artifacts import MODEL_FILE, SPEC_FILE
from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.dashboard.rendered import HOSTILE, assert_shown_escaped, shown, showing

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
DIGITS = tuple("0123456789")
TRAIN_IMAGES = 2000


# --- Pure functions ---------------------------------------------------------------------------


def test_top_classes_are_likeliest_first():
    probabilities = np.array([0.1, 0.6, 0.05, 0.25])
    assert prediction_view.top_classes(probabilities, "abcd", 3) == [("b", 0.6), ("d", 0.25), ("a", 0.1)]
    assert prediction_view.top_class_text(probabilities, "abcd") == "b · 60.0%"


def test_model_input_is_enlarged_without_smoothing():
    array = np.zeros((28, 28, 1), np.float32)
    array[3, 5] = 1.0
    image = prediction_view.enlarged(array)
    assert image.shape == (168, 168) and image.dtype == np.uint8
    assert (image[18:24, 30:36] == 255).all() and image.sum() == 36 * 255
    assert prediction_view.enlarged(np.ones((32, 32, 3), np.float32)).shape == (160, 160, 3)


def test_default_cell_is_the_most_frequent_mistake():
    assert evaluation_view.default_cell(np.array([[50, 2, 0], [7, 40, 1], [0, 0, 45]])) == (1, 0)
    assert evaluation_view.default_cell(np.diag([3, 4])) == (0, 0)


def test_repeated_file_names_get_distinct_labels():
    assert upload_view.unique_labels(["a.png", "b.png", "a.png", "a.png"]) == ["a.png", "b.png", "a.png (2)",
                                                                                "a.png (3)"]


# --- A real model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist(shared_datasets):
    from pipelines.data.locate import load

    return load("mnist", shared_datasets, download=False)


@pytest.fixture(scope="module")
def finished_run(mnist, tmp_path_factory):
    """LeNet after one epoch on 2,000 MNIST digits, saved as a COMPLETED run: (home, run id)."""
    import keras

    from pipelines.data.inputs import scale_images
    from pipelines.data.locate import load
    from pipelines.modelspec.keras_build import build_model

    keras.utils.set_random_seed(0)
    spec = dataclasses.replace(get_preset("lenet").spec.with_fit(epochs=1), input_shape=(28, 28, 1))
    model = build_model(spec)
    model.fit(scale_images(mnist.x_train[:TRAIN_IMAGES]), mnist.y_train[:TRAIN_IMAGES],
              batch_size=64, epochs=1, verbose=0)
    home = tmp_path_factory.mktemp("home")
    with SQLiteRunStore(home) as store:
        run = store.create_run("tiny lenet", "mnist", spec.to_dict())
        assert store.claim_next_run(os.getpid(), 10).id == run.id
        run_dir = store.ensure_run_dir(run.id)
        model.save(run_dir / MODEL_FILE)
        (run_dir / SPEC_FILE).write_text(spec.to_json())
        store.finish_run(run.id, RunStatus.COMPLETED, metrics={"test_accuracy": 0.9, "test_loss": 0.3})
    return home, run.id


@pytest.fixture
def loaded(finished_run):
    home, run_id = finished_run
    with SQLiteRunStore(home) as store:
        return model_cache.model(store, store.get_run(run_id))


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array[..., 0] if array.ndim == 3 else array).save(out, format="PNG")
    return out.getvalue()


def drawing(points, width=20) -> np.ndarray:
    """RGBA pixels as the canvas sends them: white strokes on an opaque black 280x280 square."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ImageDraw.Draw(image).line(points, fill=(255, 255, 255, 255), width=width, joint="curve")
    return np.asarray(image)


def test_a_drawing_is_prepared_and_classified(loaded):
    drawn = drawing_pad.predict_drawing(loaded, drawing([(140, 40), (140, 240)]))
    assert drawn.array.shape == (28, 28, 1) and drawn.array.max() == pytest.approx(1.0, abs=0.01)
    assert drawn.probabilities.shape == (10,) and drawn.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert int(np.argmax(drawn.probabilities)) == 1
    assert drawn.seconds < 1.0
    assert drawing_pad.predict_drawing(loaded, drawing([(0, 0), (0, 0)], width=0)) is None
    assert drawing_pad.predict_drawing(loaded, None) is None


def test_the_pads_compiled_prediction_matches_the_models_and_leaves_the_model_out_of_collections(loaded):
    import gc

    x = drawing_pad.preprocess_drawing(drawing([(70, 60), (210, 60), (120, 240)]), loaded.input_shape)[np.newaxis]
    assert drawing_pad.predict_one(loaded, x) == pytest.approx(model_cache.predict(loaded, x), abs=1e-5)
    assert drawing_pad._compiled[loaded] is not None  # LeNet compiles with XLA
    assert gc.get_freeze_count() > 0  # Streamlit's collection after each rerun skips what was loaded


def test_a_model_xla_cannot_compile_is_answered_on_the_plain_path(loaded, monkeypatch):
    import tensorflow as tf

    def without_xla(function=None, **options):  # XLA refuses the pad's function; Keras' own stay as they are
        if function is None or function.__module__ != drawing_pad.__name__:
            return tf_function(function, **options)

        def fails(x):
            raise tf.errors.InvalidArgumentError(None, None, "Detected unsupported operations when trying to compile")
        return fails

    tf_function = tf.function
    monkeypatch.setattr(tf, "function", without_xla)
    other = dataclasses.replace(loaded)  # another load of the run: nothing prepared for it yet
    x = drawing_pad.preprocess_drawing(drawing([(140, 40), (140, 240)]), loaded.input_shape)[np.newaxis]
    assert drawing_pad.predict_one(other, x) == pytest.approx(model_cache.predict(loaded, x), abs=1e-6)
    assert drawing_pad._compiled[other] is None


def test_uploads_are_classified_one_by_one_and_a_bad_file_fails_alone(loaded, mnist):
    sevens = np.flatnonzero(mnist.y_test == 7)
    files = [("seven.png", png(mnist.x_test[sevens[0]])), ("broken.png", b"\x89PNG\r\n\x1a\n not really"),
             ("paper.png", png(255 - mnist.x_test[sevens[1]])), ("empty.gif", b"")]
    seven, broken, paper, empty = upload_view.classify_files(loaded, files, center_digit=True)
    assert broken.error.startswith("broken.png is not an image Layerlab can read")
    assert empty.error.startswith("empty.gif is empty")
    for result in (seven, paper):
        assert result.error is None and result.prepared.array.shape == (28, 28, 1)
        assert prediction_view.top_classes(result.probabilities, DIGITS, 1)[0][0] == "7"
    assert not seven.prepared.inverted and paper.prepared.inverted
    assert "Inverted: the background was light" in upload_view.notes_text(paper.prepared)


def test_activations_of_a_conv_layer_tile_into_its_feature_maps(loaded, mnist):
    layers = model_cache.activations(loaded, mnist.x_test[0].astype(np.float32) / 255)
    assert [a.type for a in layers][:2] == ["Conv2D", "MaxPooling2D"]
    assert layers[0].values.shape == (28, 28, 6) and layers[-1].values.shape == (10,)
    assert activations.tile_feature_maps(layers[0].values).shape == (2 * 29 - 1, 3 * 29 - 1)
    assert activation_view.layer_label(layers[0]) == "1. conv2d_1 (Conv2D) → 28×28×6"


# --- The page ----------------------------------------------------------------------------------


@pytest.fixture
def home_with(monkeypatch, tmp_path, shared_datasets):
    """Point the app at a home (the trained run's, or an empty one) with the offline datasets."""

    def use(home: Path) -> Path:
        monkeypatch.setenv("LAYERLAB_HOME", str(home))
        monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
        resources.store.clear()
        resources.scheduler.clear()
        return home

    monkeypatch.setattr("pipelines.execution.scheduler.Scheduler.ensure_workers", lambda *a, **k: [])
    yield use
    resources.store.clear()
    resources.scheduler.clear()


def open_page(run_id: str | None = None, tab: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("views/test.py")
    if run_id:
        at.query_params["run"] = run_id
    if tab:
        at.session_state[state.key("test", "tab")] = tab
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at) -> str:
    elements = [*at.markdown, *at.caption, *at.error, *at.warning, *at.info, *at.success]
    return "\n".join(str(e.value) for e in elements)


def test_no_runs_yet_says_so_and_points_to_build(home_with, tmp_path):
    home_with(tmp_path / "empty")
    at = open_page()
    assert "No trained model yet" in at.info[0].value
    links = {link.proto.label: link.proto.page for link in at.get("page_link")}
    assert links["Build a model"] == "build"
    assert not at.tabs


def test_the_run_in_the_url_opens_and_the_canvas_asks_for_a_digit(home_with, finished_run):
    home, run_id = finished_run
    home_with(home)
    at = open_page(run_id)
    assert model_picker(at).value == run_id
    assert [tab.label for tab in at.tabs] == ["Draw", "Upload", "Evaluate", "See inside"]
    assert "Draw a digit" in at.info[0].value
    assert not at.metric  # no prediction before the first stroke
    (chart,) = [c for c in at.get("plotly_chart") if c.key == state.key("test", "top_class", "chart")]


def test_an_unusable_run_in_the_url_is_named_and_the_newest_model_shown(home_with, finished_run):
    home, run_id = finished_run
    home_with(home)
    at = open_page("abcdef1234")
    assert "Run `abcdef1234` has no trained model" in at.warning[0].value
    assert model_picker(at).value == run_id


def test_evaluate_shows_accuracy_loss_per_class_and_the_confusion_matrix(home_with, finished_run):
    home, run_id = finished_run
    home_with(home)
    at = open_page(run_id, tab="Evaluate")
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Accuracy"].rstrip("%")) > 50
    assert metrics["Test images"] == "10,000"
    (frame,) = [d.value for d in at.dataframe]
    assert list(frame["Class"]) == list(DIGITS)
    (chart,) = [c for c in at.get("plotly_chart") if c.key == state.key("test", "confusion")]
    assert '"texttemplate":"%{text}"' in chart.proto.spec.replace(" ", "")
    true_class = at.selectbox(key=state.key("test", "cell", "true")).value
    predicted_class = at.selectbox(key=state.key("test", "cell", "predicted")).value
    assert true_class != predicted_class  # the most frequent mistake, to start with
    assert f"of {true_class} predicted as {predicted_class} (wrong)" in texts(at)
    assert "Worst mistakes" in texts(at)

    at.selectbox(key=state.key("test", "cell", "predicted")).set_value(true_class).run()
    assert not at.exception, at.exception
    assert f"of {true_class} predicted as {true_class} (right)" in texts(at)


def test_uploads_on_the_page_and_see_inside_them(home_with, finished_run, mnist):
    home, run_id = finished_run
    home_with(home)
    at = open_page(run_id, tab="Upload")
    seven = mnist.x_test[np.flatnonzero(mnist.y_test == 7)[0]]
    at.file_uploader(key=state.key("test", "upload")).set_value([
        ("seven.png", png(seven), "image/png"), ("notes.txt", b"not a picture", "text/plain")]).run()
    assert not at.exception, at.exception
    assert [shown(e.value) for e in at.error] == [
        "notes.txt is not an image Layerlab can read. Allowed formats: PNG, JPEG, BMP, GIF, WebP"]
    assert [m.value for m in at.metric][0].startswith("7 · ")

    at.session_state[state.key("test", "tab")] = "See inside"
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key=state.key("test", "inside", "input", run_id)).value == "seven.png"
    assert at.selectbox(key=state.key("test", "inside", "layer", run_id)).value == 0  # the first Conv2D
    assert [c for c in at.get("plotly_chart") if c.key == state.key("test", "inside", "maps")]
    at.selectbox(key=state.key("test", "inside", "layer", run_id)).set_value(7).run()  # the output layer
    assert [c for c in at.get("plotly_chart") if c.key == state.key("test", "inside", "units")]


def test_a_url_value_that_is_no_run_id_is_refused_without_echoing_it(home_with, finished_run):
    home, run_id = finished_run
    home_with(home)
    at = open_page("[x](http://127.0.0.1:9/)")
    assert [w.value for w in at.warning] == [run_list.MALFORMED_RUN_LINK]
    assert model_picker(at).value == run_id


@pytest.mark.parametrize("text", HOSTILE)
def test_upload_file_names_are_shown_escaped(home_with, finished_run, mnist, text):
    home, run_id = finished_run
    home_with(home)
    at = open_page(run_id, tab="Upload")
    seven = mnist.x_test[np.flatnonzero(mnist.y_test == 7)[0]]
    at.file_uploader(key=state.key("test", "upload")).set_value([
        (f"{text}.png", png(seven), "image/png"), (f"{text}.txt", b"not a picture", "text/plain")]).run()
    assert not at.exception, at.exception
    assert_shown_escaped(at, f"{text}.png")  # the picture's caption
    assert_shown_escaped(at, f"{text}.txt")  # the error naming the file
    at.session_state[state.key("test", "tab")] = "See inside"
    at.run()
    assert_shown_escaped(at, f"{text}.png")  # the input's caption


def test_the_uploader_names_the_configured_upload_cap(home_with, finished_run):
    from streamlit import config

    home, run_id = finished_run
    home_with(home)
    configured = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 7)
    try:
        at = open_page(run_id, tab="Upload")
    finally:
        config.set_option("server.maxUploadSize", configured)
    (uploader,) = [u for u in at.get("file_uploader") if u.key == state.key("test", "upload")]
    assert "up to 7 MB a file" in uploader.help and "marked red" in uploader.help
    assert uploader.proto.max_upload_size_mb == 7
    assert any("Files up to 7 MB: the uploader marks a larger one red" in shown(c.value) for c in at.caption)
    # The server's own cap is high for dataset zips; pictures keep 25 MB.
    assert configured > 25
    at = open_page(run_id, tab="Upload")
    (uploader,) = [u for u in at.get("file_uploader") if u.key == state.key("test", "upload")]
    assert "up to 25 MB a file" in uploader.help and uploader.proto.max_upload_size_mb == 25


# --- Runs told apart, see inside a test image, mistakes in words --------------------------------


def test_the_model_picker_shows_each_runs_settings(home_with, finished_run):
    home, run_id = finished_run
    home_with(home)
    at = open_page(run_id)
    picker = model_picker(at)
    assert picker.format_func(run_id) == f"tiny lenet · 90.0% test accuracy · Adam 1e-3 · 1 epoch · {run_id}"
    assert any("MNIST · 61,706 params · completed after" in shown(c.value) for c in at.caption)


def test_see_inside_takes_an_image_of_the_test_set(home_with, finished_run, mnist):
    home, run_id = finished_run
    home_with(home)
    at = open_page(run_id, tab="See inside")
    assert at.selectbox(key=state.key("test", "inside", "input", run_id)).value == activation_view.TEST_IMAGE
    index = at.number_input(key=state.key("test", "inside", "index", run_id))
    index.set_value(3).run()
    assert not at.exception, at.exception
    truth = mnist.y_test[3]
    assert showing(at, f"test image #3, truly {truth}, as the model gets it")
    assert [c for c in at.get("plotly_chart") if c.key == state.key("test", "inside", "maps")]


def test_mistakes_are_said_in_words(home_with, finished_run):
    assert evaluation_view.mistake_text("6", 7) == "predicted 6: 7 times"
    assert evaluation_view.mistake_text("Shirt", 1) == "predicted Shirt: 1 time"
    assert evaluation_view.worst_caption("7", "6", 0.98) == "predicted 6, truly 7 · 98.0% sure"
    home, run_id = finished_run
    home_with(home)
    at = open_page(run_id, tab="Evaluate")
    (frame,) = [d.value for d in at.dataframe]
    assert all(text == "—" or text.startswith("predicted ") for text in frame["Most common mistake"])
    accuracy = {m.label: m.value for m in at.metric}["Accuracy"]
    assert accuracy.endswith("%") and len(accuracy.rstrip("%").split(".")[1]) == 1  # one decimal


def test_the_canvas_sits_in_a_frame_that_hides_its_own_toolbar(home_with, finished_run):
    home, run_id = finished_run
    home_with(home)
    at = open_page(run_id)
    assert drawing_pad.CANVAS_FRAME == "test_canvas_frame"
    assert any(f".st-key-{drawing_pad.CANVAS_FRAME}" in html.proto.body and "overflow: hidden" in html.proto.body
               for html in at.get("html"))


def model_picker(at):
    """The Test page's Model picker (its key follows the run the URL names)."""
    return next(box for box in at.selectbox if box.label == "Model")
