"""Where Layerlab keeps its state and where it looks for datasets.

Both are resolved in one place so the CLI (`--home`, `--data-dir`), the dashboard and the tests
agree: an explicit argument wins, then the environment, then the default.
"""
from __future__ import annotations

import os
from pathlib import Path


def home_dir(home: str | os.PathLike | None = None) -> Path:
    """The run store's folder: `home`, else env `LAYERLAB_HOME`, else `~/.layerlab`."""
    chosen = home or os.environ.get("LAYERLAB_HOME") or Path.home() / ".layerlab"
    path = Path(chosen).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The local dataset folder: `data_dir`, else env `LAYERLAB_DATA_DIR`, else none."""
    chosen = data_dir or os.environ.get("LAYERLAB_DATA_DIR")
    return Path(chosen).expanduser() if chosen else None


def keras_cache_dir() -> Path:
    """Keras' own dataset cache (`~/.keras/datasets`, or under `KERAS_HOME`)."""
    keras_home = os.environ.get("KERAS_HOME")
    base = Path(keras_home) if keras_home else Path.home() / ".keras"
    return base / "datasets"
