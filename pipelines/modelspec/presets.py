"""The tutorials' models, ready to load with one click.

Each preset reproduces a classic Keras tutorial model with the settings the tutorial used, and
names the dataset it was written for.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipelines.errors import SpecError
from pipelines.modelspec.spec import CompileSpec, FitSpec, LayerSpec, ModelSpec


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    dataset: str
    description: str
    spec: ModelSpec


def _dense(name: str, units: int, activation: str = "linear") -> LayerSpec:
    return LayerSpec("Dense", name, {"units": units, "activation": activation})


def _conv(name: str, filters: int, strides: int) -> LayerSpec:
    return LayerSpec("Conv2D", name, {"filters": filters, "kernel_size": 3, "strides": strides,
                                      "padding": "same", "activation": "linear"})


def _cifar_cnn_layers() -> tuple[LayerSpec, ...]:
    layers: list[LayerSpec] = []
    for i, (filters, strides) in enumerate(((32, 1), (32, 2), (64, 1), (64, 2)), start=1):
        layers += [
            _conv(f"conv2d_{i}", filters, strides),
            LayerSpec("BatchNormalization", f"batch_normalization_{i}", {"momentum": 0.99}),
            LayerSpec("LeakyReLU", f"leaky_relu_{i}", {"negative_slope": 0.3}),
        ]
    layers += [
        LayerSpec("Flatten", "flatten_1", {}),
        _dense("dense_1", 128),
        LayerSpec("BatchNormalization", "batch_normalization_5", {"momentum": 0.99}),
        LayerSpec("LeakyReLU", "leaky_relu_5", {"negative_slope": 0.3}),
        LayerSpec("Dropout", "dropout_1", {"rate": 0.5}),
        _dense("dense_2", 10),
    ]
    return tuple(layers)


def _transfer_layers(base: str) -> tuple[LayerSpec, ...]:
    """The clothing tutorial's model: a frozen ImageNet base, average pooling, Dense 100, Dropout 0.2,
    and 10 raw scores (a linear last layer: the loss then takes logits, as `from_logits=True`)."""
    return (LayerSpec("PretrainedBase", "base", {"base": base, "weights": "imagenet", "unfreeze_last": 0}),
            LayerSpec("GlobalAveragePooling2D", "global_average_pooling2d_1", {}),
            _dense("inner", 100, "relu"), LayerSpec("Dropout", "dropout_1", {"rate": 0.2}), _dense("outputs", 10))


# The name the README's clothing tutorial adds its photos under (`dataset add clothing ...`).
CLOTHING_DATASET = "clothing"

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "mlp-512", "MNIST MLP (512 units)", "mnist",
            "The first network of 'Deep Learning with Python': one hidden layer of 512 relu units, "
            "rmsprop, 5 epochs of batch 128 on the whole training set.",
            ModelSpec(
                layers=(LayerSpec("Flatten", "flatten_1", {}), _dense("dense_1", 512, "relu"),
                        _dense("dense_2", 10, "softmax")),
                compile=CompileSpec(optimizer="rmsprop", learning_rate=0.001),
                fit=FitSpec(epochs=5, batch_size=128, validation_split=0.0),
                name="mlp-512",
            ),
        ),
        Preset(
            "mlp-128x2", "Two hidden layers of 128", "fashion_mnist",
            "TensorFlow's 'basic classification' on Fashion-MNIST, with a second hidden layer: "
            "Adam, batch 32.",
            ModelSpec(
                layers=(LayerSpec("Flatten", "flatten_1", {}), _dense("dense_1", 128, "relu"),
                        _dense("dense_2", 128, "relu"), _dense("dense_3", 10, "softmax")),
                compile=CompileSpec(optimizer="adam", learning_rate=0.001),
                fit=FitSpec(epochs=5, batch_size=32),
                name="mlp-128x2",
            ),
        ),
        Preset(
            "cifar-mlp", "CIFAR-10 MLP", "cifar10",
            "The MLP baseline of 'Generative Deep Learning' on CIFAR-10 (about 49% test accuracy): "
            "Dense 200 and 150, raw scores out.",
            ModelSpec(
                layers=(LayerSpec("Flatten", "flatten_1", {}), _dense("dense_1", 200, "relu"),
                        _dense("dense_2", 150, "relu"), _dense("dense_3", 10)),
                compile=CompileSpec(optimizer="adam", learning_rate=0.0005),
                fit=FitSpec(epochs=10, batch_size=32),
                name="cifar-mlp",
            ),
        ),
        Preset(
            "cifar-cnn", "CIFAR-10 CNN", "cifar10",
            "The CNN that beats the MLP in 'Generative Deep Learning': four Conv2D layers with "
            "BatchNorm and LeakyReLU, strides 1/2/1/2, then Dense 128 with Dropout 0.5.",
            ModelSpec(
                layers=_cifar_cnn_layers(),
                compile=CompileSpec(optimizer="adam", learning_rate=0.0005),
                fit=FitSpec(epochs=10, batch_size=32),
                name="cifar-cnn",
            ),
        ),
        Preset(
            "lenet", "LeNet-5 style CNN", "mnist",
            "A small LeNet-style CNN: two convolution and pooling stages, then Dense 120 and 84.",
            ModelSpec(
                layers=(
                    LayerSpec("Conv2D", "conv2d_1", {"filters": 6, "kernel_size": 5, "strides": 1,
                                                     "padding": "same", "activation": "relu"}),
                    LayerSpec("MaxPooling2D", "max_pooling2d_1", {"pool_size": 2, "padding": "valid"}),
                    LayerSpec("Conv2D", "conv2d_2", {"filters": 16, "kernel_size": 5, "strides": 1,
                                                     "padding": "valid", "activation": "relu"}),
                    LayerSpec("MaxPooling2D", "max_pooling2d_2", {"pool_size": 2, "padding": "valid"}),
                    LayerSpec("Flatten", "flatten_1", {}),
                    _dense("dense_1", 120, "relu"),
                    _dense("dense_2", 84, "relu"),
                    _dense("dense_3", 10, "softmax"),
                ),
                compile=CompileSpec(optimizer="adam", learning_rate=0.001),
                fit=FitSpec(epochs=5, batch_size=64),
                name="lenet",
            ),
        ),
        Preset(
            "clothing-xception", "Clothing: frozen Xception", CLOTHING_DATASET,
            "The clothing tutorial's transfer model: Xception trained on ImageNet, frozen, at 150x150, then "
            "global average pooling, Dense 100 relu, Dropout 0.2 and 10 logits; Adam 0.001, 10 epochs. "
            "Add the photos first as dataset 'clothing' at 150 px.",
            ModelSpec(layers=_transfer_layers("Xception"), compile=CompileSpec(optimizer="adam", learning_rate=0.001),
                      fit=FitSpec(epochs=10, batch_size=32), input_shape=(150, 150, 3), name="clothing-xception"),
        ),
        Preset(
            "clothing-mobilenet", "Clothing: frozen MobileNetV2", CLOTHING_DATASET,
            "The same top on MobileNetV2, about a tenth of Xception's cost: the one for a 2-core machine. "
            "Add the photos first as dataset 'clothing' (128 px suits it).",
            ModelSpec(layers=_transfer_layers("MobileNetV2"), compile=CompileSpec(optimizer="adam", learning_rate=0.001),
                      fit=FitSpec(epochs=10, batch_size=32), input_shape=(128, 128, 3), name="clothing-mobilenet"),
        ),
    )
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise SpecError(f"Unknown preset {name!r}. Expected one of: {', '.join(PRESETS)}") from None
