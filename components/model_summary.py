"""The model at a glance as a table: Keras' layer table, from a `Validation`.

A pure function of the validation result, so it is tested without a browser; the diagram of the
same stack is `components.figures.stack`. The page shows it with `st.table`, whose cells wrap, so
no column is ever cut off in the narrow Model column; `st.table` reads its cells as Markdown, so
the layer names (user text) go through `components.text.plain`.
"""
from __future__ import annotations

import pandas as pd

from components.text import plain
from pipelines.modelspec.validation import Validation, shape_text

COLUMNS = [plain("#"), "Layer", "Output shape", "Params", "Frozen"]  # a bare "#" would be a Markdown heading


def summary_frame(result: Validation) -> pd.DataFrame:
    """One row per layer, like `model.summary()`: "name (Type)", output shape, parameters, and how
    many of them do not learn (a frozen base; BatchNormalization's moving statistics)."""
    return pd.DataFrame(
        [{COLUMNS[0]: str(row.index + 1), "Layer": f"{plain(row.name)} ({plain(row.type)})",
          "Output shape": shape_text(row.output_shape), "Params": row.params,
          "Frozen": row.params - row.trainable_params} for row in result.rows],
        columns=COLUMNS,
    )


def styled(frame: pd.DataFrame):
    """The table as `st.table` shows it: counts with thousands separators, and long layer names
    (batch_normalization_1 (BatchNormalization)) free to break anywhere, so a narrow column wraps
    them instead of pushing the shapes and counts out of sight."""
    layer_column = frame.columns.get_loc("Layer")  # Streamlit sets the cell's text in a <p> of its own
    return (frame.style.format({"Params": "{:,}", "Frozen": "{:,}"})
            .set_table_styles([{"selector": f"td.col{layer_column} p", "props": [("overflow-wrap", "anywhere")]}]))
