"""The one module that names session-state and query-param keys.

Pages and components ask here for what the user is working on (the spec being built, the
dataset, the selected run) instead of touching `st.session_state` themselves, so a key is
spelled once and every page agrees on it. What Build holds is also kept on disk as a draft
(`pipelines.runs.drafts`), named in the URL, so it survives a refresh and a server restart.

Widget keys carry their page's prefix (`build_`, `train_`, ...) and, for the Build page, a
revision number: bumping it after an undo, a preset or a fix gives every widget a fresh key, so
none shows a value the spec no longer holds.
"""
from __future__ import annotations

import logging
import re

import numpy as np
import streamlit as st

from pipelines.data.catalog import CATALOG
from pipelines.errors import LayerlabError
from pipelines.modelspec.presets import get_preset
from pipelines.modelspec.spec import ModelSpec
from pipelines.runs.drafts import (MAX_HISTORY, MAX_RUN_NAME, Draft, DraftError, DraftStore, new_draft_id,
                                   validate_draft_id)
from pipelines.runs.entities import validate_run_id, validate_sweep_id

# Stored values use a `_state_` infix so they can never collide with a widget key.
_DATASET = "app_state_dataset"
_SPEC = "build_state_spec"
_UNDO = "build_state_history"
_SELECTED = "build_state_selected"  # the name of the layer new ones go after
_RUN_NAME = "build_state_run_name"  # the name the user typed for the next run; "" means the default
_DRAFT_ID = "build_state_draft"
_REVISION = "build_state_revision"
_CLICKS = "build_state_clicks"  # the click log's last batch: components/click_log.py
_NOTICE = "app_state_notice"
_RUN_PARAM = "run"
_FROM_RUN_PARAM = "from_run"  # Build opens this run's model (a link from Train: no rerun from a fragment)
_FIX_PARAM = "fix"  # ... with the doctor's fix of this index made to it
_DRAFT_PARAM = "draft"
UNDO_DEPTH = MAX_HISTORY
DEFAULT_DATASET = "fashion_mnist"
DEFAULT_PRESET = "mlp-128x2"
MALFORMED_DRAFT_LINK = "This link's draft id is not one Layerlab makes, so Build shows your most recent draft."
DAMAGED_DRAFT = "The draft this link names could not be read, so Build shows your most recent one."
log = logging.getLogger("layerlab.dashboard")


def key(page: str, *parts: object) -> str:
    """A widget key with its page's prefix, e.g. key("train", "stop", run_id)."""
    return "_".join([page, *(str(p) for p in parts)])


_REVISION_IN_KEY = re.compile(r"^build_r(\d+)_")


def build_key(*parts: object) -> str:
    """A Build-page widget key that changes whenever the spec is replaced from outside a widget."""
    return key("build", f"r{st.session_state.get(_REVISION, 0)}", *parts)


def widget_value(widget_key: str):
    return st.session_state.get(widget_key)


def stale_build_widget(widget_key: str) -> bool:
    """Whether a Build widget belongs to a model (or dataset) that has since been replaced.

    A browser that sends its next change before it has drawn the new model still holds the old
    widgets, and Streamlit can fire their callbacks with the old values: a preset would then get
    the replaced model's activation on one layer and the old dataset back. Callbacks ask this first.
    """
    revision = _REVISION_IN_KEY.match(widget_key)
    if revision:
        return int(revision.group(1)) != st.session_state.get(_REVISION, 0)
    dataset_prefix = key("build", "dataset", "")
    if widget_key.startswith(dataset_prefix):
        return widget_key != key("build", "dataset", dataset())
    return False


# --- the Build draft ---------------------------------------------------------------------------
# Session state is the working copy; every change is also written to the draft store (see
# pipelines/runs/drafts.py), so a refresh, a new tab or a server restart finds it again.

def _ensure_draft() -> None:
    """On a session's first look at what is being built, adopt the draft its URL names, or else
    resume the most recently edited one (a new tab). Without any, the session keeps its defaults."""
    if _DRAFT_ID in st.session_state:
        return
    try:
        draft_id, found = _find_draft(st.query_params.get(_DRAFT_PARAM))
    except OSError:  # an unreadable home: build on, and `_save_draft` says why nothing is kept
        log.warning("Could not read the Build drafts", exc_info=True)
        draft_id, found = new_draft_id(), None
    st.session_state[_DRAFT_ID] = draft_id
    if found is not None:
        st.session_state.update({_SPEC: found.spec, _UNDO: list(found.history), _DATASET: found.dataset,
                                 _SELECTED: found.insert_after, _RUN_NAME: found.run_name})


