"""The model at a glance as a table: Keras' layer table, from a `Validation`.

A pure function of the validation result, so it is tested without a browser; the diagram of the
same stack is `components.figures.stack`.
"""
from __future__ import annotations

import pandas as pd

from pipelines.modelspec.validation import Validation, shape_text


def summary_frame(result: Validation) -> pd.DataFrame:
    """One row per layer, like `model.summary()`: name, type, output shape, parameters."""
    return pd.DataFrame(
        [{"#": row.index + 1, "Layer": row.name, "Type": row.type, "Output shape": shape_text(row.output_shape),
          "Params": row.params} for row in result.rows],
        columns=["#", "Layer", "Type", "Output shape", "Params"],
    )
