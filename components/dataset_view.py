"""Looking at a dataset: its classes and a gallery of samples per class (the class balance chart is
`components.figures.class_balance`)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from pipelines.data.catalog import DatasetInfo


def class_table(info: DatasetInfo, overview: dict) -> pd.DataFrame:
    """Label, name and train/test counts per class: the numbers behind the class balance chart."""
    return pd.DataFrame({"Label": range(info.num_classes), "Class": info.class_names,
                         "Training images": overview["train_counts"], "Test images": overview["test_counts"]})


def gallery(info: DatasetInfo, overview: dict) -> None:
    """A row of samples per class, enlarged without smoothing so pixels stay visible."""
    for label, images in overview["samples"].items():
        st.caption(f"{label} · {info.class_names[label]}")
        strip = np.concatenate([np.pad(img, ((1, 1), (1, 1), (0, 0)), constant_values=255) for img in images], axis=1)
        if strip.shape[-1] == 1:
            strip = strip[..., 0]
        st.image(np.kron(strip, np.ones((3, 3) + ((1,) if strip.ndim == 3 else ()), dtype=np.uint8)),
                 clamp=True)
