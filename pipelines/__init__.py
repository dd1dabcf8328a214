"""Layerlab's core: everything that is not UI (data, model spec, training, run store, inference).

Nothing here imports streamlit; TensorFlow is imported only by the modules that build or train
models, so that importing the package itself stays cheap.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
