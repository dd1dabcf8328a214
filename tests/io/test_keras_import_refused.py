"""Hostile `.keras` files, each refused with its reason through the whole import (the sandboxed
child included): nothing stored, no run folder, no temp left, and no marker file written anywhere."""
from __future__ import annotations

import copy
import io
import zipfile

import h5py
import keras
import pytest

from pipelines.errors import ModelImportError
from pipelines.io.keras_import import import_model
from tests.io.keras_files import assemble, function_object, parts, plain_keras_model, save, with_layer


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    return parts(save(plain_keras_model(16), folder / "good.keras"))


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "marker"


def assert_refused(store, path, match, marker=None):
    with pytest.raises(ModelImportError, match=match):
        import_model(store, path, "mnist")
    assert store.list_runs() == []
    assert not list((store.home / "runs").glob("*"))
    assert not list((store.home / "imports").glob("*"))
    if marker is not None:
        assert not marker.exists()
        assert not list(marker.parent.parent.rglob(marker.name))


def test_a_lambda_that_would_write_a_marker_is_refused(tmp_path, store, marker):
    target = str(marker)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Lambda(lambda x, p=target: (open(p, "w").close(), x)[1]),
                              keras.layers.Dense(10, activation="softmax")])
    path = save(model, tmp_path / "lambda.keras")
    marker.unlink(missing_ok=True)  # building the model ran the lambda once, here; the import must not
    assert_refused(store, path, "Lambda", marker)


@pytest.mark.parametrize("module, name, reason", [
    ("os", "system", "outside keras"),
    ("builtins", "eval", "outside keras"),
    ("keras.utils", "get_file", "get_file"),
    ("keras.config", "enable_unsafe_deserialization", "enable_unsafe_deserialization"),
])
def test_a_config_naming_a_python_function_is_refused(tmp_path, store, good, marker, module, name, reason):
    config, weights, _ = good
    as_activation = copy.deepcopy(config)
    as_activation["config"]["layers"][5]["config"]["activation"] = function_object(module, name)
    as_layer = with_layer(config, function_object(module, name))
    for index, hostile in enumerate((as_activation, as_layer)):
        assert_refused(store, assemble(tmp_path / f"f{index}.keras", hostile, weights), reason, marker)


def test_a_tfsm_layer_is_refused(tmp_path, store, good, marker):
    config, weights, _ = good
    layer = {"module": "keras.layers", "class_name": "TFSMLayer", "registered_name": None,
             "config": {"name": "outside", "filepath": str(tmp_path / "saved_model"), "call_endpoint": "serve"}}
    assert_refused(store, assemble(tmp_path / "tfsm.keras", with_layer(config, layer), weights), "CVE-2026-1462",
                   marker)


def test_a_string_lookup_with_a_vocabulary_path_is_refused(tmp_path, store, good, marker):
    config, weights, _ = good
    secret = tmp_path / "secret.txt"
    secret.write_text("a\nb\n")
    layer = {"module": "keras.layers", "class_name": "StringLookup", "registered_name": None,
             "config": {"name": "lookup", "vocabulary": str(secret), "output_mode": "int"}}
    assert_refused(store, assemble(tmp_path / "lookup.keras", with_layer(config, layer), weights),
                   "CVE-2025-12058", marker)


def test_a_layer_named_to_climb_out_of_its_folder_is_refused(tmp_path, store, good):
    config, weights, _ = good
    hostile = copy.deepcopy(config)
    hostile["config"]["layers"][1]["config"]["name"] = "../../x"
    assert_refused(store, assemble(tmp_path / "climb.keras", hostile, weights), "plain identifier")
    assert not list(tmp_path.parent.rglob("x")) and not (store.home.parent / "x").exists()


def test_duplicate_names_and_custom_objects_are_refused(tmp_path, store, good):
    config, weights, _ = good
    duplicate = copy.deepcopy(config)
    duplicate["config"]["layers"][2]["config"]["name"] = duplicate["config"]["layers"][1]["config"]["name"]
    assert_refused(store, assemble(tmp_path / "dup.keras", duplicate, weights), "unique")
    custom = copy.deepcopy(config)
    custom["config"]["layers"][1]["registered_name"] = "MyPackage>Conv2D"
    assert_refused(store, assemble(tmp_path / "custom.keras", custom, weights), "custom object")


def test_an_h5_model_renamed_keras_is_refused(tmp_path, store):
    path = tmp_path / "model.h5"
    plain_keras_model().save(path)
    renamed = path.rename(tmp_path / "model.keras")
    assert_refused(store, renamed, "HDF5")


def test_a_savedmodel_folder_and_a_file_that_is_not_a_zip_are_refused(tmp_path, store):
    folder = tmp_path / "saved_model"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    assert_refused(store, folder, "folder")
    picture = tmp_path / "cat.keras"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert_refused(store, picture, "not a .keras file")


def test_invalid_json_is_refused(tmp_path, store, good):
    _, weights, _ = good
    assert_refused(store, assemble(tmp_path / "json.keras", b'{"module": "keras", "class_name": ', weights),
                   "not valid JSON")


