"""An exported script reads an image-folder dataset's photos exactly as Layerlab stored them: the
dataset's fit, colour mode and EXIF orientation, the same resizing, the same uint8 values."""
import json

import numpy as np
import pytest
from PIL import Image

from pipelines.data.catalog import DatasetInfo
from pipelines.data.folders import COLORS, FITS, Settings, decode_image
from pipelines.errors import SpecError
from pipelines.io.export import dataset_fit, script_module
from pipelines.io.export_script import export_script
from pipelines.modelspec.spec import LayerSpec, ModelSpec

SIZE = 32


def spec_for(info: DatasetInfo) -> ModelSpec:
    return ModelSpec(layers=(LayerSpec("Flatten", "flat"), LayerSpec("Dense", "out", {"units": 2, "activation": "softmax"})),
                     input_shape=info.input_shape).normalized()


@pytest.fixture(scope="module")
def photos(shared_datasets, tmp_path_factory) -> list:
    """Real clothing photos (portrait and landscape JPEGs), one turned by EXIF, one palette PNG with
    transparency: each path the script's reader and Layerlab's must agree on."""
    root = shared_datasets / "clothing-small" / "train"
    real = [path for name in ("hat", "pants", "shoes") for path in sorted((root / name).glob("*.jpg"))[:2]]
    folder = tmp_path_factory.mktemp("odd-photos")
    stored = np.zeros((40, 90, 3), np.uint8)
    stored[:, :45] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    Image.fromarray(stored).save(folder / "turned.jpg", quality=95, exif=exif)
    palette = Image.fromarray(np.arange(50 * 70, dtype=np.uint8).reshape(50, 70) % 200).convert("P")
    palette.info["transparency"] = 3
    palette.save(folder / "palette.png")
    return [*real, folder / "turned.jpg", folder / "palette.png"]


@pytest.mark.parametrize("color", COLORS)
@pytest.mark.parametrize("fit", FITS)
def test_the_scripts_reader_gives_layerlabs_own_pixels(photos, fit, color):
    settings = Settings(SIZE, fit, color)
    info = DatasetInfo("clothes", "Clothes", ("a", "b"), settings.shape, "", "", "")
    source = export_script(spec_for(info), info, fit=fit)
    assert f"FIT = {fit!r}" in source
    read_image = script_module(source).read_image
    for path in photos:
        theirs, ours = read_image(path), decode_image(path, settings)
        assert theirs.dtype == ours.dtype == np.uint8 and theirs.shape == ours.shape == settings.shape
        assert np.array_equal(theirs, ours), (path.name, np.abs(theirs.astype(int) - ours).max())


def test_the_scripts_folder_reader_labels_by_class_and_skips_what_layerlab_skips(photos, tmp_path):
    info = DatasetInfo("clothes", "Clothes", ("hat", "pants"), (SIZE, SIZE, 3), "", "", "")
    for label, name in enumerate(info.class_names):
        (tmp_path / name).mkdir()
        for index, path in enumerate(photos[2 * label:2 * label + 2]):
            (tmp_path / name / f"{index}.jpg").write_bytes(path.read_bytes())
    (tmp_path / "hat" / ".hidden.jpg").write_bytes(photos[0].read_bytes())
    (tmp_path / "hat" / "notes.txt").write_text("not a photo")
    (tmp_path / "pants" / "broken.png").write_bytes(b"not a png")
    module = script_module(export_script(spec_for(info), info, fit="crop"))
    x, y = module.read_folder(tmp_path)
    assert y.tolist() == [0, 0, 1, 1]
    expected = [decode_image(tmp_path / name / f"{i}.jpg", Settings(SIZE, "crop")) for name in ("hat", "pants")
                for i in range(2)]
    assert np.array_equal(x, np.stack(expected))


def test_the_fit_comes_from_the_added_datasets_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path))
    folder = tmp_path / "datasets" / "clothes"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"name": "clothes", "classes": ["a", "b"], "image_size": SIZE,
                                                      "channels": 3, "fit": "pad", "color": "rgb"}))
    assert dataset_fit("clothes") == "pad"
    assert dataset_fit("mnist") == "stretch"
    info = DatasetInfo("clothes", "Clothes", ("a", "b"), (SIZE, SIZE, 3), "", "", "")
    with pytest.raises(SpecError, match="`fit` must be one of: stretch, crop, pad. Received: fit='squash'"):
        export_script(spec_for(info), info, fit="squash")


def test_a_folders_own_validation_split_validates_in_the_script_as_in_layerlab(photos, tmp_path):
    """Layerlab validates on a folder's validation/ (all of train/ trains; without test/ it is the
    test set too); the script does the same, and splits train/ only for a folder without one."""
    info = DatasetInfo("clothes", "Clothes", ("hat", "pants"), (SIZE, SIZE, 3), "", "", "")
    for split, chosen in (("train", photos[:4]), ("validation", photos[4:6])):
        for label, name in enumerate(info.class_names):
            (tmp_path / split / name).mkdir(parents=True)
            for index, path in enumerate(chosen[label::2]):
                (tmp_path / split / name / f"{index}.jpg").write_bytes(path.read_bytes())
    source = export_script(spec_for(info).with_fit(validation_split=0.25, early_stopping_patience=2), info)
    module = script_module(source)
    (x_train, y_train), (x_test, y_test) = module.load_data(str(tmp_path))
    x_val, y_val = module.read_validation(str(tmp_path))
    assert len(x_train) == 4 and y_val.tolist() == [0, 1]
    assert np.array_equal(x_val, x_test) and np.array_equal(y_val, y_test)
    assert "validation = read_validation(args.data)" in source
    assert module.read_validation(str(tmp_path / "train")) is None
