"""The layer registry, the spec's JSON round trip, and spec -> Keras model -> spec identity."""
import json

import pytest

from pipelines.errors import SpecError
from pipelines.modelspec.layers import LAYER_TYPES, default_layer_name
from pipelines.modelspec.keras_build import build_model, spec_from_model
from pipelines.modelspec.spec import from_logits
from pipelines.modelspec.presets import PRESETS, get_preset
from tests.modelspec.transfer_helpers import offline, preset_target
from pipelines.modelspec.spec import OPTIMIZERS, CompileSpec, FitSpec, LayerSpec, ModelSpec

REQUIRED_TYPES = {"Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "Flatten",
                  "Dropout", "BatchNormalization", "Activation", "LeakyReLU", "Reshape"}


def test_registry_has_every_required_type_with_valid_defaults():
    assert REQUIRED_TYPES <= set(LAYER_TYPES)
    for layer_type in LAYER_TYPES.values():
        assert layer_type.help
        for param in layer_type.params:
            assert param.help, (layer_type.name, param.name)
            assert param.check(param.default) is None, (layer_type.name, param.name)


def test_activation_choices_cover_the_tutorials():
    choices = LAYER_TYPES["Activation"].param("activation").choices
    assert set(choices) == {"relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "linear"}


def test_default_names_are_explicit_and_unique():
    assert default_layer_name("Dense", set()) == "dense_1"
    assert default_layer_name("Dense", {"dense_1"}) == "dense_2"
    assert default_layer_name("MaxPooling2D", set()) == "max_pooling2d_1"
    assert default_layer_name("LeakyReLU", set()) == "leaky_relu_1"


def test_json_round_trip_is_identity_for_every_preset():
    for preset in PRESETS.values():
        text = preset.spec.to_json()
        assert ModelSpec.from_json(text) == preset.spec
        assert json.loads(text) == preset.spec.to_dict()


def test_from_dict_names_layers_and_fills_defaults():
    spec = ModelSpec.from_dict({"layers": [{"type": "Flatten"}, {"type": "Dense", "params": {"units": 10}},
                                           {"type": "Dense", "params": {"units": 10}}]})
    assert [layer.name for layer in spec.layers] == ["flatten_1", "dense_1", "dense_2"]
    assert spec.layers[1].params == {"units": 10, "activation": "relu"}


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"layers": 3}', "`layers` must be a list"),
    ('{"layers": [{"params": {}}]}', "Layer 1: `type` must be a layer type name"),
    ('{"layers": [], "compile": {"optimizer": "adamax"}}', "Unknown optimizer 'adamax'. Expected one of: sgd"),
    ('{"layers": [], "compile": {"loss": "hinge"}}', "Unknown loss 'hinge'. Expected one of:"),
    ('{"layers": [], "fit": {"epochs": 0}}', r"`epochs` must be an integer from 1 to 1000. Received: epochs=0"),
    ('{"layers": [], "fit": {"validation_split": 0.9}}', "validation_split"),
    ('{"layers": [], "fit": {"epoch": 3}}', "unknown setting 'epoch'"),
    ('{"layers": [], "colour": 3}', "unknown setting 'colour'"),
])
def test_malformed_specs_are_rejected_with_a_message(text, message):
    with pytest.raises(SpecError, match=message):
        ModelSpec.from_json(text)


def test_every_optimizer_is_offered_with_its_default_rate():
    assert set(OPTIMIZERS) == {"sgd", "rmsprop", "adam", "adamw", "adagrad", "nadam"}
    spec = CompileSpec(optimizer="sgd", learning_rate=0.05, momentum=0.9, nesterov=True)
    assert CompileSpec.from_dict(spec.to_dict()) == spec


