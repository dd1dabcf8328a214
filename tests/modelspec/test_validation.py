"""`validate`: shapes and counts straight from Keras, and problems that name the layer and the fix.

That each suggested fix, once applied, gives a valid spec is tested with `apply_fix` in test_edit.py."""
import pytest

from pipelines.errors import SpecError
from pipelines.modelspec.keras_build import build_model
from pipelines.modelspec.presets import PRESETS
from tests.modelspec.transfer_helpers import offline, preset_target
from pipelines.modelspec.spec import ModelSpec
from pipelines.modelspec.validation import ensure_valid, validate

SOFTMAX_10 = {"type": "Dense", "params": {"units": 10, "activation": "softmax"}}


def spec_of(*layers, **compile_settings) -> ModelSpec:
    data = {"layers": list(layers)}
    if compile_settings:
        data["compile"] = compile_settings
    return ModelSpec.from_dict(data)


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_valid_and_counts_match_keras(name):
    preset = PRESETS[name]
    spec = offline(preset.spec)
    result = validate(spec, preset_target(preset))
    assert result.ok, result.message()
    model = build_model(spec, result.input_shape)
    assert result.total_params == model.count_params()
    assert [row.output_shape for row in result.rows] == [tuple(layer.output.shape) for layer in model.layers]
    assert [row.params for row in result.rows] == [layer.count_params() for layer in model.layers]


def test_mlp_512_counts_are_the_tutorials():
    result = validate(PRESETS["mlp-512"].spec, "mnist")
    assert [row.output_shape for row in result.rows] == [(None, 784), (None, 512), (None, 10)]
    assert [row.params for row in result.rows] == [0, 401920, 5130]
    assert result.total_params == result.trainable_params == 407050


def test_batch_norm_has_non_trainable_params():
    result = validate(PRESETS["cifar-cnn"].spec, "cifar10")
    assert result.trainable_params < result.total_params


# The five bad specs of the foundation issue: each gives one message naming the layer and what is allowed.
@pytest.mark.parametrize("layers, message", [
    ([{"type": "Flatten"}, {"type": "Conv2D"}, SOFTMAX_10],
     r"Layer 2 \(Conv2D\) needs an image-shaped input \(height, width, channels\) but gets \(None, 784\) after Flatten"),
    ([{"type": "Flatten"}, {"type": "Dense", "params": {"units": 0}}, SOFTMAX_10],
     r"Layer 2 \(Dense\): `units` must be an integer from 1 to 65536. Received: units=0"),
    ([{"type": "Flatten"}, {"type": "Dropout", "params": {"rate": 1.5}}, SOFTMAX_10],
     r"Layer 2 \(Dropout\): `rate` must be a number from 0 up to \(not including\) 1. Received: rate=1.5"),
    ([{"type": "Flatten"}, {"type": "Dens", "params": {"units": 10}}],
     r"Layer 2: unknown layer type 'Dens'. Expected one of: Activation, AveragePooling2D, .*Dense"),
    ([{"type": "Flatten"}, {"type": "Dense", "params": {"units": 7, "activation": "softmax"}}],
     r"Layer 2 \(Dense\): the output has 7 units but mnist has 10 classes: set `units` to 10"),
])
def test_bad_specs_give_one_clear_message(layers, message):
    result = validate(spec_of(*layers), "mnist")
    assert len(result.problems) == 1, result.message()
    assert result.problems[0].index == 1
    with pytest.raises(SpecError, match=message):
        ensure_valid(spec_of(*layers), "mnist")


def test_dense_after_conv_suggests_flatten():
    [problem] = validate(spec_of({"type": "Conv2D"}, SOFTMAX_10), "mnist").problems
    assert "Layer 2 (Dense) gets a 3-D tensor (None, 26, 26, 32)" in problem.message
    assert "insert Flatten" in problem.message
    assert (problem.fix.action, problem.fix.index, problem.fix.layer_type) == ("insert", 1, "Flatten")


def test_kernel_larger_than_its_input():
    spec = spec_of({"type": "Conv2D", "params": {"kernel_size": 5}}, {"type": "MaxPooling2D", "params": {"pool_size": 8}},
                   {"type": "Conv2D", "params": {"kernel_size": 5}}, {"type": "Flatten"}, SOFTMAX_10)
    result = validate(spec, "mnist")
    assert [p.index for p in result.problems] == [2]
    assert "Layer 3 (Conv2D): `kernel_size` 5 is larger than its input (3x3)" in result.problems[0].message


