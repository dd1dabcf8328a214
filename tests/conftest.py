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
