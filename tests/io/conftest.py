"""Fixtures for the import tests."""
import pytest

from pipelines.runs.sqlite_store import SQLiteRunStore


@pytest.fixture
def store(tmp_path, shared_datasets, monkeypatch):
    """A fresh run store, with the offline datasets for the imported models' test figures."""
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
    opened = SQLiteRunStore(tmp_path / "home")
    yield opened
    opened.close()
