"""The model spec: the layer registry, the spec itself, its edits and validation, presets, and spec <-> Keras."""
