"""`edit`: the Build page's spec edits as pure functions, the validator's one-click fixes, and spec import."""
import re

import pytest

from pipelines.errors import SpecError
from pipelines.modelspec import edit
from pipelines.modelspec.layers import LAYER_TYPES
from pipelines.modelspec.presets import PRESETS
from pipelines.modelspec.spec import LayerSpec, ModelSpec
from pipelines.modelspec.validation import Fix, validate

SOFTMAX_10 = {"type": "Dense", "params": {"units": 10, "activation": "softmax"}}
MLP = PRESETS["mlp-128x2"].spec  # flatten_1, dense_1, dense_2, dense_3


def spec_of(*layers, **compile_settings) -> ModelSpec:
    data = {"layers": list(layers)}
    if compile_settings:
        data["compile"] = compile_settings
    return ModelSpec.from_dict(data)


def names(spec: ModelSpec) -> list[str]:
    return [layer.name for layer in spec.layers]


def raises(message: str):
    return pytest.raises(SpecError, match=re.escape(message))


# --- insert -----------------------------------------------------------------------------------

def test_insert_at_the_end_with_defaults_and_a_fresh_name():
    spec, position = edit.insert_layer(MLP, "Dense")
    assert position == 4
    assert names(spec) == ["flatten_1", "dense_1", "dense_2", "dense_3", "dense_4"]
    assert spec.layers[4].params == LAYER_TYPES["Dense"].defaults()
    assert spec.compile == MLP.compile and spec.fit == MLP.fit


def test_insert_at_a_position():
    spec, position = edit.insert_layer(MLP, "Dropout", 1)
    assert position == 1
    assert names(spec) == ["flatten_1", "dropout_1", "dense_1", "dense_2", "dense_3"]
    assert names(edit.insert_layer(MLP, "Flatten", 0)[0])[:2] == ["flatten_2", "flatten_1"]
    assert names(edit.insert_layer(ModelSpec(), "Flatten", 0)[0]) == ["flatten_1"]


@pytest.mark.parametrize("position", [-1, 5, "1", True])
def test_insert_refuses_a_position_outside_the_stack(position):
    with raises(f"`position` must be from 0 to 4. Received: position={position!r}"):
        edit.insert_layer(MLP, "Dense", position)


def test_insert_refuses_an_unknown_type():
    with raises("Unknown layer type 'Dens'. Expected one of: Activation, AveragePooling2D"):
        edit.insert_layer(MLP, "Dens")


# --- move, duplicate, delete ------------------------------------------------------------------

def test_move_down_and_up():
    down = edit.move_layer(MLP, 1, 1)
    assert names(down) == ["flatten_1", "dense_2", "dense_1", "dense_3"]
    assert edit.move_layer(down, 2, -1) == MLP
    assert names(edit.move_layer(MLP, 3, -3)) == ["dense_3", "flatten_1", "dense_1", "dense_2"]


@pytest.mark.parametrize("index, offset, allowed", [(0, -1, "from 0 to 3"), (3, 1, "from -3 to 0"),
                                                    (1, 5, "from -1 to 2")])
def test_move_refuses_to_leave_the_stack(index, offset, allowed):
    with raises(f"`offset` must keep layer {index} in the stack, so be {allowed}. Received: offset={offset}"):
        edit.move_layer(MLP, index, offset)


def test_move_refuses_a_bad_index():
    with raises("`index` must be from 0 to 3. Received: index=4"):
        edit.move_layer(MLP, 4, -1)


def test_duplicate_puts_a_renamed_copy_right_after():
    spec = edit.duplicate_layer(MLP, 2)
    assert names(spec) == ["flatten_1", "dense_1", "dense_2", "dense_4", "dense_3"]
    assert spec.layers[3].params == MLP.layers[2].params and spec.layers[3].type == "Dense"
    assert spec.layers[3].params is not MLP.layers[2].params


def test_delete():
    assert names(edit.delete_layer(MLP, 1)) == ["flatten_1", "dense_2", "dense_3"]
    assert names(edit.delete_layer(edit.delete_layer(MLP, 3), 0)) == ["dense_1", "dense_2"]


@pytest.mark.parametrize("function", [edit.duplicate_layer, edit.delete_layer])
@pytest.mark.parametrize("index", [-1, 4, None, 1.0])
def test_duplicate_and_delete_refuse_a_bad_index(function, index):
    with raises(f"`index` must be from 0 to 3. Received: index={index!r}"):
        function(MLP, index)


def test_an_empty_model_has_no_index_to_name():
    with raises("`index` must name a layer, but the model has no layers. Received: index=0"):
        edit.delete_layer(ModelSpec(), 0)


# --- params, clear ----------------------------------------------------------------------------

def test_set_param_changes_one_layer_only():
    spec = edit.set_param(MLP, 3, "units", 7)
    assert spec.layers[3].params["units"] == 7 and spec.layers[3].params["activation"] == "softmax"
    assert spec.layers[:3] == MLP.layers[:3]
    assert MLP.layers[3].params["units"] == 10


def test_set_param_keeps_a_bad_value_for_validate_to_report():
    spec = edit.set_param(MLP, 1, "units", 0)
    assert "`units` must be an integer from 1 to 65536. Received: units=0" in validate(spec, "mnist").message()


def test_set_param_refuses_a_bad_index():
    with raises("`index` must be from 0 to 3. Received: index=9"):
        edit.set_param(MLP, 9, "units", 7)


