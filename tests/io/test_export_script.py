"""The exported script: it runs on its own, outside Layerlab, and builds the app's model."""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.data.catalog import CATALOG, DatasetInfo
from pipelines.errors import SpecError
from pipelines.data import readers
from pipelines.io.export import check_parity, offline, run_script, script_module
from pipelines.io.export_blocks import UNEXPORTABLE
from pipelines.io.export_script import export_script, literal
from pipelines.modelspec.layers import LAYER_TYPES
from pipelines.modelspec.presets import PRESETS
from pipelines.modelspec.spec import LayerSpec, ModelSpec
from pipelines.modelspec.validation import validate
from tests.data.test_datasets import write_cifar_folder, write_cifar_tarball

ALLOWED_IMPORTS = {"argparse", "gzip", "pathlib", "pickle", "tarfile", "keras", "numpy", "PIL"}


def run_outside_layerlab(script: Path, *args, cwd: Path, timeout=600, env=None) -> subprocess.CompletedProcess:
    """The script in a fresh Python whose path holds no Layerlab: from a temp folder, no PYTHONPATH
    but the one that may carry packages (tensorboard's), never the repo."""
    repo = str(Path(__file__).resolve().parents[2])
    path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != Path(repo)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, str(script), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def imported_modules(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add((node.module or "").split(".")[0])
    return found


@pytest.mark.slow
def test_the_script_trains_the_apps_model_on_the_mnist_sample_outside_layerlab(trained_run, shared_datasets,
                                                                                tmp_path):
    import keras

    store, run = trained_run
    script = tmp_path / "train.py"
    script.write_text(run_script(run))
    assert imported_modules(script.read_text()) <= ALLOWED_IMPORTS
    result = run_outside_layerlab(script, "--data", str(shared_datasets / "mnist-sample" / "mnist.npz"),
                                  "--epochs", "1", "--save", str(tmp_path / "script.keras"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = float(re.search(r"^test accuracy: ([0-9.]+)$", result.stdout, re.M).group(1))
    # One epoch each, another batch order: the same kind of model reaches about the same accuracy.
    assert accuracy == pytest.approx(run.metrics["test_accuracy"], abs=0.05)

    app = keras.models.load_model(store.run_dir(run.id) / "model.keras")
    scripted = keras.models.load_model(tmp_path / "script.keras")
    assert [layer.get_config() for layer in scripted.layers] == [layer.get_config() for layer in app.layers]
    assert scripted.count_params() == app.count_params() == 61706
    assert type(scripted.optimizer) is type(app.optimizer)
    assert scripted.optimizer.learning_rate.numpy() == pytest.approx(app.optimizer.learning_rate.numpy())


def photo_folder(root: Path, shape: tuple[int, int, int]) -> DatasetInfo:
    """train/ and validation/ folders of tiny PNGs in two classes of very different brightness."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("validation", 4)):
        for label, base in (("dark", 20), ("light", 230)):
            (root / split / label).mkdir(parents=True)
            for index in range(count):
                pixels = np.clip(base + rng.integers(-15, 15, (shape[0] + 4, shape[1] + 4, 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / label / f"{index}.png")
    return DatasetInfo("tiny_shapes", "Tiny shapes", ("dark", "light"), shape, "this test", "CC0",
                       "a folder with train/ and validation/")


def train_outside(source: str, folder: Path, tmp_path: Path, epochs: int) -> tuple[float, str]:
    """Run the script on the folder for `epochs`; its printed test accuracy, and all it printed."""
    script = tmp_path / "train.py"
    script.write_text(source)
    result = run_outside_layerlab(script, "--data", str(folder), "--epochs", str(epochs), "--save",
                                  str(tmp_path / "m.keras"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return float(re.search(r"^test accuracy: ([0-9.]+)$", result.stdout, re.M).group(1)), result.stdout


@pytest.mark.slow
def test_the_script_reads_a_folder_dataset_of_class_subfolders(tmp_path):
    """A dataset that is a folder of images (one subfolder per class), written here as tiny PNGs."""
    info = photo_folder(tmp_path / "data", (12, 10, 3))
    spec = ModelSpec(layers=(LayerSpec("Conv2D", "conv", {"filters": 4}), LayerSpec("Flatten", "flat"),
                             LayerSpec("Dense", "out", {"units": 2, "activation": "softmax"})),
                     input_shape=info.input_shape).normalized().with_fit(epochs=1, batch_size=4, validation_split=0.25)
    spec = spec.with_compile(learning_rate=0.01)
    assert validate(spec, info).ok, validate(spec, info).problems
    source = export_script(spec, info)
    assert "def read_folder(folder)" in source and "keras.datasets" not in source
    assert check_parity(source, spec, info.input_shape).ok
    # 8 validation images of two very different brightnesses: the model tells them apart.
    assert train_outside(source, tmp_path / "data", tmp_path, epochs=10)[0] >= 0.75
    missing = run_outside_layerlab(tmp_path / "train.py", cwd=tmp_path)
    assert missing.returncode != 0 and "pass --data FOLDER" in missing.stderr


@pytest.mark.slow
@pytest.mark.skipif("PretrainedBase" not in LAYER_TYPES, reason="no PretrainedBase layer type in the registry")
def test_the_script_of_a_model_on_a_pretrained_base_builds_and_trains_it(tmp_path):
    from pipelines.modelspec.keras_build import build_model

    info = photo_folder(tmp_path / "data", (32, 32, 3))
    spec = ModelSpec(layers=(LayerSpec("PretrainedBase", "base", {"base": "MobileNetV2", "weights": "none"}),
                             LayerSpec("GlobalAveragePooling2D", "pool"),
                             LayerSpec("Dense", "out", {"units": 2, "activation": "softmax"})),
                     input_shape=info.input_shape).normalized().with_fit(epochs=1, batch_size=8, validation_split=0.0)
    source = export_script(spec, info)
    assert "class PretrainedBase(keras.layers.Layer)" in source and "keras.applications" in source
    assert imported_modules(source) <= ALLOWED_IMPORTS
    parity = check_parity(source, spec, info.input_shape)
    assert parity.ok and parity.script_parameters > 2_000_000, parity  # MobileNetV2's own weights
    _accuracy, printed = train_outside(source, tmp_path / "data", tmp_path, epochs=1)
    total = int(re.search(r"Total params: ([0-9,]+)", printed).group(1).replace(",", ""))
    assert total == build_model(spec, info.input_shape).count_params() == parity.app_parameters
    assert (tmp_path / "m.keras").is_file()


def every_layer_type_spec(layer_type: str) -> ModelSpec:
    """A small CIFAR-10 model holding one layer of `layer_type` with the registry's defaults."""
    entry = LAYER_TYPES[layer_type]
    before = [LayerSpec("Flatten", "flat_in")] if entry.needs_flat_input else []
    if layer_type == "Reshape":
        before, entry_params = [], {"target_shape": [32, 96, 1]}
    else:
        entry_params = {}
    layers = [*before, LayerSpec(layer_type, "under_test", entry_params), LayerSpec("Flatten", "flat_out"),
              LayerSpec("Dense", "out", {"units": 10, "activation": "softmax"})]
    if layer_type in ("Flatten", "GlobalAveragePooling2D"):
        layers.pop(-2)
    return ModelSpec(layers=tuple(layers), input_shape=(32, 32, 3)).normalized()


@pytest.mark.parametrize("layer_type", sorted(LAYER_TYPES))
def test_every_registry_layer_type_exports_to_the_same_layer(layer_type):
    spec = every_layer_type_spec(layer_type)
    if LAYER_TYPES[layer_type].keras_class in UNEXPORTABLE:
        with pytest.raises(SpecError, match="Cannot export the layer 'under_test' as code: .+ instead"):
            export_script(spec, CATALOG["cifar10"])
        return
    assert validate(offline(spec), "cifar10").ok, validate(offline(spec), "cifar10").problems
    parity = check_parity(export_script(spec, CATALOG["cifar10"]), spec, (32, 32, 3))
    assert parity.ok, parity.differences


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_with_every_loss_and_optimizer_setting_builds_the_same_model(name):
    preset = PRESETS[name]
    info = CATALOG[preset.dataset] if preset.dataset in CATALOG else DatasetInfo(  # a folder not added here
        preset.dataset, preset.title, tuple(map(str, range(10))), preset.spec.input_shape, "", "", "")
    for changes in ({}, {"loss": "categorical_crossentropy", "optimizer": "sgd", "momentum": 0.9, "nesterov": True},
                    {"loss": "mse", "optimizer": "rmsprop", "momentum": 0.5}):
        spec = preset.spec.with_compile(**changes).with_fit(early_stopping_patience=2)
        source = export_script(spec, info)
        assert 'EarlyStopping(monitor=monitor, patience=2)' in source
        assert 'monitor = "val_loss" if validation is not None else "loss"' in source
        parity = check_parity(source, spec, info.input_shape)
        assert parity.ok and parity.app_parameters == parity.script_parameters > 0, parity.differences


def test_the_parity_check_notices_a_script_that_builds_another_model():
    preset = PRESETS["mlp-128x2"]
    source = export_script(preset.spec, CATALOG[preset.dataset])
    assert "units=128" in source
    parity = check_parity(source.replace("units=128", "units=64", 1), preset.spec, (28, 28, 1))
    assert not parity.ok and parity.app_parameters != parity.script_parameters
    assert any("differs in units" in text for text in parity.differences), parity.differences
    assert "parameters in the app" in parity.text


def test_names_and_titles_cannot_become_code():
    spec = ModelSpec(layers=(LayerSpec("Flatten", "f"),
                             LayerSpec("Dense", "d", {"units": 10, "activation": "softmax"}))).normalized()
    source = export_script(spec, CATALOG["mnist"], title='x"""\nimport os; os.system("echo hi")\n"""',
                           file_name="a b\n.py")
    tree = ast.parse(source)
    assert "os" not in imported_modules(source) and "system" not in {
        getattr(n.func, "attr", None) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    with pytest.raises(SpecError, match="only numbers, strings"):
        literal(object())
    with pytest.raises(SpecError, match="only numbers, strings"):
        literal(float("nan"))  # repr 'nan' is a name, not a literal


@pytest.mark.parametrize("dataset, files, reader", [
    ("mnist", lambda data, tmp: data / "mnist-sample" / "mnist.npz", readers.read_mnist_npz),
    ("fashion_mnist", lambda data, tmp: data / "fashion-mnist", readers.read_fashion_idx),
    ("cifar10", lambda data, tmp: write_cifar_folder(tmp / "cifar-10-batches-py"), readers.read_cifar_folder),
    ("cifar10", lambda data, tmp: write_cifar_tarball(tmp / "cifar-10-python.tar.gz"), readers.read_cifar_tarball),
])
def test_the_scripts_data_loading_gives_the_arrays_layerlab_trains_on(dataset, files, reader, shared_datasets,
                                                                       tmp_path):
    """--data PATH: the same images and labels, in the same order, as Layerlab's own readers."""
    info = CATALOG[dataset]
    spec = PRESETS["cifar-mlp" if dataset == "cifar10" else "mlp-128x2"].spec
    path = files(shared_datasets, tmp_path)
    (x_train, y_train), (x_test, y_test) = script_module(export_script(spec, info)).load_data(str(path))
    layerlab = reader(Path(path), info)
    for mine, theirs in ((x_train, layerlab.x_train), (y_train, layerlab.y_train), (x_test, layerlab.x_test),
                         (y_test, layerlab.y_test)):
        assert mine.shape == theirs.shape and np.array_equal(mine, theirs)
    assert x_train.dtype == np.uint8 and x_train.shape[1:] == info.input_shape


# Imports the exported script as a module (only its classes and functions: main() does not run) and
# loads a model.keras Layerlab saved, with safe_mode on; no Layerlab on the path.
LOAD_WITH_THE_SCRIPT = """
import importlib.util, sys
import keras
import numpy as np
spec = importlib.util.spec_from_file_location("exported", sys.argv[1])
exported = importlib.util.module_from_spec(spec)
spec.loader.exec_module(exported)
model = keras.models.load_model(sys.argv[2])
np.save(sys.argv[4], model.predict(np.load(sys.argv[3]), verbose=0))
print(sorted(name for name in sys.modules if name.split(".")[0] in ("pipelines", "components", "dashboard")))
"""


@pytest.mark.slow
def test_a_transfer_runs_model_keras_loads_in_plain_keras_with_the_exported_scripts_class(tmp_path):
    import keras
    from pipelines.modelspec.keras_blocks import PretrainedBase
    from pipelines.modelspec.keras_build import build_model

    info = DatasetInfo("photos", "Photos", ("a", "b", "c"), (32, 32, 3), "", "", "")
    spec = ModelSpec(layers=(LayerSpec("PretrainedBase", "base", {"base": "MobileNetV2", "weights": "none"}),
                             LayerSpec("GlobalAveragePooling2D", "pool"),
                             LayerSpec("Dense", "out", {"units": 3, "activation": "softmax"})),
                     input_shape=info.input_shape).normalized()
    source = export_script(spec, info)
    assert '@keras.saving.register_keras_serializable(package="layerlab")' in source
    assert 'keras.models.load_model("model.keras")' in source
    model = build_model(spec, info.input_shape)
    model.get_layer("base").weights_source = "imagenet"  # as saved by a run on ImageNet weights
    model.save(tmp_path / "model.keras")
    images = np.random.default_rng(3).random((4, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    (tmp_path / "train.py").write_text(source)
    (tmp_path / "load.py").write_text(LOAD_WITH_THE_SCRIPT)
    result = run_outside_layerlab(tmp_path / "load.py", str(tmp_path / "train.py"), str(tmp_path / "model.keras"),
                                  str(tmp_path / "images.npy"), str(tmp_path / "out.npy"), cwd=tmp_path,
                                  env={"KERAS_HOME": str(tmp_path / "keras_home")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "keras_home" / "models").exists()  # the weights came from the file, none downloaded
    assert result.stdout.strip().splitlines()[-1] == "[]"  # nothing of Layerlab was imported
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model.predict(images, verbose=0), atol=1e-5)

    # The parity check imports the script here too, and leaves the app's own class registered.
    assert check_parity(source, spec, info.input_shape).ok
    assert keras.saving.get_registered_object("layerlab>PretrainedBase") is PretrainedBase
    assert keras.saving.get_registered_name(PretrainedBase) == "layerlab>PretrainedBase"
    assert type(keras.models.load_model(tmp_path / "model.keras").get_layer("base")) is PretrainedBase
