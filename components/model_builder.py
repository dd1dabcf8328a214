"""The Build page's toolbar (dataset, presets, undo, save and load), its cached validation, and
the Train panel (run name, Train, what blocks it, the training settings in a line)."""
from __future__ import annotations

import hashlib
import math

import streamlit as st

from components import resources, state
from components.layer_editor import fix_button
from components.text import plain
from components.training_settings import SETTINGS_ANCHOR, settings_summary
from components.user_words import user_words
from pipelines.data.catalog import CATALOG
from pipelines.data.locate import locate
from pipelines.errors import DatasetError, LayerlabError, SpecError
from pipelines.modelspec import edit
from pipelines.modelspec.limits import limits
from pipelines.modelspec.describe import run_title
from pipelines.modelspec.presets import PRESETS
from pipelines.modelspec.spec import ModelSpec
from pipelines.modelspec.validation import Validation, validate
from pipelines.runs.drafts import MAX_RUN_NAME

TRAIN_PAGE = "views/train.py"
DATA_PAGE = "views/data.py"
DOWNLOAD_HINT = "the Data page can download it."
BLOCKERS_SHOWN = 5  # problems listed beside Train; the cards show every one


@st.cache_data(max_entries=256, show_spinner=False)
def _validate_cached(spec_json: str, dataset: str) -> Validation:
    return validate(ModelSpec.from_json(spec_json), dataset)


def validation(spec: ModelSpec, dataset: str) -> Validation:
    """`validate` builds the layers in Keras; the same spec is not built twice."""
    with st.spinner("Checking the model with Keras ..."):
        return _validate_cached(spec.to_json(), dataset)


def input_text(result: Validation) -> str:
    return "×".join(str(d) for d in result.input_shape)


def is_available(name: str) -> bool:
    """Whether the dataset is on this machine (data folder or Keras' cache): if not, only a
    download would get it, which Build never starts on its own. A few file checks, so not cached:
    a download on the Data page shows here at once."""
    return name in CATALOG and locate(name) is not None


def _missing_hint(name: str) -> str:
    """Where to get a preset's dataset: a download for the built-in ones, else adding the photos."""
    if name in CATALOG:
        return f" {CATALOG[name].title} is not on this machine: {DOWNLOAD_HINT}"
    return (f" Add the photos as dataset '{name}' first (Data page, or `python -m pipelines dataset add {name} "
            "--from PATH`).")


def dataset_label(name: str) -> str:
    """"CIFAR-10 (not on this machine)" for a dataset only a download would get."""
    title = CATALOG[name].title
    return title if is_available(name) else f"{title} (not on this machine)"


def _load_preset(name: str) -> None:
    preset = PRESETS[name]
    state.set_spec(preset.spec, refresh_widgets=True)
    state.select_layer(None)
    if preset.dataset not in CATALOG:
        state.push_notice(f"Loaded '{preset.title}'.{_missing_hint(preset.dataset)}")
    elif preset.dataset != state.dataset():
        state.set_dataset(preset.dataset)
        missing = "" if is_available(preset.dataset) else f" It is not on this machine yet: {DOWNLOAD_HINT}"
        state.push_notice(f"Loaded '{preset.title}' and switched the dataset to {CATALOG[preset.dataset].title}, "
                          f"the one its tutorial uses.{missing}")


def _clear() -> None:
    state.set_spec(edit.clear_layers(state.spec()), refresh_widgets=True)
    state.select_layer(None)


def _pick_dataset(widget_key: str) -> None:
    if not state.stale_build_widget(widget_key):  # not the picker of a dataset a preset replaced
        state.set_dataset(state.widget_value(widget_key))


@st.cache_data(max_entries=8, show_spinner=False)
def _spec_problem(data: bytes) -> str | None:
    """Why the uploaded spec file cannot be loaded, in a user's words, or None (read once per file)."""
    try:
        edit.import_spec(data)
    except SpecError as exc:
        return user_words(exc)
    return None


def _import_spec(widget_key: str) -> None:
    """Load the uploaded spec; a file that cannot be loaded says why under the uploader instead."""
    upload = state.widget_value(widget_key)
    if upload is None or _spec_problem(upload.getvalue()):
        return
    state.set_spec(edit.import_spec(upload.getvalue()), refresh_widgets=True)
    state.push_notice(f"Loaded {upload.name}.")


