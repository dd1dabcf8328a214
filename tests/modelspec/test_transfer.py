"""Augmentation layers and the pretrained base: registry, counts without Keras, round trip, offline weights."""
import dataclasses
import time

import keras
import numpy as np
import pytest

from pipelines.data.catalog import DatasetInfo
from pipelines.errors import SpecError
from pipelines.modelspec import pretrained
from pipelines.modelspec.counting import count_parameters, layer_output
from pipelines.modelspec.keras_build import build_model, spec_from_model
from pipelines.modelspec.layers import LAYER_TYPES
from pipelines.modelspec.spec import LayerSpec, ModelSpec
from pipelines.modelspec.validation import validate

AUGMENTATION = ("RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast")


def info(shape, classes=10) -> DatasetInfo:
    return DatasetInfo("photos", "Photos", tuple(f"c{i}" for i in range(classes)), shape, "", "", "")


def transfer_spec(base="MobileNetV2", unfreeze_last=0, *front: LayerSpec) -> ModelSpec:
    return ModelSpec(layers=(
        *front,
        LayerSpec("PretrainedBase", "base", {"base": base, "weights": "none", "unfreeze_last": unfreeze_last}),
        LayerSpec("GlobalAveragePooling2D", "pool", {}),
        LayerSpec("Dense", "inner", {"units": 16, "activation": "relu"}),
        LayerSpec("Dense", "outputs", {"units": 10, "activation": "linear"}),
    )).normalized()


@pytest.mark.parametrize("name", AUGMENTATION)
def test_augmentation_is_in_the_palette_with_help_and_keeps_the_shape(name):
    layer_type = LAYER_TYPES[name]
    assert layer_type.category == "augmentation" and layer_type.random
    assert "only while training" in layer_type.help
    layer = LayerSpec(name, "aug", layer_type.defaults())
    assert layer_output(layer, (64, 48, 3)) == ((64, 48, 3), 0)
    assert layer_output(layer, (784,)) is None


def test_augmentation_after_flatten_is_a_problem_and_changes_nothing_at_test_time():
    spec = ModelSpec(layers=(LayerSpec("Flatten", "flat", {}), LayerSpec("RandomFlip", "flip", {}),
                             LayerSpec("Dense", "out", {"units": 10, "activation": "softmax"}))).normalized()
    problems = validate(spec, "mnist").problems
    assert any("needs an image-shaped input" in p.message and p.index == 1 for p in problems)

    layers = tuple(LayerSpec(name, name.lower(), LAYER_TYPES[name].defaults()) for name in AUGMENTATION)
    model = build_model(ModelSpec(layers=layers).normalized(), (32, 32, 3), compile=False)
    images = np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model(images, training=False), images, atol=1e-6)
    assert np.abs(np.asarray(model(images, training=True)) - images).max() > 0.01


@pytest.mark.parametrize("base", list(pretrained.BASES))
def test_base_table_agrees_with_keras_applications(base):
    """Shapes and counts without TensorFlow, against Keras' own build (weights=None, no memory used)."""
    for shape in ((96, 120, 3), (150, 150, 3)):
        spec = transfer_spec(base)
        result = validate(spec, info(shape))
        assert result.ok, result.message()
        row = result.rows[0]
        assert row.output_shape == (None, *pretrained.output_shape(base, shape))
        assert row.params == pretrained.BASES[base].params and row.trainable_params == 0
        assert count_parameters(spec, shape) == result.total_params


def test_pretrained_base_round_trips_feeds_raw_pixels_and_reloads(tmp_path):
    spec = transfer_spec("MobileNetV2", 0, LayerSpec("RandomFlip", "flip", {"mode": "horizontal"}))
    model = build_model(spec, (64, 64, 3))
    assert spec_from_model(model, spec.fit) == dataclasses.replace(spec, input_shape=(64, 64, 3), name="model")
    images = np.random.default_rng(1).random((3, 64, 64, 3)).astype("float32")  # Layerlab's [0, 1] pixels
    block = model.get_layer("base")
    expected = block.network(keras.applications.mobilenet_v2.preprocess_input(images * 255.0), training=False)
    np.testing.assert_allclose(block(images), expected, atol=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)  # safe_mode on
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


