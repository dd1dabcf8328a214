"""The layer stack editor: a palette of layer types and one card per layer.

Everything here reads the layer registry, so a new registry entry shows up in the palette and
gets its parameter widgets without a change here. Edits go through `state.set_spec`, which keeps
the undo history.
"""
from __future__ import annotations

import streamlit as st

from components import click_log, resources, state
from components.run_list import run_label
from components.text import plain
from components.user_words import user_words
from pipelines.errors import SpecError
from pipelines.data.catalog import get_info
from pipelines.modelspec import edit
from pipelines.modelspec.layers import LAYER_TYPES, ParamSpec
from pipelines.modelspec.pretrained import weights_note
from pipelines.modelspec.spec import LayerSpec, ModelSpec
from pipelines.modelspec.validation import Fix, LayerRow, Problem, random_features, shape_text
from pipelines.runs.entities import RunStatus

CATEGORY_TITLES = {"core": "Core", "convolutional": "Convolution", "regularization": "Regularisation",
                   "activation": "Activation", "augmentation": "Augmentation (training only)",
                   "transfer": "Transfer learning"}


# --- callbacks: they run before the next script run, so the page draws the new spec at once -----
# The edits themselves are `pipelines.modelspec.edit`'s; these only store the result and the
# insertion point. The insertion point is kept by layer name (see `state.selected_layer`), so only
# the user moves it: picking a card, or adding a layer (the next one goes after it, so a run of
# clicks builds the stack top-down). Moves, copies and one-click fixes leave it where it is.

def _add_layer(layer_type: str) -> None:
    at = state.selected_layer()
    spec, position = edit.insert_layer(state.spec(), layer_type, None if at is None else at + 1)
    state.set_spec(spec, refresh_widgets=True)
    if at is not None:
        state.select_layer(position)


def _move(index: int, offset: int) -> None:
    try:
        spec = edit.move_layer(state.spec(), index, offset)
    except SpecError:
        return  # past either end: the button is disabled there, so only a stale click gets here
    state.set_spec(spec, refresh_widgets=True)


def _duplicate(index: int) -> None:
    state.set_spec(edit.duplicate_layer(state.spec(), index), refresh_widgets=True)


def _delete(index: int) -> None:
    """A deleted insertion point hands over to the layer above it, so the slot stays put."""
    moves_up = state.selected_layer() == index
    state.set_spec(edit.delete_layer(state.spec(), index), refresh_widgets=True)
    if moves_up:
        state.select_layer(index - 1 if index > 0 else None)


def _apply_fix(fix: Fix) -> None:
    state.set_spec(edit.apply_fix(state.spec(), fix), refresh_widgets=True)


def _set_param(index: int, param: ParamSpec, widget_key: str) -> None:
    if state.stale_build_widget(widget_key):
        return  # a card of the model a preset, an undo or a fix replaced
    value = state.widget_value(widget_key)
    if param.kind == "shape":
        value = _parse_shape(value)
        if value is None:
            return  # the card shows the parse error; the spec keeps its last good shape
    state.set_spec(edit.set_param(state.spec(), index, param.name, value))


def _clicked(spec: ModelSpec, selected: str | None, key: str) -> tuple[ModelSpec, str | None]:
    """What the button keyed `key` does to (spec, insertion point by name), as the callbacks above
    do, without touching session state: the click log applies a batch of clicks in one write."""
    names = [layer.name for layer in spec.layers]
    at = names.index(selected) if selected in names else None
    _page, action, target = key.split("_", 2) if key.count("_") >= 2 else ("", "", "")
    if action == "add" and target in LAYER_TYPES:
        spec, position = edit.insert_layer(spec, target, None if at is None else at + 1)
        return spec, spec.layers[position].name if at is not None else selected
    if target not in names:
        return spec, selected
    index = names.index(target)
    if action in ("up", "down"):
        try:
            return edit.move_layer(spec, index, -1 if action == "up" else 1), selected
        except SpecError:
            return spec, selected
    if action == "dup":
        return edit.duplicate_layer(spec, index), selected
    if action == "del":
        spec = edit.delete_layer(spec, index)
        if at == index:
            selected = spec.layers[index - 1].name if index > 0 and spec.layers else None
        return spec, selected
    if action == "sel":
        return spec, None if at == index else target
    return spec, selected


