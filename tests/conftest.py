"""Fixtures shared by the test modules."""
from pathlib import Path

import pytest


@pytest.fixture
def shared_datasets() -> Path:
    """The read-only offline datasets beside the repo (see its README), or skip without them."""
    path = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    if not path.is_dir():
        pytest.skip(f"offline datasets not found at {path}")
    return path