def test_unfreezing_the_last_layers_keeps_batch_normalization_frozen():
    result = validate(transfer_spec("MobileNetV2", 3), info((64, 64, 3)))
    base_row = result.rows[0]
    assert 0 < base_row.trainable_params < base_row.params
    model = build_model(transfer_spec("MobileNetV2", 3), (64, 64, 3), compile=False)
    network = model.get_layer("base").network
    assert not any(layer.trainable for layer in network.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert [layer.trainable for layer in network.layers[-3:] if layer.weights][:1] == [True]


def test_missing_imagenet_weights_offline_are_named_within_seconds(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    unreachable = dataclasses.replace(pretrained.BASES["MobileNetV2"],
                                      url="https://10.255.255.1/weights/mobilenet_v2_1.0_{rows}_no_top.h5")
    monkeypatch.setitem(pretrained.BASES, "MobileNetV2", unreachable)
    monkeypatch.setattr(pretrained, "_probes", {})
    spec = ModelSpec(layers=(LayerSpec("PretrainedBase", "base", {"base": "MobileNetV2", "weights": "imagenet"}),
                             LayerSpec("GlobalAveragePooling2D", "pool", {}),
                             LayerSpec("Dense", "out", {"units": 10, "activation": "softmax"}))).normalized()
    started = time.monotonic()
    problems = validate(spec, info((128, 128, 3))).problems
    assert time.monotonic() - started < 15
    (problem,) = problems
    assert "mobilenet_v2_1.0_128_no_top.h5" in problem.message and str(tmp_path / "models") in problem.message
    assert problem.fix.param == "weights" and problem.fix.value == "none"
    started = time.monotonic()
    with pytest.raises(SpecError, match="cannot be reached"):
        build_model(spec, (128, 128, 3))
    assert time.monotonic() - started < 15
    assert "not cached" in pretrained.weights_note("MobileNetV2", (128, 128, 3))


@pytest.mark.parametrize("base", ["ResNet50", "MobileNetV2"])
def test_a_pretrained_base_on_grayscale_images_is_refused_before_anything_is_built(base):
    """Keras only fails at training time (ResNet50's preprocess_input, even with weights none)."""
    from pipelines.modelspec.validation import ensure_valid

    result = validate(transfer_spec(base), info((64, 64, 1)))
    (problem,) = result.problems
    assert problem.index == 0 and problem.fix is None
    assert "Layer 1 (PretrainedBase)" in problem.message and "has 1." in problem.message
    assert "3 channels" in problem.message and "colour rgb" in problem.message
    with pytest.raises(SpecError, match=r"Layer 1 \(PretrainedBase\): a pretrained base takes colour images"):
        ensure_valid(transfer_spec(base), info((64, 64, 1)))


def test_a_pretrained_base_after_a_layer_that_changes_the_channels_names_that_layer():
    spec = transfer_spec("MobileNetV2", 0, LayerSpec("Conv2D", "conv", {"filters": 8, "kernel_size": 3}))
    (problem,) = validate(spec, info((64, 64, 3))).problems
    assert problem.index == 1 and "has 8" in problem.message and "layer before it" in problem.message


@pytest.fixture
def silent_server():
    """A local port that takes connections (the kernel's backlog) but never answers: a stalled host."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_a_probe_whose_name_lookup_hangs_gives_up_in_time_without_touching_the_socket_default(monkeypatch):
    import socket
    import threading

    release = threading.Event()

    def hanging_lookup(*args, **kwargs):  # a DNS server that never answers: socket timeouts do not cover it
        release.wait(60)
        raise socket.gaierror("no answer")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_lookup)
    monkeypatch.setattr(pretrained, "_probes", {})
    try:
        started = time.monotonic()
        assert pretrained.reachable("https://weights.invalid/x.h5", timeout=1.0) is False
        assert pretrained.resolves("weights.invalid", timeout=1.0) is False
        assert time.monotonic() - started < 10
        assert socket.getdefaulttimeout() is None
    finally:
        release.set()


def test_a_host_that_never_answers_is_unreachable_and_its_download_fails_leaving_no_file(
        silent_server, tmp_path, monkeypatch):
    import socket

    monkeypatch.setattr(pretrained, "_probes", {})
    started = time.monotonic()
    assert pretrained.reachable(f"{silent_server}/weights.h5", timeout=1.0) is False
    assert time.monotonic() - started < 10
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    stalled = dataclasses.replace(pretrained.BASES["ResNet50"], url=f"{silent_server}/resnet50_notop.h5")
    monkeypatch.setitem(pretrained.BASES, "ResNet50", stalled)
    with pytest.raises(OSError, match="timed out"):
        pretrained.download_weights("ResNet50", (64, 64, 3), timeout=1.0)
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())
    assert socket.getdefaulttimeout() is None


def test_a_download_lands_whole_in_keras_cache(tmp_path, monkeypatch):
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    (served / "resnet50_notop.h5").write_bytes(b"w" * 300_000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
        local = dataclasses.replace(pretrained.BASES["ResNet50"],
                                    url=f"http://127.0.0.1:{server.server_address[1]}/resnet50_notop.h5")
        monkeypatch.setitem(pretrained.BASES, "ResNet50", local)
        path = pretrained.download_weights("ResNet50", (64, 64, 3), timeout=5.0)
    finally:
        server.shutdown()
        server.server_close()
    assert path == pretrained.cached_weights("ResNet50", (64, 64, 3))
    assert path.read_bytes() == b"w" * 300_000
    assert [p.name for p in path.parent.iterdir()] == ["resnet50_notop.h5"]
