"""Fixtures shared by the test modules."""
from pathlib import Path

import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The read-only offline datasets beside the repo (see its README), or skip without them.

    The one place that decides whether the offline data is there: every test that needs it asks
    for this fixture."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"offline datasets not found at {SHARED_DATASETS}")
    return SHARED_DATASETS


@pytest.fixture(autouse=True)
def _no_runs_home_left_behind():
    """Training in-process sets where a RunBase layer finds its runs (a worker's one home, set once
    per process); a test that trains must not point the next test's RunBase at its own store."""
    yield
    import sys

    blocks = sys.modules.get("pipelines.modelspec.keras_blocks")  # never imported here just for this
    if blocks is not None:
        blocks.set_runs_home(None)