def test_last_activation_must_fit_the_loss():
    result = validate(spec_of({"type": "Flatten"}, {"type": "Dense", "params": {"units": 10, "activation": "relu"}}),
                      "mnist")
    [problem] = result.problems
    assert "the last activation 'relu' does not fit sparse categorical cross-entropy" in problem.message
    assert problem.fix.value == "softmax"


def test_logits_output_is_fine_and_flagged():
    result = validate(spec_of({"type": "Flatten"}, {"type": "Dense", "params": {"units": 10, "activation": "linear"}}),
                      "mnist")
    assert result.ok and result.from_logits


def test_binary_crossentropy_needs_two_classes():
    result = validate(spec_of({"type": "Flatten"}, {"type": "Dense", "params": {"units": 1, "activation": "sigmoid"}},
                              loss="binary_crossentropy"), "mnist")
    assert any("binary_crossentropy needs 2 classes, but mnist has 10" in p.message for p in result.problems)


def test_parameter_cap():
    spec = spec_of({"type": "Flatten"}, {"type": "Dense", "params": {"units": 4096}}, SOFTMAX_10)
    result = validate(spec, "cifar10", max_params=1_000_000)
    assert any("over the cap of 1,000,000" in p.message for p in result.problems)
    assert validate(spec, "cifar10").ok  # 12.6 M is under the default 50 M cap


def test_output_must_be_flat():
    result = validate(spec_of({"type": "Conv2D"}), "mnist")
    assert any("must end in one score per class (10)" in p.message for p in result.problems)


def test_duplicate_names_are_reported():
    spec = ModelSpec.from_dict({"layers": [{"type": "Flatten", "name": "a"}, {"type": "Dense", "name": "a",
                                                                               "params": SOFTMAX_10["params"]}]})
    result = validate(spec, "mnist")
    assert "name 'a' is already used by layer 1" in result.message()


def test_empty_model():
    assert "The model has no layers" in validate(ModelSpec(), "mnist").message()


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(Exception, match="mnist, fashion_mnist, cifar10"):
        validate(PRESETS["mlp-512"].spec, "imagenet")


def _on_random_base(**base_params) -> ModelSpec:
    return spec_of({"type": "PretrainedBase", "name": "base", "params": {"base": "MobileNetV2", **base_params}},
                   {"type": "GlobalAveragePooling2D"}, SOFTMAX_10)


def test_a_frozen_base_with_random_weights_is_a_warning_that_does_not_keep_train_off():
    """A frozen MobileNetV2 with weights none sat at the largest class's share: Build says so
    beforehand, with a one-click fix, and still lets it train (it works offline)."""
    from pipelines.modelspec.edit import apply_fix

    result = validate(_on_random_base(weights="none"), "cifar10")
    assert result.ok and result.problems == ()
    [warning] = result.warnings
    assert warning.index == 0 and warning.param == "weights"
    assert warning.message.startswith("Layer 1 (PretrainedBase): frozen with random weights (weights none), its "
                                      "features are random: expect the top to give every image the largest class")
    assert "Use ImageNet weights, or unfreeze it (unfreeze_last)" in warning.message
    ensure_valid(_on_random_base(weights="none"), "cifar10")  # training is not refused
    fixed = apply_fix(_on_random_base(weights="none"), warning.fix)
    assert fixed.layers[0].params["weights"] == "imagenet"


@pytest.mark.parametrize("base_params", [{"weights": "none", "unfreeze_last": 20}, {"weights": "imagenet"}])
def test_no_warning_for_a_base_that_learns_or_brings_its_weights(base_params, monkeypatch):
    from pipelines.modelspec import validation

    monkeypatch.setattr(validation, "weights_problem", lambda base, shape: None)  # as if ImageNet's were cached
    assert validate(_on_random_base(**base_params), "cifar10").warnings == ()


def test_a_base_whose_settings_are_wrong_gets_the_problem_not_the_warning():
    result = validate(_on_random_base(weights="none", unfreeze_last=-1), "cifar10")
    assert result.warnings == () and [p.param for p in result.problems] == ["unfreeze_last"]
