"""The model at a glance as a table: Keras' layer table, from a `Validation`, made to be read in the
Build page's narrow Model column.

A pure function of the validation result, so it is tested without a browser; the diagram of the
same stack is `components.figures.stack`. Keras' own summary is wide ("batch_normalization_1
(BatchNormalization)", "(None, 32, 32, 32)", and a column of non-trainable counts that is mostly 0):
squeezed into a column it broke names letter by letter. Here each cell holds short lines that never
break: the layer's name over its type, the output without the batch axis (32×32×32), the parameter
count over how many of them are frozen when any are. `st.table` reads its cells as Markdown, so
the layer names (user text) go through `components.text.plain`, and a line break is two spaces and
a newline.
"""
from __future__ import annotations

import pandas as pd

from components.text import plain
from pipelines.modelspec.validation import Validation

COLUMNS = [plain("#"), "Layer", "Output", "Params"]  # a bare "#" would be a Markdown heading
NEW_LINE = "  \n"


def output_text(shape: tuple | None) -> str:
    """A layer's output per example, as the stack diagram labels it: 32×32×32, 128; "?" when unknown."""
    if shape is None:
        return "?"
    return "×".join("?" if d is None else str(d) for d in shape[1:]) or "?"


def params_text(params: int, trainable: int) -> str:
    """"9,248"; "128" over "64 frozen" for a layer with weights that do not learn (a frozen base,
    BatchNormalization's moving statistics); "all frozen" when none of them learns."""
    frozen = params - trainable
    if not frozen:
        return f"{params:,}"
    return f"{params:,}{NEW_LINE}{'all frozen' if frozen == params else f'{frozen:,} frozen'}"


def summary_frame(result: Validation) -> pd.DataFrame:
    """One row per layer, like `model.summary()`: name and type, output shape, parameters."""
    return pd.DataFrame(
        [{COLUMNS[0]: str(row.index + 1), "Layer": f"{plain(row.name)}{NEW_LINE}:gray[{plain(row.type)}]",
          "Output": output_text(row.output_shape), "Params": params_text(row.params, row.trainable_params)}
         for row in result.rows],
        columns=COLUMNS,
    )


def styled(frame: pd.DataFrame):
    """The table as `st.table` shows it: no line of a cell ever breaks (Streamlit sets a cell's
    text in a <p> of its own), and the counts are right-aligned."""
    params = frame.columns.get_loc("Params")
    return frame.style.set_table_styles([
        {"selector": "td p", "props": [("white-space", "nowrap")]},
        {"selector": f"td.col{params}, th.col{params}", "props": [("text-align", "right !important")]},
    ])
