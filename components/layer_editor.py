"""The layer stack editor: a palette of layer types and one card per layer.

Everything here reads the layer registry, so a new registry entry shows up in the palette and
gets its parameter widgets without a change here. Edits go through `state.set_spec`, which keeps
the undo history.
"""
from __future__ import annotations

import streamlit as st

from components import state
from components.text import plain
from pipelines.errors import SpecError
from pipelines.modelspec import edit
from pipelines.modelspec.layers import LAYER_TYPES, ParamSpec
from pipelines.modelspec.spec import LayerSpec
from pipelines.modelspec.validation import Fix, LayerRow, Problem, shape_text

CATEGORY_TITLES = {"core": "Core", "convolutional": "Convolution", "regularization": "Regularisation",
                   "activation": "Activation"}


# --- callbacks: they run before the next script run, so the page draws the new spec at once -----
# The edits themselves are `pipelines.modelspec.edit`'s; these only store the result and the selection.

def _add_layer(layer_type: str) -> None:
    at = state.selected_layer()
    spec, position = edit.insert_layer(state.spec(), layer_type, None if at is None else at + 1)
    state.set_spec(spec, refresh_widgets=True)
    state.select_layer(position)


def _move(index: int, offset: int) -> None:
    try:
        spec = edit.move_layer(state.spec(), index, offset)
    except SpecError:
        return  # past either end: the button is disabled there, so only a stale click gets here
    state.set_spec(spec, refresh_widgets=True)
    state.select_layer(index + offset)


def _duplicate(index: int) -> None:
    state.set_spec(edit.duplicate_layer(state.spec(), index), refresh_widgets=True)
    state.select_layer(index + 1)


def _delete(index: int) -> None:
    spec = edit.delete_layer(state.spec(), index)
    state.set_spec(spec, refresh_widgets=True)
    state.select_layer(min(index, len(spec.layers) - 1) if spec.layers else None)


def _apply_fix(fix: Fix) -> None:
    state.set_spec(edit.apply_fix(state.spec(), fix), refresh_widgets=True)


def _set_param(index: int, param: ParamSpec, widget_key: str) -> None:
    value = state.widget_value(widget_key)
    if param.kind == "shape":
        value = _parse_shape(value)
        if value is None:
            return  # the card shows the parse error; the spec keeps its last good shape
    state.set_spec(edit.set_param(state.spec(), index, param.name, value))


def _parse_shape(text: str | None) -> list[int] | None:
    try:
        return [int(part) for part in str(text).replace("(", "").replace(")", "").split(",") if part.strip()]
    except ValueError:
        return None


# --- drawing ----------------------------------------------------------------------------------

def palette() -> None:
    """One button per layer type, grouped; a click adds it after the selected card."""
    at = state.selected_layer()
    where = "at the end" if at is None else f"after layer {at + 1}"
    st.caption(f"Add a layer ({where}):")
    by_category: dict[str, list[str]] = {}
    for layer_type in LAYER_TYPES.values():
        by_category.setdefault(layer_type.category, []).append(layer_type.name)
    for category, names in by_category.items():
        st.markdown(f"**{CATEGORY_TITLES.get(category, category)}**")
        for start in range(0, len(names), 3):
            columns = st.columns(3)
            for column, name in zip(columns, names[start:start + 3]):
                column.button(name, icon=":material/add:", key=state.key("build", "add", name),
                              help=LAYER_TYPES[name].help, on_click=_add_layer, args=(name,), width="stretch")


def _param_widget(index: int, layer: LayerSpec, param: ParamSpec, container) -> None:
    widget_key = state.build_key("param", layer.name, param.name)
    value = layer.params.get(param.name, param.default)
    common = dict(key=widget_key, help=param.help, on_change=_set_param, args=(index, param, widget_key))
    label = param.name.replace("_", " ")
    if param.kind == "choice":
        options = list(param.choices)
        container.selectbox(label, options, index=options.index(value) if value in options else None, **common)
    elif param.kind == "shape":
        text = ", ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        container.text_input(label, value=text, **common)
        if _parse_shape(state.widget_value(widget_key) or text) is None:
            container.error("Write whole numbers separated by commas, e.g. 28, 28, 1")
    elif param.kind == "int":
        number = value if isinstance(value, int) and not isinstance(value, bool) else int(param.default)
        container.number_input(label, value=number, step=1, **common)
    else:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else param.default
        container.number_input(label, value=number, step=0.05, format="%.3f", **common)


def layer_card(index: int, layer: LayerSpec, row: LayerRow | None, problems: list[Problem], count: int) -> None:
    """A card: title and output shape, move/duplicate/delete, its params, and its problems."""
    selected = state.selected_layer() == index
    layer_type = LAYER_TYPES.get(layer.type)
    with st.container(border=True, key=state.key("build", "card", layer.name)):
        head, shape_col, *buttons = st.columns([3, 3, 0.55, 0.55, 0.55, 0.55, 0.55], vertical_alignment="center",
                                               gap="small")
        marker = ":material/arrow_right: " if selected else ""
        head.markdown(f"{marker}**{index + 1} · {plain(layer.type)}**  \n{plain(layer.name)}")
        if row and row.output_shape:
            shape_col.markdown(f"→ `{shape_text(row.output_shape)}`  \n{row.params:,} params")
        else:
            shape_col.markdown("→ ?")
        actions = (
            ("up", ":material/arrow_upward:", "Move up", _move, (index, -1), index == 0),
            ("down", ":material/arrow_downward:", "Move down", _move, (index, 1), index == count - 1),
            ("dup", ":material/content_copy:", "Duplicate", _duplicate, (index,), False),
            ("del", ":material/delete:", "Delete", _delete, (index,), False),
            ("sel", ":material/radio_button_checked:" if selected else ":material/radio_button_unchecked:",
             "Select: new layers are added after the selected one", state.select_layer,
             (None if selected else index,), False),
        )
        for column, (name, icon, tip, callback, args, disabled) in zip(buttons, actions):
            column.button("", icon=icon, key=state.key("build", name, layer.name), help=tip, on_click=callback,
                          args=args, disabled=disabled, type="tertiary")
        if layer_type is not None and layer_type.params:
            columns = st.columns(min(3, len(layer_type.params)))
            for i, param in enumerate(layer_type.params):
                _param_widget(index, layer, param, columns[i % len(columns)])
        if layer_type is not None:
            st.caption(layer_type.help)
        for problem in problems:
            problem_row(problem, state.build_key("fix", index, problems.index(problem)))


def problem_row(problem: Problem, button_key: str) -> None:
    """A problem in words, and its one-click fix when the validator knows one."""
    message = plain(problem.message, keep_code=True)
    if problem.fix is None:
        st.error(message)
        return
    text, action = st.columns([5, 1.4], vertical_alignment="center")
    text.error(message)
    action.button(plain(problem.fix.label, keep_code=True), key=button_key, on_click=_apply_fix, args=(problem.fix,),
                  type="primary")