def test_clear_keeps_the_training_settings():
    spec = edit.clear_layers(MLP.with_fit(epochs=3))
    assert spec.layers == () and spec.fit.epochs == 3 and spec.compile == MLP.compile


def test_edits_never_change_the_spec_they_are_given():
    before = MLP.to_json()
    edit.insert_layer(MLP, "Dense", 0)
    edit.move_layer(MLP, 0, 1)
    edit.duplicate_layer(MLP, 0)
    edit.delete_layer(MLP, 0)
    edit.set_param(MLP, 1, "units", 3)
    edit.clear_layers(MLP)
    assert MLP.to_json() == before


# --- apply_fix: each suggested fix, applied, gives what it says -------------------------------

def test_insert_flatten_fix_for_dense_after_conv():
    spec = spec_of({"type": "Conv2D"}, SOFTMAX_10)
    fixed = edit.apply_fix(spec, validate(spec, "mnist").problems[0].fix)
    assert [layer.type for layer in fixed.layers] == ["Conv2D", "Flatten", "Dense"]
    assert validate(fixed, "mnist").ok


def test_conv_after_flatten_fix_moves_it_before_the_flatten():
    spec = spec_of({"type": "Flatten"}, {"type": "Conv2D"}, SOFTMAX_10)
    fixed = edit.apply_fix(spec, validate(spec, "mnist").problems[0].fix)
    assert [layer.type for layer in fixed.layers] == ["Conv2D", "Flatten", "Dense"]
    assert validate(fixed, "mnist").ok


def test_unknown_type_fix_retypes_to_the_closest():
    spec = spec_of({"type": "Flatten"}, {"type": "Dens", "params": {"units": 10}})
    fixed = edit.apply_fix(spec, validate(spec, "mnist").problems[0].fix)
    assert fixed.layers[1].type == "Dense" and fixed.layers[1].name == spec.layers[1].name
    assert fixed.layers[1].params == LAYER_TYPES["Dense"].defaults()


def test_kernel_larger_than_its_input_fix():
    spec = spec_of({"type": "Conv2D", "params": {"kernel_size": 5}}, {"type": "MaxPooling2D", "params": {"pool_size": 8}},
                   {"type": "Conv2D", "params": {"kernel_size": 5}}, {"type": "Flatten"}, SOFTMAX_10)
    assert validate(edit.apply_fix(spec, validate(spec, "mnist").problems[0].fix), "mnist").ok


def test_duplicate_name_fix_renames():
    spec = ModelSpec.from_dict({"layers": [{"type": "Flatten", "name": "a"}, {"type": "Dense", "name": "a",
                                                                               "params": SOFTMAX_10["params"]}]})
    fixed = edit.apply_fix(spec, validate(spec, "mnist").problems[0].fix)
    assert names(fixed) == ["a", "dense_1"]
    assert validate(fixed, "mnist").ok


def test_unknown_param_fix_removes_it():
    spec = ModelSpec(layers=(LayerSpec("Flatten", "f"), LayerSpec("Dense", "d", {"units": 10, "colour": 1})))
    fix = next(p.fix for p in validate(spec, "mnist").problems if p.param == "colour")
    assert "colour" not in edit.apply_fix(spec, fix).layers[1].params


def test_compile_fix():
    spec = spec_of({"type": "Flatten"}, {"type": "Dense", "params": {"units": 1, "activation": "sigmoid"}},
                   loss="binary_crossentropy")
    fix = next(p.fix for p in validate(spec, "mnist").problems if p.param == "loss")
    assert edit.apply_fix(spec, fix).compile.loss == "sparse_categorical_crossentropy"


def test_remove_fix_and_unknown_action():
    assert names(edit.apply_fix(MLP, Fix("remove", "Remove", 0))) == ["dense_1", "dense_2", "dense_3"]
    with raises("Unknown fix action 'explode'. Expected one of: insert, set, retype, move, remove, compile"):
        edit.apply_fix(MLP, Fix("explode", "?", 0))


def test_a_fix_with_a_bad_index_says_so():
    with raises("`value` must be from 0 to 3. Received: value=7"):
        edit.apply_fix(MLP, Fix("move", "Move", 1, value=7))
    with raises("`index` must be from 0 to 3. Received: index=4"):
        edit.apply_fix(MLP, Fix("set", "Set", 4, param="units", value=3))


# --- import_spec ------------------------------------------------------------------------------

def test_import_reads_back_a_saved_spec():
    assert edit.import_spec(MLP.to_json().encode()) == MLP
    assert edit.import_spec(MLP.to_json()) == MLP


@pytest.mark.parametrize("data, message", [
    (b"{not json", "The spec is not valid JSON"),
    (b"\xff\xfe", "The spec is not UTF-8 text"),
    (b"[1, 2]", "A model spec must be a JSON object with `layers`. Received: list"),
    (b'{"layers": [{"type": "Dens"}]}', "unknown layer type 'Dens'. Expected one of: Activation, AveragePooling2D"),
    (b'{"layers": [{"type": "Flatten", "name": "a"}, {"type": "Dense", "name": "a"}]}',
     "the layer name 'a' is used more than once; layer names must be unique."),
])
def test_import_refuses_a_bad_file_and_says_why(data, message):
    with raises(message):
        edit.import_spec(data)
