"""Two runs, prediction by prediction: both confusion matrices, their difference, the flipped gallery."""
import pytest
from streamlit.testing.v1 import AppTest

from components import model_cache


@pytest.fixture(autouse=True)
def _model_cache_restored():
    """The page below replaces model_cache's loaders in this process: put them back for the
    tests that run after it (the Test page's evaluation read these fakes)."""
    saved = model_cache.evaluation, model_cache.evaluation_data
    yield
    model_cache.evaluation, model_cache.evaluation_data = saved


def predictions_page():
    from types import SimpleNamespace

    import numpy as np

    from components import compare_view, model_cache

    labels = np.array([0, 1, 1, 0])
    results = {
        "a": SimpleNamespace(confusion=np.array([[2, 0], [1, 1]]), class_names=["<b>cat</b>", "dog"], labels=labels,
                             predicted=np.array([0, 1, 0, 0]), confidence=np.array([0.9, 0.8, 0.6, 0.7])),
        "b": SimpleNamespace(confusion=np.array([[1, 1], [0, 2]]), class_names=["<b>cat</b>", "dog"], labels=labels,
                             predicted=np.array([0, 1, 1, 1]), confidence=np.array([0.9, 0.8, 0.7, 0.6]))}
    model_cache.evaluation = lambda store, run: results[run.id]
    model_cache.evaluation_data = lambda dataset: SimpleNamespace(x_test=np.zeros((4, 28, 28, 1), dtype=np.uint8))
    first = SimpleNamespace(id="a", name="run <a href='http://x'>A</a>", dataset="fashion_mnist")
    second = SimpleNamespace(id="b", name="run B", dataset="fashion_mnist")
    compare_view.predictions(None, first, second)


def test_both_matrices_their_difference_and_the_flipped_examples():
    at = AppTest.from_function(predictions_page, default_timeout=60).run()
    assert not at.exception
    charts = {chart.proto.id.rsplit("compare_", 1)[-1]: chart.proto.spec for chart in at.get("plotly_chart")}
    assert {"confusion_a", "confusion_b", "confusion"} <= set(charts)
    assert "run B" in charts["confusion_b"] and "<a" not in charts["confusion_a"]
    assert "&lt;b&gt;cat" in charts["confusion"]
    texts = " ".join(m.value for m in at.markdown)
    assert texts.count("wrong in the other**: 1 test images") == 2  # image 3 one way, image 2 the other