def _click_keys(spec: ModelSpec) -> list[str]:
    """The keys of the buttons whose clicks go through the click log: the palette's and the cards'."""
    keys = [state.key("build", "add", name) for name in LAYER_TYPES]
    keys += [state.key("build", action, layer.name) for layer in spec.layers for action in CARD_CLICKS]
    return keys


CARD_CLICKS = ("up", "down", "dup", "del", "sel")


def _parse_shape(text: str | None) -> list[int] | None:
    try:
        return [int(part) for part in str(text).replace("(", "").replace(")", "").split(",") if part.strip()]
    except ValueError:
        return None


# --- drawing ----------------------------------------------------------------------------------

def insertion_text() -> str:
    """Where the palette's next layer goes, in words: "after layer 3 (dense_1)" or "at the end"."""
    at = state.selected_layer()
    if at is None:
        return "at the end"
    return f"after layer {at + 1} ({state.spec().layers[at].name})"


def insertion_marker() -> None:
    """A line where the next layer will appear, drawn right after the insertion point's card."""
    with st.container(key=state.key("build", "insertion_point")):
        st.caption(f":material/subdirectory_arrow_right: New layers from the palette go here, "
                   f"{plain(insertion_text())}.")


def palette() -> None:
    """One button per layer type, grouped, each as wide as its name: none is ever cut short. Their
    clicks, and the cards', reach the spec through the click log, in the order they were made."""
    click_log.record(_click_keys(state.spec()), _clicked)
    st.markdown(f"**Add a layer** · adds {plain(insertion_text())}")
    if state.selected_layer() is not None:
        st.button("Add at the end instead", icon=":material/vertical_align_bottom:", type="tertiary",
                  key=state.key("build", "add_at_end"), on_click=state.select_layer, args=(None,))
    by_category: dict[str, list[str]] = {}
    for layer_type in LAYER_TYPES.values():
        by_category.setdefault(layer_type.category, []).append(layer_type.name)
    for category, names in by_category.items():
        st.caption(CATEGORY_TITLES.get(category, category))
        with st.container(horizontal=True, gap="small", key=state.key("build", "palette", category)):
            for name in names:
                st.button(name, icon=":material/add:", key=state.key("build", "add", name), help=LAYER_TYPES[name].help,
                          on_click=_add_layer, args=(name,))


PARAM_WIDTH = 136  # pixels: two parameters side by side in a card at 1024 px, three or more when wider


def _param_widget(index: int, layer: LayerSpec, param: ParamSpec) -> None:
    widget_key = state.build_key("param", layer.name, param.name)
    value = layer.params.get(param.name, param.default)
    common = dict(key=widget_key, help=param.help, on_change=_set_param, args=(index, param, widget_key),
                  width=PARAM_WIDTH)
    label = param.name.replace("_", " ")
    if param.kind == "choice":
        options = list(param.choices)
        st.selectbox(label, options, index=options.index(value) if value in options else None, **common)
    elif param.kind == "shape":
        text = ", ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        st.text_input(label, value=text, **common)
        if _parse_shape(state.widget_value(widget_key) or text) is None:
            st.error("Write whole numbers separated by commas, e.g. 28, 28, 1")
    elif param.kind == "text" and (layer.type, param.name) == ("RunBase", "run_id"):
        _run_picker(label, str(value or ""), common)
    elif param.kind == "text":
        st.text_input(label, value=str(value or ""), **common)
    elif param.kind == "int":
        number = value if isinstance(value, int) and not isinstance(value, bool) else int(param.default)
        st.number_input(label, value=number, step=1, **common)
    else:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else param.default
        st.number_input(label, value=number, step=0.05, format="%.3f", **common)


