"""Upload and see: any number of pictures, each with what the model made of it.

Files are checked by their content, never their name (`open_upload`), and each one fails alone:
a damaged or unsupported file gets its own message and the others are still classified.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st
from PIL import Image, ImageOps

from components import model_cache, prediction_view, state
from components.text import plain
from pipelines.inference.preprocess import ALLOWED_TEXT, Prepared, open_upload, preprocess_image
from pipelines.errors import UploadError

if TYPE_CHECKING:
    from pipelines.inference.predict import LoadedModel

THUMBNAIL_PIXELS = 168
TOP_K = 3


@dataclass(frozen=True, eq=False)
class UploadResult:
    """One uploaded file: a copy to show, the model's input and probabilities, or what went wrong."""

    label: str
    original: Image.Image | None = None
    prepared: Prepared | None = None
    probabilities: np.ndarray | None = None
    error: str | None = None


def _display_copy(image: Image.Image) -> Image.Image:
    """A small upright copy in a mode every browser shows, so a large photo is not sent back whole."""
    copy = ImageOps.exif_transpose(image)
    if copy.mode not in ("L", "LA", "RGB", "RGBA"):
        copy = copy.convert("RGBA" if "transparency" in copy.info or copy.mode.endswith("A") else "RGB")
    copy.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
    return copy


def unique_labels(names: Sequence[str]) -> list[str]:
    """The file names, with "(2)", "(3)" added to repeats so each labels one upload."""
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return labels


def classify_files(loaded: LoadedModel, files: Sequence[tuple[str, bytes]], *,
                   center_digit: bool) -> list[UploadResult]:
    """Each (file name, bytes) opened, prepared for the model and classified, all in one batch;
    files that cannot be read get their UploadError's message instead."""
    results: list[UploadResult] = []
    for label, (name, data) in zip(unique_labels([name for name, _ in files]), files):
        try:
            image = open_upload(data, name)
            prepared = preprocess_image(image, loaded.input_shape, invert="auto", center_digit=center_digit)
            results.append(UploadResult(label, _display_copy(image), prepared))
        except UploadError as error:
            results.append(UploadResult(label, error=str(error)))
        except Exception as error:  # one odd file must not cost the others their results
            results.append(UploadResult(label, error=f"{name} could not be read as a picture "
                                                     f"({type(error).__name__}: {error})"))
    ready = [result for result in results if result.prepared is not None]
    if not ready:
        return results
    probabilities = iter(model_cache.predict(loaded, np.stack([result.prepared.array for result in ready])))
    return [UploadResult(r.label, r.original, r.prepared, next(probabilities)) if r.prepared is not None else r
            for r in results]


def notes_text(prepared: Prepared) -> str:
    return "\n".join(f"- {note[0].upper()}{note[1:]}" for note in prepared.notes)


def show_result(result: UploadResult, class_names: Sequence[str], key: str) -> None:
    """One file in a bordered box: the picture, what the model sees, the top classes and the notes."""
    with st.container(border=True, key=key):
        if result.error is not None:
            st.error(plain(result.error), icon=":material/broken_image:")
            return
        original, seen, answer = st.columns([1, 1, 2.2], vertical_alignment="top")
        original.image(result.original, caption=plain(result.label))
        with seen:
            prediction_view.show_model_input(result.prepared.array, caption="What the model sees")
        with answer:
            (best, best_p), *rest = prediction_view.top_classes(result.probabilities, class_names, TOP_K)
            st.metric("Prediction", f"{best} · {prediction_view.percent(best_p)}")
            st.markdown("  \n".join(f"{name} · {prediction_view.percent(p)}" for name, p in rest))
            st.caption(notes_text(result.prepared))


def uploads(loaded: LoadedModel, run_id: str, dataset: str) -> None:
    """The uploader and, for each file, its result; keeps the prepared inputs for "see inside"."""
    files = st.file_uploader(
        "Pictures to classify", accept_multiple_files=True, key=state.key("test", "upload"),
        help=f"{ALLOWED_TEXT}; the content decides, not the file name. Light ink on dark, or dark ink "
             "on paper: pictures with a light background are inverted for one-channel models.",
    )
    if not files:
        st.caption("Photos or scans work: the digit is cut out and centred as MNIST's were."
                   if dataset == "mnist" else "The picture is resized to the model's input.")
        state.set_prepared_inputs(state.TEST_UPLOADS, run_id, {})
        return
    results = classify_files(loaded, [(file.name, file.getvalue()) for file in files],
                             center_digit=dataset == "mnist")
    for index, result in enumerate(results):
        show_result(result, loaded.class_names, key=state.key("test", "result", index))
    state.set_prepared_inputs(state.TEST_UPLOADS, run_id,
                              {r.label: r.prepared.array for r in results if r.prepared is not None})
