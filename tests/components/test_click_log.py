"""Build's click log: what the browser sends is checked as user input, and each click's effect
matches what the button's own callback does."""
import pytest

from components import click_log
from components.layer_editor import _clicked, _click_keys
from pipelines.modelspec.presets import get_preset


def names(spec):
    return [layer.name for layer in spec.layers]


@pytest.mark.parametrize("value", [
    None, "x", {}, {"epoch": 3, "log": []}, {"epoch": "e" * 65, "log": []}, {"epoch": "e", "log": "x"},
    {"epoch": "e", "log": [[1]]}, {"epoch": "e", "log": [["1", "build_add_Dense"]]},
    {"epoch": "e", "log": [[True, "build_add_Dense"]]}, {"epoch": "e", "log": [[1, "k" * 301]]},
    {"epoch": "e", "log": [[n, "build_add_Dense"] for n in range(click_log.MAX_PENDING + 1)]},
])
def test_a_malformed_or_oversized_log_is_refused_whole(value):
    assert click_log._entries(value) is None


def test_a_well_formed_log_is_read_in_full():
    assert click_log._entries({"epoch": "e1", "log": [[2, "build_add_Dense"], [3, "build_del_dense_1"]]}) == \
        ("e1", [(2, "build_add_Dense"), (3, "build_del_dense_1")])


def test_clicks_apply_in_order_and_follow_the_insertion_point():
    spec = get_preset("mlp-128x2").spec
    first = names(spec)[0]
    spec, selected = _clicked(spec, None, "build_sel_" + first)  # new layers go after the first
    assert selected == first
    spec, selected = _clicked(spec, selected, "build_add_Dropout")
    spec, selected = _clicked(spec, selected, "build_add_Dense")
    assert [layer.type for layer in spec.layers][:3] == ["Flatten", "Dropout", "Dense"]
    assert selected == names(spec)[2]  # a run of clicks builds top-down
    spec, selected = _clicked(spec, selected, "build_sel_" + selected)  # a second click: at the end again
    assert selected is None


def test_card_clicks_move_copy_and_delete_the_named_layer():
    spec = get_preset("mlp-128x2").spec
    before = names(spec)
    moved, _ = _clicked(spec, None, f"build_down_{before[0]}")
    assert names(moved)[:2] == [before[1], before[0]]
    unmoved, _ = _clicked(spec, None, f"build_up_{before[0]}")  # past the top: nothing happens
    assert names(unmoved) == before
    copied, _ = _clicked(spec, None, f"build_dup_{before[1]}")
    assert len(copied.layers) == len(before) + 1
    deleted, selected = _clicked(spec, before[1], f"build_del_{before[1]}")
    assert names(deleted) == [before[0], *before[2:]] and selected == before[0]
    same, _ = _clicked(spec, None, "build_del_no_such_layer")
    assert same == spec


def test_the_log_intercepts_exactly_the_palette_and_card_buttons():
    spec = get_preset("mlp-128x2").spec
    keys = set(_click_keys(spec))
    assert "build_add_Dense" in keys and f"build_del_{names(spec)[0]}" in keys
    assert "build_add_at_end" not in keys and "build_train" not in keys