def _run_picker(label: str, value: str, common: dict) -> None:
    """A RunBase's run: one of the completed runs (newest first), by their labels."""
    runs = {run.id: run for run in resources.store().list_runs([RunStatus.COMPLETED], limit=200)}
    options = ["", *runs] if value in runs or not value else ["", value, *runs]
    st.selectbox(label, options, index=options.index(value),
                 format_func=lambda run_id: run_label(runs[run_id]) if run_id in runs else (run_id or "(pick a run)"),
                 **{**common, "width": PARAM_WIDTH * 2})


def _card_actions(index: int, layer: LayerSpec, count: int, is_insertion_point: bool) -> None:
    """Move, copy, delete and "add below", each with a word as well as an icon: a screen reader
    announces the word (Streamlit names an icon-only button after the icon's ligature)."""
    actions = (
        ("up", "Up", ":material/arrow_upward:", "Move this layer up", _move, (index, -1), index == 0),
        ("down", "Down", ":material/arrow_downward:", "Move this layer down", _move, (index, 1), index == count - 1),
        ("dup", "Copy", ":material/content_copy:", "Duplicate this layer", _duplicate, (index,), False),
        ("del", "Delete", ":material/delete:", "Delete this layer (Undo brings it back)", _delete, (index,), False),
    )
    with st.container(horizontal=True, gap="small", key=state.key("build", "actions", layer.name)):
        for name, label, icon, tip, callback, args, disabled in actions:
            st.button(label, icon=icon, key=state.key("build", name, layer.name), help=tip, on_click=callback,
                      args=args, disabled=disabled, type="tertiary")
        if is_insertion_point:
            st.button("New layers go below", icon=":material/check_circle:", key=state.key("build", "sel", layer.name),
                      help="The palette adds here. Click to add at the end instead.", type="secondary",
                      on_click=state.select_layer, args=(None,))
        else:
            st.button("Add below", icon=":material/subdirectory_arrow_right:",
                      key=state.key("build", "sel", layer.name),
                      help="Make the palette add new layers right after this one", type="tertiary",
                      on_click=state.select_layer, args=(index,))


def layer_card(index: int, layer: LayerSpec, row: LayerRow | None, problems: list[Problem], count: int) -> None:
    """A card: title, output shape and parameters, its actions, its params, and its problems."""
    is_insertion_point = state.selected_layer() == index
    layer_type = LAYER_TYPES.get(layer.type)
    with st.container(border=True, key=state.key("build", "card", layer.name)):
        if row and row.output_shape:
            shape = f"→ `{shape_text(row.output_shape)}` · {row.params:,} params"
        else:
            shape = "→ ?"
        st.markdown(f"**{index + 1} · {plain(layer.type)}** · {plain(layer.name)}  \n{shape}")
        _card_actions(index, layer, count, is_insertion_point)
        if layer_type is not None and layer_type.params:
            with st.container(horizontal=True, gap="small"):
                for param in layer_type.params:
                    _param_widget(index, layer, param)
        if layer_type is not None:
            st.caption(layer_type.help)
        if layer.type == "PretrainedBase" and layer.params.get("weights") == "imagenet":
            st.caption(plain(weights_note(str(layer.params.get("base")), get_info(state.dataset()).input_shape)))
        if not problems and (warning := random_features(index, layer)) is not None:  # trains, on random features
            st.warning(plain(warning.message, keep_code=True))
            fix_button(warning, state.build_key("fix", index, "random"))
        for number, problem in enumerate(problems):
            problem_row(problem, state.build_key("fix", index, number))


def problem_row(problem: Problem, button_key: str) -> None:
    """A problem in words, and under it its one-click fix when the validator knows one."""
    st.error(plain(user_words(problem.message), keep_code=True))
    fix_button(problem, button_key)


def fix_button(problem: Problem, button_key: str) -> None:
    """The problem's one-click fix, if it has one; as wide as its label, which wraps rather than
    being cut when the column is narrow."""
    if problem.fix is not None:
        st.button(plain(problem.fix.label, keep_code=True), key=button_key, on_click=_apply_fix, args=(problem.fix,),
                  type="primary", icon=":material/build:", wrap=True)