def _find_draft(wanted: str | None) -> tuple[str, Draft | None]:
    """The id this session keeps its draft under, and the draft to start from. A valid id whose
    file is gone (pruned, or never written) is kept, seeded from the newest draft."""
    store = DraftStore.in_home()
    draft_id = None
    if wanted:
        try:
            draft_id = validate_draft_id(wanted)
            found = store.load(draft_id)
        except DraftError as exc:
            log.warning("Not resuming the draft in the URL: %s", exc)
            push_notice(DAMAGED_DRAFT if draft_id else MALFORMED_DRAFT_LINK)
            found = None
        if found is not None:
            return draft_id, found
    latest = store.latest()
    return draft_id or new_draft_id(), latest[1] if latest else None


def draft_id() -> str:
    _ensure_draft()
    return st.session_state[_DRAFT_ID]


def keep_draft_in_url() -> None:
    """Put `?draft=ID` in the Build page's URL, so a refresh or a bookmark reopens this draft."""
    if st.query_params.get(_DRAFT_PARAM) != draft_id():
        st.query_params[_DRAFT_PARAM] = draft_id()


def _save_draft() -> None:
    """Write the draft after a change; a failure is said once on the page, never raised."""
    draft = Draft(spec=spec(), dataset=dataset(), history=tuple(st.session_state.get(_UNDO, ())),
                  insert_after=st.session_state.get(_SELECTED), run_name=run_name())
    try:
        DraftStore.in_home().save(draft_id(), draft)
    except DraftError as exc:
        push_notice(f"{exc} A refresh would lose the latest change: save the model as JSON.")
    except OSError as exc:
        log.warning("Could not save the Build draft", exc_info=True)
        push_notice(f"Could not keep this model on disk ({exc.strerror or exc}). A refresh would lose the "
                    "latest change: save the model as JSON.")


def dataset() -> str:
    _ensure_draft()
    return st.session_state.setdefault(_DATASET, DEFAULT_DATASET)


def set_dataset(name: str) -> None:
    if name not in CATALOG:
        raise ValueError(name)
    if name != dataset():
        st.session_state[_DATASET] = name
        _save_draft()


def spec() -> ModelSpec:
    _ensure_draft()
    _settle_clicks()
    if _SPEC not in st.session_state:
        st.session_state[_SPEC] = get_preset(DEFAULT_PRESET).spec
    return st.session_state[_SPEC]


def _replace_spec(new: ModelSpec, refresh_widgets: bool) -> None:
    old = spec()
    if new == old:
        return
    history = st.session_state.setdefault(_UNDO, [])
    history.append(old)
    del history[:-UNDO_DEPTH]
    st.session_state[_SPEC] = new
    if refresh_widgets:
        _bump_revision()


def set_spec(new: ModelSpec, *, refresh_widgets: bool = False) -> None:
    """Replace the spec, remembering the old one for undo. `refresh_widgets` after any change that
    did not come from the widget showing it (presets, undo, fixes, imports, moves)."""
    if new != spec():
        _replace_spec(new, refresh_widgets)
        _save_draft()


def open_in_build(new: ModelSpec, dataset_name: str, notice: str | None = None) -> None:
    """Put a run's spec (or a changed copy of it) on the Build page, undoable, with a notice to show
    there; the caller then switches to Build (`st.switch_page("views/build.py")`)."""
    if dataset_name not in CATALOG:
        raise ValueError(dataset_name)
    _ensure_draft()
    st.session_state[_DATASET] = dataset_name
    _replace_spec(new, refresh_widgets=True)
    st.session_state[_SELECTED] = None
    _save_draft()
    if notice:
        push_notice(notice)


def can_undo() -> bool:
    _ensure_draft()
    return bool(st.session_state.get(_UNDO))


def undo() -> None:
    _ensure_draft()
    history = st.session_state.get(_UNDO) or []
    if history:
        st.session_state[_SPEC] = history.pop()
        _bump_revision()
        _save_draft()


def _bump_revision() -> None:
    st.session_state[_REVISION] = st.session_state.get(_REVISION, 0) + 1


def selected_layer() -> int | None:
    """The card new layers are added after; None means 'at the end'. It is kept by the layer's
    name, so edits above it (a one-click fix inserting a Flatten) do not move it."""
    name = st.session_state.get(_SELECTED)
    names = [layer.name for layer in spec().layers]
    return names.index(name) if name in names else None


