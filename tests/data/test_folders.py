"""Image folders: classes and splits found, each photo decoded once, upright and fitted, bad files reported."""
import json

import numpy as np
import pytest
from PIL import Image

from pipelines.data import added, folders
from pipelines.data.catalog import CATALOG, get_info
from pipelines.data.folders import Settings, decode_image, decode_scan, scan_folder
from pipelines.data.locate import load, locate
from pipelines.errors import DatasetError
from tests.data.photo_folders import copy_classes


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    added.clear_cache()


def test_a_flat_folder_is_split_per_class_with_a_fixed_seed(shared_datasets, tmp_path):
    root = copy_classes(shared_datasets, tmp_path / "photos", per_class=25)
    scan = scan_folder(root)
    assert scan.classes == ("hat", "pants", "shoes")
    assert scan.split_made and not scan.splits_given
    assert scan.counts() == {"train": [20, 20, 20], "test": [5, 5, 5]}
    again = scan_folder(root)
    assert [f for f in again.files if f[2] == "test"] == [f for f in scan.files if f[2] == "test"]
    assert any("20%" in note and "stratified" in note for note in scan.notes)


def test_given_splits_are_kept_and_validation_is_the_validation_split(shared_datasets, tmp_path):
    copy_classes(shared_datasets, tmp_path / "photos" / "train", per_class=12)
    copy_classes(shared_datasets, tmp_path / "photos" / "val", per_class=4, split="validation")
    scan = scan_folder(tmp_path / "photos")
    assert scan.splits_given and not scan.split_made
    assert scan.counts() == {"train": [12, 12, 12], "validation": [4, 4, 4]}
    assert any("validation/ is also the test set" in note for note in scan.notes)


def test_a_zip_of_one_folder_is_looked_into_and_tiny_or_missing_classes_are_warned(shared_datasets, tmp_path):
    copy_classes(shared_datasets, tmp_path / "wrap" / "photos" / "train", per_class=12)
    copy_classes(shared_datasets, tmp_path / "wrap" / "photos" / "test", classes=("hat", "pants"), per_class=3)
    copy_classes(shared_datasets, tmp_path / "wrap" / "photos" / "train", classes=("skirt",), per_class=3)
    scan = scan_folder(tmp_path / "wrap")
    assert scan.classes == ("hat", "pants", "shoes", "skirt")
    warnings = scan.warnings()
    assert any("'skirt' has only 3" in w for w in warnings)
    assert any("test split has no images of class(es): 'shoes', 'skirt'" in w for w in warnings)


def test_no_images_or_a_single_class_is_refused(shared_datasets, tmp_path):
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    (tmp_path / "empty" / "cats" / "notes.txt").write_text("hi")
    with pytest.raises(DatasetError, match="No images found"):
        scan_folder(tmp_path / "empty")
    copy_classes(shared_datasets, tmp_path / "one", classes=("hat",), per_class=3)
    copy_classes(shared_datasets, tmp_path / "one", classes=("pants",), per_class=0)
    with pytest.raises(DatasetError, match="one class only \\('hat'\\)"):
        scan_folder(tmp_path / "one")


def test_exif_orientation_is_honoured(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)  # left half red, right half blue, as stored
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display": the left half ends up on top
    Image.fromarray(stored).save(tmp_path / "side.jpg", quality=95, exif=exif)
    pixels = decode_image(tmp_path / "side.jpg", Settings(16, "stretch", "rgb")).astype(int)
    assert pixels.shape == (16, 16, 3)
    assert pixels[1, :, 0].min() > 200 and pixels[1, :, 2].max() < 60  # top row red
    assert pixels[-2, :, 2].min() > 200 and pixels[-2, :, 0].max() < 60  # bottom row blue


@pytest.mark.parametrize("fit, expect_black_bands", [("stretch", False), ("crop", False), ("pad", True)])
def test_fit_modes_and_grayscale(tmp_path, fit, expect_black_bands):
    Image.fromarray(np.full((30, 60, 3), 200, np.uint8)).save(tmp_path / "wide.png")
    pixels = decode_image(tmp_path / "wide.png", Settings(20, fit, "grayscale"))
    assert pixels.shape == (20, 20, 1) and pixels.dtype == np.uint8
    assert (pixels[0, 10, 0] == 0) == expect_black_bands  # pad leaves bands above and below a wide photo
    assert pixels[10, 10, 0] == 200


def test_settings_name_what_is_allowed():
    with pytest.raises(DatasetError, match="image_size` must be an integer from 8 to 512. Received: image_size=4"):
        Settings(4)
    with pytest.raises(DatasetError, match="fit` must be one of: stretch, crop, pad. Received: fit='zoom'"):
        Settings(96, "zoom")


def test_unreadable_files_are_reported_and_the_rest_decoded(shared_datasets, tmp_path):
    root = copy_classes(shared_datasets, tmp_path / "photos", per_class=10)
    (root / "hat" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "pants" / "notes.txt").write_text("not a photo")
    scan = scan_folder(root)
    seen = []
    decoded = decode_scan(scan, Settings(32), lambda done, total, seconds: seen.append((done, total)))
    assert [f for f, _ in decoded.unreadable] == ["hat/broken.jpg"]
    assert str(tmp_path) not in decoded.unreadable[0][1]
    assert ("pants/notes.txt", scan.skipped[0][1]) == scan.skipped[0]
    assert decoded.x.shape == (30, 32, 32, 3) and decoded.x.dtype == np.uint8
    assert seen[-1] == (31, 31)


