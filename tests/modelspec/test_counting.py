"""The parameter count by arithmetic (for pages that never load TensorFlow) agrees with Keras' own."""
import pytest

from pipelines.modelspec.counting import count_parameters
from pipelines.modelspec.presets import PRESETS
from tests.modelspec.transfer_helpers import offline, preset_target
from pipelines.modelspec.spec import LayerSpec, ModelSpec
from pipelines.modelspec.validation import validate


def stack(*layers: tuple[str, dict]) -> ModelSpec:
    return ModelSpec(layers=tuple(LayerSpec(kind, f"layer_{i}", params) for i, (kind, params) in enumerate(layers)))


MORE = {
    "same padding, strides and average pooling": stack(
        ("Conv2D", {"filters": 8, "kernel_size": 5, "strides": 2, "padding": "same"}),
        ("AveragePooling2D", {"pool_size": 3, "padding": "same"}), ("BatchNormalization", {}),
        ("GlobalAveragePooling2D", {}), ("Dropout", {"rate": 0.2}), ("Dense", {"units": 10, "activation": "softmax"})),
    "reshape back into an image": stack(
        ("Flatten", {}), ("Reshape", {"target_shape": [14, 56, -1]}), ("Conv2D", {"filters": 4}),
        ("MaxPooling2D", {}), ("LeakyReLU", {}), ("Flatten", {}), ("Dense", {"units": 10, "activation": "softmax"})),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_counts_as_keras_counts(name):
    preset = PRESETS[name]
    result = validate(offline(preset.spec), preset_target(preset))
    assert count_parameters(preset.spec, result.input_shape) == result.total_params


@pytest.mark.parametrize("name", sorted(MORE))
def test_more_stacks_count_as_keras_counts(name):
    result = validate(MORE[name], "mnist")
    assert result.ok, result.message()
    assert count_parameters(MORE[name], result.input_shape) == result.total_params


def test_a_stack_that_does_not_fit_has_no_count():
    assert count_parameters(stack(("Conv2D", {"kernel_size": 31}), ("Conv2D", {})), (28, 28, 1)) is None
    assert count_parameters(stack(("Flatten", {}), ("Conv2D", {})), (28, 28, 1)) is None
    assert count_parameters(stack(("Dense", {"units": 3})), None) is None
    assert count_parameters(stack(("Dens", {})), (28, 28, 1)) is None
    assert count_parameters(stack(), (28, 28, 1)) == 0