def select_layer(index: int | None) -> None:
    layers = spec().layers
    name = layers[index].name if index is not None and 0 <= index < len(layers) else None
    if name != st.session_state.get(_SELECTED):
        st.session_state[_SELECTED] = name
        _save_draft()


def applied_clicks() -> tuple[str, int]:
    """The browser epoch and the number of the last click of Build's click log applied."""
    record = st.session_state.get(_CLICKS)
    return (record[0], record[1]) if record else ("", 0)


def apply_click_batch(epoch: str, seq: int, new_spec: ModelSpec, selected_name: str | None) -> None:
    """Apply clicks up to `seq` as one write-ahead record, then settle it.

    Every access to session state is a point where Streamlit may stop a callback for the next
    rerun, so a batch written piece by piece could be applied twice or half. The record is one
    assignment; `_settle_clicks` then makes the spec and insertion point agree with it, and
    runs again (it is idempotent) wherever the spec is read, until the record says it is done.
    """
    st.session_state[_CLICKS] = (epoch, seq, new_spec, selected_name, False)
    _settle_clicks()


def _settle_clicks() -> None:
    record = st.session_state.get(_CLICKS)
    if not record or record[4]:
        return
    epoch, seq, new_spec, selected_name, _settled = record
    current = st.session_state.get(_SPEC)
    if new_spec != current:
        history = st.session_state.setdefault(_UNDO, [])
        if current is not None and (not history or history[-1] != current):  # not twice if stopped below
            history.append(current)
            del history[:-UNDO_DEPTH]
        st.session_state[_SPEC] = new_spec
        _bump_revision()
    st.session_state[_SELECTED] = selected_name
    st.session_state[_CLICKS] = (epoch, seq, new_spec, selected_name, True)
    _save_draft()


def selected_layer_name() -> str | None:
    spec()
    return st.session_state.get(_SELECTED)


def run_name() -> str:
    """The name the user gave the next run, or "" for the default (a description of the spec)."""
    _ensure_draft()
    return st.session_state.get(_RUN_NAME, "")


def set_run_name(text: str | None) -> None:
    name = " ".join(str(text or "").split())[:MAX_RUN_NAME]
    if name != run_name():
        st.session_state[_RUN_NAME] = name
        _save_draft()


def current_run_id() -> str | None:
    """The run the URL names (`?run=ID`), so a refresh or a shared link reopens it; None when
    there is no `?run=` or its value is not a run id (see `run_param_is_malformed`)."""
    value = st.query_params.get(_RUN_PARAM)
    if not value:
        return None
    try:
        return validate_run_id(value)
    except LayerlabError:
        return None


def run_param_is_malformed() -> bool:
    """Whether `?run=` holds something that is not a run id. Anyone can write anything in a URL,
    so the page says so in fixed words and never shows the value."""
    return bool(st.query_params.get(_RUN_PARAM)) and current_run_id() is None


def set_current_run(run_id: str | None) -> None:
    if run_id:
        st.query_params[_RUN_PARAM] = run_id
    elif _RUN_PARAM in st.query_params:
        del st.query_params[_RUN_PARAM]


def run_query(run_id: str) -> dict[str, str]:
    """Query params for `st.switch_page` / `st.page_link` to open a run."""
    return {_RUN_PARAM: run_id}


def build_handoff_query(run_id: str, fix: int | None = None) -> dict[str, str]:
    """Query params for a link to Build that opens a run's model there, with its doctor's finding
    `fix` applied. A link, not a button that switches pages, so no app rerun leaves a fragment."""
    return {_FROM_RUN_PARAM: run_id, **({} if fix is None else {_FIX_PARAM: str(fix)})}


def take_build_handoff() -> tuple[str | None, int | None] | None:
    """The run (None if its id is malformed) and fix a link asked Build to open, taken once: the
    params leave the URL, so a refresh does not open it again. None without such a link."""
    raw_run, raw_fix = st.query_params.get(_FROM_RUN_PARAM), st.query_params.get(_FIX_PARAM)
    for param in (_FROM_RUN_PARAM, _FIX_PARAM):
        if param in st.query_params:
            del st.query_params[param]
    if raw_run is None:
        return None
    try:
        run_id = validate_run_id(raw_run)
    except LayerlabError:
        return None, None
    return run_id, int(raw_fix) if raw_fix and raw_fix.isdigit() and len(raw_fix) <= 3 else None


def push_notice(text: str) -> None:
    """A message to show once on the next page drawn (e.g. after switching pages). It is plain
    text, often echoing a file name or a value: pages show it through `components.text.plain`."""
    st.session_state[_NOTICE] = text


