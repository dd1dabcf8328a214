"""The Data page's one table of images per class and split, and the chart beside it, name each split
for what it is: an added dataset whose validation/ folder is also its test set says "validation"."""
import pytest

from components import dataset_view
from pipelines.data import added
from pipelines.data.catalog import CATALOG
from pipelines.data.folders import Settings
from pipelines.io.dataset_import import add_dataset
from tests.dashboard.test_data_page import home, open_data  # noqa: F401 - the fixture is used by name
from tests.data.photo_folders import copy_classes


@pytest.fixture
def folders(shared_datasets, tmp_path):
    """train/ with 4 photos of each class and validation/ with 2, as the clothing tutorial's zip."""
    photos = tmp_path / "photos"
    copy_classes(shared_datasets, photos / "train", per_class=4)
    copy_classes(shared_datasets, photos / "validation", per_class=2, split="validation")
    return photos


def test_a_validation_folder_without_test_is_one_table_and_a_chart_that_say_validation(home, folders):
    add_dataset("with-val", str(folders), Settings(32), home=home)
    try:
        at = open_data("with-val")
        assert not at.exception and not at.error, at.error
        (table,) = [frame.value for frame in at.dataframe]  # one table of counts, not two
        assert list(table.columns) == ["Label", "Class", "Training images", dataset_view.VALIDATION_AS_TEST]
        assert list(table["Training images"]) == [4, 4, 4] and list(table[dataset_view.VALIDATION_AS_TEST]) == [2] * 3
        (chart,) = at.get("plotly_chart")
        assert '"name":"validation"' in chart.proto.spec and '"name":"test"' not in chart.proto.spec
    finally:
        added.clear_cache()


def test_a_dataset_with_validation_and_test_folders_shows_three_splits_and_a_test_legend(home, folders,
                                                                                        shared_datasets):
    copy_classes(shared_datasets, folders / "test", per_class=1, split="validation", start=2)
    add_dataset("three", str(folders), Settings(32), home=home)
    try:
        info = CATALOG["three"]
        overview = {"train_counts": [4] * 3, "test_counts": [1] * 3}
        table = dataset_view.class_table(info, overview)
        assert list(table.columns)[2:] == ["Training images", "Validation images", "Test images"]
        assert list(table["Test images"]) == [1, 1, 1]
        assert [trace.name for trace in dataset_view.balance_chart(info, overview).data] == ["train", "test"]
    finally:
        added.clear_cache()


def test_a_built_in_dataset_keeps_its_training_and_test_columns(home):
    overview = {"train_counts": [5] * 10, "test_counts": [1] * 10}
    table = dataset_view.class_table(CATALOG["mnist"], overview)
    assert list(table.columns) == ["Class", "Training images", "Test images"]
    assert [trace.name for trace in dataset_view.balance_chart(CATALOG["mnist"], overview).data] == ["train", "test"]
