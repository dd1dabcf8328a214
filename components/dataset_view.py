"""Looking at a dataset: its classes, one table of images per class in each split, the class balance
chart beside it (built by `components.figures.class_balance`), and a gallery of samples per class."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components.figures.class_balance import distribution_chart
from components.text import plain
from pipelines.data import added
from pipelines.data.catalog import DatasetInfo
from pipelines.errors import DatasetError

SPLIT_TITLES = {"train": "Training images", "validation": "Validation images", "test": "Test images"}
VALIDATION_AS_TEST = "Validation images (also the test set)"
# The full datasets' sizes (training, test), to say when the copy found is a sample of one.
FULL_SIZES = {"mnist": (60_000, 10_000), "fashion_mnist": (60_000, 10_000), "cifar10": (50_000, 10_000)}


def names_are_labels(info: DatasetInfo) -> bool:
    """MNIST's classes are named by their labels: "0" is class 0."""
    return list(info.class_names) == [str(label) for label in range(info.num_classes)]


def class_label(info: DatasetInfo, label: int) -> str:
    """"3 · Dress", but "3" for a digit (not "3 · 3")."""
    name = info.class_names[label]
    return name if names_are_labels(info) else f"{label} · {name}"


def _added_splits(name: str) -> dict[str, list[int]] | None:
    """An added dataset's images per class in each of its folders' splits; None for a built-in one
    (or one whose manifest cannot be read: the page then shows what the loaded arrays hold)."""
    if name not in added.added_infos():
        return None
    try:
        counts = added.read_manifest(name).get("counts")
    except DatasetError:
        return None
    return {split: list(counts[split]) for split in SPLIT_TITLES if split in counts} if isinstance(counts, dict) else None


def validation_is_test(info: DatasetInfo) -> bool:
    """Whether the dataset's test set is its validation/ folder (added with validation/ and no test/)."""
    splits = _added_splits(info.name) or {}
    return "validation" in splits and "test" not in splits


def split_counts(info: DatasetInfo, overview: dict) -> dict[str, list[int]]:
    """Images per class by column title: training and test for a built-in dataset; each folder split
    of an added one, its validation/ said to be the test set too when there is no test/."""
    splits = _added_splits(info.name)
    if splits is None:
        return {SPLIT_TITLES["train"]: overview["train_counts"], SPLIT_TITLES["test"]: overview["test_counts"]}
    columns = {SPLIT_TITLES[split]: counts for split, counts in splits.items()}
    if validation_is_test(info):
        columns[VALIDATION_AS_TEST] = columns.pop(SPLIT_TITLES["validation"])
    return columns


def class_table(info: DatasetInfo, overview: dict) -> pd.DataFrame:
    """Label, name and the images per class in each split: the numbers behind the class balance
    chart, in one table (the name alone where names are the labels)."""
    columns = {} if names_are_labels(info) else {"Label": range(info.num_classes)}
    return pd.DataFrame({**columns, "Class": info.class_names, **split_counts(info, overview)})


def table_columns(table: pd.DataFrame) -> dict:
    """The counts with thousands separators."""
    return {title: st.column_config.NumberColumn(format="localized") for title in table.columns
            if title not in ("Label", "Class")}


def balance_chart(info: DatasetInfo, overview: dict) -> go.Figure:
    """The class balance chart, its second split named for what it is: a dataset whose validation/
    folder is also its test set shows "validation" there, as the table beside it does."""
    figure = distribution_chart(info, overview)
    if validation_is_test(info):
        figure.update_traces(name="validation", selector={"name": "test"})
    return figure


def sample_note(info: DatasetInfo, overview: dict) -> str | None:
    """What to expect from a copy smaller than the full dataset (the offline MNIST is a 5,000-image
    sample, and accuracies on it are a few points under the tutorials'), else None."""
    full_train, full_test = FULL_SIZES.get(info.name, (0, 0))
    train, test = sum(overview["train_counts"]), sum(overview["test_counts"])
    if train >= full_train and test >= full_test:
        return None
    example = (": mlp-512 reaches about 92% on it, against about 98% on the full set" if info.name == "mnist"
               else "")
    return (f"This copy of {info.title} is a sample: {train:,} training images of the full {full_train:,} "
            f"(and {test:,} test images of {full_test:,}). Models trained on it score a few points under the "
            f"tutorials' figures{example}.")


def gallery(info: DatasetInfo, overview: dict) -> None:
    """A row of samples per class, small ones enlarged without smoothing so pixels stay visible.

    A class can have no training images (an added folder whose train/ lacks it, or whose photos of
    it were all unreadable): its row says so instead of showing an empty strip."""
    for label, images in overview["samples"].items():
        st.caption(plain(class_label(info, label)))  # an added dataset's classes are the user's folder names
        if not images:
            st.text("No training images of this class.")
            continue
        strip = np.concatenate([np.pad(img, ((1, 1), (1, 1), (0, 0)), constant_values=255) for img in images], axis=1)
        if strip.shape[-1] == 1:
            strip = strip[..., 0]
        height = strip.shape[0] - 2
        scale = 3 if height <= 32 else max(1, 96 // height)  # 28-32 px samples 3x; a 96 px photo as it is
        st.image(np.kron(strip, np.ones((scale, scale) + ((1,) if strip.ndim == 3 else ()), dtype=np.uint8)),
                 clamp=True)