def toolbar() -> None:
    """Dataset, undo, clear, presets, and the spec as a JSON file. Rows of content-wide buttons
    that wrap when the window is narrow, so no label is ever cut short."""
    names = list(CATALOG)
    with st.container(horizontal=True, vertical_alignment="bottom", key=state.key("build", "toolbar")):
        dataset_key = state.key("build", "dataset", state.dataset())
        st.selectbox("Dataset", names, index=names.index(state.dataset()), format_func=dataset_label,
                     key=dataset_key, on_change=_pick_dataset, args=(dataset_key,), width=280)
        st.button("Undo", icon=":material/undo:", key=state.key("build", "undo"), disabled=not state.can_undo(),
                  on_click=state.undo, help="Undo the last change to the model")
        st.button("Clear", icon=":material/delete_sweep:", key=state.key("build", "clear"), on_click=_clear,
                  disabled=not state.spec().layers, help="Start from an empty stack (Undo brings it back)")
    st.caption("Start from a tutorial model:")
    with st.container(horizontal=True, gap="small", key=state.key("build", "presets")):
        for preset in PRESETS.values():
            here = is_available(preset.dataset)
            needs = "a download" if preset.dataset in CATALOG else "its photos"
            label = preset.name if here else f"{preset.name} (needs {needs})"
            where = "" if here else _missing_hint(preset.dataset)
            st.button(label, key=state.key("build", "preset", preset.name), help=preset.description + where,
                      on_click=_load_preset, args=(preset.name,))
    with st.expander("Save or load this model as JSON"):
        spec = state.spec()
        st.download_button("Save spec (.json)", spec.to_json(), file_name=f"{spec.name or 'model'}.json",
                           mime="application/json", key=state.key("build", "save"))
        upload_key = state.key("build", "load")
        # The browser refuses a file over the spec cap (in whole MB) before sending it.
        upload = st.file_uploader("Load a spec", type=["json"], key=upload_key, on_change=_import_spec,
                                  args=(upload_key,), max_upload_size=max(1, math.ceil(limits().max_bytes / 2**20)))
        if upload is not None and (problem := _spec_problem(upload.getvalue())):
            st.error(plain(f"Could not load {upload.name}: {problem}"), icon=":material/error:")


# --- the Train panel ---------------------------------------------------------------------------

def _typed_name(widget_key: str) -> str:
    return " ".join(str(state.widget_value(widget_key) or "").split())


def _name_changed(widget_key: str, default: str) -> None:
    """Typing the default back, or emptying the field, returns to the default that follows the spec.
    A name over MAX_RUN_NAME is not kept: the field holds it and says so, for the user to shorten."""
    typed = _typed_name(widget_key)
    if len(typed) <= MAX_RUN_NAME:
        state.set_run_name("" if typed == default else typed)


def default_run_name(spec: ModelSpec) -> str:
    """`run_title(spec)`, cut to the length a run name may have (a 200-layer model's is longer)."""
    title = run_title(spec)
    return title if len(title) <= MAX_RUN_NAME else title[:MAX_RUN_NAME - 1] + "…"


def run_name_field(spec: ModelSpec) -> tuple[str, str | None]:
    """The run's name and, for a name too long to keep, why (None when it is fine). A description
    of the spec until the user types their own; the default's widget key follows the default, so
    the field shows the new description after every edit. A text area as tall as its text, because
    a deep model's description is long and must not be cut. No `max_chars`: Streamlit's browser
    side drops a whole paste that would pass it, without a word, so the length is checked here."""
    default = default_run_name(spec)
    own = state.run_name()
    tag = "own" if own else hashlib.sha1(default.encode()).hexdigest()[:8]
    widget_key = state.build_key("run_name", tag)
    st.text_area("Run name", value=own or default, key=widget_key, height="content",
                 on_change=_name_changed, args=(widget_key, default),
                 help=f"How this run is listed on the Train, Test and Compare pages. It describes the model "
                      f"until you type a name of your own (at most {MAX_RUN_NAME} characters).")
    name = _typed_name(widget_key) or default
    if len(name) > MAX_RUN_NAME:
        return name, f"Run names can be at most {MAX_RUN_NAME} characters; this one has {len(name):,}."
    return name, None


