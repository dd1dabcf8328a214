"""The config checker on its own, fast (no sandbox): every place of a config is held to what may be
there, harmless names pass, and what the import maps (metrics, learning-rate schedules) is mapped.
The whole import of hostile files, sandbox included, is in test_keras_import_refused.py."""
from __future__ import annotations

import copy
import json

import keras
import pytest

from pipelines.errors import ModelImportError
from pipelines.io.import_spec import import_notes, plain_name, spec_from_config
from pipelines.io.keras_config_check import CONFIG_MAX_BYTES, check_config, parse_config
from tests.io.keras_files import function_object, parts, plain_keras_model, save, with_layer

DENSE = 5  # the plain model's first Dense layer


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return parts(save(plain_keras_model(16), tmp_path_factory.mktemp("check") / "good.keras"))[0]


def _compiled_config(tmp_path, **compile_args) -> dict:
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", **compile_args)
    return parts(save(model, tmp_path / "compiled.keras"))[0]


def _refused(data, match):
    with pytest.raises(ModelImportError, match=match):
        spec_from_config(check_config(data))


def _changed(config, edit):
    changed = copy.deepcopy(config)
    edit(changed)
    return changed


def _dense(config) -> dict:
    return config["config"]["layers"][DENSE]


def test_the_plain_model_passes(config):
    assert [layer.type for layer in spec_from_config(check_config(config)).layers][-2:] == ["Dense", "Dense"]


@pytest.mark.parametrize("build_config, match", [
    ({"input_shape": function_object("keras.src.saving.saving_lib", "load_model")},
     r"`build_config.input_shape` holds an object naming .*saving_lib"),
    ({"input_shape": [None, {"module": "keras.src.utils.file_utils", "class_name": "copy"}]},
     r"`build_config.input_shape` holds an object naming .*file_utils"),
    ({"input_shape": [None, "../x"]}, r"`build_config.input_shape` holds \[None, '../x'\]"),
    ({"input_shape": [None, 784], "x": [1]}, r"may hold only `input_shape`"),
    (function_object("keras.src.utils.file_utils", "copy"), r"may hold only `input_shape`"),
])
def test_a_layer_build_config_holds_only_a_shape(config, build_config, match):
    # Keras numbers its default layer names per process: 'dense', 'dense_2', ... by what ran before.
    _refused(_changed(config, lambda c: _dense(c).update(build_config=build_config)), f"layer 'dense(_\\d+)?'.*{match}")


def test_the_model_build_config_holds_only_a_shape(config):
    hostile = _changed(config, lambda c: c.update(build_config=function_object("keras.src.utils.file_utils", "copy")))
    _refused(hostile, r"the model: `build_config` may hold only `input_shape`. Received: .*file_utils")
    shapes = _changed(config, lambda c: c.update(build_config={"input_shape": [None, 28, "channels", None]}))
    check_config(shapes)  # sizes, None and plain words are what a shape may hold


def test_objects_may_sit_only_where_keras_takes_one(config):
    constraint = {"module": "keras.constraints", "class_name": "MaxNorm", "registered_name": None,
                  "config": {"max_value": 2, "axis": 0, "module": "keras.src.utils.file_utils", "class_name": "function"}}
    _refused(_changed(config, lambda c: _dense(c)["config"].update(kernel_constraint=constraint)),
             r"`kernel_constraint` has `module`='keras.src.utils.file_utils' in its config")
    _refused(_changed(config, lambda c: _dense(c)["config"].update(module="keras.src.saving.saving_lib")),
             r"layer 'dense(_\d+)?' has `module`='keras.src.saving.saving_lib'")
    nested = copy.deepcopy(constraint)
    nested["config"] = {"max_value": {"module": "keras.initializers", "class_name": "Ones", "config": {}}}
    _refused(_changed(config, lambda c: _dense(c)["config"].update(kernel_constraint=nested)),
             r"`kernel_constraint.max_value` holds")
    _refused(_changed(config, lambda c: _dense(c).update(compile_config={"optimizer": "adam"})),
             r"layer 6 has the unknown key 'compile_config'")
    _refused(_changed(config, lambda c: _dense(c).update(shared_object_id="keras.src")),
             r"`shared_object_id` must be a number")


@pytest.mark.parametrize("dtype", ["mixed_bfloat16", {"module": "keras", "class_name": "DTypePolicy",
                                                      "config": {"name": "mixed_bfloat16"}, "registered_name": None}])
def test_a_layer_dtype_is_float32_as_text_or_as_a_policy(config, dtype):
    _refused(_changed(config, lambda c: _dense(c)["config"].update(dtype=dtype)),
             r"layer 'dense(_\d+)?'.* computes in 'mixed_bfloat16'; Layerlab rebuilds float32 models")
    check_config(_changed(config, lambda c: _dense(c)["config"].update(dtype="float32")))


def test_an_activity_regularizer_is_refused_not_dropped(config):
    l1 = {"module": "keras.regularizers", "class_name": "L1", "config": {"l1": 0.5}, "registered_name": None}
    _refused(_changed(config, lambda c: _dense(c)["config"].update(activity_regularizer=l1)),
             r"layer 'dense(_\d+)?' has the activity_regularizer 'L1'")
    check_config(_changed(config, lambda c: _dense(c)["config"].update(activity_regularizer=None)))


