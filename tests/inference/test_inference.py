"""A trained run's model in use: loading, probabilities, activations, evaluation, and the Test
page's acceptance check that photographed-style uploads are read as well as MNIST itself."""
import io
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from pipelines.data.catalog import Dataset
from pipelines.data.inputs import make_inputs, scale_images
from pipelines.data.locate import load
from pipelines.errors import DatasetError
from pipelines.inference.predict import Activation, LoadedModel, layer_activations, load_run_model, predict_proba
from pipelines.errors import InferenceError
from pipelines.inference.evaluate import cell_indices, evaluate, flipped, worst_mistakes
from pipelines.modelspec.keras_build import build_model
from pipelines.inference.preprocess import open_upload, preprocess_drawing, preprocess_image
from pipelines.modelspec.presets import get_preset
from pipelines.modelspec.spec import LayerSpec, ModelSpec
from pipelines.runs.artifacts import MODEL_FILE, SPEC_FILE

pytestmark = pytest.mark.slow


def save_run(run_dir: Path, model: keras.Model, spec: ModelSpec) -> Path:
    """The two files of a finished run that inference reads."""
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / MODEL_FILE)
    (run_dir / SPEC_FILE).write_text(spec.to_json())
    return run_dir


@pytest.fixture(scope="module")
def mnist(shared_datasets) -> Dataset:
    return load("mnist", shared_datasets, download=False)


@pytest.fixture(scope="module")
def lenet_run(mnist, tmp_path_factory) -> tuple[Path, dict]:
    """LeNet trained once on the 5k MNIST sample: its run folder and Keras' own test results."""
    keras.utils.set_random_seed(0)
    spec = get_preset("lenet").spec
    model = build_model(spec, mnist.info.input_shape)
    inputs = make_inputs(mnist, batch_size=64, validation_split=0.0, seed=0)
    model.fit(inputs.train, epochs=6, verbose=0, shuffle=False)
    keras_test = model.evaluate(inputs.test, verbose=0, return_dict=True)
    return save_run(tmp_path_factory.mktemp("lenet"), model, spec), keras_test


@pytest.fixture(scope="module")
def lenet(lenet_run) -> LoadedModel:
    return load_run_model(lenet_run[0], "mnist")


@pytest.fixture(scope="module")
def lenet_evaluation(lenet, mnist):
    return evaluate(lenet, mnist.x_test, mnist.y_test)


def test_load_run_model_reads_the_model_and_its_spec(lenet):
    assert lenet.spec == get_preset("lenet").spec
    assert lenet.input_shape == (28, 28, 1)
    assert lenet.from_logits is False
    assert lenet.class_names == tuple("0123456789")
    assert [type(layer).__name__ for layer in lenet.model.layers][-1] == "Dense"


def test_missing_or_damaged_run_files_give_clear_errors(lenet_run, tmp_path):
    with pytest.raises(InferenceError, match=f"{MODEL_FILE} does not exist"):
        load_run_model(tmp_path, "mnist")

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / MODEL_FILE).write_bytes(b"not a zip archive")
    (damaged / SPEC_FILE).write_text(get_preset("lenet").spec.to_json())
    with pytest.raises(InferenceError, match="could not be loaded as a Keras model"):
        load_run_model(damaged, "mnist")

    bad_spec = tmp_path / "bad-spec"
    bad_spec.mkdir()
    (bad_spec / MODEL_FILE).write_bytes((lenet_run[0] / MODEL_FILE).read_bytes())
    (bad_spec / SPEC_FILE).write_text("{not json")
    with pytest.raises(InferenceError, match=f"{SPEC_FILE} is not a readable model spec"):
        load_run_model(bad_spec, "mnist")

    with pytest.raises(DatasetError, match="Unknown dataset"):
        load_run_model(lenet_run[0], "mnsit")


def test_a_model_for_another_number_of_classes_is_refused(tmp_path):
    spec = ModelSpec(layers=(LayerSpec("Flatten", "flatten_1", {}),
                             LayerSpec("Dense", "dense_1", {"units": 5, "activation": "softmax"})))
    run_dir = save_run(tmp_path, build_model(spec, (28, 28, 1)), spec)
    with pytest.raises(InferenceError, match="gives 5 outputs, but MNIST has 10 classes"):
        load_run_model(run_dir, "mnist")


