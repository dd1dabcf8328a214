"""`python -m pipelines`: Layerlab without a browser."""
from pipelines.cli.main import main

__all__ = ["main"]