@pytest.mark.parametrize("rate", ["fast", -0.1, 0, True, None])
def test_a_bad_learning_rate_has_its_own_reason(config, rate):
    hostile = _changed(config, lambda c: c["compile_config"]["optimizer"]["config"].update(learning_rate=rate))
    _refused(hostile, rf"the optimizer's `learning_rate` must be a positive number. Received: learning_rate={rate!r}")


def test_keras_accuracy_metric_objects_map_to_accuracy(tmp_path):
    metrics = [keras.metrics.SparseCategoricalAccuracy(), keras.metrics.Accuracy(), "acc"]
    spec = spec_from_config(check_config(_compiled_config(tmp_path, optimizer="adam", metrics=metrics)))
    assert spec.compile.metrics == ("accuracy",)
    _refused(_compiled_config(tmp_path, optimizer="adam", metrics=[keras.metrics.AUC()]),
             r"`metrics` is a 'AUC'; allowed: Accuracy, BinaryAccuracy")


def test_a_learning_rate_schedule_becomes_its_initial_rate_and_says_so(tmp_path):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.004, decay_steps=100, decay_rate=0.9)
    checked = check_config(_compiled_config(tmp_path, optimizer=keras.optimizers.Adam(schedule)))
    assert spec_from_config(checked).compile.learning_rate == pytest.approx(0.004)
    (note,) = import_notes(checked)
    assert "ExponentialDecay" in note and "initial rate, 0.004" in note
    piecewise = keras.optimizers.schedules.PiecewiseConstantDecay([100], [0.01, 0.001])
    _refused(_compiled_config(tmp_path, optimizer=keras.optimizers.SGD(piecewise)),
             r"`learning_rate` is a 'PiecewiseConstantDecay'; allowed: CosineDecay")


def test_harmless_names_with_words_of_attacks_pass(config):
    def rename(c):
        c["config"]["name"] = "v1.2 os lambda lookup sys.path"
        _dense(c)["config"]["name"] = "lookup_lambda_os"
        c["config"]["layers"][DENSE + 1]["config"]["name"] = "sys_eval_get_file"
    spec = spec_from_config(check_config(_changed(config, rename)))
    assert spec.name == "v1.2 os lambda lookup sys.path"
    assert [layer.name for layer in spec.layers][-2:] == ["lookup_lambda_os", "sys_eval_get_file"]


def test_the_model_name_becomes_plain_text():
    assert plain_name("../../evil <img src=x onerror=alert(1)> **bold**") == "evil img src x onerror alert(1) bold"
    assert plain_name("a/b\\c\n" + "x" * 300) == "a b c " + "x" * 58
    assert plain_name("../..") == plain_name("") == "imported"


@pytest.mark.parametrize("make, match", [
    (lambda c: c["config"]["layers"].insert(1, {"module": "keras.layers", "class_name": "IndexLookup",
                                                "config": {"name": "il", "vocabulary": "/etc/passwd"}}),
     "IndexLookup.*CVE-2025-12058"),
    (lambda c: _dense(c)["config"].update(vocabulary="https://example.test/v.txt"),
     "`vocabulary` \\('https://example.test/v.txt'\\).*CVE-2025-12058"),
    (lambda c: c["config"]["layers"].insert(1, {"module": "keras.layers", "class_name": "IndexLookup",
                                                "config": {"name": "il", "max_tokens": 3}}),
     "keras.layers.IndexLookup.*CVE-2025-12058"),
    (lambda c: _dense(c).update(module="mypkg.layers"), "layer 6 names module 'mypkg.layers', outside keras"),
    (lambda c: _dense(c).update(module="keras.src.layers.core.dense.evil.deeper"), "outside keras"),
])
def test_lookups_and_foreign_modules_are_refused(config, make, match):
    _refused(_changed(config, make), match)


def test_a_config_over_the_size_cap_or_nested_too_deep_is_refused(config):
    big = _changed(config, lambda c: c["config"].update(name="x" * CONFIG_MAX_BYTES))
    with pytest.raises(ModelImportError, match=r"config.json is 1,0[0-9,]{6} bytes; at most 1,048,576 are"):
        parse_config(json.dumps(big).encode())
    deep: object = [1]
    for _ in range(12):
        deep = [deep]
    nested = _changed(config, lambda c: c.update(build_config={"input_shape": deep}))
    with pytest.raises(ModelImportError, match=r"nests objects and lists 1[0-9] deep; .* at most 10"):
        parse_config(json.dumps(nested).encode())


def test_a_named_attack_is_still_found_where_keras_imports(config):
    _refused(with_layer(config, function_object("os", "system")), r"'os.system', a Python module .*CVE-2025-1550")
    activation = _changed(config, lambda c: _dense(c)["config"].update(activation=function_object("builtins", "eval")))
    _refused(activation, r"'builtins.eval'")
    _refused(_changed(config, lambda c: _dense(c).update(class_name="Lambda")), r"'keras.layers.Lambda': a Lambda")
