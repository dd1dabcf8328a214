"""A dataset's class balance: how many train and test images each class has, as grouped bars."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from pipelines.data.catalog import DatasetInfo
from components.figures.plotly_text import plotly_text


def distribution_chart(info: DatasetInfo, overview: dict) -> go.Figure:
    """Train and test images per class side by side, so a skewed class or split shows at a glance.

    `overview` is `components.resources.dataset_overview`'s dict; only its counts are read.
    """
    frame = pd.DataFrame({
        "Class": [plotly_text(name) for name in info.class_names] * 2,
        "Images": overview["train_counts"] + overview["test_counts"],
        "Split": ["train"] * info.num_classes + ["test"] * info.num_classes,
    })
    fig = px.bar(frame, x="Class", y="Images", color="Split", barmode="group",
                 color_discrete_sequence=["#F58518", "#4C78A8"])
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), title="Images per class",
                      yaxis_tickformat=",")
    fig.update_traces(hovertemplate="%{x}: %{y:,} images<extra>%{fullData.name}</extra>")
    return fig
