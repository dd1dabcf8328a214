"""Looking at a dataset: its classes, a gallery of samples per class, and the class balance."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pipelines.data.catalog import DatasetInfo


def class_table(info: DatasetInfo, overview: dict) -> pd.DataFrame:
    return pd.DataFrame({"Label": range(info.num_classes), "Class": info.class_names,
                         "Training images": overview["train_counts"], "Test images": overview["test_counts"]})


def distribution_chart(info: DatasetInfo, overview: dict):
    frame = pd.DataFrame({
        "Class": list(info.class_names) * 2,
        "Images": overview["train_counts"] + overview["test_counts"],
        "Split": ["train"] * info.num_classes + ["test"] * info.num_classes,
    })
    fig = px.bar(frame, x="Class", y="Images", color="Split", barmode="group",
                 color_discrete_sequence=["#F58518", "#4C78A8"])
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), title="Images per class")
    return fig


def gallery(info: DatasetInfo, overview: dict) -> None:
    """A row of samples per class, enlarged without smoothing so pixels stay visible."""
    for label, images in overview["samples"].items():
        st.caption(f"{label} · {info.class_names[label]}")
        strip = np.concatenate([np.pad(img, ((1, 1), (1, 1), (0, 0)), constant_values=255) for img in images], axis=1)
        if strip.shape[-1] == 1:
            strip = strip[..., 0]
        st.image(np.kron(strip, np.ones((3, 3) + ((1,) if strip.ndim == 3 else ()), dtype=np.uint8)),
                 clamp=True)
