"""The class probability bars and the percent labels on them."""
import numpy as np
import pytest

from components.figures.probabilities import OTHER_COLOR, TOP_COLOR, percent, probability_figure

DIGITS = tuple("0123456789")


def test_probability_figure_highlights_the_top_class():
    probabilities = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.62, 0.05, 0.05])
    (bars,) = probability_figure(probabilities, DIGITS).data
    assert list(bars.y) == list(DIGITS) and bars.orientation == "h"
    colours = list(bars.marker.color)
    assert colours[7] == TOP_COLOR
    assert set(colours[:7] + colours[8:]) == {OTHER_COLOR}
    assert bars.text[7] == "62.0%"
    (waiting,) = probability_figure(None, DIGITS).data
    assert list(waiting.x) == [0.0] * 10 and set(waiting.marker.color) == {OTHER_COLOR}
    assert waiting.text is None


def test_bars_run_top_to_bottom_in_class_order_on_a_percent_axis():
    figure = probability_figure(np.full(3, 1 / 3), ("a", "b", "c"))
    assert figure.layout.yaxis.autorange == "reversed" and figure.layout.yaxis.type == "category"
    assert figure.layout.xaxis.tickformat == ".0%" and tuple(figure.layout.xaxis.range) == (0, 1.12)
    assert figure.layout.height < probability_figure(np.full(10, 0.1), DIGITS).layout.height


@pytest.mark.parametrize("probability, text", [(0.98, "98.0%"), (0.9999, "99.9%"), (0.096, "9.6%"), (0.0004, "<0.1%")])
def test_percent_has_one_decimal_and_never_says_100(probability, text):
    assert percent(probability) == text