def pop_notice() -> str | None:
    return st.session_state.pop(_NOTICE, None)


# --- Test page ---------------------------------------------------------------------------------
# The drawing and the uploads each keep the input they last gave the model, with the run it was
# prepared for (runs differ in input shape), so "see inside" can show that input's activations.
# Arrays only: the models themselves live in components/model_cache.py's cache.
_TEST_CANVAS_REVISION = "test_state_canvas_revision"
_TEST_INPUTS = "test_state_inputs"
TEST_DRAWING = "drawing"
TEST_UPLOADS = "uploads"


def canvas_key() -> str:
    """The drawing canvas' widget key; `clear_canvas` retires it, which empties the canvas."""
    return key("test", "canvas", st.session_state.get(_TEST_CANVAS_REVISION, 0))


def clear_canvas() -> None:
    st.session_state[_TEST_CANVAS_REVISION] = st.session_state.get(_TEST_CANVAS_REVISION, 0) + 1


def set_prepared_inputs(source: str, run_id: str, inputs: dict[str, np.ndarray]) -> None:
    """What `source` (TEST_DRAWING or TEST_UPLOADS) last fed run `run_id`'s model, by label;
    replaces that source's earlier inputs, and an empty dict forgets them."""
    stored = st.session_state.setdefault(_TEST_INPUTS, {})
    if inputs:
        stored[source] = (run_id, dict(inputs))
    else:
        stored.pop(source, None)


def prepared_inputs(run_id: str) -> dict[str, np.ndarray]:
    """Every input prepared for run `run_id`'s model, by label: the drawing first, then uploads."""
    stored = st.session_state.get(_TEST_INPUTS, {})
    found: dict[str, np.ndarray] = {}
    for source in (TEST_DRAWING, TEST_UPLOADS):
        if source in stored and stored[source][0] == run_id:
            found.update(stored[source][1])
    return found


def set_widget_value(widget_key: str, value) -> None:
    """Set a widget's value from a callback (before the widget is drawn again), e.g. to make two
    widgets that choose the same thing agree."""
    st.session_state[widget_key] = value


# --- Compare: the selected runs live in the URL (`/compare?runs=ID,ID`), so a comparison can be
# shared and survives a refresh. Values that are not run ids are dropped, never shown.
_RUNS_PARAM = "runs"
COMPARE_MAX_RUNS = 20


def compare_selection() -> list[str]:
    """The run ids `?runs=` names, in order, well-formed ones only, at most COMPARE_MAX_RUNS."""
    raw = st.query_params.get(_RUNS_PARAM) or ""
    chosen: list[str] = []
    for part in raw.split(",")[: 4 * COMPARE_MAX_RUNS]:
        try:
            run_id = validate_run_id(part.strip())
        except LayerlabError:
            continue
        if run_id not in chosen:
            chosen.append(run_id)
    return chosen[:COMPARE_MAX_RUNS]


def set_compare_selection(run_ids: list[str]) -> None:
    if run_ids:
        st.query_params[_RUNS_PARAM] = ",".join(run_ids[:COMPARE_MAX_RUNS])
    elif _RUNS_PARAM in st.query_params:
        del st.query_params[_RUNS_PARAM]


def compare_query(run_ids: list[str]) -> dict[str, str]:
    """Query params for `st.switch_page` to open Compare on these runs."""
    return {_RUNS_PARAM: ",".join(run_ids[:COMPARE_MAX_RUNS])}


# The sweep Compare follows (`?sweep=ID`), set when the Build page starts one.
_SWEEP_PARAM = "sweep"


def compare_sweep() -> str | None:
    """The sweep id `?sweep=` names, if it is one (anything else is ignored, never shown)."""
    try:
        return validate_sweep_id(st.query_params.get(_SWEEP_PARAM))
    except LayerlabError:
        return None


def sweep_query(sweep_id: str) -> dict[str, str]:
    return {_SWEEP_PARAM: sweep_id}


# --- Test: a run evaluated on the user's labelled folder ---------------------------------------
_FOLDER_EVALUATION = "test_state_folder_evaluation"


def set_folder_evaluation(run_id: str, result: object) -> None:
    """The last labelled-folder evaluation on Test; kept for run `run_id` only."""
    st.session_state[_FOLDER_EVALUATION] = (run_id, result)


def folder_evaluation(run_id: str) -> object | None:
    stored = st.session_state.get(_FOLDER_EVALUATION)
    return stored[1] if stored and stored[0] == run_id else None