def test_weights_that_do_not_match_are_refused(tmp_path, store, good):
    config, _, _ = good
    _, other_weights, _ = parts(save(plain_keras_model(32), tmp_path / "other.keras"))
    assert_refused(store, assemble(tmp_path / "mismatch.keras", config, other_weights), "needs")


def _weights_declaring(weights: bytes, path: str, shape: tuple) -> bytes:
    buffer = io.BytesIO(weights)
    with h5py.File(buffer, "r+") as handle:
        if path in handle:
            del handle[path]
        handle.create_dataset(path, shape=shape, dtype="float32", chunks=(1024,))
    return buffer.getvalue()


@pytest.mark.parametrize("where", ["layers/dense/vars/0", "optimizer/vars/9"])
def test_weights_declaring_a_trillion_elements_are_refused_before_allocation(tmp_path, store, good, where):
    config, weights, _ = good
    huge = _weights_declaring(weights, where, (10**12,))
    assert len(huge) < 1_000_000  # declared, never stored
    assert_refused(store, assemble(tmp_path / "huge.keras", config, huge), "bytes of arrays|needs")


def test_a_zip_bomb_disguised_as_keras_is_refused(tmp_path, store, good):
    _, weights, _ = good
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("config.json", "w") as member:
            for _ in range(64):
                member.write(b" " * 2**20)
        archive.writestr("model.weights.h5", weights)
    assert path.stat().st_size < 1_000_000
    assert_refused(store, path, "inflates")


def test_a_layer_setting_layerlab_cannot_rebuild_is_refused(tmp_path, store, good):
    config, weights, _ = good
    hostile = copy.deepcopy(config)
    hostile["config"]["layers"][1]["config"]["dilation_rate"] = [2, 2]
    assert_refused(store, assemble(tmp_path / "dilated.keras", hostile, weights), "dilation_rate")


def test_a_check_that_runs_out_of_memory_or_time_is_refused_and_the_next_import_works(tmp_path, store, good,
                                                                                      monkeypatch):
    config, weights, _ = good
    path = assemble(tmp_path / "good.keras", config, weights)
    monkeypatch.setenv("LAYERLAB_IMPORT_MEMORY_MB", "200")
    assert_refused(store, path, "memory")
    monkeypatch.setenv("LAYERLAB_IMPORT_MEMORY_MB", "4096")
    monkeypatch.setenv("LAYERLAB_IMPORT_SECONDS", "1")
    assert_refused(store, path, "took over 1 s")
    monkeypatch.delenv("LAYERLAB_IMPORT_SECONDS")
    assert import_model(store, path, "mnist").status.value == "COMPLETED"


def test_weights_with_an_unknown_compression_filter_are_refused(tmp_path, store, good):
    config, weights, _ = good
    buffer = io.BytesIO(weights)
    with h5py.File(buffer, "r+") as handle:
        data = handle["layers/dense/vars/1"][()]
        del handle["layers/dense/vars/1"]  # re-created below: same shape and dtype, with a filter HDF5 lacks
        space = h5py.h5s.create_simple(data.shape)
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_chunk(data.shape)
        plist.set_filter(307, h5py.h5z.FLAG_OPTIONAL)  # a registered id (bzip2) no plugin here provides
        h5py.h5d.create(handle.id, b"layers/dense/vars/1", h5py.h5t.IEEE_F32LE, space, dcpl=plist).close()
    assert_refused(store, assemble(tmp_path / "filter.keras", config, buffer.getvalue()), "filter 307")


def _build_config_naming_functions(config):
    """Crafted file A of the audit: function objects under build_config, where Keras builds from."""
    config["build_config"] = function_object("keras.src.utils.file_utils", "copy")
    config["config"]["layers"][5]["build_config"] = {
        "input_shape": function_object("keras.src.saving.saving_lib", "load_model")}


def _module_inside_a_constraint(config):
    """Crafted file C: `module`/`class_name` as plain entries of an allowed object's config."""
    config["config"]["layers"][5]["config"]["kernel_constraint"] = {
        "module": "keras.constraints", "class_name": "MaxNorm", "registered_name": None,
        "config": {"max_value": 2, "axis": 0, "module": "keras.src.utils.file_utils", "class_name": "function"}}


def _bfloat16_as_text(config):
    """Crafted file B: a layer computing in bfloat16, its dtype written as text."""
    config["config"]["layers"][5]["config"]["dtype"] = "mixed_bfloat16"


@pytest.mark.parametrize("edit, reason", [
    (_build_config_naming_functions, r"`build_config` may hold only `input_shape`. Received: .*file_utils"),
    (_module_inside_a_constraint, r"`kernel_constraint` has `module`='keras.src.utils.file_utils'"),
    (_bfloat16_as_text, r"computes in 'mixed_bfloat16'"),
])
def test_objects_hidden_where_the_word_list_did_not_look_are_refused(tmp_path, store, good, edit, reason):
    config, weights, _ = good
    hostile = copy.deepcopy(config)
    edit(hostile)
    assert_refused(store, assemble(tmp_path / "hidden.keras", hostile, weights), reason)
