"""Upload and see: any number of pictures, each with what the model made of it.

Files are checked by their content, never their name (`open_upload`), and each one fails alone:
a damaged or unsupported file gets its own message and the others are still classified. They are
decoded one at a time, and only small copies of each are kept, so several large pictures never
sit in memory at once. File names are the user's text: they reach Markdown only through `plain`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st
from PIL import Image

from components import model_cache, prediction_view, state
from components.text import plain
from pipelines.inference.folder_eval import prepare_picture
from pipelines.inference.preprocess import Prepared, open_upload, upright_and_shrunk
from pipelines.inference.upload_checks import ALLOWED_TEXT, MAX_DECODED_BYTES, MAX_UPLOAD_BYTES, check_file_size
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


def upload_cap_mb() -> int:
    """The cap on one picture, in MB: 25, or Streamlit's server cap (`server.maxUploadSize`) when
    that is lower. The server's cap is set high for dataset zips (see `.streamlit/config.toml`), so
    the picture uploader carries its own: its browser side refuses a larger file before sending it,
    and `prepare_file` refuses one that got here anyway by its size, before reading a byte."""
    return min(MAX_UPLOAD_BYTES // 2**20, int(st.get_option("server.maxUploadSize")))


def _display_copy(image: Image.Image) -> Image.Image:
    """A small upright copy in a mode every browser shows, so a large photo is not sent back whole."""
    shrunk, _ = upright_and_shrunk(image, 2 * THUMBNAIL_PIXELS, [])
    copy = shrunk.copy()  # small by now; `shrunk` may be `image` itself
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


def _read(name: str, data, max_bytes: int) -> bytes:
    """The bytes of an upload: `data` itself, or an UploadedFile's after its size (known without
    reading) is checked against `max_bytes`."""
    if isinstance(data, (bytes, bytearray)):
        return data
    check_file_size(data.size, name, max_bytes)
    return data.getvalue()


def prepare_file(label: str, name: str, data, input_shape, *, center_digit: bool,
                 max_bytes: int, dataset: str = "") -> UploadResult:
    """One file (bytes, or an UploadedFile read only once its size passes) opened and prepared for
    the model, or the reason it cannot be. The decoded picture lives only while this runs: what is
    kept is the model input and a thumbnail."""
    try:
        image = open_upload(_read(name, data, max_bytes), name, max_bytes=max_bytes)
        prepared = prepare_picture(image, dataset, input_shape, center_digit=center_digit)  # an added dataset's own fit
        return UploadResult(label, _display_copy(image), prepared)
    except UploadError as error:
        return UploadResult(label, error=str(error))
    except Exception as error:  # one odd file must not cost the others their results
        return UploadResult(label, error=f"{name} could not be read as a picture ({type(error).__name__}: {error})")


def classify_files(loaded: LoadedModel, files: Sequence[tuple[str, object]], *, center_digit: bool,
                   max_bytes: int = MAX_UPLOAD_BYTES, dataset: str = "") -> list[UploadResult]:
    """Each (file name, bytes or UploadedFile) opened and prepared one after the other, then all
    classified in one batch; files that cannot be read get their UploadError's message instead."""
    labels = unique_labels([name for name, _ in files])
    results = [prepare_file(label, name, data, loaded.input_shape, center_digit=center_digit, max_bytes=max_bytes,
                            dataset=dataset) for label, (name, data) in zip(labels, files)]
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


def upload_limits_text(cap_mb: int) -> str:
    """The two limits a picture meets, in words: Streamlit's on the file, Layerlab's on its pixels."""
    return (f"Files up to {cap_mb} MB: the uploader marks a larger one red and does not send it. Pictures up to "
            f"{MAX_DECODED_BYTES // 2**20} MB once decoded (about {MAX_DECODED_BYTES // 4 // 10**6} megapixels "
            "of colour).")


def uploads(loaded: LoadedModel, run_id: str, dataset: str) -> None:
    """The uploader and, for each file, its result; keeps the prepared inputs for "see inside"."""
    cap = upload_cap_mb()
    files = st.file_uploader(
        "Pictures to classify", accept_multiple_files=True, key=state.key("test", "upload"), max_upload_size=cap,
        help=f"{ALLOWED_TEXT}, up to {cap} MB a file (a larger file is marked red and not sent). The content "
             "decides the format, not the file name. Light ink on dark, or dark ink on paper: pictures with a "
             "light background are inverted for one-channel models.",
    )
    st.caption(upload_limits_text(cap) + " " + ("Photos or scans work: the digit is cut out and centred as "
                                                  "MNIST's were." if dataset == "mnist" else
                                                  "The picture is resized to the model's input."))
    if not files:
        state.set_prepared_inputs(state.TEST_UPLOADS, run_id, {})
        return
    results = classify_files(loaded, [(file.name, file) for file in files],
                             center_digit=dataset == "mnist", max_bytes=cap * 2**20, dataset=dataset)
    for index, result in enumerate(results):
        show_result(result, loaded.class_names, key=state.key("test", "result", index))
    state.set_prepared_inputs(state.TEST_UPLOADS, run_id,
                              {r.label: r.prepared.array for r in results if r.prepared is not None})
