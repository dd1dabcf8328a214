"""The class balance chart of a dataset."""
from components.figures.class_balance import distribution_chart
from pipelines.data.catalog import DatasetInfo

INFO = DatasetInfo(name="toy", title="Toy", class_names=("cat", "dog", "owl"), input_shape=(8, 8, 1),
                   source="tests", licence="none", local_files="")
OVERVIEW = {"train_counts": [10, 20, 30], "test_counts": [1, 2, 3]}


def test_grouped_bars_for_train_and_test_per_class():
    figure = distribution_chart(INFO, OVERVIEW)
    train, test = figure.data
    assert (train.name, test.name) == ("train", "test")
    assert list(train.x) == list(test.x) == ["cat", "dog", "owl"]
    assert list(train.y) == [10, 20, 30] and list(test.y) == [1, 2, 3]
    assert figure.layout.barmode == "group"


def test_axes_and_title_say_what_is_counted():
    layout = distribution_chart(INFO, OVERVIEW).layout
    assert layout.xaxis.title.text == "Class" and layout.yaxis.title.text == "Images"
    assert layout.title.text == "Images per class"
