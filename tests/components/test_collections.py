"""Once Keras is loaded, what is alive is kept out of the collections Streamlit runs after every
script run (through keras.backend.clear_session), so a timer fragment's run costs no full sweep."""
import gc

import keras  # noqa: F401  (the condition: Keras is imported in the server)

from components import resources


def test_the_imports_are_frozen_once_and_the_sweep_after_a_run_gets_cheap(monkeypatch):
    monkeypatch.setitem(resources._collections, "frozen", False)
    gc.unfreeze()
    try:
        resources.keep_imports_out_of_collections()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # TensorFlow's and Keras' objects, left out of later collections
        resources.keep_imports_out_of_collections()  # once per process: a second call changes nothing
        assert gc.get_freeze_count() == frozen
        assert sum(gc.get_count()) < frozen  # what the collector still walks is what is new
    finally:
        gc.unfreeze()
