"""Layer types that are not plain `keras.layers` classes, as an exported script writes them.

A registry type whose `keras_class` is Layerlab's own layer (see modelspec/keras_blocks.py) is
written into the script as a short class of the same name and config, built on keras.applications,
so the script stays free of Layerlab and its model's layer configs still match the app's. It is
registered under the app's own name ("layerlab>PretrainedBase", the same config keys), so that a
Layerlab run's model.keras loads with plain Keras wherever the script's class is defined: Keras
looks a custom layer up by that name before anything else. Importing a script for the parity check
would therefore replace the app's class in Keras' registry; `export.script_module` puts it back.
"""
from __future__ import annotations

PRETRAINED_BASE = '''

# Registered under Layerlab's own name: with this class defined (run this script, or import it),
# keras.models.load_model("model.keras") loads the model.keras Layerlab saved for a transfer run.
@keras.saving.register_keras_serializable(package="layerlab")
class PretrainedBase(keras.layers.Layer):
    """A keras.applications network without its top, as one layer (the transfer-learning recipe).

    It takes pixels in 0..1 like every layer here and gives the network the input it was trained
    on (its own preprocess_input, on 0..255). The network runs with training=False, so its
    BatchNormalization layers stay in inference mode while the layers after it learn.
    """

    PREPROCESS = {"MobileNetV2": "mobilenet_v2", "EfficientNetB0": "efficientnet", "ResNet50": "resnet50",
                  "Xception": "xception"}

    def __init__(self, base="MobileNetV2", weights="imagenet", unfreeze_last=0, **kwargs):
        super().__init__(**kwargs)
        self.base, self.weights_source, self.unfreeze_last = base, weights, int(unfreeze_last)
        self.network = None
        self.download_weights = True

    @classmethod
    def from_config(cls, config):
        layer = cls(**config)
        layer.download_weights = False  # a saved model brings its own weights: nothing to download
        return layer

    def build(self, input_shape):
        if self.network is None:
            # "imagenet": weights learned on ImageNet, downloaded once to ~/.keras/models; "none": random.
            weights = None if self.weights_source == "none" or not self.download_weights else self.weights_source
            self.network = getattr(keras.applications, self.base)(
                include_top=False, weights=weights, input_shape=tuple(input_shape[1:]))
            # Frozen, or only its last `unfreeze_last` layers learn (fine-tuning); BatchNormalization never.
            self.network.trainable = self.unfreeze_last > 0
            if self.unfreeze_last:
                for layer in self.network.layers[:-self.unfreeze_last]:
                    layer.trainable = False
                for layer in self.network.layers:
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.trainable = False
        self.built = True

    def call(self, inputs):
        module = getattr(keras.applications, self.PREPROCESS[self.base])
        return self.network(module.preprocess_input(inputs * 255.0), training=False)

    def compute_output_shape(self, input_shape):
        return self.network.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "base": self.base, "weights": self.weights_source,
                "unfreeze_last": self.unfreeze_last}
'''

# keras_class -> the class definition the script carries.
SCRIPT_LAYERS = {"PretrainedBase": PRETRAINED_BASE}

# keras_class -> why a script cannot rebuild it.
UNEXPORTABLE = {"RunBase": "it starts from another run's trained model, which a script cannot rebuild; "
                           "download this run's model (.keras) instead"}

# Param values that make building a layer download something, and the value that does not: the
# parity check compares structure, so it builds both models without downloading weights.
OFFLINE_PARAMS = {("PretrainedBase", "weights"): "none"}
