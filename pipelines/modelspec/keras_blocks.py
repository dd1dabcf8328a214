"""The two Keras layers Layerlab adds for transfer learning: a pretrained base and a finished run as base.

Each wraps a whole network as one layer, so that a spec names it as one block and
`spec_from_model` reads its params back from the layer's config. Both are registered Keras
serializables: a saved model.keras reloads with `safe_mode` on, its weights from the file (never
downloaded again, never read from the source run again). Both call their network with
`training=False`, so BatchNormalization stays in inference mode while the top (or the unfrozen
last layers) learn, as Keras' transfer-learning guide does.
"""
from __future__ import annotations

from pathlib import Path

import keras

from pipelines import paths
from pipelines.errors import SpecError
from pipelines.modelspec.pretrained import cached_weights, download_weights, weights_problem, weights_url

# How each application expects its pixels (keras.applications' own preprocess_input, on 0..255).
_PREPROCESS_MODULES = {"MobileNetV2": "mobilenet_v2", "EfficientNetB0": "efficientnet", "ResNet50": "resnet50",
                       "Xception": "xception"}
_runs_home: Path | None = None


def set_runs_home(home: str | Path | None) -> None:
    """Where RunBase finds runs (`<home>/runs/<id>/model.keras`); default: `paths.home_dir()`."""
    global _runs_home
    _runs_home = Path(home) if home is not None else None


def run_model_path(run_id: str) -> Path:
    return (_runs_home or paths.home_dir()) / "runs" / run_id / "model.keras"


def _freeze(network: keras.Model, unfreeze_last: int) -> None:
    """Frozen, or only the last `unfreeze_last` layers trainable; BatchNormalization never is."""
    network.trainable = unfreeze_last > 0
    if unfreeze_last:
        for layer in network.layers[:-unfreeze_last]:
            layer.trainable = False
        for layer in network.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


@keras.saving.register_keras_serializable(package="layerlab")
class PretrainedBase(keras.layers.Layer):
    """A keras.applications network without its top, fed Layerlab's [0, 1] pixels."""

    def __init__(self, base: str = "MobileNetV2", weights: str = "imagenet", unfreeze_last: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.base, self.weights_source, self.unfreeze_last = base, weights, int(unfreeze_last)
        self.network: keras.Model | None = None

    def build(self, input_shape) -> None:
        if self.network is None:
            # Always random here: a reload takes the weights from the .keras file, and build_model
            # loads ImageNet's through `load_imagenet` (which can say why it cannot).
            self.network = getattr(keras.applications, self.base)(
                include_top=False, weights=None, input_shape=tuple(input_shape[1:]))
            _freeze(self.network, self.unfreeze_last)
        self.built = True

    def load_imagenet(self) -> None:
        shape = tuple(self.network.input_shape[1:])
        path = cached_weights(self.base, shape)
        if path is None:
            if problem := weights_problem(self.base, shape):
                raise SpecError(f"Layer {self.name!r} (PretrainedBase): {problem}")
            try:  # bounded lookup, connect and reads: a stalled download fails instead of hanging
                path = download_weights(self.base, shape)
            except (OSError, ValueError) as exc:
                raise SpecError(f"Layer {self.name!r} (PretrainedBase): downloading {weights_url(self.base, shape)} "
                                f"failed ({exc}); set weights to 'none' to start from random weights.") from None
        self.network.load_weights(path)

    def call(self, inputs):
        module = getattr(keras.applications, _PREPROCESS_MODULES[self.base])
        return self.network(module.preprocess_input(inputs * 255.0), training=False)

    def compute_output_shape(self, input_shape):
        return self.network.compute_output_shape(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "base": self.base, "weights": self.weights_source,
                "unfreeze_last": self.unfreeze_last}


@keras.saving.register_keras_serializable(package="layerlab")
class RunBase(keras.layers.Layer):
    """A finished run's model up to `cut_layer`, frozen. The cut network is saved inside this layer's
    config and weights, so a model built on it needs the source run only when first built."""

    def __init__(self, run_id: str = "", cut_layer: str = "", network=None, **kwargs):
        super().__init__(**kwargs)
        self.run_id, self.cut_layer = run_id, cut_layer
        self.network = keras.saving.deserialize_keras_object(network) if isinstance(network, dict) else network

    def build(self, input_shape) -> None:
        if self.network is None:
            self.network = self._cut(self._load_source())
            self.network.trainable = False
        expected = tuple(self.network.input_shape[1:])
        if tuple(input_shape[1:]) != expected:
            raise ValueError(f"run {self.run_id} takes input {expected}, but this model's input is "
                             f"{tuple(input_shape[1:])}: pick a run trained on the same kind of images")
        self.built = True

    def _load_source(self) -> keras.Model:
        if not self.run_id:
            raise ValueError("set `run_id` to a finished run's id: its model becomes this base")
        path = run_model_path(self.run_id)
        if not path.is_file():
            raise ValueError(f"run {self.run_id} has no saved model ({path.name}): only a finished run can be a base")
        return keras.models.load_model(path, compile=False)  # safe_mode stays on

    def _cut(self, source: keras.Model) -> keras.Model:
        names = [layer.name for layer in source.layers]
        cut = self.cut_layer or (names[-2] if len(names) > 1 else "")
        if cut not in names:
            raise ValueError(f"run {self.run_id} has no layer {cut!r} to cut at. Expected one of: {', '.join(names)}")
        return keras.Model(source.inputs, source.get_layer(cut).output, name=f"run_{self.run_id}")

    def call(self, inputs):
        return self.network(inputs, training=False)

    def compute_output_shape(self, input_shape):
        return self.network.compute_output_shape(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "run_id": self.run_id, "cut_layer": self.cut_layer,
                "network": keras.saving.serialize_keras_object(self.network)}


CUSTOM_LAYERS = {"PretrainedBase": PretrainedBase, "RunBase": RunBase}


def load_pretrained_weights(model: keras.Model) -> None:
    """ImageNet weights into every PretrainedBase that asks for them (build_model's last step)."""
    for layer in model.layers:
        if isinstance(layer, PretrainedBase) and layer.weights_source == "imagenet":
            layer.load_imagenet()