def test_memory_is_checked_before_allocating(shared_datasets, tmp_path, monkeypatch):
    root = copy_classes(shared_datasets, tmp_path / "photos", per_class=5)
    monkeypatch.setenv("LAYERLAB_DATASET_MAX_MB", "1")
    with pytest.raises(DatasetError, match="15 images of 512x512x3 take 11 MB; the cap is 1 MB \\(setting LAYERLAB_DATASET_MAX_MB\\)"):
        decode_scan(scan_folder(root), Settings(512))


def test_a_saved_dataset_joins_the_catalog_and_loads_its_arrays(shared_datasets, tmp_path, home):
    root = copy_classes(shared_datasets, tmp_path / "photos", per_class=10)
    settings = Settings(24, "crop", "rgb")
    scan = scan_folder(root)
    decoded = decode_scan(scan, settings)
    manifest = added.save("my-clothes", scan, decoded, settings, origin=str(root))
    assert "my-clothes" in CATALOG and list(CATALOG)[:3] == ["mnist", "fashion_mnist", "cifar10"]
    info = get_info("my-clothes")
    assert info.input_shape == (24, 24, 3) and info.class_names == ("hat", "pants", "shoes")
    assert locate("my-clothes") == str(home / "datasets" / "my-clothes" / "arrays.npz")
    dataset = load("my-clothes")
    assert dataset.x_train.shape == (24, 24, 24, 3) and dataset.x_test.shape == (6, 24, 24, 3)
    np.testing.assert_array_equal(dataset.x_test, decoded.x[decoded.split == "test"])
    stored = json.loads((home / "datasets" / "my-clothes" / "manifest.json").read_text())
    assert stored == manifest and stored["counts"] == {"train": [8, 8, 8], "test": [2, 2, 2]}
    with pytest.raises(DatasetError, match="already exists"):
        added.save("my-clothes", scan, decoded, settings, origin="again")
    with pytest.raises(DatasetError, match="built-in dataset"):
        added.check_name("mnist")
    assert sorted(p.name for p in (home / "datasets").iterdir()) == ["my-clothes"]


def test_symlinked_photos_and_class_folders_are_reported_skipped_not_followed(shared_datasets, tmp_path):
    elsewhere = copy_classes(shared_datasets, tmp_path / "elsewhere", classes=("shoes",), per_class=3)
    root = copy_classes(shared_datasets, tmp_path / "photos", classes=("hat", "pants"), per_class=3)
    (root / "boots").symlink_to(elsewhere / "shoes", target_is_directory=True)
    (root / "hat" / "linked.jpg").symlink_to(next((elsewhere / "shoes").iterdir()))
    (root / "pants" / "more").symlink_to(elsewhere / "shoes", target_is_directory=True)
    scan = scan_folder(root)
    assert scan.classes == ("hat", "pants") and len(scan.files) == 6
    reasons = dict(scan.skipped)
    assert set(reasons) == {"boots", "hat/linked.jpg", "pants/more"}
    assert all(reason.startswith("a symbolic link; links are not followed") for reason in reasons.values())
    split = tmp_path / "split"
    copy_classes(shared_datasets, split / "train", classes=("hat", "pants"), per_class=3)
    (split / "test").symlink_to(root, target_is_directory=True)
    assert dict(scan_folder(split).skipped) == {"test": reasons["boots"]}


def test_a_replacement_keeps_the_size_colour_and_classes_the_runs_were_trained_on(shared_datasets, tmp_path, home):
    from pipelines.io.dataset_import import add_dataset

    root = copy_classes(shared_datasets, tmp_path / "photos", per_class=6)
    add_dataset("clothes", root, Settings(24, "crop", "rgb"))
    before = (home / "datasets" / "clothes" / "arrays.npz").read_bytes()
    fewer = copy_classes(shared_datasets, tmp_path / "fewer", ("hat", "pants"), 6)
    other = copy_classes(shared_datasets, tmp_path / "other", ("hat", "pants", "shirt"), 6)
    refusals = [(Settings(32, "crop", "rgb"), root, r"it is 24 px with 3 colour channel\(s\), the replacement 32 px with 3"),
                (Settings(24, "crop", "grayscale"), root, "the replacement 24 px with 1"),
                (Settings(24, "crop", "rgb"), fewer, r"the replacement lacks the class\(es\) 'shoes'\."),
                (Settings(24, "crop", "rgb"), other, r"the replacement lacks the class\(es\) 'shoes' and adds 'shirt'"),
                (Settings(32, "crop", "rgb"), fewer, r"replacement 32 px with 3; the replacement lacks")]
    for settings, folder, reason in refusals:
        with pytest.raises(DatasetError, match=f"Dataset 'clothes' cannot be replaced so: .*{reason}.*another name"):
            add_dataset("clothes", folder, settings, replace=True)
    assert (home / "datasets" / "clothes" / "arrays.npz").read_bytes() == before  # nothing was replaced
    first = added.read_manifest("clothes")
    more = copy_classes(shared_datasets, tmp_path / "more", per_class=8)
    add_dataset("clothes", more, Settings(24, "pad", "rgb"), replace=True)  # the same size, colour and classes
    replaced = added.read_manifest("clothes")
    assert (replaced["fit"], first["fit"]) == ("pad", "crop")
    assert sum(replaced["counts"]["train"]) > sum(first["counts"]["train"])
    (home / "datasets" / "clothes" / "manifest.json").write_text("{damaged")  # nothing can be tested on it
    add_dataset("clothes", fewer, Settings(32, "crop", "grayscale"), replace=True)
    assert added.read_manifest("clothes")["classes"] == ["hat", "pants"]