def train_panel(spec: ModelSpec, result: Validation) -> None:
    """Name the run and queue it; when it cannot be queued, say why right here, with what to do.
    Full width under the toolbar, so the reasons and a long run name are read in full at 1024 px."""
    dataset = state.dataset()
    missing = not is_available(dataset)
    with st.container(border=True, key=state.key("build", "train_panel")):
        with st.container(horizontal=True, vertical_alignment="bottom"):
            name, name_problem = run_name_field(spec)
            clicked = st.button("Train this model", icon=":material/play_arrow:", type="primary",
                                disabled=missing or not result.ok or name_problem is not None,
                                key=state.key("build", "train"),
                                help="Queue a training run of this model and watch it on the Train page")
        if name_problem:
            st.error(name_problem, icon=":material/short_text:")
        if missing:
            _missing_dataset(dataset)
        if not result.ok:
            _blocking_problems(result)
        for number, problem in enumerate(result.problems_for(None)):
            if problem.param != "loss":  # the loss's fix sits under the loss picker
                fix_button(problem, state.build_key("fix", "model", number))
        _settings_line(spec)
        if clicked:
            _submit(spec, dataset, name)


def blocking_reason(dataset: str, result: Validation) -> str | None:
    """Why this model cannot be queued now, in a line (None when it can): for the sweep panel."""
    if not is_available(dataset):
        return f"{CATALOG[dataset].title} is not on this machine (the Data page can download it)."
    if not result.ok:
        return f"fix the {len(result.problems)} problem(s) listed under Train first."
    return None


def _missing_dataset(dataset: str) -> None:
    title = CATALOG[dataset].title
    st.warning(f"**Train is off: {title} is not on this machine.** Download it on the Data page, or pick a "
               "dataset that is here.", icon=":material/cloud_off:")
    st.page_link(DATA_PAGE, label="Open the Data page", icon=":material/download:")


def _blocking_problems(result: Validation) -> None:
    """Every problem that keeps Train off, in a list beside it; the cards offer their fixes."""
    problems = result.problems
    lines = [f"- {plain(user_words(problem.message), keep_code=True)}" for problem in problems[:BLOCKERS_SHOWN]]
    if len(problems) > BLOCKERS_SHOWN:
        lines.append(f"- … and {len(problems) - BLOCKERS_SHOWN} more, each on its card")
    count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
    st.error(f"**Train is off: fix {count} first.** Most have a one-click fix on their card.\n\n" + "\n".join(lines),
             icon=":material/block:")


def _settings_line(spec: ModelSpec) -> None:
    st.markdown(f":material/tune: {settings_summary(spec, state.dataset())} · [change]({SETTINGS_ANCHOR})")


def _submit(spec: ModelSpec, dataset: str, name: str) -> None:
    """Queue the run and open it on the Train page; a refusal leads with what went wrong and what
    to do, and keeps the long detail in an expander."""
    try:
        scheduler = resources.scheduler()
        run = scheduler.submit(spec, dataset, name=name)
        scheduler.ensure_workers(spare=1)
    except DatasetError as exc:
        title = CATALOG[dataset].title
        _refusal(f"{title} could not be loaded, so the run was not started. The Data page can download it, "
                 "or says where to put its files.", exc)
        st.page_link(DATA_PAGE, label="Open the Data page", icon=":material/image:")
        return
    except LayerlabError as exc:
        headline = str(exc).strip().split("\n", 1)[0]
        _refusal(f"The run was not started: {user_words(headline)}", exc)
        return
    state.set_run_name("")  # the next run gets its own name
    state.set_current_run(run.id)
    st.switch_page(TRAIN_PAGE, query_params=state.run_query(run.id))


def _refusal(headline: str, exc: Exception) -> None:
    st.error(plain(headline, keep_code=True), icon=":material/error:")
    with st.expander("Details"):
        st.code(str(exc), language=None, wrap_lines=True)