def _every_layer_spec() -> ModelSpec:
    layers = (
        LayerSpec("Reshape", "reshape_1", {"target_shape": [28, 28, 1]}),
        LayerSpec("RandomFlip", "random_flip_1", {"mode": "horizontal_and_vertical"}),
        LayerSpec("RandomRotation", "random_rotation_1", {"factor": 0.05}),
        LayerSpec("RandomZoom", "random_zoom_1", {"factor": 0.2}),
        LayerSpec("RandomTranslation", "random_translation_1", {"height_factor": 0.1, "width_factor": 0.15}),
        LayerSpec("RandomContrast", "random_contrast_1", {"factor": 0.3}),
        LayerSpec("Conv2D", "conv2d_1", {"filters": 8, "kernel_size": 3, "strides": 1, "padding": "same",
                                         "activation": "elu"}),
        LayerSpec("BatchNormalization", "batch_normalization_1", {"momentum": 0.9}),
        LayerSpec("LeakyReLU", "leaky_relu_1", {"negative_slope": 0.1}),
        LayerSpec("MaxPooling2D", "max_pooling2d_1", {"pool_size": 2, "padding": "valid"}),
        LayerSpec("Conv2D", "conv2d_2", {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "valid",
                                         "activation": "selu"}),
        LayerSpec("AveragePooling2D", "average_pooling2d_1", {"pool_size": 2, "padding": "same"}),
        LayerSpec("GlobalAveragePooling2D", "global_average_pooling2d_1", {}),
        LayerSpec("Dense", "dense_1", {"units": 16, "activation": "gelu"}),
        LayerSpec("Dropout", "dropout_1", {"rate": 0.25}),
        LayerSpec("Activation", "activation_1", {"activation": "tanh"}),
        LayerSpec("Dense", "dense_2", {"units": 10, "activation": "linear"}),
        LayerSpec("Activation", "activation_2", {"activation": "softmax"}),
    )
    # The transfer blocks need colour images and a finished run: tests/modelspec/test_transfer.py
    assert {layer.type for layer in layers} | {"Flatten", "PretrainedBase", "RunBase"} == set(LAYER_TYPES)
    return ModelSpec(layers=layers, input_shape=(28, 28, 1), name="everything",
                     compile=CompileSpec(optimizer="sgd", learning_rate=0.0125, momentum=0.9, nesterov=True,
                                         loss="categorical_crossentropy"),
                     fit=FitSpec(epochs=3, batch_size=64, validation_split=0.2, early_stopping_patience=2))


@pytest.mark.parametrize("spec", [
    *(offline(ModelSpec.from_dict({**p.spec.to_dict(), "input_shape": list(preset_target(p).input_shape)}))
      for p in PRESETS.values()),
    _every_layer_spec(),
], ids=[*PRESETS, "every-layer-type"])
def test_spec_to_keras_model_to_spec_is_identity(spec):
    model = build_model(spec)
    assert spec_from_model(model, fit=spec.fit) == spec


def test_from_logits_follows_the_last_activation():
    assert not from_logits(get_preset("mlp-512").spec)
    assert from_logits(get_preset("cifar-mlp").spec)
    assert from_logits(get_preset("cifar-cnn").spec)
    model = build_model(get_preset("cifar-mlp").spec, (32, 32, 3))
    assert model.loss.get_config()["from_logits"] is True
    model = build_model(get_preset("mlp-512").spec, (28, 28, 1))
    assert model.loss.get_config()["from_logits"] is False


def test_cifar_cnn_preset_matches_the_tutorial():
    spec = get_preset("cifar-cnn").spec
    types = [layer.type for layer in spec.layers]
    assert types[:12] == ["Conv2D", "BatchNormalization", "LeakyReLU"] * 4
    assert [layer.params["strides"] for layer in spec.layers if layer.type == "Conv2D"] == [1, 2, 1, 2]
    assert types[12:] == ["Flatten", "Dense", "BatchNormalization", "LeakyReLU", "Dropout", "Dense"]
    assert spec.layers[13].params["units"] == 128 and spec.layers[16].params["rate"] == 0.5
    assert spec.layers[-1].params["units"] == 10


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(SpecError, match="Unknown preset 'mlp'. Expected one of: mlp-512, mlp-128x2"):
        get_preset("mlp")
