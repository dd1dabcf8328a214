"""The CLI with image folders: `dataset add|list`, a small CNN trained on a folder, `evaluate --folder`."""
import json
from pathlib import Path

import pytest

from tests.cli.test_cli import cli
from tests.data.photo_folders import DISTINCT, copy_classes, tree

SPEC = Path(__file__).with_name("folder_cnn.json")


def test_dataset_add_prints_what_it_found_and_list_shows_it(shared_datasets, tmp_path):
    photos = copy_classes(shared_datasets, tmp_path / "photos", per_class=6)
    (photos / "hat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    home = tmp_path / "home"
    added = cli("dataset", "add", "my-photos", "--from", str(photos), "--image-size", "32", "--fit", "crop", home=home)
    assert added.returncode == 0, added.stderr
    assert "dataset my-photos: 3 classes, 32x32 rgb (crop)" in added.stdout
    assert "train: 15 images (hat 5, pants 5, shoes 5)" in added.stdout
    assert "unreadable: hat/broken.png:" in added.stdout and "warning: class 'hat' has only 6 image(s)" in added.stdout
    listed = cli("dataset", "list", "--json", home=home)
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["my-photos"] == {"name": "my-photos", "kind": "added", "classes": 3, "input_shape": [32, 32, 3]}
    assert rows["mnist"]["kind"] == "built-in"


def test_a_refused_folder_is_one_line_exit_1_and_writes_nothing(shared_datasets, tmp_path):
    one = copy_classes(shared_datasets, tmp_path / "one", classes=("hat",), per_class=3)
    home = tmp_path / "home"
    refused = cli("dataset", "add", "one", "--from", str(one), home=home)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith("error: ") and "one class only" in refused.stderr
    assert "Traceback" not in refused.stderr and tree(home / "datasets") == []
    unknown = cli("train", "--dataset", "never-added", "--spec", str(SPEC), home=home)
    assert unknown.returncode == 1 and "Unknown dataset 'never-added'" in unknown.stderr


@pytest.mark.slow
def test_a_small_cnn_trained_on_a_folder_beats_chance_and_evaluates_on_another_folder(shared_datasets, tmp_path):
    photos = copy_classes(shared_datasets, tmp_path / "photos", per_class=50)
    labelled = copy_classes(shared_datasets, tmp_path / "labelled", classes=(*DISTINCT, "skirt"), per_class=12,
                            split="validation")
    (labelled / "hat" / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    home = tmp_path / "home"
    trained = cli("train", "--dataset", f"folder:{photos}", "--image-size", "48", "--spec", str(SPEC),
                  "--epochs", "12", home=home)
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    assert summary["status"] == "COMPLETED" and summary["test_accuracy"] >= 0.6  # chance is 1/3
    evaluated = cli("evaluate", summary["run_id"][:6], "--folder", str(labelled), home=home)
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["dataset"] == "photos-48-stretch" and result["n_images"] == 36
    assert set(result["per_class"]) == set(DISTINCT) and result["unmatched_classes"] == ["skirt"]
    assert result["unreadable"] == 1 and result["unreadable_files"] == ["hat/broken.jpg"]
    assert result["accuracy"] >= 0.5
    assert result["run_test_accuracy"] == pytest.approx(summary["test_accuracy"])


def test_a_relative_folder_zip_is_reused_on_its_second_use(shared_datasets, tmp_path, monkeypatch, capsys):
    import argparse
    import zipfile

    from pipelines.cli.dataset_commands import _added_folder

    photos = copy_classes(shared_datasets, tmp_path / "photos", per_class=3)
    with zipfile.ZipFile(tmp_path / "ok.zip", "w") as archive:
        for file in sorted(photos.rglob("*.jpg")):
            archive.write(file, file.relative_to(photos).as_posix())
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(image_size=16, fit="stretch", color="rgb", home=str(tmp_path / "home"))
    assert _added_folder(Path("ok.zip"), args) == "ok-zip-16-stretch"
    assert _added_folder(Path("ok.zip"), args) == "ok-zip-16-stretch"  # was: "already exists, added from ok.zip"
    assert f"added from {tmp_path.resolve() / 'ok.zip'} before" in capsys.readouterr().err
    assert _added_folder(tmp_path / "ok.zip", args) == "ok-zip-16-stretch"  # the same zip named absolutely


def test_the_decode_progress_line_gives_an_eta(capsys):
    from pipelines.cli.dataset_commands import _progress

    _progress("decode", 256, 1024, 2.0)
    _progress("decode", 300, 1024, 2.0)  # between two lines: nothing
    _progress("decode", 1024, 1024, 8.0)
    assert capsys.readouterr().err.splitlines() == ["decoded 256/1024 images (128/s, about 6 s left)",
                                                    "decoded 1024/1024 images (128/s, 8.0 s)"]