def test_predict_proba_gives_probabilities_for_floats_and_uint8(lenet, mnist):
    images = mnist.x_test[:300]
    probabilities = predict_proba(lenet, images)
    assert probabilities.shape == (300, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(predict_proba(lenet, scale_images(images)), probabilities)
    np.testing.assert_allclose(probabilities, lenet.model.predict(scale_images(images), verbose=0),
                               atol=1e-5)
    with pytest.raises(InferenceError, match=r"shape \(N, 28, 28, 1\)"):
        predict_proba(lenet, np.zeros((28, 28, 1), np.float32))


def test_a_drawing_is_read_within_the_latency_budget(lenet):
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[40:240, 130:150, :3] = 255  # a "1"

    def read() -> np.ndarray:
        return predict_proba(lenet, preprocess_drawing(canvas, lenet.input_shape)[np.newaxis])

    first = read()  # the first call traces the forward pass; how fast later ones are: bench/latency.py
    probabilities = read()
    np.testing.assert_allclose(probabilities, first)
    assert probabilities.argmax() == 1


def test_layer_activations_give_every_layers_output(lenet, mnist):
    x = scale_images(mnist.x_test[:1])
    activations = layer_activations(lenet, x)
    assert [a.index for a in activations] == list(range(len(lenet.model.layers)))
    for activation, layer in zip(activations, lenet.model.layers):
        assert isinstance(activation, Activation)
        assert activation.name == layer.name and activation.type == type(layer).__name__
        assert activation.values.shape == tuple(layer.output.shape[1:])
    by_name = {a.name: a for a in activations}
    assert by_name["conv2d_1"].values.shape == (28, 28, 6)
    assert by_name["conv2d_2"].values.shape == (10, 10, 16)
    assert by_name["dense_1"].values.shape == (120,)
    np.testing.assert_allclose(activations[-1].values, predict_proba(lenet, x)[0], atol=1e-6)
    with pytest.raises(InferenceError, match="one input"):
        layer_activations(lenet, scale_images(mnist.x_test[:2]))


def test_evaluate_agrees_with_keras(lenet_run, lenet_evaluation, mnist):
    keras_test = lenet_run[1]
    evaluation = lenet_evaluation
    assert evaluation.accuracy >= 0.9
    assert abs(evaluation.accuracy - keras_test["accuracy"]) <= 1e-4
    assert evaluation.loss == pytest.approx(keras_test["loss"], rel=1e-3)

    confusion = evaluation.confusion
    assert confusion.shape == (10, 10) and confusion.sum() == 10_000
    assert np.trace(confusion) / confusion.sum() == pytest.approx(evaluation.accuracy)
    np.testing.assert_array_equal(evaluation.predicted, evaluation.probabilities.argmax(axis=1))
    np.testing.assert_allclose(evaluation.confidence, evaluation.probabilities.max(axis=1))

    counts = np.bincount(mnist.y_test, minlength=10)
    assert [row["class"] for row in evaluation.per_class] == list(range(10))
    assert [row["name"] for row in evaluation.per_class] == list("0123456789")
    assert [row["count"] for row in evaluation.per_class] == counts.tolist()
    assert [row["correct"] for row in evaluation.per_class] == np.diag(confusion).tolist()
    for row in evaluation.per_class:
        assert row["accuracy"] == pytest.approx(row["correct"] / row["count"])


def test_worst_mistakes_are_wrong_and_most_confident_first(lenet_evaluation):
    evaluation = lenet_evaluation
    worst = worst_mistakes(evaluation)
    wrong = int((evaluation.predicted != evaluation.labels).sum())
    assert len(worst) == min(24, wrong) > 0
    assert (evaluation.predicted[worst] != evaluation.labels[worst]).all()
    confidences = evaluation.confidence[worst]
    assert (np.diff(confidences) <= 0).all()
    others = np.setdiff1d(np.flatnonzero(evaluation.predicted != evaluation.labels), worst)
    assert evaluation.confidence[others].max(initial=0) <= confidences[-1]
    assert len(worst_mistakes(evaluation, limit=5)) == 5


def test_cell_indices_match_the_confusion_matrix(lenet_evaluation):
    evaluation = lenet_evaluation
    for true_class in range(10):
        for predicted_class in range(10):
            indices = cell_indices(evaluation, true_class, predicted_class)
            assert len(indices) == evaluation.confusion[true_class, predicted_class]
            assert (evaluation.labels[indices] == true_class).all()
            assert (evaluation.predicted[indices] == predicted_class).all()
    with pytest.raises(InferenceError, match="true_class"):
        cell_indices(evaluation, 10, 0)


def test_flipped_examples_are_right_in_one_run_wrong_in_the_other_surest_mistake_first(lenet_evaluation):
    import dataclasses

    a = lenet_evaluation
    # Run B: A's answers with the first 50 right ones turned wrong, at rising confidence.
    predicted, confidence = a.predicted.copy(), a.confidence.copy()
    turned = np.flatnonzero(a.predicted == a.labels)[:50]
    predicted[turned] = (a.labels[turned] + 1) % 10
    confidence[turned] = np.linspace(0.5, 0.99, len(turned))
    b = dataclasses.replace(a, predicted=predicted, confidence=confidence)
    assert flipped(a, b).tolist() == turned[::-1].tolist()
    assert len(flipped(b, a)) == 0
    with pytest.raises(InferenceError, match="different test sets"):
        flipped(a, dataclasses.replace(b, labels=a.labels[:-1]))


def test_uploaded_pngs_of_inverted_upscaled_digits_are_read_nearly_as_well(lenet, lenet_evaluation, mnist, tmp_path):
    """The acceptance check: dark-on-white 112x112 PNGs of the first 1000 test digits, read back
    through the upload path, reach at least 95% of the test accuracy."""
    count = 1000
    paths = []
    for index in range(count):
        digit = Image.fromarray(255 - mnist.x_test[index, ..., 0]).resize((112, 112), Image.Resampling.BICUBIC)
        path = tmp_path / f"digit-{index:04d}.png"
        digit.save(path)
        paths.append(path)

    batch = np.empty((count, 28, 28, 1), np.float32)
    for index, path in enumerate(paths):
        prepared = preprocess_image(open_upload(path.read_bytes(), path.name), lenet.input_shape, invert="auto")
        assert prepared.inverted
        batch[index] = prepared.array
    accuracy = float((predict_proba(lenet, batch).argmax(axis=1) == mnist.y_test[:count]).mean())
    print(f"test accuracy {lenet_evaluation.accuracy:.4f}, upload-path accuracy {accuracy:.4f}")
    assert accuracy >= 0.95 * lenet_evaluation.accuracy


def phone_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 480x640 JPEG like a phone's picture of a digit on paper: dark ink, the digit small and off
    centre, light paper shaded from one side, sensor noise, a little blur."""
    height, width = 640, 480
    ramp = np.linspace(rng.uniform(170, 200), rng.uniform(225, 250), width)[None, :]
    paper = np.repeat(ramp, height, axis=0) + rng.normal(0, 6, (height, width))
    size = int(rng.integers(140, 220))
    glyph = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
    top, left = int(rng.integers(40, height - size - 40)), int(rng.integers(40, width - size - 40))
    ink = rng.uniform(30, 60)
    region = paper[top:top + size, left:left + size]
    paper[top:top + size, left:left + size] = region * (1 - glyph) + ink * glyph
    picture = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).convert("RGB")
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=80)
    return out.getvalue()


def test_phone_style_photos_of_digits_on_paper_are_read_right(lenet, lenet_evaluation, mnist):
    """The Test page's promise: a phone-style photo of a digit on paper, uploaded as it is, is
    classified about as well as MNIST's own test digits."""
    rng = np.random.default_rng(7)
    count = 200
    batch = np.empty((count, 28, 28, 1), np.float32)
    for index in range(count):
        data = phone_photo(mnist.x_test[index, ..., 0], rng)
        prepared = preprocess_image(open_upload(data, f"photo-{index}.jpg"), lenet.input_shape, invert="auto")
        assert prepared.inverted
        batch[index] = prepared.array
    accuracy = float((predict_proba(lenet, batch).argmax(axis=1) == mnist.y_test[:count]).mean())
    print(f"test accuracy {lenet_evaluation.accuracy:.4f}, phone-photo accuracy {accuracy:.4f}")
    assert accuracy >= 0.9 * lenet_evaluation.accuracy


def test_raw_scores_are_turned_into_probabilities(tmp_path):
    """A cifar-mlp-like model ends in a linear Dense 10: its outputs are logits."""
    spec = ModelSpec(layers=(LayerSpec("Flatten", "flatten_1", {}),
                             LayerSpec("Dense", "dense_1", {"units": 10, "activation": "linear"})))
    keras.utils.set_random_seed(1)
    run_dir = save_run(tmp_path, build_model(spec, (32, 32, 3)), spec)
    loaded = load_run_model(run_dir, "cifar10")
    assert loaded.from_logits and loaded.class_names[0] == "airplane"

    images = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    logits = np.asarray(loaded.model(scale_images(images), training=False), np.float64)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probabilities = predict_proba(loaded, images)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    evaluation = evaluate(loaded, images, np.arange(20) % 10, batch_size=8)
    assert evaluation.confusion.sum() == 20 and 0 <= evaluation.loss < np.inf


@pytest.mark.parametrize("activation, logits", [("sigmoid", False), ("linear", True)])
def test_one_output_unit_gives_two_columns(activation, logits):
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation=activation)])
    loaded = LoadedModel(model=model, spec=ModelSpec(), input_shape=(4, 4, 1), from_logits=logits,
                         class_names=("no", "yes"))
    x = np.random.default_rng(0).random((6, 4, 4, 1), dtype=np.float32)
    output = np.asarray(model(x, training=False))[:, 0]
    positive = output if not logits else 1 / (1 + np.exp(-output))
    probabilities = predict_proba(loaded, x)
    np.testing.assert_allclose(probabilities, np.stack([1 - positive, positive], axis=1), atol=1e-6)
