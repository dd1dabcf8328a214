"""Shared, cached resources: the run store, the scheduler and read-only dataset views.

Datasets sit behind `st.cache_data` and the store behind `st.cache_resource`; both are treated as
read-only. Keras models are never kept here or in session state.
"""
from __future__ import annotations

import gc
import sys
import threading
import time

import numpy as np
import streamlit as st

from pipelines.data.catalog import class_counts
from pipelines.data.locate import load
from pipelines.execution.scheduler import Scheduler
from pipelines.runs.sqlite_store import SQLiteRunStore


@st.cache_resource
def store() -> SQLiteRunStore:
    return SQLiteRunStore()


@st.cache_resource
def scheduler() -> Scheduler:
    """One scheduler per server: every session's page reaps and spawns through it."""
    return Scheduler(store())


class Throttle:
    """Lets one caller through per `seconds`, across every session of the server."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._last = float("-inf")

    def ready(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.seconds:
                return False
            self._last = now
            return True


@st.cache_resource
def worker_upkeep() -> Throttle:
    """Reaping and spawning once a second is enough for the whole server, however many pages tick."""
    return Throttle(1.0)


@st.cache_data(show_spinner="Loading the dataset ...", max_entries=3)
def dataset_overview(name: str, per_class: int = 8) -> dict:
    """Counts per class and a few sample images per class, from whichever copy `load` finds.

    Never downloads: the Data page offers that as an explicit button.
    """
    data = load(name, download=False)
    rng = np.random.default_rng(0)
    samples = {}
    for label in range(data.info.num_classes):
        indices = np.flatnonzero(data.y_train == label)
        chosen = rng.choice(indices, size=min(per_class, len(indices)), replace=False)
        samples[label] = [data.x_train[i] for i in sorted(chosen)]
    return {
        "origin": data.origin,
        "train_counts": class_counts(data, "train"),
        "test_counts": class_counts(data, "test"),
        "samples": samples,
    }


_collections = {"frozen": False}


def keep_imports_out_of_collections() -> None:
    """Once Keras is imported in the server (Build validates with it; Test loads models),
    Streamlit calls `keras.backend.clear_session()` after every script run, fragments' timer
    runs included, and that runs a full `gc.collect()` over TensorFlow's and Keras' few hundred
    thousand objects: 0.1-0.6 s of a core, holding the GIL, twice a second on Train. Freezing
    what is alive then (modules, not models: see drawing_pad.keep_out_of_collections) leaves the
    collector only the objects made since. Once per process; the app calls it after each run."""
    if _collections["frozen"] or "keras" not in sys.modules:
        return
    _collections["frozen"] = True
    gc.collect()
    gc.freeze()
