"""Data page: add a dataset from a zip of photos or a folder on the server, and what an added one holds.

The import runs in the page's own script run with a progress bar and an ETA; a refusal is shown
as its one-line reason and writes nothing. Names, file names and reasons are the user's text:
shown through `plain`, `st.code` or dataframe cells, never as Markdown.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from components import state
from components.resources import dataset_overview
from components.text import plain
from pipelines.data import added
from pipelines.data.folders import COLORS, FITS, Settings
from pipelines.errors import LayerlabError
from pipelines.io.dataset_import import add_dataset

SIZES = (32, 48, 64, 96, 128, 150, 160, 224)
FIT_HELP = {"stretch": "stretch: squash the photo to a square (the tutorial's target_size)",
            "crop": "crop: keep the centre square", "pad": "pad: fit the whole photo, black bands beside it"}
SOURCES = ("Upload a .zip", "A folder on this server")


def _key(*parts: object) -> str:
    return state.key("data", "add", *parts)


def zip_cap_mb() -> int:
    """The largest dataset zip the uploader takes, in MB: Streamlit's server cap
    (`server.maxUploadSize`, 1024 in `.streamlit/config.toml`), which only this uploader and the Test
    page's labelled-folder zip use in full; picture uploaders keep their own 25 MB."""
    return int(st.get_option("server.maxUploadSize"))


def _too_large(upload, cap_mb: int) -> str | None:
    """Why an upload is refused by its size alone (read from the upload, not its bytes), else None."""
    if upload.size > cap_mb * 2**20:
        return (f"{upload.name} is {upload.size / 2**20:,.1f} MB; the largest dataset zip this server takes is "
                f"{cap_mb:,} MB (setting server.maxUploadSize)")
    return None


def _progress_reporter(bar):
    def report(stage: str, done: int, total: int, seconds: float) -> None:
        if stage == "unpack":
            bar.progress(done / max(total, 1), text=f"Unpacking {done:,} of {total:,} files")
            return
        eta = seconds / done * (total - done) if done else 0.0
        bar.progress(done / max(total, 1), text=f"Decoding {done:,} of {total:,} images · about {eta:.0f} s left")
    return report


def add_panel() -> None:
    """The "Add a dataset" form: source, name, image size, fit and colour, then one import."""
    if notice := state.pop_notice():
        st.success(plain(notice), icon=":material/check_circle:")
    with st.expander("Add a dataset from your own photos", icon=":material/add_photo_alternate:"):
        st.caption("One folder per class (`class_name/*.jpg`, png, ...), optionally inside `train/`, `validation/` "
                   "(or `val/`) and `test/` folders. Each photo is decoded once, upright, at the size you pick.")
        source_kind = st.radio("Photos from", SOURCES, horizontal=True, key=_key("source"))
        if source_kind == SOURCES[0]:
            cap = zip_cap_mb()
            upload = st.file_uploader("A .zip of class folders", type=["zip"], key=_key("zip"), max_upload_size=cap,
                                      help=f"Up to {cap:,} MB (setting server.maxUploadSize); a larger zip is "
                                           "marked red and not sent.")
            st.caption(f"Zips up to {cap:,} MB.")
            path = None
        else:
            upload = None
            path = st.text_input("Folder on the server", key=_key("path"), placeholder="/data/my-photos")
        name = st.text_input("Name", key=_key("name"), max_chars=40,
                             help="lower-case letters, digits, '-' and '_'")
        size_col, fit_col, color_col = st.columns(3)
        size = size_col.select_slider("Image size (px)", SIZES, value=96, key=_key("size"))
        fit = fit_col.radio("Non-square photos", FITS, key=_key("fit"), format_func=lambda f: FIT_HELP[f].split(":")[0],
                            help=" · ".join(FIT_HELP.values()))
        color = color_col.radio("Colour", COLORS, key=_key("color"))
        if not st.button("Add dataset", type="primary", key=_key("go"), disabled=not name or not (upload or path)):
            return
        if upload is not None and (reason := _too_large(upload, zip_cap_mb())):
            st.error(plain(f"Not added: {reason}"), icon=":material/block:")
            return
        _import(name, upload if upload is not None else path, Settings(size, fit, color),
                upload.name if upload is not None else path)


def _import(name: str, source, settings: Settings, what: str) -> None:
    bar = st.progress(0.0, text="Checking ...")
    try:
        manifest = add_dataset(name, source, settings, what=what, progress=_progress_reporter(bar))
    except LayerlabError as exc:
        bar.empty()
        st.error(plain(f"Not added: {exc}"), icon=":material/block:")
        return
    bar.progress(1.0, text="Done")
    dataset_overview.clear()
    state.set_dataset(manifest["name"])
    state.push_notice(f"Added {manifest['name']}: {len(manifest['classes'])} classes, "
                      f"{sum(map(sum, manifest['counts'].values()))} images.")
    st.rerun()


def details(name: str) -> None:
    """Where an added dataset came from, how it was decoded, how it was split, warnings, unreadable
    files and skipped ones (not images, or symbolic links), as the CLI lists them. Its images per
    class and split are in the page's one class table (`dataset_view.class_table`)."""
    if name not in added.added_infos():
        return
    try:
        manifest = added.read_manifest(name)
    except LayerlabError as exc:
        st.error(plain(exc))
        return
    st.caption(f"Added from (decoded {manifest['image_size']}×{manifest['image_size']}, {manifest['color']}, "
               f"{manifest['fit']}):")
    st.code(str(manifest.get("origin", "")), language=None, wrap_lines=True)
    for note in manifest.get("notes", []):
        st.info(plain(note), icon=":material/call_split:")
    for warning in manifest.get("warnings", []):
        st.warning(plain(warning), icon=":material/warning:")
    problems = [{"File": item["file"], "Reason": item["reason"]} for item in manifest.get("unreadable", [])]
    if problems:
        with st.expander(f"{len(problems)} file(s) could not be read and were left out"):
            st.dataframe(pd.DataFrame(problems), hide_index=True, key=_key("unreadable", name))
    skipped = [{"File": item["file"], "Reason": item["reason"]} for item in manifest.get("skipped", [])]
    if skipped:
        with st.expander(f"{len(skipped)} file(s) or folder(s) were skipped (not images, or links)"):
            st.dataframe(pd.DataFrame(skipped), hide_index=True, key=_key("skipped", name))
